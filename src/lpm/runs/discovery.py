"""The discovery part of ``lpm demo``: embeddings, mechanisms, gene networks and explanations of
an LPM trained on the simulated world, each scored against the world's ground truth.

The same calls as ``lpm embed``, ``lpm moa``, ``lpm grn`` and ``lpm explain``; the section it
returns puts every score beside its no-model baseline and shows the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import polars as pl

#: The demo's LPM: fast mode, few epochs (early stopping may end it sooner).
DISCOVERY_MODEL: Final = "lpm_fast"
DISCOVERY_PARAMS: Final[dict[str, Any]] = {"max_epochs": 30}
#: The demo's attentive mixture of experts (``lpm explain``'s trained form).
AME_PARAMS: Final[dict[str, Any]] = {"max_epochs": 20}


def _moa_lines(scores: pl.DataFrame) -> list[str]:
    lines = [
        "| method | AUROC | MAP | recall@10 | chance MAP | compounds |",
        "|---|---|---|---|---|---|",
    ]
    for r in scores.iter_rows(named=True):
        lines.append(
            f"| {r['method']} | {r['auroc']:.3f} | {r['average_precision']:.3f} | "
            f"{r['recall_at_k']:.3f} | {r['base_rate']:.3f} | {r['n_queries']} |"
        )
    return lines


def _grn_lines(scores: pl.DataFrame) -> list[str]:
    wide = {(r["method"], r["metric"]): r["value"] for r in scores.iter_rows(named=True)}
    methods = list(dict.fromkeys(scores["method"].to_list()))
    lines = [
        "| method | AUPRC | chance | precision@100 | random precision@100 | lift (AUPRC of top) |",
        "|---|---|---|---|---|---|",
    ]
    for m in methods:
        cells = [
            wide.get((m, k), float("nan"))
            for k in (
                "auprc",
                "base_rate",
                "precision_at_100",
                "random_precision_at_100",
                "lift_auprc_top",
            )
        ]
        lines.append(f"| {m} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return lines


def discovery_section(
    store: Path,
    truth: Path,
    out: Path,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Run the four discovery tasks on a simulated world and return the report's section."""
    from lpm.priors.mechanisms import simulator_mechanisms
    from lpm.runs.train import train_model
    from lpm.tasks.embeddings import write_embeddings
    from lpm.tasks.explain import run_explain, summary_lines
    from lpm.tasks.grn import run_grn
    from lpm.tasks.moa import run_moa

    say = progress or (lambda _: None)
    t0 = time.perf_counter()
    say(f"discovery: training {DISCOVERY_MODEL} on the whole simulated store")
    model_dir = out / "model"
    model = train_model(
        [store],
        model=DISCOVERY_MODEL,
        out=model_dir,
        params={**DISCOVERY_PARAMS, "seed": seed},
        overwrite=True,
    )
    say("discovery: embeddings (UMAP)")
    emb = write_embeddings(
        model,
        out / "embeddings.h5ad",
        annotations=simulator_mechanisms(truth),
        figure=out / "embeddings.png",
        seed=seed,
    )
    say("discovery: mechanisms of action")
    moa = run_moa(store, out=out / "moa", model=model, truth=truth)
    say("discovery: gene networks")
    grn = run_grn(
        store,
        out=out / "grn",
        method="all",
        model=model,
        reference=truth,
        seed=seed,
        overwrite=True,
    )
    say("discovery: which input drives a prediction")
    exp = run_explain(
        store,
        out=out / "explain",
        truth=truth,
        seed=seed,
        lpm_params=DISCOVERY_PARAMS,
        ame_params=AME_PARAMS,
        overwrite=True,
    )
    rel = out.name
    lines = [
        "## Discovery on the simulated world",
        "",
        f"An `{DISCOVERY_MODEL}` trained on the whole store (seed {seed}); every score is against "
        f"the world's truth, beside the baseline that uses no model. {time.perf_counter() - t0:.0f} s.",
        "",
        f"**Embeddings** ({emb.layout}; `{rel}/embeddings.h5ad`): compounds are coloured by their "
        "strongest target, with the knock-downs of that gene.",
        "",
        f"![embeddings]({rel}/embeddings.png)",
        "",
        "**Mechanism of action**: each compound's true targets among all genetic perturbations "
        "(`measured_profile` is the no-model baseline).",
        "",
        *_moa_lines(moa.scores),
        "",
    ]
    if moa.figure is not None:
        lines += [f"![moa]({rel}/moa/{moa.figure.name})", ""]
    lines += [
        "**Gene networks** against the true network (`knockdown` is the no-model baseline; random: "
        "the top network rewired with degrees kept).",
        "",
        *_grn_lines(grn.scores),
        "",
    ]
    for m in grn.methods:
        png = out / "grn" / f"module_{m}.png"
        if png.is_file():
            lines += [f"![module {m}]({rel}/grn/{png.name})", ""]
    lines += [
        "**Which input drives a prediction** (post-hoc input swap, and the trained attentive "
        "mixture of experts), on held-out profiles:",
        "",
        *(f"- {line}" for line in summary_lines(exp.summary)),
        "",
        f"![importance]({rel}/explain/importance.png)",
        "",
    ]
    return lines

"""The discovery section of the demo report, made only from the tables ``lpm.runs.discovery``
wrote: every score beside its no-model baseline, and the figures linked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import polars as pl

from lpm.tasks.explain import PERTURBATION_SCORES

#: What :func:`lpm.runs.discovery.run_discovery` records about its run, beside the tables.
RUN_FILE: Final = "discovery.json"
#: The files of the discovery runs that the report reads: ``lpm moa`` writes the first two,
#: ``lpm grn`` the next two, ``lpm explain`` the last two (:mod:`lpm.runs` names them by these).
MOA_SCORES_FILE: Final = "moa_scores.csv"
MOA_FIGURE_FILE: Final = "moa.png"
GRN_SCORES_FILE: Final = "scores.csv"
GRN_OPTIONS_FILE: Final = "grn.json"
EXPLAIN_SUMMARY_FILE: Final = "summary.json"
EXPLAIN_FIGURE_FILE: Final = "importance.png"


def explain_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary of ``lpm explain`` (its ``summary.json``) in a few sentences: shares per input
    and method, the sanity check, held-out errors."""
    lines = []
    ratios = summary.get("context_vs_perturbation", {})
    for method, by_input in summary.get("shares", {}).items():
        text = ", ".join(f"{k} {v:.0%}" for k, v in by_input.items())
        ratio = ratios.get(method)
        extra = f" (context / (context + perturbation): {ratio:.0%})" if ratio is not None else ""
        lines.append(f"{method}: share of importance by input: {text}{extra}")
    checks = summary.get("sanity_check") or {}
    order = [c for c in PERTURBATION_SCORES if c in checks] + sorted(
        set(checks) - set(PERTURBATION_SCORES)
    )
    for score, check in ((c, checks[c]) for c in order):
        lines.append(
            f"sanity check ({score}): perturbations without downstream effect "
            f"{check['mean_no_effect']:.3g} against {check['mean_effect']:.3g} for the others "
            f"(AUROC of telling them apart {check['auroc']:.3f}, {check['n_no_effect']} vs "
            f"{check['n_effect']} perturbations)"
        )
    mse = summary.get("test_mse", {})
    if mse:
        ame = f", lpm_ame {mse['ame']:.4g}" if mse.get("ame") is not None else ""
        lines.append(f"held-out MSE: explained model {mse['lpm']:.4g}{ame}")
    return lines


def moa_lines(scores: pl.DataFrame) -> list[str]:
    """A Markdown table of ``moa_scores.csv``: one row per method."""
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


def grn_lines(scores: pl.DataFrame) -> list[str]:
    """A Markdown table of ``scores.csv`` of ``lpm grn``: one row per method."""
    wide = {(r["method"], r["metric"]): r["value"] for r in scores.iter_rows(named=True)}
    methods = list(dict.fromkeys(scores["method"].to_list()))
    lines = [
        "| method | AUPRC | chance | precision@100 | random precision@100 | lift (AUPRC of top) |",
        "|---|---|---|---|---|---|",
    ]
    keys = ("auprc", "base_rate", "precision_at_100", "random_precision_at_100", "lift_auprc_top")
    for m in methods:
        cells = [wide.get((m, k), float("nan")) for k in keys]
        lines.append(f"| {m} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return lines


def discovery_section(folder: str | Path) -> list[str]:
    """The report's section on the discovery outputs in ``folder`` (links relative to its parent)."""
    folder = Path(folder)
    rel = folder.name
    run = json.loads((folder / RUN_FILE).read_text())
    grn = json.loads((folder / "grn" / GRN_OPTIONS_FILE).read_text())
    explain = json.loads((folder / "explain" / EXPLAIN_SUMMARY_FILE).read_text())
    lines = [
        "## Discovery on the simulated world",
        "",
        f"An `{run['model']}` trained on the whole store (seed {run['seed']}); every score is "
        f"against the world's truth, beside the baseline that uses no model. "
        f"{run['seconds']:.0f} s.",
        "",
        f"**Embeddings** ({run['layout']}; `{rel}/embeddings.h5ad`): compounds are coloured by "
        "their strongest target, with the knock-downs of that gene.",
        "",
        f"![embeddings]({rel}/embeddings.png)",
        "",
        "**Mechanism of action**: each compound's true targets among all genetic perturbations "
        "(`measured_profile` is the no-model baseline).",
        "",
        *moa_lines(pl.read_csv(folder / "moa" / MOA_SCORES_FILE)),
        "",
    ]
    if (folder / "moa" / MOA_FIGURE_FILE).is_file():
        lines += [f"![moa]({rel}/moa/{MOA_FIGURE_FILE})", ""]
    lines += [
        "**Gene networks** against the true network (`knockdown` is the no-model baseline; random: "
        "the top network rewired with degrees kept).",
        "",
        *grn_lines(pl.read_csv(folder / "grn" / GRN_SCORES_FILE)),
        "",
    ]
    for m in grn["methods"]:
        if (folder / "grn" / f"module_{m}.png").is_file():
            lines += [f"![module {m}]({rel}/grn/module_{m}.png)", ""]
    lines += [
        "**Which input drives a prediction** (post-hoc input swap, and the trained attentive "
        "mixture of experts), on held-out profiles:",
        "",
        *(f"- {line}" for line in explain_lines(explain)),
        "",
        f"![importance]({rel}/explain/{EXPLAIN_FIGURE_FILE})",
        "",
    ]
    return lines


__all__ = [
    "EXPLAIN_FIGURE_FILE",
    "EXPLAIN_SUMMARY_FILE",
    "GRN_OPTIONS_FILE",
    "GRN_SCORES_FILE",
    "MOA_FIGURE_FILE",
    "MOA_SCORES_FILE",
    "RUN_FILE",
    "discovery_section",
    "explain_lines",
    "grn_lines",
    "moa_lines",
]

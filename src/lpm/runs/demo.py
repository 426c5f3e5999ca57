"""``lpm demo``: the whole loop on the embedded simulated world, no download needed.

Simulate → benchmark every registered model on two splits → discovery (embeddings, mechanisms,
gene networks, explanations) scored against the world's truth → a short report with figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from lpm._utils.atomic import write_text_atomic
from lpm.data.info import format_info, store_info
from lpm.data.store import open_store
from lpm.models.registry import runnable_models
from lpm.runs.benchmark import benchmark_to_dir
from lpm.runs.discovery import discovery_section

#: Small enough to finish in well under three minutes on two cores.
DEMO_GENES, DEMO_PERTURBATIONS, DEMO_CONTEXTS = 600, 200, 4
DEMO_SPLITS = ("unseen_pair", "combination")
DEMO_SEEDS = (0, 1, 2)
#: LPM settings of the demo (fast mode trains in seconds here; early stopping ends it).
DEMO_MODEL_PARAMS: dict[str, dict[str, object]] = {"lpm_fast": {"max_epochs": 30}}
#: Left out of the demo: exact-mode LPM trains at tens of thousands of values/s on two cores,
#: too slow for a three-minute demo; ``lpm_fast`` (the same inputs, fast mode) stands in for it.
DEMO_EXCLUDED = ("lpm", "lpm_ame")


def run_demo(
    out: str | Path, *, seed: int = 0, progress: Callable[[str], None] | None = None
) -> Path:
    """Run the demo into ``out`` and return the path of its report."""
    from lpm.sim.simulate import simulate

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _: None)
    t0 = time.perf_counter()
    world = f"{DEMO_GENES} genes × {DEMO_PERTURBATIONS} perturbations × {DEMO_CONTEXTS} contexts"
    say(f"simulating {world} (seed {seed})")
    simulate(
        out / "sim",
        n_genes=DEMO_GENES,
        n_perturbations=DEMO_PERTURBATIONS,
        n_contexts=DEMO_CONTEXTS,
        seed=seed,
        overwrite=True,
        progress=say,
    )
    store_path = out / "sim" / "store"
    t_sim = time.perf_counter() - t0
    models = [m for m in runnable_models() if m not in DEMO_EXCLUDED]
    sections = []
    for split in DEMO_SPLITS:
        say(f"benchmarking {len(models)} models on split {split}")
        params = {"holdout_singles_fraction": 0.2} if split == "combination" else {}
        benchmark_to_dir(
            [store_path],
            split=split,
            models=models,
            seeds=[seed + s for s in DEMO_SEEDS],
            split_params=params,
            model_params={m: p for m, p in DEMO_MODEL_PARAMS.items() if m in models},
            out=out / split,
            title=f"Demo: {split} on the simulated world",
            n_boot=300,
            command=["lpm", "demo", "--out", str(out), "--seed", str(seed)],
            progress=say,
        )
        sections.append(f"- [{split}]({split}/results.md)\n\n  ![{split}]({split}/results.png)")
    discovery = discovery_section(
        store_path, out / "sim" / "truth", out / "discovery", seed=seed, progress=say
    )
    elapsed = time.perf_counter() - t0
    info = format_info(store_info(open_store(store_path)))
    report = out / "report.md"
    write_text_atomic(
        report,
        "\n".join(
            [
                "# lpm demo",
                "",
                f"Simulated world of {world}, seed {seed}: {t_sim:.1f} s; whole demo {elapsed:.1f} s.",
                "Ground truth (network edges, compound targets, pair interaction types) is in `sim/truth/`.",
                "Models: every registered model that runs without user inputs (models that need them, "
                "such as precomputed, are left out by their class's needs_inputs), "
                f"except {', '.join(DEMO_EXCLUDED)} (exact-mode LPM is too slow for a "
                "three-minute demo on two cores; lpm_fast, up to 30 epochs with early stopping, stands in "
                "for it: the same inputs and embeddings, the readout scored late; lpm_ame, the attentive mixture "
                "of experts, is an explanation model and appears in the discovery section).",
                "",
                "## Store",
                "",
                "```",
                info,
                "```",
                "",
                "## Benchmarks (all registered models)",
                "",
                *sections,
                "",
                *discovery,
            ]
        ),
    )
    return report

"""``lpm demo``: the whole loop on the embedded simulated world, no download needed.

Simulate → benchmark every registered model on two splits → discovery (embeddings, mechanisms,
gene networks, explanations) scored against the world's truth → ``report.md``, written by
:mod:`lpm.reports.demo` from the tables the steps wrote.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from lpm._utils.atomic import building_dir
from lpm.data.info import format_info, store_info
from lpm.data.store import open_store
from lpm.models.registry import runnable_models
from lpm.reports.demo import REPORT_FILE, RUN_FILE, demo_report
from lpm.runs.benchmark import benchmark_to_dir
from lpm.runs.discovery import DISCOVERY_MODEL, DISCOVERY_PARAMS, discover

#: Small enough to finish in well under three minutes on two cores.
DEMO_GENES, DEMO_PERTURBATIONS, DEMO_CONTEXTS = 600, 200, 4
DEMO_SPLITS = ("unseen_pair", "combination")
DEMO_SEEDS = (0, 1, 2)
#: LPM settings of the demo's benchmarks: the discovery's (fast mode trains in seconds here;
#: early stopping ends it).
#: ``gene_graph`` without a prior graph: the simulated genes are not in GO, so the GO graph would
#: add no edge among them, only the need for the priors folder (the demo needs nothing but lpm).
DEMO_MODEL_PARAMS: dict[str, dict[str, object]] = {
    DISCOVERY_MODEL: dict(DISCOVERY_PARAMS),
    "gene_graph": {"graph": "none"},
    # a short rank grid: the full one (to 64, two ridges) took 6.4 s per fit, 39 s of the demo
    "low_rank": {"ranks": [0, 4, 16], "ridges": [0.1]},
}
#: Left out of the demo: exact-mode LPM trains at tens of thousands of values/s on two cores,
#: too slow for a three-minute demo; ``lpm_fast`` (the same inputs, fast mode) stands in for it.
DEMO_EXCLUDED = ("lpm", "lpm_ame")


def _benchmarks(out: Path, store: Path, *, seed: int, say: Callable[[str], None]) -> None:
    models = [m for m in runnable_models() if m not in DEMO_EXCLUDED]
    for split in DEMO_SPLITS:
        say(f"benchmarking {len(models)} models on split {split}")
        params = {"holdout_singles_fraction": 0.2} if split == "combination" else {}
        benchmark_to_dir(
            [store],
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
            checkpoints=False,  # a demo keeps its reports, not its networks' weights
        )


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Run the demo into the folder ``out`` and return the path of its report.

    An existing ``out`` is refused without ``overwrite`` (before any work); with it, the new
    demo replaces it whole, and a failed run leaves the old one in place.
    """
    from lpm.sim.simulate import simulate

    say = progress or (lambda _: None)
    with building_dir(Path(out), overwrite=overwrite) as out:
        t0 = time.perf_counter()
        world = (
            f"{DEMO_GENES} genes × {DEMO_PERTURBATIONS} perturbations × {DEMO_CONTEXTS} contexts"
        )
        say(f"simulating {world} (seed {seed})")
        simulate(
            out / "sim",
            n_genes=DEMO_GENES,
            n_perturbations=DEMO_PERTURBATIONS,
            n_contexts=DEMO_CONTEXTS,
            seed=seed,
            progress=say,
        )
        store = out / "sim" / "store"
        t_sim = time.perf_counter() - t0
        _benchmarks(out, store, seed=seed, say=say)
        discover(store, out / "sim" / "truth", out / "discovery", seed=seed, progress=say)
        record = {
            "world": world,
            "seed": seed,
            "simulate_seconds": t_sim,
            "seconds": time.perf_counter() - t0,
            "splits": list(DEMO_SPLITS),
            "excluded": list(DEMO_EXCLUDED),
            "model_params": DEMO_MODEL_PARAMS,
            "store_info": format_info(store_info(open_store(store))),
        }
        (out / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
        (out / REPORT_FILE).write_text(demo_report(out))
    return out / REPORT_FILE


__all__ = ["DEMO_EXCLUDED", "DEMO_MODEL_PARAMS", "DEMO_SEEDS", "DEMO_SPLITS", "run_demo"]

"""Combinations: Salt, Peper, the gene-graph network and GEARS, and genetic-interaction typing.

Run from the repository root after `python benchmarks/real_data.py` (which builds the stores)
and `lpm simulate --out benchmarks/stores/sim` (the simulated world with its truth):
    .venv/bin/python benchmarks/combinations.py [--seeds 3] [--only sim,norman,interactions]
1. Simulator (`sim`: 2,000 genes, 500 perturbations of which 150 pairs of known interaction
   type, 5 contexts): `lpm benchmark --split combination` with 30% of the test pairs' singles
   also held out, so held-out pairs have 2, 1 or 0 singles measured (`seen2/1/0`). The gene
   graph is the simulator's reference network (its truth edges, all contexts merged).
2. Norman 2019 doubles (`norman19/K562` of the devel set, 500 HVGs; 15 doubles, 5 with both
   singles measured): `lpm benchmark --split combination` with a third of the doubles to test,
   gene graph = GO (Jaccard, top 20). GEARS runs in its own environment on the same splits
   (`benchmarks/gears/`), and its predictions are scored here as the model `precomputed@gears`.
3. Interactions: `lpm interactions` on the simulator's measured profiles against its truth
   (accuracy, confusion matrix) and on the Norman doubles against Norman's published fits.
Writes benchmarks/results/combinations.md and benchmarks/results/combinations/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import polars as pl

from _combinations_report import write_report
from _common import DATA, RESULTS, STORES, machine, run, write_text

OUT = RESULTS / "combinations"
SIM = STORES / "sim"
NORMAN = STORES / "norman"
NORMAN_CONTEXT = "norman19/K562"
FOLDS = STORES / "norman_folds.json"
GEARS_PREDICTIONS = STORES / "gears_norman.parquet"
GEARS_PYTHON = Path(os.environ.get("GEARS_PYTHON", "/tmp/venv_gears/bin/python"))
SIM_EDGES = SIM / "truth" / "edges.parquet"
#: Epochs of the graph network (early stopping on the split's validation doubles keeps the best).
GRAPH_EPOCHS = 30
NORMAN_TEST_FRACTION = 0.34
#: GEARS's default is 20; one epoch is ~19 s on this machine's CPU.
GEARS_EPOCHS = 10
os.environ.setdefault("LPM_PRIORS", str(DATA.resolve()))


def _graph_params(model: str, graph: str) -> list[str]:
    single = json.dumps({"graph": graph, "epochs": GRAPH_EPOCHS})
    return [
        "--param", f"gene_graph.graph={graph}",
        "--param", f"gene_graph.epochs={GRAPH_EPOCHS}",
        "--param", f'{model}@graph.single_model="gene_graph"',
        "--param", f"{model}@graph.single_params={single}",
    ]  # fmt: skip


def sim_lane(seeds: int) -> dict[str, object]:
    models = "context_mean,linear,salt,peper,peper@graph,gene_graph"
    args = [
        "benchmark", "--store", str(SIM / "store"), "--split", "combination",
        "--split-param", "holdout_singles_fraction=0.3", "--models", models,
        "--seeds", str(seeds), *_graph_params("peper", str(SIM_EDGES)),
        "--title", "Combinations on the simulator: held-out pairs by singles seen",
        "--out", str(OUT / "sim"), "--overwrite",
    ]  # fmt: skip
    shown, _, dt = run(args)
    return {"command": shown, "seconds": round(dt, 1)}


def norman_store() -> None:
    """The Norman part of the devel store (the McFaline contexts have no combinations)."""
    from lpm.data.store import open_store, write_store

    rows = open_store(STORES / "devel").read()
    rows = rows.filter(pl.col("context").cast(pl.String) == NORMAN_CONTEXT)
    write_store(
        rows,
        NORMAN,
        notes={"from": "benchmarks/stores/devel", "context": NORMAN_CONTEXT},
        overwrite=True,
    )


def norman_folds(seeds: int) -> None:
    """The same splits lpm benchmark draws, as perturbation lists for GEARS."""
    from lpm.data.splits import make_split
    from lpm.data.store import open_store

    rows = open_store(NORMAN).read()
    folds = []
    for seed in range(seeds):
        parts = make_split(rows, kind="combination", seed=seed, test_fraction=NORMAN_TEST_FRACTION)

        def perts(t: pl.DataFrame) -> list[str]:
            return sorted(t["perturbation"].cast(pl.String).unique().to_list())

        folds.append(
            {
                "seed": seed,
                "fold": 0,
                "train": perts(parts.train),
                "val": perts(parts.val),
                "test": perts(parts.test),
            }
        )
    write_text(FOLDS, json.dumps({"context": NORMAN_CONTEXT, "folds": folds}, indent=1) + "\n")


def gears(seeds: int) -> dict[str, object]:
    """GEARS in its own environment; its absence or failure is reported, not hidden."""
    if not GEARS_PYTHON.is_file():
        return {
            "status": f"not run: no GEARS environment at {GEARS_PYTHON} (benchmarks/gears/setup_env.sh)"
        }
    cmd = [
        str(GEARS_PYTHON), "benchmarks/gears/run_gears.py", "--folds", str(FOLDS),
        "--h5ad", str(DATA / "norman19_mcfaline23_devel" / "devel.h5ad"),
        "--go-dir", str(DATA / "gene_ontology"), "--out", str(GEARS_PREDICTIONS),
        "--seeds", ",".join(str(s) for s in range(seeds)), "--epochs", str(GEARS_EPOCHS),
        "--work-dir", str(STORES / "gears_work"),
    ]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    write_text(OUT / "gears.log", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {
            "status": f"failed (rc {proc.returncode}): {' | '.join(tail)}",
            "command": " ".join(cmd),
        }
    return {"status": "ran", "command": " ".join(cmd), "seconds": round(dt, 1)}


def norman_lane(seeds: int) -> dict[str, object]:
    norman_store()
    norman_folds(seeds)
    gears_run = gears(seeds)
    models = (
        "no_change,context_mean,perturbation_mean,linear,salt,peper,peper@graph,gene_graph,lpm_fast"
    )
    extra = []
    if GEARS_PREDICTIONS.is_file() and gears_run["status"] == "ran":
        models += ",precomputed@gears"
        extra = ["--param", f"precomputed@gears.path={GEARS_PREDICTIONS}"]
    args = [
        "benchmark", "--store", str(NORMAN), "--split", "combination",
        "--split-param", f"test_fraction={NORMAN_TEST_FRACTION}", "--models", models,
        "--seeds", str(seeds), *_graph_params("peper", "go"), *extra,
        "--param", "lpm_fast.max_epochs=60",
        "--title", "Combinations on Norman 2019 (devel, K562 CRISPRa): held-out doubles by singles seen",
        "--out", str(OUT / "norman"), "--overwrite",
    ]  # fmt: skip
    shown, _, dt = run(args)
    return {"command": shown, "seconds": round(dt, 1), "gears": gears_run}


def interactions_lane() -> dict[str, object]:
    out = {}
    shown, _, dt = run(
        ["interactions", str(SIM / "store"), "--truth", str(SIM / "truth"),
         "--out", str(OUT / "interactions_sim"), "--overwrite"]
    )  # fmt: skip
    out["sim"] = {"command": shown, "seconds": round(dt, 1)}
    shown, _, dt = run(
        ["interactions", str(NORMAN), "--norman", str(DATA / "norman19_gi" / "regr_fits_final.csv"),
         "--out", str(OUT / "interactions_norman"), "--overwrite"]
    )  # fmt: skip
    out["norman"] = {"command": shown, "seconds": round(dt, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", default="sim,norman,interactions")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    log_path = OUT / "runs.json"
    runs = json.loads(log_path.read_text()) if log_path.is_file() else {}
    if not args.report_only:
        lanes = {"sim": lambda: sim_lane(args.seeds), "norman": lambda: norman_lane(args.seeds),
                 "interactions": interactions_lane}  # fmt: skip
        for name in args.only.split(","):
            result = lanes[name]()
            # lanes may run as parallel processes: merge with what the others wrote meanwhile
            runs = json.loads(log_path.read_text()) if log_path.is_file() else {}
            runs[name] = result
            runs["machine"] = machine()
            write_text(log_path, json.dumps(runs, indent=2) + "\n")
    write_report(runs, OUT, RESULTS / "combinations.md")
    print(f"wrote {RESULTS / 'combinations.md'}")


if __name__ == "__main__":
    main()

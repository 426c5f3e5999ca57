"""Design benchmark: active-learning strategies on Replogle K562 and on the simulator.

Run from the repository root:  .venv/bin/python benchmarks/design.py [--seeds 5] [--only replogle|sim]
Every loop is one `lpm design loop` command, printed as run; its folder goes to
benchmarks/stores/design_runs/ (not committed). From those folders this script writes the
committed tables under benchmarks/results/design/ (each lane's pooled rounds, and context_mean
refitted on the same labelled sets); the report (benchmarks/results/design.md and the figures,
benchmarks/design_report.py) is rebuilt from those tables, also by `--report-only`, which
needs no run folders.

Protocol (both lanes): a fixed held-out 20% of perturbations per seed, 100 labelled in round 0,
then 5 rounds of 100; the model (gene_graph) is refitted on the labelled rows each round and
scored on the held-out ones. The simulator lane repeats it with the gene graph of the model and
of the strategies replaced by noisy versions of the true network (a share of true edges kept,
the rest rewired at random), to show how the advantage changes with prior quality.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from _common import DATA, GENE2GO, GENE_INFO, ROOT, STORES, run, write_csv, write_text
from _design_report import FIGS, LANES, write_report

RUNS = STORES / "design_runs"
SIM = STORES / "design_sim"
STRATEGIES = "random,coverage,spectral,variance,coreset,kernel"
PROTOCOL = ["--initial", "100", "--batch", "100", "--rounds", "5", "--test-fraction", "0.2"]
#: Replogle: a lighter gene_graph (300 readouts, 19k-node GO graph) so 5 seeds × 6 strategies fit.
REPLOGLE_PARAMS = ["--param", "batch_size=128", "--param", "epochs=10", "--param", "hidden=32"]
#: Share of true edges kept in the simulator's prior graph.
PRIOR_QUALITY = (1.0, 0.5, 0.0)


def sim_store() -> Path:
    """One-context simulator with ~800 single CRISPRi/CRISPRa perturbations and a known network."""
    if not (ROOT / SIM / "store").is_dir():
        run(
            [
                "simulate",
                "--out",
                str(SIM),
                "--genes",
                "1000",
                "--perturbations",
                "1500",
                "--contexts",
                "1",
                "--cells",
                "30",
                "--seed",
                "0",
                "--overwrite",
            ]
        )
    return SIM / "store"


def noisy_prior(quality: float, *, seed: int = 0) -> Path:
    """The true network with a share ``1 - quality`` of its edges rewired between random genes."""
    out = SIM / f"prior_q{quality:.2f}.parquet"
    if (ROOT / out).is_file():
        return out
    edges = pl.read_parquet(ROOT / SIM / "truth" / "edges.parquet").select(
        "source", "target", "weight"
    )
    genes = pl.read_parquet(ROOT / SIM / "truth" / "genes.parquet")
    names = np.array(sorted(genes[genes.columns[0]].cast(pl.String).to_list()))
    rng = np.random.default_rng(seed)
    n = edges.height
    swap = rng.random(n) >= quality
    src = edges["source"].to_numpy().copy()
    dst = edges["target"].to_numpy().copy()
    src[swap] = rng.choice(names, swap.sum())
    dst[swap] = rng.choice(names, swap.sum())
    keep = src != dst
    table = pl.DataFrame({"source": src[keep], "target": dst[keep], "weight": np.ones(keep.sum())})
    table.write_parquet(ROOT / out)
    return out


def go_embedding() -> Path:
    """The 32-dim GO embedding `linear` reads (made as benchmarks/real_data.py makes it)."""
    go = STORES / "go_embedding.parquet"
    if not (ROOT / go).is_file():
        run(["prior-embedding", "--gene2go", str(GENE2GO), "--out", str(go), "--dims", "32"])
    return go


def loop_args(lane: str, seed: int) -> list[str]:
    out = RUNS / lane / f"seed{seed}"
    common = ["design", "loop", "--strategies", STRATEGIES, *PROTOCOL, "--seed", str(seed)]
    if lane.startswith("replogle"):
        npz = DATA / "replogle22_k562_gw" / "replogle_k562.npz"
        model = (
            ["--model", "linear", "--param", f"perturbation_embeddings={go_embedding()}"]
            if lane == "replogle_linear"
            else REPLOGLE_PARAMS
        )
        return [
            *common,
            "--store",
            str(STORES / "replogle"),
            "--graph",
            "go",
            "--prior",
            "go,regulons",
            *model,
            "--strength",
            str(npz),
            "--gene-info",
            str(GENE_INFO),
            "--out",
            str(out),
            "--overwrite",
        ]
    quality = float(lane.split("_q")[1])
    store = sim_store()  # before the prior: the prior is made from its truth
    prior = noisy_prior(quality)
    return [
        *common,
        "--store",
        str(store),
        "--graph",
        str(prior),
        "--prior",
        "graph",
        "--param",
        "epochs=20",
        "--out",
        str(out),
        "--overwrite",
    ]


def record(lane: str, seed: int, command: str, seconds: float) -> None:
    """Merge one run into runs.json (parallel processes re-read before writing)."""
    runs = recorded()
    runs[f"{lane}/seed{seed}"] = {"command": command, "seconds": round(seconds, 1)}
    write_text(ROOT / RUNS / "runs.json", json.dumps(runs, indent=2, sort_keys=True) + "\n")


def recorded() -> dict[str, dict[str, object]]:
    """runs.json: each finished loop's command and seconds (empty without run folders)."""
    path = ROOT / RUNS / "runs.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def claim(lane: str, seed: int) -> bool:
    """Work queue for parallel workers: a seed not yet done and not taken by another worker
    (a lock file made with O_EXCL); a finished run is skipped (delete its folder to redo it)."""
    folder = ROOT / RUNS / lane
    if (folder / f"seed{seed}" / "rounds.csv").is_file():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(folder / f"seed{seed}.lock", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def seed_folders(lane: str) -> list[Path]:
    """A lane's finished run folders, seed 0 first."""
    folders = (ROOT / RUNS / lane).glob("seed*")
    return sorted(p for p in folders if (p / "rounds.csv").is_file())


def collate(lane: str) -> None:
    """The lane's committed tables from its run folders: every seed's rounds in one table, and
    context_mean refitted on each round's labelled perturbations and scored on the same held-out
    ones (how much of a learning curve is only a better estimate of the mean profile)."""
    from lpm.data.store import open_store
    from lpm.evaluation.panel import evaluate
    from lpm.models.registry import get_model

    folders = seed_folders(lane)
    rounds = [
        pl.read_csv(f / "rounds.csv").with_columns(pl.lit(int(f.name[4:])).alias("seed"))
        for f in folders
    ]
    write_csv(pl.concat(rounds), FIGS / f"{lane}_rounds.csv")
    store = STORES / "replogle" if lane.startswith("replogle") else SIM / "store"
    rows = open_store(ROOT / store).read()
    out = []
    for folder in folders:
        if not (folder / "acquired.csv").is_file():
            continue
        universe = pl.read_csv(folder / "universe.csv")
        held_out = universe.filter(pl.col("part") == "test")["perturbation"].to_list()
        test = rows.filter(pl.col("perturbation").is_in(held_out))
        acquired = pl.read_csv(folder / "acquired.csv")
        for (strategy,), part in acquired.group_by("strategy", maintain_order=True):
            for r in sorted(part["round"].unique().to_list()):
                labelled = part.filter(pl.col("round") <= r)["perturbation"]
                train = rows.filter(pl.col("perturbation").is_in(labelled.to_list()))
                pred = get_model("context_mean").fit(train).predict(test)
                res = evaluate(test, pred, train=train, n_boot=0)
                values = dict(zip(res.summary["metric"], res.summary["mean"], strict=True))
                out.append(
                    {
                        "seed": int(folder.name[4:]),
                        "strategy": strategy,
                        "round": r,
                        "n_labelled": labelled.len(),
                        "mean_pearson_delta": values["pearson_delta"],
                        "mean_mse": values["mse"],
                    }
                )
    write_csv(pl.DataFrame(out), FIGS / f"{lane}_context_mean.csv")


def lanes(only: str | None) -> list[str]:
    sim = [f"sim_q{q:.2f}" for q in PRIOR_QUALITY]
    if only == "replogle":
        return ["replogle", "replogle_linear"]
    if only == "replogle_linear":
        return ["replogle_linear"]
    if only == "sim":
        return sim
    return ["replogle", "replogle_linear", *sim]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", choices=["replogle", "replogle_linear", "sim"], default=None)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    (ROOT / RUNS).mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        if args.only != "sim" and not (ROOT / STORES / "replogle").is_dir():
            sys.exit("benchmarks/stores/replogle is missing: run benchmarks/real_data.py first")
        for lane in lanes(args.only):
            for seed in range(args.seeds):
                if not claim(lane, seed):
                    continue  # done already, or another worker has it
                t0 = time.perf_counter()
                shown, _, _ = run(loop_args(lane, seed))
                record(lane, seed, shown, time.perf_counter() - t0)
                (ROOT / RUNS / lane / f"seed{seed}.lock").unlink(missing_ok=True)
    for lane in LANES:
        if seed_folders(lane):
            collate(lane)
    print(write_report(recorded()))


if __name__ == "__main__":
    main()

"""LPM next to the baselines on every real task it can address, trained alone and jointly.

Run from the repository root after `python benchmarks/real_data.py` (which builds the stores):
    .venv/bin/python benchmarks/lpm_accuracy.py [--only TASK ...] [--seeds 3]
Writes one folder per task and training regime under benchmarks/results/lpm/ and a summary
benchmarks/results/lpm_accuracy.md that states plainly, per task, whether LPM beats, ties or
loses to the best baseline on the systematic-variation-corrected Pearson and on the
discrimination score (AUROC and AUPRC for binary readouts), from the paired intervals that
`lpm benchmark` writes (comparisons.csv).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from _common import (
    REAL_STORES,
    RESULTS,
    ROOT,
    STORES,
    key_metrics,
    paired_text,
    read_comparisons,
    run,
    write_text,
)

BASELINES = ["no_change", "context_mean", "perturbation_mean", "linear"]
#: task -> (store, split, LPM models alone, LPM models jointly, model parameters). Exact mode
#: (`lpm`) trains at ~55,000 values/s on this 2-core machine, so it is left out of the joint
#: runs (1.7 M rows per epoch) and from the simulator (4.3 M rows); exact against fast mode on
#: a simulated store is in benchmarks/results/lpm_speed.md.
TASKS: dict[str, tuple[str, str, list[str], list[str], list[str]]] = {
    "mcfaline_unseen_pair": ("devel", "unseen_pair", ["lpm", "lpm_fast"], ["lpm_fast"], []),
    "perturbqa_unseen_pair": ("perturbqa", "unseen_pair", ["lpm", "lpm_fast"], ["lpm_fast"], []),
    "lincs_unseen_dose": (
        "lincs",
        "unseen_dose",
        ["lpm", "lpm_fast"],
        ["lpm_fast"],
        ['lpm.preset="lincs"', 'lpm_fast.preset="lincs"'],
    ),
    "simulator_unseen_pair": ("sim/store", "unseen_pair", ["lpm_fast"], ["lpm_fast"], []),
}
#: Verdict cells of a folder without comparisons.csv (an older lpm wrote it).
NO_COMPARISONS = "no verdict: no comparisons.csv in this folder (an older lpm wrote it); rerun"


def _mean(g: pl.DataFrame, model: str, metric: str) -> str:
    r = g.filter((pl.col("model") == model) & (pl.col("metric") == metric))
    return f"{model} {r['mean'][0]:.3f}" if r.height and r["mean"][0] is not None else model


def verdict(results: Path) -> list[str]:
    """Per LPM model and key metric: the paired difference with the best baseline over the same
    conditions and seeds, its 95% interval, and the verdict it supports (``comparisons.csv``):
    beats only where the interval lies above 0."""
    table = pl.read_csv(results / "results.csv")
    comparisons = read_comparisons(results)
    main = table.filter(~pl.col("group").str.contains("|", literal=True))
    lines = []
    for group in sorted(main["group"].unique().to_list()):
        g = main.filter((pl.col("group") == group) & pl.col("mean").is_not_nan())
        models = sorted(m for m in g["model"].unique().to_list() if m.startswith("lpm"))
        for metric in key_metrics(g["metric"].unique().to_list()):
            for model in models:
                row = f"| {group} | {metric} | {_mean(g, model, metric)} |"
                if comparisons is None:
                    lines.append(f"{row} – | – | {NO_COMPARISONS} |")
                    continue
                c = comparisons.filter(
                    (pl.col("group") == group)
                    & (pl.col("model") == model)
                    & (pl.col("metric") == metric)
                )
                if c.height == 0:
                    lines.append(f"{row} – | – | no verdict (no baseline or no paired condition) |")
                    continue
                r = c.row(0, named=True)
                lines.append(
                    f"{row} {_mean(g, r['baseline'], metric)} | {paired_text(r)} | "
                    f"**{r['verdict']}** |"
                )
    return lines


def section(task: str, regime: str, shown: str, seconds: float, out: Path) -> list[str]:
    return [
        f"## {task}, trained {regime}",
        "",
        "```",
        shown,
        f"# {seconds:.0f} s",
        "```",
        "",
        f"[full report](lpm/{out.name}/results.md)",
        "",
        "| group | metric | LPM | best baseline | LPM − best baseline [95% interval] | verdict |",
        "|---|---|---|---|---|---|",
        *verdict(out),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="tasks to (re-)run; the summary keeps the rest")
    parser.add_argument("--regime", choices=("alone", "joint"), help="only this regime")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    out_root = RESULTS / "lpm"
    for task, (store, split, alone, joint, params) in TASKS.items():
        if args.only and task not in args.only:
            continue
        if not (ROOT / STORES / store).exists():
            sys.exit(f"store {STORES / store} missing: run benchmarks/real_data.py first")
        extra = [
            x
            for n in REAL_STORES  # joint training: every other real store
            if n != store.split("/")[0]
            for x in ("--extra-store", str(STORES / n))
        ]
        regimes = [("alone", alone, [])] + ([("joint", joint, extra)] if joint else [])
        for regime, lpm_models, extra_args in regimes:
            if args.regime and regime != args.regime:
                continue
            out = out_root / f"{task}_{regime}"
            cmd = [
                "benchmark",
                "--store",
                str(STORES / store),
                "--split",
                split,
                "--models",
                ",".join(BASELINES + lpm_models),
                "--seeds",
                str(args.seeds),
                "--title",
                f"LPM vs baselines: {task}, trained {regime}",
                *extra_args,
            ]
            for p in params:
                if p.split(".")[0] in lpm_models:
                    cmd += ["--param", p]
            shown, _, dt = run([*cmd, "--out", str(out.relative_to(ROOT)), "--overwrite"])
            text = "\n".join(section(task, regime, shown, dt, out))
            write_text(out / "verdict.md", text + "\n")
    summary = [
        "# LPM against the baselines: alone and jointly trained",
        "",
        "Produced by `python benchmarks/lpm_accuracy.py` (per task: `--only TASK`), "
        f"{args.seeds} seeds each; the command and wall time of each run are below. The "
        "verdict names both key metrics (corrected Pearson and discrimination; AUROC and AUPRC "
        "for binary readouts) and rests on the paired difference LPM − best baseline (the "
        "baseline with the best mean) over the same held-out conditions and seeds, with its 95% "
        "bootstrap interval (`comparisons.csv` of each folder): **beats** only where the "
        "interval lies above 0, **loses** where it lies below, **ties** where it spans 0 "
        "(higher is better for every metric listed). Joint runs add every other real store to the "
        "training set (baselines too) and score the same held-out rows.",
        "",
    ]
    for task, (_, _, _, joint, _) in TASKS.items():
        for regime in ("alone", "joint") if joint else ("alone",):
            part = out_root / f"{task}_{regime}" / "verdict.md"
            summary += (
                [part.read_text()]
                if part.is_file()
                else [f"## {task}, trained {regime}", "", "Not run yet.", ""]
            )
    write_text(RESULTS / "lpm_accuracy.md", "\n".join(summary))


if __name__ == "__main__":
    main()

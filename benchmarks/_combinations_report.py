"""benchmarks/results/combinations.md from the outputs of benchmarks/combinations.py."""

from __future__ import annotations

import json
import shlex
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from _common import mean_sd, metric_table, paired_text, read_comparisons, write_text
from lpm.evaluation.compare import BEATS

METRICS = ("pearson_delta", "pearson_delta_vs_mean", "mse", "direction_acc_top20", "discrimination")
GROUPS = ("seen2", "seen1", "seen0", "single")
#: Three significant digits below 0.01 (two for the sd), so small MSEs are not all 0.000.
_cell = partial(mean_sd, significant=3, sd_significant=2)


def _command(folder: Path) -> list[str]:
    run = folder / "run.json"
    if not run.is_file():
        return []
    argv = json.loads(run.read_text())["command"]
    return [shlex.join(["lpm", *argv[1:]])]


def _timings(folder: Path) -> list[str]:
    path = folder / "timings.csv"
    if not path.is_file():
        return []
    t = (
        pl.read_csv(path)
        .group_by("model", maintain_order=True)
        .agg(pl.col("fit_s").mean(), pl.col("predict_s").mean())
    )
    cells = ", ".join(f"{m} {f:.0f} s" for m, f, _ in t.iter_rows())
    return [f"Fit time per seed (mean): {cells}.", ""]


def _lane_tables(folder: Path) -> tuple[list[str], pl.DataFrame | None]:
    path = folder / "results.csv"
    if not path.is_file():
        return [f"*not run ({folder} has no results.csv)*", ""], None
    res = pl.read_csv(path)
    cov = pl.read_csv(folder / "coverage.csv")
    lines = []
    for group in [g for g in GROUPS if g in res["group"].to_list()]:
        sub = res.filter(pl.col("group") == group)
        n = cov.filter(pl.col("group") == group).group_by("seed").agg(pl.col("conditions").max())
        held = int(n["conditions"].sum()) if n.height else 0
        lines += [f"{held} held-out (context, perturbation) conditions over the seeds.", ""]
        lines += metric_table(group, sub, METRICS, cell=_cell)
    partial = sorted(set(res["group"].to_list()) - set(GROUPS))
    if partial:
        lines += [
            "Tables of models that predict only part of a group: see `results.md` in the folder ("
            + ", ".join(f"`{p}`" for p in partial)
            + ").",
            "",
        ]
    return [*lines, *_timings(folder), "```", *_command(folder), "```", ""], res


#: How a target line names each key metric.
_NAMES = {"pearson_delta_vs_mean": "corrected Pearson", "discrimination": "discrimination"}


def _beats(folder: Path, group: str, model: str, named: str) -> str:
    """A target's verdict from the paired comparisons ``lpm benchmark`` wrote: **met** only
    where ``model`` beats the best baseline (95% interval of the paired difference above 0) on
    both key metrics, **partly met** on one; the best baseline is named where it is not the
    target's ``named`` one."""
    if not (folder / "results.csv").is_file():
        return "not run"
    comparisons = read_comparisons(folder)
    if comparisons is None:
        return (
            f"**no verdict**: `{folder.name}/` has no comparisons.csv (an older lpm wrote it); "
            "rerun the lane"
        )
    rows = comparisons.filter((pl.col("group") == group) & (pl.col("model") == model))
    parts, wins = [], 0
    for metric, name in _NAMES.items():
        r = rows.filter(pl.col("metric") == metric)
        if r.height == 0:
            parts.append(f"{name}: no verdict (no baseline or no paired condition)")
            continue
        c = r.row(0, named=True)
        wins += c["verdict"] == BEATS
        other = c["baseline"] if c["baseline"] == named else f"{c['baseline']} (best baseline)"
        parts.append(f"{name}: {c['verdict']} {other}, {paired_text(c)}")
    verdict = "**met**" if wins == 2 else ("**partly met**" if wins == 1 else "**not met**")
    return f"{verdict} ({'; '.join(parts)})"


def _interactions(folder: Path, title: str) -> list[str]:
    path = folder / "summary.json"
    if not path.is_file():
        return [f"*{title}: not run*", ""]
    s: dict[str, Any] = json.loads(path.read_text())
    th = s.get("thresholds", {})
    lines = [f"**{title}**", "", f"{s.get('n_pairs')} (context, double) fits; {s.get('n_skipped')} doubles skipped "
             "(a single not measured in that context, or too few readouts moved). Thresholds: "
             + ", ".join(f"{k} {v:.3g}" for k, v in th.items()) + ".", ""]  # fmt: skip
    truth = s.get("truth")
    if truth:
        recall = ", ".join(f"{k} {v:.2f}" for k, v in truth["recall"].items())
        lines += [f"Accuracy **{truth['accuracy']:.3f}**, balanced accuracy {truth['balanced_accuracy']:.3f} "
                  f"over {truth['n_pairs']} fits; recall per type: {recall}. Confusion (rows: designed type):", ""]  # fmt: skip
    norman = s.get("norman")
    if norman:
        rho = ", ".join(f"{k} {v:.2f}" for k, v in norman["spearman"].items())
        lines += [f"{norman['n_matched']} pairs matched in Norman's table; type agreement "
                  f"{norman['type_agreement']:.2f}; Spearman ours vs theirs: {rho}.", ""]  # fmt: skip
    conf = folder / "confusion.csv"
    if conf.is_file():
        c = pl.read_csv(conf)
        cols = c.columns
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in c.iter_rows()]
        lines.append("")
    comp = folder / "norman_comparison.csv"
    if comp.is_file():
        c = pl.read_csv(comp)
        keep = [
            x
            for x in c.columns
            if x
            in (
                "perturbation",
                "magnitude",
                "norman_magnitude",
                "fit_dcor",
                "norman_fit_dcor",
                "type",
                "norman_type",
                "c1",
                "c2",
                "norman_c1",
                "norman_c2",
            )
        ]
        c = c.select(keep)
        lines += ["| " + " | ".join(keep) + " |", "|" + "---|" * len(keep)]
        lines += [
            "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |"
            for row in c.iter_rows()
        ]
        lines.append("")
    return lines


def write_report(runs: dict[str, Any], out: Path, target: Path) -> None:
    sim = out / "sim"
    sim_lines, _ = _lane_tables(sim)
    norman_lines, _ = _lane_tables(out / "norman")
    gears = runs.get("norman", {}).get("gears", {"status": "not run"})
    lines = [
        "# Combinations: Salt, Peper, a gene-graph network, GEARS, and genetic interactions",
        "",
        "Command: `python benchmarks/combinations.py --seeds 3` (lanes `sim`, `norman`, `interactions`).",
        f"Machine: {runs.get('machine', 'unknown')}. The lanes ran as parallel processes on the",
        "2 cores, so the fit times below are under that contention.",
        "",
        "Cells: mean ± sd over seeds of each seed's per-condition average. pearson_delta_vs_mean is",
        "the Pearson of deltas after subtracting the training perturbations' mean delta (systematic",
        "variation removed). Models: `salt` = sum of the measured singles; `peper` = Salt + learned",
        "correction; `peper@graph` = Peper whose missing singles come from `gene_graph` (those rows",
        "are Salt's sum of predicted singles, flagged as fallback); `gene_graph` = the GEARS-like",
        "graph network; `precomputed@gears` = GEARS's predictions made in its own environment.",
        "",
        "## Targets",
        "",
        "Each target is judged on both key metrics against the best baseline of its table (the "
        "baseline with the best mean; named where it is not the target's): the paired "
        "difference over the same held-out conditions and seeds with its 95% bootstrap "
        "interval (`comparisons.csv`). **met**: beats on both (interval above 0); **partly "
        "met**: on one; ties (interval spans 0) and losses do not count.",
        "",
        f"- Simulator, both singles seen: Peper beats Salt: {_beats(sim, 'seen2', 'peper', 'salt')}",
        f"- Simulator, one single seen: graph network beats context_mean: {_beats(sim, 'seen1', 'gene_graph', 'context_mean')}",
        f"- Simulator, no single seen: graph network beats context_mean: {_beats(sim, 'seen0', 'gene_graph', 'context_mean')}",
        "",
        "## Simulator (2,000 genes, 150 typed pairs, 5 contexts; gene graph = reference network)",
        "",
        *sim_lines,
        "## Norman 2019 doubles (devel set, K562 CRISPRa, 500 HVGs; gene graph = GO Jaccard top 20)",
        "",
        f"GEARS: {gears.get('status')}"
        + (f" (`{gears['command']}`)" if "command" in gears else ""),
        "",
        *norman_lines,
        "## Interaction typing (`lpm interactions`)",
        "",
        *_interactions(
            out / "interactions_sim", "Simulator, measured profiles against the designed types"
        ),
        *_interactions(
            out / "interactions_norman",
            "Norman devel doubles against Norman et al.'s fits (regr_fits_final.csv)",
        ),
    ]
    write_text(target, "\n".join(lines) + "\n")

"""Benchmark reports: Markdown made only from a benchmark's written tables (``results.csv``,
``coverage.csv``, ``run.json``); the metric panel is :func:`lpm.pl.benchmark.plot_benchmark_panel`."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from lpm.evaluation.panel import ratio_to_baseline
from lpm.models.registry import BASELINES
from lpm.pl.benchmark import defined_metrics

FIGURE = "results.png"


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _table(group_rows: pl.DataFrame, coverage: pl.DataFrame, metrics: Sequence[str]) -> list[str]:
    models = sorted(group_rows["model"].unique().to_list())
    head = "| model | scored / held-out conditions | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for m in models:
        cov = coverage.filter(pl.col("model") == m)
        scored = round(float(cov["scored"].to_numpy().mean())) if cov.height else 0
        total = round(float(cov["conditions"].to_numpy().mean())) if cov.height else 0
        cells = []
        for metric in metrics:
            r = group_rows.filter((pl.col("model") == m) & (pl.col("metric") == metric))
            if r.height == 0:
                cells.append("–")
                continue
            row = r.row(0, named=True)
            ratio = row.get("ratio_to_best_baseline")
            ci = f" [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
            cells.append(f"{_fmt(row['mean'])}{ci} ×{_fmt(ratio, 2)}")
        lines.append(f"| {m} | {scored} / {total} | " + " | ".join(cells) + " |")
    return lines


def benchmark_markdown(folder: Path, *, title: str, stores: Sequence[str] = ()) -> str:
    """The Markdown report of the benchmark tables in ``folder`` (it links ``results.png``)."""
    results = pl.read_csv(folder / "results.csv")
    coverage = pl.read_csv(folder / "coverage.csv")
    run = json.loads((folder / "run.json").read_text())
    spec = run["spec"]
    lines = [f"# {title}", ""]
    if run.get("command"):
        lines += ["Command:", "", "```", " ".join(["lpm", *run["command"][1:]]), "```", ""]
    lines += [
        f"Split `{spec['split']}`, seeds {spec['seeds']}, models {', '.join(spec['models'])}; stores: {', '.join(stores)}."
        + (
            f" Joint training: every training set also holds all rows of {', '.join(spec['extra_stores'])} (scoring stays on the split above)."
            if spec.get("extra_stores")
            else ""
        ),
        "",
        "Cells: mean over seeds of the per-condition average, [bootstrap 95% interval, averaged over seeds], "
        "×ratio to the best baseline for that metric (best = highest, or lowest for MSE). "
        "All models in a group are scored on the same held-out rows; a model that cannot predict a group is left out of it.",
        "",
    ]
    baselines = [b for b in BASELINES if b in spec["models"]]
    if results.height == 0:
        lines.append("No model could predict any held-out row.")
    for group in sorted(results["group"].unique().to_list()):
        g = results.filter(pl.col("group") == group)
        ratios = ratio_to_baseline(
            g.select("model", "metric", "mean", "ci_low", "ci_high", "n"), baselines=baselines
        )
        g = g.join(
            ratios.select("model", "metric", "ratio_to_best_baseline", "best_baseline"),
            on=["model", "metric"],
            how="left",
        )
        metrics = defined_metrics(g)
        cov = coverage.filter(pl.col("group") == group)
        lines += [f"## Test group `{group}`", ""]
        lines += _table(g, cov, metrics)
        na = sorted(set(spec["models"]) - set(g["model"].to_list()))
        if na:
            lines += [
                "",
                f"Not in this table: {', '.join(na)} (they predict none, or under "
                f"{100 * spec.get('min_coverage', 0.9):.0f}% of these rows; a partial model has its own table of the rows it predicts).",
            ]
        best = g.filter(pl.col("model").is_in(baselines).not_())
        for row in best.filter(pl.col("metric") == "pearson_delta_vs_mean").iter_rows(named=True):
            verdict = "beats" if (row["ratio_to_best_baseline"] or 0) > 1 else "does NOT beat"
            lines.append(
                f"\n{row['model']} {verdict} the best baseline on pearson_delta_vs_mean (×{_fmt(row['ratio_to_best_baseline'], 2)})."
            )
        lines.append("")
    lines += ["", f"![metric panel]({FIGURE})", ""]
    return "\n".join(lines)


__all__ = ["FIGURE", "benchmark_markdown"]

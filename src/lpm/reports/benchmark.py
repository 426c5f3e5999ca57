"""Benchmark reports: Markdown tables and a metric panel figure, made only from result tables."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from lpm.evaluation.panel import HIGHER_IS_BETTER, METRICS, ratio_to_baseline
from lpm.models.registry import BASELINES
from lpm.pl.save import save_png

FIGURE = "results.png"


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _defined_metrics(rows: pl.DataFrame) -> list[str]:
    """Metrics with at least one defined value (binary metrics vanish on continuous data)."""
    defined = set(
        rows.filter(pl.col("mean").is_not_null() & pl.col("mean").is_not_nan())["metric"].to_list()
    )
    return [m for m in METRICS if m in defined]


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


def write_benchmark_report(folder: Path, *, title: str, stores: Sequence[str] = ()) -> Path:
    """``results.md`` and ``results.png`` from ``results.csv`` and ``coverage.csv`` in ``folder``."""
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
        metrics = _defined_metrics(g)
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
    _figure(results, folder / FIGURE)
    (folder / "results.md").write_text("\n".join(lines))
    return folder / "results.md"


def _figure(results: pl.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if results.height == 0:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no scores", ha="center")
        save_png(fig, path, dpi=100)
        return
    metrics = _defined_metrics(results)
    groups = sorted(results["group"].unique().to_list())
    models = sorted(results["model"].unique().to_list())
    colors = plt.get_cmap("tab10")
    fig, axes = plt.subplots(
        len(groups), len(metrics), figsize=(2.4 * len(metrics), 2.6 * len(groups)), squeeze=False
    )
    for gi, group in enumerate(groups):
        for mi, metric in enumerate(metrics):
            ax = axes[gi][mi]
            sub = results.filter((pl.col("group") == group) & (pl.col("metric") == metric))
            for k, m in enumerate(models):
                r = sub.filter(pl.col("model") == m)
                if r.height == 0:
                    continue
                row = r.row(0, named=True)
                lo, hi = row["ci_low"], row["ci_high"]
                err = (
                    [[max(row["mean"] - lo, 0)], [max(hi - row["mean"], 0)]]
                    if lo == lo and hi == hi
                    else None
                )
                ax.bar(k, row["mean"], color=colors(k % 10), yerr=err, capsize=2, label=m)
            ax.set_xticks([])
            arrow = "↑" if HIGHER_IS_BETTER.get(metric, True) else "↓"
            ax.set_title(
                f"{metric} {arrow}" + (f"\n[{group}]" if len(groups) > 1 else ""), fontsize=8
            )
            ax.tick_params(labelsize=7)
    from matplotlib.patches import Patch

    handles = [Patch(color=colors(k % 10), label=m) for k, m in enumerate(models)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(models), 6), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_png(fig, path, dpi=110)

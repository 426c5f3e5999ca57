"""The metric panel of a benchmark: one bar per model, one panel per metric and test group,
with the bootstrap interval as an error bar; drawn from ``results.csv``'s table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from lpm.evaluation.metrics import ALL_METRICS
from lpm.evaluation.panel import HIGHER_IS_BETTER

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def defined_metrics(results: pl.DataFrame) -> list[str]:
    """Metrics with at least one defined value (binary metrics vanish on continuous data)."""
    defined = set(
        results.filter(pl.col("mean").is_not_null() & pl.col("mean").is_not_nan())[
            "metric"
        ].to_list()
    )
    return [m for m in ALL_METRICS if m in defined]


def _labels(results: pl.DataFrame, not_applicable: pl.DataFrame | None) -> dict[str, str]:
    """Legend label per model, in bar order: ``(n/a)`` for a model not applicable to the data
    (in some seeds: ``(n/a in some seeds)``)."""
    scored = set(results["model"].to_list()) if results.height else set()
    failed = set(not_applicable["model"].to_list()) if not_applicable is not None else set()
    return {
        m: m + (" (n/a)" if m not in scored else " (n/a in some seeds)" if m in failed else "")
        for m in sorted(scored | failed)
    }


def plot_benchmark_panel(
    results: pl.DataFrame, *, not_applicable: pl.DataFrame | None = None
) -> Figure:
    """Bars of each model's mean per metric and test group (``results.csv``); n/a without scores.

    ``not_applicable`` (``model`` column): models that could not be fitted on the data; each
    panel marks their place "n/a" and the legend says so."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    metrics = defined_metrics(results) if results.height else []
    if not metrics:
        fig = Figure(figsize=(4, 2))
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "n/a: no scores", ha="center")
        ax.set_title("benchmark")
        return fig
    groups = sorted(results["group"].unique().to_list())
    labels = _labels(results, not_applicable)
    models = list(labels)
    unscored = {m for m, label in labels.items() if label.endswith(" (n/a)")}
    colors = colormaps["tab10"]
    fig = Figure(figsize=(2.4 * len(metrics), 2.6 * len(groups)))
    axes = fig.subplots(len(groups), len(metrics), squeeze=False)
    for gi, group in enumerate(groups):
        for mi, metric in enumerate(metrics):
            ax = axes[gi][mi]
            sub = results.filter((pl.col("group") == group) & (pl.col("metric") == metric))
            for k, m in enumerate(models):
                if m in unscored:
                    ax.text(
                        k, 0.03, "n/a", ha="center", va="bottom", rotation=90, fontsize=7,
                        transform=ax.get_xaxis_transform(),
                    )  # fmt: skip
                    continue
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
            ax.set_xlim(-0.6, len(models) - 0.4)
            arrow = "↑" if HIGHER_IS_BETTER.get(metric, True) else "↓"
            ax.set_title(
                f"{metric} {arrow}" + (f"\n[{group}]" if len(groups) > 1 else ""), fontsize=8
            )
            ax.tick_params(labelsize=7)
    handles = [Patch(color=colors(k % 10), label=labels[m]) for k, m in enumerate(models)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(models), 6), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


__all__ = ["defined_metrics", "plot_benchmark_panel"]

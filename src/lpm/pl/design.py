"""Learning curves of design strategies: one panel per metric, one line per strategy, with the
spread over seeds as a band when several seeds are given. Random is drawn dashed in black, the
line every informed strategy must clear."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LABELS = {
    "pearson_delta": "Pearson Δ (held-out)",
    "pearson_delta_vs_mean": "Pearson Δ vs mean profile",
    "mse": "MSE (lower is better)",
    "discrimination": "discrimination",
    "top_acquired": "strongest 5% acquired (fraction)",
}


def _colour_index(strategy: str, position: int) -> int:
    """One colour per strategy name across every figure (random is drawn black)."""
    from lpm.design.strategies import STRATEGIES

    names = list(STRATEGIES)
    return names.index(strategy) % 10 if strategy in names else (len(names) + position) % 10


def learning_curves_figure(
    rounds: pl.DataFrame,
    *,
    metrics: Sequence[str] = ("pearson_delta", "pearson_delta_vs_mean", "mse", "top_acquired"),
    title: str | None = None,
    top_label: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Mean (± sd over ``seed`` if present) of each metric against the number labelled; a metric
    the rounds lack reads n/a."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    seeded = "seed" in rounds.columns
    present = [m for m in metrics if m in rounds.columns]
    agg = (
        rounds.group_by("strategy", "round", maintain_order=True)
        .agg(
            pl.col("n_labelled").mean(),
            *(pl.col(m).mean().alias(m) for m in present),
            *(pl.col(m).std().alias(f"{m}_sd") for m in present),
            pl.len().alias("n_seeds"),
        )
        .sort("strategy", "round")
    )
    fig = Figure(figsize=(4.2 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    strategies = list(dict.fromkeys(rounds["strategy"].to_list()))
    colours = colormaps["tab10"]
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, strategy in enumerate(strategies if metric in present else []):
            part = agg.filter(pl.col("strategy") == strategy)
            x, y = part["n_labelled"].to_numpy(), part[metric].to_numpy()
            style = (
                {"color": "black", "linestyle": "--"}
                if strategy == "random"
                else {"color": colours(_colour_index(strategy, i))}
            )
            ax.plot(x, y, marker="o", markersize=3, label=strategy, **style)
            if seeded:
                sd = np.nan_to_num(part[f"{metric}_sd"].to_numpy())
                ax.fill_between(x, y - sd, y + sd, alpha=0.12, color=style["color"])
        if metric not in present:
            ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
        label = (labels or {}).get(metric) or LABELS.get(metric, metric)
        if metric == "top_acquired" and top_label:
            label = top_label
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("perturbations labelled")
        ax.grid(alpha=0.3)
    if strategies and present:
        axes[0][0].legend(fontsize=8)
    n_seeds = int(agg["n_seeds"].to_numpy().max()) if agg.height else 0
    suffix = f" (mean ± sd over {n_seeds} seeds)" if seeded and n_seeds > 1 else ""
    fig.suptitle((title or "design learning curves") + suffix, fontsize=11)
    fig.tight_layout()
    return fig


__all__ = ["LABELS", "learning_curves_figure"]

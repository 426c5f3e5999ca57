"""The mechanism-of-action figure, drawn from the tables ``lpm moa`` writes (never recomputed).

Left: each compound's AUROC by method and ground truth (box and points; 0.5 is chance). Right:
the top genetic candidates of a few compounds by the first method present (score in colour).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_N_COMPOUNDS: Final = 15
_TOP: Final = 10


def _auroc_panel(ax: Axes, per_query: pl.DataFrame) -> None:
    if not (per_query.height and "auroc" in per_query.columns):
        ax.text(0.5, 0.5, "n/a: no ground truth given", ha="center", va="center")
        ax.set_axis_off()
        return
    done = per_query.filter(pl.col("auroc").is_not_null())
    groups = done.group_by("truth", "method", maintain_order=True).agg(pl.col("auroc"))
    labels = [f"{t}\n{m}" for t, m in zip(groups["truth"], groups["method"], strict=True)]
    values = [np.asarray(v, dtype=float) for v in groups["auroc"].to_list()]
    if values:
        import matplotlib

        major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
        # ``vert`` is deprecated from 3.11; ``orientation`` exists from 3.10
        flat = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
        ax.boxplot(values, showfliers=False, **flat)
        rng = np.random.default_rng(0)
        for i, v in enumerate(values, start=1):
            ax.scatter(v, i + rng.uniform(-0.15, 0.15, len(v)), s=8, alpha=0.6)
        ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("AUROC per compound")
    ax.set_xlim(0, 1)


def _candidates_panel(fig: Figure, ax: Axes, ranking: pl.DataFrame, method: str) -> None:
    top = (
        ranking.filter((pl.col("method") == method) & (pl.col("candidate_type") != "compound"))
        .sort("query", "score", descending=[False, True])
        .group_by("query", maintain_order=True)
        .head(_TOP)
    )
    queries = top["query"].unique(maintain_order=True).to_list()[:_N_COMPOUNDS]
    if not queries:
        ax.text(0.5, 0.5, "n/a: no genetic candidates", ha="center", va="center")
        ax.set_axis_off()
        return
    grid = np.full((len(queries), _TOP), np.nan)
    names: list[list[str]] = [[""] * _TOP for _ in queries]
    for i, q in enumerate(queries):
        rows = top.filter(pl.col("query") == q)
        for j, (cand, score) in enumerate(zip(rows["candidate"], rows["score"], strict=True)):
            grid[i, j] = score
            names[i][j] = str(cand).partition(":")[2]
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    for i in range(len(queries)):
        for j in range(_TOP):
            ax.text(j, i, names[i][j], ha="center", va="center", fontsize=5, color="white")
    ax.set_yticks(range(len(queries)), [q.partition(":")[2] for q in queries], fontsize=7)
    ax.set_xticks(range(_TOP), [str(j + 1) for j in range(_TOP)])
    ax.set_xlabel("rank of genetic candidate")
    fig.colorbar(image, ax=ax, label="score")


def plot_moa(ranking: pl.DataFrame, per_query: pl.DataFrame) -> Figure:
    """The figure of a ranking (:func:`lpm.tasks.moa.rank_moa`) and its per-compound scores
    (empty without a ground truth: that panel reads n/a)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 5.5))
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
    _auroc_panel(left, per_query)
    left.set_title("Ranking quality by method")
    method = ranking["method"][0] if ranking.height else ""
    _candidates_panel(fig, right, ranking, method)
    right.set_title(f"Top genetic candidates ({method})")
    fig.tight_layout()
    return fig


__all__ = ["plot_moa"]

"""The mechanism-of-action figure, drawn from the tables :func:`lpm.tasks.moa.run_moa` writes.

Left: each compound's AUROC by method and ground truth (box and points; 0.5 is chance). Right:
the top genetic candidates of a few compounds by the first method present (score in colour).
Only reads tables; never recomputes a similarity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from lpm.errors import LpmInputError
from lpm.pl.save import save_png

_N_COMPOUNDS: Final = 15
_TOP: Final = 10


def _pyplot():  # type: ignore[no-untyped-def]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - matplotlib is an optional extra
        raise LpmInputError(None, "the figure needs matplotlib (pip install 'lpm[plot]')") from err
    return plt


def plot_moa(ranking: pl.DataFrame, per_query: pl.DataFrame, path: str | Path) -> Path:
    """Write the figure to ``path`` (PNG) and return it."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5), width_ratios=[1, 1.2])
    if per_query.height and "auroc" in per_query.columns:
        done = per_query.filter(pl.col("auroc").is_not_null())
        groups = done.group_by("truth", "method", maintain_order=True).agg(pl.col("auroc"))
        labels = [f"{t}\n{m}" for t, m in zip(groups["truth"], groups["method"], strict=True)]
        values = [np.asarray(v, dtype=float) for v in groups["auroc"].to_list()]
        if values:
            import matplotlib

            major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
            # ``vert`` is deprecated from 3.11; ``orientation`` exists from 3.10
            flat = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
            left.boxplot(values, showfliers=False, **flat)
            rng = np.random.default_rng(0)
            for i, v in enumerate(values, start=1):
                left.scatter(v, i + rng.uniform(-0.15, 0.15, len(v)), s=8, alpha=0.6)
            left.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
        left.axvline(0.5, color="grey", linestyle="--", linewidth=1)
        left.set_xlabel("AUROC per compound")
        left.set_xlim(0, 1)
    else:
        left.text(0.5, 0.5, "no ground truth given", ha="center", va="center")
        left.set_axis_off()
    left.set_title("Ranking quality by method")
    method = ranking["method"][0] if ranking.height else ""
    top = (
        ranking.filter((pl.col("method") == method) & (pl.col("candidate_type") != "compound"))
        .sort("query", "score", descending=[False, True])
        .group_by("query", maintain_order=True)
        .head(_TOP)
    )
    queries = top["query"].unique(maintain_order=True).to_list()[:_N_COMPOUNDS]
    if queries:
        grid = np.full((len(queries), _TOP), np.nan)
        names: list[list[str]] = [[""] * _TOP for _ in queries]
        for i, q in enumerate(queries):
            rows = top.filter(pl.col("query") == q)
            for j, (cand, score) in enumerate(zip(rows["candidate"], rows["score"], strict=True)):
                grid[i, j] = score
                names[i][j] = str(cand).partition(":")[2]
        image = right.imshow(grid, aspect="auto", cmap="viridis")
        for i in range(len(queries)):
            for j in range(_TOP):
                right.text(j, i, names[i][j], ha="center", va="center", fontsize=5, color="white")
        right.set_yticks(range(len(queries)), [q.partition(":")[2] for q in queries], fontsize=7)
        right.set_xticks(range(_TOP), [str(j + 1) for j in range(_TOP)])
        right.set_xlabel("rank of genetic candidate")
        fig.colorbar(image, ax=right, label="score")
    else:
        right.text(0.5, 0.5, "no genetic candidates", ha="center", va="center")
        right.set_axis_off()
    right.set_title(f"Top genetic candidates ({method})")
    fig.tight_layout()
    return save_png(fig, path, dpi=120)

"""The figure of ``lpm interactions``: magnitude against model fit, coloured by type.

The thresholds that define the types are drawn as lines, so each point's type can be read off
its position; a confusion matrix against a truth, when given, is a second panel. matplotlib
loads only here (Agg backend) and the PNG is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from lpm.errors import LpmInputError
from lpm.pl.save import save_png

if TYPE_CHECKING:
    from lpm.tasks.interactions import InteractionThresholds

#: One colour per type, in :data:`lpm.tasks.interactions.TYPES` order.
COLOURS = {
    "additive": "#7f7f7f",
    "synergistic": "#d62728",
    "buffering": "#1f77b4",
    "epistatic": "#2ca02c",
    "neomorphic": "#9467bd",
}


def plot_interactions(
    table: pl.DataFrame,
    out: Path,
    *,
    thresholds: InteractionThresholds | None = None,
    confusion: pl.DataFrame | None = None,
    title: str | None = None,
) -> Path:
    """Scatter of ``magnitude`` vs ``fit_dcor`` by type (+ confusion heatmap) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lpm.tasks.interactions import TYPES, InteractionThresholds

    missing = [c for c in ("magnitude", "fit_dcor", "type") if c not in table.columns]
    if missing:
        raise LpmInputError("interaction table", f"missing column(s) {', '.join(missing)}")
    t = thresholds or InteractionThresholds()
    panels = 2 if confusion is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 5.0), squeeze=False)
    ax = axes[0, 0]
    # a few neomorphic doubles fit with huge coefficients: clip them (▲ at the top) so the
    # thresholds around √2 stay readable
    top = 2.0 * t.synergy_above
    for kind in TYPES:
        sub = table.filter(pl.col("type") == kind)
        if sub.height:
            mag = sub["magnitude"].to_numpy()
            over = mag > top
            for mask, marker in ((~over, "o"), (over, "^")):
                if mask.any():
                    ax.scatter(
                        sub["fit_dcor"].to_numpy()[mask],
                        np.minimum(mag[mask], top),
                        s=18,
                        alpha=0.8,
                        marker=marker,
                        color=COLOURS[kind],
                        label=f"{kind} ({sub.height})" if marker == "o" or over.all() else None,
                    )
    ax.axvline(t.min_fit_dcor, color="k", lw=0.8, ls="--")
    for y, ls in ((t.synergy_above, ":"), (t.buffering_below, ":"), (np.sqrt(2.0), "-")):
        ax.axhline(y, color="k", lw=0.8, ls=ls, alpha=0.6)
    ax.set_xlabel("model fit: dcor(c1·A + c2·B, AB)")
    ax.set_ylabel(f"magnitude √(c1² + c2²) (▲: above {top:.2g})")
    ax.set_ylim(bottom=0.0, top=top * 1.05)
    ax.set_title(title or f"{table.height} double perturbations")
    ax.legend(fontsize=8, loc="best")
    if confusion is not None:
        ax2 = axes[0, 1]
        cols = [c for c in confusion.columns if c != "truth"]
        mat = confusion.select(cols).to_numpy()
        ax2.imshow(mat, cmap="Blues")
        ax2.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
        ax2.set_yticks(range(confusion.height), confusion["truth"].to_list())
        ax2.set_xlabel("predicted type")
        ax2.set_ylabel("true type")
        peak = mat.max() if mat.size else 0
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                ax2.text(
                    j,
                    i,
                    str(int(mat[i, j])),
                    ha="center",
                    va="center",
                    color="white" if peak and mat[i, j] > peak / 2 else "black",
                    fontsize=9,
                )
        ax2.set_title("types: truth × predicted")
    fig.tight_layout()
    return save_png(fig, out, dpi=120)

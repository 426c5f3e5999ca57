"""The figure of ``lpm interactions``: magnitude against model fit, coloured by type.

The thresholds that define the types are drawn as lines, so each point's type can be read off
its position; a confusion matrix against a truth, when given, is a second panel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
import polars as pl

from lpm.errors import LpmInputError
from lpm.tasks.interactions import TYPES, InteractionThresholds

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: One colour per type, in :data:`lpm.tasks.interactions.TYPES` order.
COLOURS: Final = {
    "additive": "#7f7f7f",
    "synergistic": "#d62728",
    "buffering": "#1f77b4",
    "epistatic": "#2ca02c",
    "neomorphic": "#9467bd",
}


def _scatter(ax: Axes, table: pl.DataFrame, t: InteractionThresholds, title: str | None) -> None:
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
    if table.height == 0:
        ax.text(0.5, 0.5 * top, "n/a: no typed double", ha="center", va="center")
    ax.axvline(t.min_fit_dcor, color="k", lw=0.8, ls="--")
    for y, ls in ((t.synergy_above, ":"), (t.buffering_below, ":"), (np.sqrt(2.0), "-")):
        ax.axhline(y, color="k", lw=0.8, ls=ls, alpha=0.6)
    ax.set_xlabel("model fit: dcor(c1·A + c2·B, AB)")
    ax.set_ylabel(f"magnitude √(c1² + c2²) (▲: above {top:.2g})")
    ax.set_ylim(bottom=0.0, top=top * 1.05)
    ax.set_title(title or f"{table.height} double perturbations")
    if table.height:
        ax.legend(fontsize=8, loc="best")


def _confusion(ax: Axes, confusion: pl.DataFrame) -> None:
    cols = [c for c in confusion.columns if c != "truth"]
    mat = confusion.select(cols).to_numpy()
    ax.imshow(mat, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(confusion.height), confusion["truth"].to_list())
    ax.set_xlabel("predicted type")
    ax.set_ylabel("true type")
    peak = mat.max() if mat.size else 0
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            colour = "white" if peak and mat[i, j] > peak / 2 else "black"
            ax.text(j, i, str(int(mat[i, j])), ha="center", va="center", color=colour, fontsize=9)
    ax.set_title("types: truth × predicted")


def plot_interactions(
    table: pl.DataFrame,
    *,
    thresholds: InteractionThresholds | None = None,
    confusion: pl.DataFrame | None = None,
    title: str | None = None,
) -> Figure:
    """Scatter of ``magnitude`` vs ``fit_dcor`` by type, and the confusion matrix if given."""
    from matplotlib.figure import Figure

    missing = [c for c in ("magnitude", "fit_dcor", "type") if c not in table.columns]
    if missing:
        raise LpmInputError("interaction table", f"missing column(s) {', '.join(missing)}")
    panels = 2 if confusion is not None else 1
    fig = Figure(figsize=(6.0 * panels, 5.0))
    axes = fig.subplots(1, panels, squeeze=False)
    _scatter(axes[0, 0], table, thresholds or InteractionThresholds(), title)
    if confusion is not None:
        _confusion(axes[0, 1], confusion)
    fig.tight_layout()
    return fig


__all__ = ["COLOURS", "plot_interactions"]

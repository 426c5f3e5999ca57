"""The figure of ``lpm explain``, drawn from its result tables (no recomputation).

Left: each input's share of the importance per context, one bar per (context, method).
Right (with simulator truth): per-perturbation importance for perturbations without and with a
downstream effect, one pair of boxes per score, as percentile ranks within the score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import polars as pl

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colours of the inputs (the same in every figure).
COLOURS: Final = {
    "perturbation": "#d62728",
    "context": "#1f77b4",
    "readout": "#7f7f7f",
    "dose": "#2ca02c",
    "time": "#9467bd",
}


def _shares_panel(ax: Axes, by_context: pl.DataFrame) -> None:
    ax.set_title("Which input drives the prediction, per context")
    if by_context.height == 0:
        ax.text(0.5, 0.5, "n/a: no rows explained", ha="center", va="center")
        return
    groups = (
        by_context.select("context", "method").unique(maintain_order=True).sort("context", "method")
    )
    inputs = list(dict.fromkeys(by_context["input"].to_list()))
    labels = [f"{c} ({m})" for c, m in groups.iter_rows()]
    left = [0.0] * groups.height
    for name in inputs:
        part = groups.join(
            by_context.filter(pl.col("input") == name), on=["context", "method"], how="left"
        )["share"].fill_null(0.0)
        ax.barh(labels, part.to_list(), left=left, color=COLOURS.get(name), label=name)
        left = [a + b for a, b in zip(left, part.to_list(), strict=True)]
    ax.set_xlabel("share of importance")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)


def _truth_panel(ax: Axes, per_perturbation: pl.DataFrame) -> None:
    from lpm.sim.truth import DOWNSTREAM_FLAG as _FLAG

    scores = [c for c in per_perturbation.columns if c not in ("perturbation", _FLAG)]
    data, names = [], []
    # percentile ranks: the scores (error increases, attention weights) share one axis
    ranked = per_perturbation.with_columns(
        (pl.col(c).rank("average") / pl.col(c).count()).alias(c) for c in scores
    )
    for col in scores:
        for flag in (False, True):
            vals = ranked.filter(pl.col(_FLAG) == flag)[col]
            data.append(vals.drop_nulls().drop_nans().to_list())
            names.append(f"{col}\n{'effect' if flag else 'no effect'}")
    ax.boxplot(data, tick_labels=names, showfliers=False)
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.set_ylabel("perturbation importance (percentile rank)")
    ax.set_title("Simulator: perturbations with vs without downstream effect")


def plot_importance(
    by_context: pl.DataFrame, per_perturbation: pl.DataFrame | None = None
) -> Figure:
    """The figure of ``importance_by(..., by="context")`` and, optionally, a per-perturbation
    table of score columns with ``has_downstream_effect`` (the simulator's truth)."""
    from matplotlib.figure import Figure

    n_panels = 2 if per_perturbation is not None and per_perturbation.height else 1
    fig = Figure(figsize=(6.5 * n_panels, 4.5))
    axes = fig.subplots(1, n_panels, squeeze=False)
    _shares_panel(axes[0, 0], by_context)
    if n_panels == 2:
        assert per_perturbation is not None
        _truth_panel(axes[0, 1], per_perturbation)
    fig.tight_layout()
    return fig


__all__ = ["COLOURS", "plot_importance"]

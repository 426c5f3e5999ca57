"""The figure of ``lpm explain``: it only reads the result tables (no recomputation).

Left: each input's share of the importance per context, one bar per (context, method).
Right (with simulator truth): per-perturbation importance for perturbations without and with a
downstream effect, one pair of boxes per score, as percentile ranks within the score.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lpm.pl.save import save_png

#: Colours of the inputs (the same in every figure).
COLOURS = {
    "perturbation": "#d62728",
    "context": "#1f77b4",
    "readout": "#7f7f7f",
    "dose": "#2ca02c",
    "time": "#9467bd",
}


def plot_importance(
    by_context: pl.DataFrame, per_perturbation: pl.DataFrame | None, path: str | Path
) -> Path:
    """Write the figure (PNG) from ``importance_by(..., by="context")`` and, optionally, a
    per-perturbation table of score columns with ``has_downstream_effect``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n_panels = 2 if per_perturbation is not None and per_perturbation.height else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(6.5 * n_panels, 4.5), squeeze=False)
    ax = axes[0, 0]
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
    ax.set_title("Which input drives the prediction, per context")
    if n_panels == 2:
        assert per_perturbation is not None
        ax = axes[0, 1]
        scores = [
            c
            for c in per_perturbation.columns
            if c not in ("perturbation", "has_downstream_effect")
        ]
        data, names = [], []
        # percentile ranks: the scores (error increases, attention weights) share one axis
        ranked = per_perturbation.with_columns(
            (pl.col(c).rank("average") / pl.col(c).count()).alias(c) for c in scores
        )
        for col in scores:
            for flag in (False, True):
                vals = ranked.filter(pl.col("has_downstream_effect") == flag)[col]
                data.append(vals.drop_nulls().drop_nans().to_list())
                names.append(f"{col}\n{'effect' if flag else 'no effect'}")
        ax.boxplot(data, tick_labels=names, showfliers=False)
        ax.tick_params(axis="x", labelsize=7, rotation=30)
        ax.set_ylabel("perturbation importance (percentile rank)")
        ax.set_title("Simulator: perturbations with vs without downstream effect")
    fig.tight_layout()
    return save_png(fig, path, dpi=110)

"""The figure of ``lpm embed``: a 2-D layout of embeddings, one panel per colour column.

The layout itself (UMAP, or PCA + t-SNE without ``umap-learn``) is computed by
:func:`lpm.tasks.layout.embedding_layout`; a missing category is drawn grey as ``n/a``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from lpm.errors import LpmInputError
from lpm.tasks.layout import LAYOUT_UNS, embedding_layout, layout_key

if TYPE_CHECKING:
    import anndata as ad
    from matplotlib.figure import Figure

#: Columns coloured by default, where present (one panel each).
DEFAULT_COLORS: Final = ("perturbation_type", "mechanism", "dataset")
#: Points labelled with their names when a panel has at most this many.
LABEL_POINTS: Final = 40
#: How a missing category is drawn (in grey).
MISSING: Final = "n/a"
#: Legend entries longer than this are cut (multi-target mechanisms would squeeze the panels).
_LEGEND_CHARS: Final = 40


def _colour_columns(adata: ad.AnnData, color: Sequence[str] | None) -> list[str]:
    if color is None:
        return [c for c in DEFAULT_COLORS if c in adata.obs.columns]
    if isinstance(color, str):
        color = [color]
    missing = [c for c in color if c not in adata.obs.columns]
    if missing:
        raise LpmInputError(
            None,
            f"no obs column(s) {', '.join(missing)} to colour by; "
            f"available: {', '.join(map(str, adata.obs.columns)) or 'none'}",
        )
    return list(color)


def _panel(ax: Any, coords: np.ndarray, values: Any, title: str, names: list[str]) -> None:
    """One scatter panel: categories with a legend, numbers with a colour bar."""
    import matplotlib as mpl
    import pandas as pd

    x, y = coords[:, 0], coords[:, 1]
    if values is None:
        ax.scatter(x, y, s=18, color="tab:blue", linewidths=0)
    elif pd.api.types.is_float_dtype(values.dtype):
        points = ax.scatter(x, y, s=18, c=np.asarray(values, float), cmap="viridis", linewidths=0)
        ax.figure.colorbar(points, ax=ax, shrink=0.8, label=title)
    else:
        labels = np.array([MISSING if pd.isna(v) else str(v) for v in values], dtype=object)
        cats = sorted(set(labels) - {MISSING}) + ([MISSING] if MISSING in labels else [])
        palette = mpl.colormaps["tab10" if len(cats) <= 10 else "tab20"]
        for i, cat in enumerate(cats):
            colour = "lightgrey" if cat == MISSING else palette(i % palette.N)
            pick = labels == cat
            short = cat if len(cat) <= _LEGEND_CHARS else cat[: _LEGEND_CHARS - 1] + "…"
            ax.scatter(x[pick], y[pick], s=18, color=colour, label=short, linewidths=0)
        shown = 20
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            fontsize=7,
            frameon=False,
            title=title if len(cats) <= shown else f"{title} (first {shown} of {len(cats)})",
            handles=ax.get_legend_handles_labels()[0][:shown],
        )
    if len(names) <= LABEL_POINTS:
        for name, xi, yi in zip(names, x, y, strict=True):
            ax.annotate(
                name, (xi, yi), fontsize=6, alpha=0.8, xytext=(2, 2), textcoords="offset points"
            )
    ax.margins(0.12)  # room for the point labels at the edges
    ax.set_title(title or "points", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_embedding_umap(
    adata: ad.AnnData,
    *,
    color: Sequence[str] | None = None,
    seed: int = 0,
    method: str = "auto",
) -> Figure:
    """A 2-D layout of the embeddings, one panel per colour column.

    The layout drawn is the one ``adata.obsm`` holds (``X_umap``, ``X_tsne`` or ``X_pca``, as
    :func:`lpm.tasks.layout.embedding_layout` and ``lpm embed --figure`` store it); without one
    it is computed here with ``seed`` and ``method`` (UMAP where ``umap-learn`` is installed,
    otherwise PCA + t-SNE, and the title says so).

    Parameters
    ----------
    adata
        Embeddings (e.g. from :func:`lpm.tasks.perturbation_embeddings`).
    color
        obs columns to colour by, one panel each. Default: those of ``perturbation_type``,
        ``mechanism`` and ``dataset`` present (one plain panel if none is); a named column that
        is absent is an error.
    seed, method
        Of the layout, when ``adata`` holds none.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (written by :func:`lpm.pl.save.save_png`).
    """
    from matplotlib.figure import Figure

    columns = _colour_columns(adata, color)
    laid = adata if layout_key(adata) else embedding_layout(adata, seed=seed, method=method)
    key = layout_key(laid)
    assert key is not None
    coords = np.asarray(laid.obsm[key], dtype=np.float64)
    names = [str(n) for n in laid.obs_names]
    fig = Figure(figsize=(5.5 * max(1, len(columns)), 4.8), layout="constrained")
    axes = fig.subplots(1, max(1, len(columns)), squeeze=False)[0]
    for ax, col in zip(axes, columns or [""], strict=True):
        _panel(ax, coords, laid.obs[col] if col else None, col, names)
    fig.suptitle(_title(laid, key), fontsize=11)
    return fig


def _title(adata: ad.AnnData, key: str) -> str:
    record = adata.uns.get(LAYOUT_UNS, {})
    label = record.get("label") or {"X_umap": "UMAP", "X_tsne": "t-SNE", "X_pca": "PCA"}[key]
    source = adata.uns.get("lpm_embedding", {})
    what = f"{source.get('kind', '')} embeddings".strip()
    if source.get("model_name"):
        what += (
            f" of {source['model_name']} ({source.get('mode', '')} mode), "
            f"member {source.get('member', 0)} of {source.get('n_ensemble', 1)}"
        )
    seed = f", seed {record['seed']}" if "seed" in record else ""
    return f"{label} of {what} ({adata.n_obs} points{seed})"


__all__ = ["DEFAULT_COLORS", "LABEL_POINTS", "MISSING", "plot_embedding_umap"]

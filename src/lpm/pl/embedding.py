"""A 2-D layout of embeddings (UMAP, or PCA + t-SNE without ``umap-learn``) and its figure.

``umap-learn`` is a dependency of lpm: it brings numba and llvmlite (about 210 MB), its import
takes seconds and its first fit in a process compiles numba kernels for 15-30 s on a small
machine. Where it fails to import (a platform without numba wheels), ``method="auto"`` lays
points out with PCA followed by scikit-learn's t-SNE, and the figure's title says so. Fewer than four points get a PCA
layout, as neither method can place them.

The layout is stored as scanpy stores it (``obsm["X_umap"]``, ``obsm["X_tsne"]`` or
``obsm["X_pca"]``) so that ``scanpy.pl.embedding`` draws the same picture; ``uns["lpm_layout"]``
records the method, its parameters and the seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from lpm.errors import LpmInputError
from lpm.pl.save import save_png

if TYPE_CHECKING:
    import anndata as ad

#: Layout methods: ``auto`` is UMAP where ``umap-learn`` is installed, else PCA + t-SNE.
LAYOUT_METHODS: Final = ("auto", "umap", "tsne")
#: obsm keys of a layout, in the order a figure looks for them.
LAYOUT_KEYS: Final = ("X_umap", "X_tsne", "X_pca")
#: Key of ``uns`` recording how the layout was made.
LAYOUT_UNS: Final = "lpm_layout"
#: Columns coloured by default, where present (one panel each).
DEFAULT_COLORS: Final = ("perturbation_type", "mechanism", "dataset")
#: Fewer points than this are laid out by PCA (UMAP needs n_neighbors >= 2 < n).
MIN_POINTS: Final = 4
#: Points labelled with their names when a panel has at most this many.
LABEL_POINTS: Final = 40
_N_NEIGHBORS: Final = 15
_PCA_DIMS: Final = 50
_MISSING: Final = "n/a"
#: Legend entries longer than this are cut (multi-target mechanisms would squeeze the panels).
_LEGEND_CHARS: Final = 40


def _import_umap() -> Any | None:
    """The ``umap`` module, or None when ``umap-learn`` is not installed."""
    try:
        with warnings.catch_warnings():
            # umap's own import notes that its optional TensorFlow part is missing
            warnings.filterwarnings(
                "ignore", message="Tensorflow not installed", category=ImportWarning
            )
            import umap
    except ImportError:
        return None
    return umap


def _pca(x: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` principal components (zero-padded; signs fixed), by SVD."""
    centred = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    signs[signs == 0] = 1.0
    scores = (u * s) * signs
    out = np.zeros((x.shape[0], k), dtype=np.float64)
    m = min(k, scores.shape[1])
    out[:, :m] = scores[:, :m]
    return out


def _layout(x: np.ndarray, *, seed: int, method: str) -> tuple[str, np.ndarray, dict[str, Any]]:
    """obsm key, coordinates (points × 2) and a record of how they were made."""
    n = x.shape[0]
    if method not in LAYOUT_METHODS:
        raise LpmInputError(
            None, f"unknown layout method {method!r}; expected one of {', '.join(LAYOUT_METHODS)}"
        )
    if n < MIN_POINTS:
        label = f"PCA ({n} point(s): too few for UMAP or t-SNE)"
        return "X_pca", _pca(x, 2), {"method": "pca", "label": label}
    umap = _import_umap() if method in ("auto", "umap") else None
    if method == "umap" and umap is None:
        raise LpmInputError(
            None,
            "a UMAP layout needs umap-learn, which failed to import: pip install umap-learn (or use method tsne)",
        )
    if umap is not None:
        n_neighbors = min(_N_NEIGHBORS, n - 1)
        reducer = umap.UMAP(n_neighbors=n_neighbors, n_components=2, random_state=seed, n_jobs=1)
        coords = np.asarray(reducer.fit_transform(x), dtype=np.float64)
        return "X_umap", coords, {"method": "umap", "label": "UMAP", "n_neighbors": n_neighbors}
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    dims = min(_PCA_DIMS, x.shape[1], n)
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    # one OpenMP thread: the same coordinates on any number of cores, and no spinning threads
    # (on two busy cores t-SNE of 10 points took 40 s with two threads, 0.2 s with one)
    with threadpool_limits(limits=1):
        coords = np.asarray(tsne.fit_transform(_pca(x, dims)), dtype=np.float64)
    label = "PCA + t-SNE" + (" (umap-learn did not import)" if method == "auto" else "")
    return (
        "X_tsne",
        coords,
        {
            "method": "tsne",
            "label": label,
            "pca_dims": dims,
            "perplexity": perplexity,
        },
    )


def embedding_layout(adata: ad.AnnData, *, seed: int = 0, method: str = "auto") -> ad.AnnData:
    """A seeded 2-D layout of ``adata.X``, returned as a new AnnData with the coordinates in obsm.

    Parameters
    ----------
    adata
        Embeddings, one row per point (e.g. from :func:`lpm.tasks.perturbation_embeddings`).
    seed
        Random seed; the same seed gives the same coordinates (t-SNE, started from PCA, gives
        them whatever the seed).
    method
        ``auto`` (UMAP where ``umap-learn`` is installed, else PCA + t-SNE), ``umap`` (an error
        naming the extra without it) or ``tsne``. Fewer than four points are placed by PCA.

    Returns
    -------
    anndata.AnnData
        A copy of ``adata`` with ``obsm["X_umap"]`` (``X_tsne``, or ``X_pca`` for tiny sets;
        any earlier layout is dropped) and ``uns["lpm_layout"]``: method, label, seed, parameters.

    Example
    -------
    >>> import anndata as ad, numpy as np
    >>> points = ad.AnnData(np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32))
    >>> laid = embedding_layout(points, seed=0, method="tsne")
    >>> laid.obsm["X_tsne"].shape, laid.uns["lpm_layout"]["method"]
    ((12, 2), 'tsne')
    """
    x = np.asarray(adata.X, dtype=np.float64)
    key, coords, record = _layout(x, seed=seed, method=method)
    out = adata.copy()
    for old in LAYOUT_KEYS:
        if old in out.obsm:
            del out.obsm[old]
    out.obsm[key] = coords
    out.uns[LAYOUT_UNS] = {**record, "seed": seed}
    return out


def _layout_key(adata: ad.AnnData) -> str | None:
    return next((k for k in LAYOUT_KEYS if k in adata.obsm), None)


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
        labels = np.array([_MISSING if pd.isna(v) else str(v) for v in values], dtype=object)
        cats = sorted(set(labels) - {_MISSING}) + ([_MISSING] if _MISSING in labels else [])
        palette = mpl.colormaps["tab10" if len(cats) <= 10 else "tab20"]
        for i, cat in enumerate(cats):
            colour = "lightgrey" if cat == _MISSING else palette(i % palette.N)
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
    out_png: str | Path,
    *,
    color: Sequence[str] | None = None,
    seed: int = 0,
    method: str = "auto",
) -> Path:
    """Draw a 2-D layout of the embeddings, one panel per colour column, into a PNG (atomically).

    The layout is UMAP where ``umap-learn`` is installed; otherwise PCA + t-SNE, and the title
    says so. If ``adata.obsm`` already holds a layout (``X_umap``, ``X_tsne`` or ``X_pca``, as
    :func:`embedding_layout` and ``lpm embed --figure`` store it) that one is drawn, and ``seed``
    and ``method`` are unused.

    Parameters
    ----------
    adata
        Embeddings (e.g. from :func:`lpm.tasks.perturbation_embeddings`).
    out_png
        The PNG to write.
    color
        obs columns to colour by, one panel each. Default: those of ``perturbation_type``,
        ``mechanism`` and ``dataset`` present (one plain panel if none is); a named column that
        is absent is an error.
    seed
        Seed of the layout.
    method
        ``auto``, ``umap`` or ``tsne`` (see :func:`embedding_layout`).

    Returns
    -------
    Path
        The PNG written.
    """
    from matplotlib.figure import Figure

    columns = _colour_columns(adata, color)
    laid = adata if _layout_key(adata) else embedding_layout(adata, seed=seed, method=method)
    key = _layout_key(laid)
    assert key is not None
    coords = np.asarray(laid.obsm[key], dtype=np.float64)
    names = [str(n) for n in laid.obs_names]
    fig = Figure(figsize=(5.5 * max(1, len(columns)), 4.8), layout="constrained")
    axes = fig.subplots(1, max(1, len(columns)), squeeze=False)[0]
    for ax, col in zip(axes, columns or [""], strict=True):
        _panel(ax, coords, laid.obs[col] if col else None, col, names)
    fig.suptitle(_title(laid, key), fontsize=11)
    return save_png(fig, out_png, dpi=110)


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

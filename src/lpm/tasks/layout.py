"""A seeded 2-D layout of embeddings: UMAP, or PCA + t-SNE without ``umap-learn``.

``umap-learn`` is a dependency of lpm: it brings numba and llvmlite (about 210 MB), its import
takes seconds and its first fit in a process compiles numba kernels for 15-30 s on a small
machine. Where it fails to import (a platform without numba wheels), ``method="auto"`` lays
points out with PCA followed by scikit-learn's t-SNE, and the label says so. Fewer than four
points get a PCA layout, as neither method can place them.

The layout is stored as scanpy stores it (``obsm["X_umap"]``, ``obsm["X_tsne"]`` or
``obsm["X_pca"]``) so that ``scanpy.pl.embedding`` draws the same picture; ``uns["lpm_layout"]``
records the method, its parameters and the seed. :mod:`lpm.pl.embedding` draws it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from lpm.errors import LpmInputError

if TYPE_CHECKING:
    import anndata as ad

#: Layout methods: ``auto`` is UMAP where ``umap-learn`` is installed, else PCA + t-SNE.
LAYOUT_METHODS: Final = ("auto", "umap", "tsne")
#: obsm keys of a layout, in the order a figure looks for them.
LAYOUT_KEYS: Final = ("X_umap", "X_tsne", "X_pca")
#: Key of ``uns`` recording how the layout was made.
LAYOUT_UNS: Final = "lpm_layout"
#: Fewer points than this are laid out by PCA (UMAP needs n_neighbors >= 2 < n).
MIN_POINTS: Final = 4
_N_NEIGHBORS: Final = 15
_PCA_DIMS: Final = 50


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


def check_layout_method(method: str) -> str:
    """``method`` if it is one of :data:`LAYOUT_METHODS`, else a one-line error listing them."""
    if method not in LAYOUT_METHODS:
        raise LpmInputError(
            None, f"unknown layout method {method!r}; expected one of {', '.join(LAYOUT_METHODS)}"
        )
    return method


def _layout(x: np.ndarray, *, seed: int, method: str) -> tuple[str, np.ndarray, dict[str, Any]]:
    """obsm key, coordinates (points × 2) and a record of how they were made."""
    n = x.shape[0]
    check_layout_method(method)
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


def layout_key(adata: ad.AnnData) -> str | None:
    """The obsm key of the layout ``adata`` holds, if any (in :data:`LAYOUT_KEYS` order)."""
    return next((k for k in LAYOUT_KEYS if k in adata.obsm), None)


__all__ = [
    "LAYOUT_KEYS",
    "LAYOUT_METHODS",
    "LAYOUT_UNS",
    "MIN_POINTS",
    "check_layout_method",
    "embedding_layout",
    "layout_key",
]

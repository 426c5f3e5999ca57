"""Seeded 2-D layouts of embeddings (``lpm.tasks.layout``): t-SNE repeats under a seed, the
fallback without umap-learn says so, tiny sets get PCA, UMAP repeats under a seed."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pytest

from lpm.errors import LpmInputError
from lpm.tasks import layout
from lpm.tasks.embeddings import perturbation_embeddings
from lpm.tasks.layout import embedding_layout
from tests.conftest import SMALL_LPM
from tests.tasks.test_embeddings import _rows

ad = pytest.importorskip("anndata")
pytest.importorskip("torch")
pytest.importorskip("lightning")


# ---- layouts ------------------------------------------------------------------------
def _points(n: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    adata = ad.AnnData(rng.normal(size=(n, 8)).astype(np.float32))
    adata.obs["perturbation_type"] = ["CRISPRi", "compound"] * (n // 2) + ["CRISPRi"] * (n % 2)
    return adata


def test_the_same_seed_gives_the_same_tsne_layout() -> None:
    from lpm.models.registry import get_model

    fitted = get_model("lpm_fast", **SMALL_LPM, max_epochs=1, val_fraction=0).fit(_rows())
    emb = perturbation_embeddings(fitted)
    a = embedding_layout(emb, seed=0, method="tsne")
    b = embedding_layout(emb, seed=0, method="tsne")
    np.testing.assert_array_equal(a.obsm["X_tsne"], b.obsm["X_tsne"])
    assert a.uns["lpm_layout"]["seed"] == 0
    assert "X_tsne" not in emb.obsm, "the input is not changed"


def test_without_umap_auto_falls_back_to_tsne_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "_import_umap", lambda: None)
    laid = embedding_layout(_points(9), seed=0)
    assert list(laid.obsm) == ["X_tsne"]
    assert laid.uns["lpm_layout"]["label"] == "PCA + t-SNE (umap-learn did not import)"
    with pytest.raises(LpmInputError, match=r"umap-learn, which failed to import"):
        embedding_layout(_points(9), method="umap")


def test_tiny_sets_are_laid_out_by_pca() -> None:
    for n in (1, 2, 3):
        laid = embedding_layout(_points(n), method="tsne")
        assert laid.obsm["X_pca"].shape == (n, 2)
        assert laid.uns["lpm_layout"]["method"] == "pca"
    assert embedding_layout(_points(4), method="tsne").obsm["X_tsne"].shape == (4, 2)


def test_docstring_examples() -> None:
    result = doctest.testmod(layout, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# last: once numba's threads have run, scikit-learn's OpenMP t-SNE in the same process
# slows down many-fold on two busy cores
@pytest.mark.slow
def test_the_same_seed_gives_the_same_umap_layout_on_a_small_set() -> None:
    """UMAP, a dependency (its first fit compiles numba kernels: slow once)."""
    points = _points(12)
    a = embedding_layout(points, seed=0, method="umap")
    b = embedding_layout(points, seed=0, method="auto")
    assert a.uns["lpm_layout"]["n_neighbors"] == 11, "clamped below the number of points"
    np.testing.assert_array_equal(a.obsm["X_umap"], b.obsm["X_umap"])

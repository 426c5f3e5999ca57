"""The figure of ``lpm embed`` (``lpm.pl.embedding``): one panel per colour column, a missing
category drawn as n/a, the layout held by the AnnData drawn as it is."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lpm.errors import LpmInputError
from lpm.pl.embedding import MISSING, plot_embedding_umap
from lpm.tasks.layout import embedding_layout
from tests.pl._figures import assert_labelled, texts

ad = pytest.importorskip("anndata")


def _points(n: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    adata = ad.AnnData(rng.normal(size=(n, 8)).astype(np.float32))
    adata.obs["perturbation_type"] = ["CRISPRi", "compound"] * (n // 2) + ["CRISPRi"] * (n % 2)
    return adata


def test_a_panel_per_colour_column_and_n_a_for_a_missing_label() -> None:
    points = _points(14)
    points.obs["mechanism"] = ["a", None] * 7
    fig = plot_embedding_umap(points, method="tsne")
    assert_labelled(fig)
    assert len(fig.axes) == 2
    said = texts(fig)
    assert {"perturbation_type", "mechanism"} <= set(said) and MISSING in said
    assert any(t.startswith("PCA + t-SNE of embeddings (14 points") for t in said)


def test_a_held_layout_is_drawn_and_a_missing_column_named() -> None:
    laid = embedding_layout(_points(5), seed=3, method="tsne")
    fig = plot_embedding_umap(laid, color=[])
    assert_labelled(fig)
    assert any(t.endswith("(5 points, seed 3)") for t in texts(fig))
    with pytest.raises(LpmInputError, match=r"no obs column.*dataset"):
        plot_embedding_umap(laid, color=("dataset",))

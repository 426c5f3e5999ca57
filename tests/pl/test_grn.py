"""The gene-network figure (``lpm.pl.grn``): the strongest module drawn, None where there is no
module of three genes."""

from __future__ import annotations

import polars as pl
import pytest

from lpm.pl.grn import MAX_DRAWN, plot_strongest_module
from tests.pl._figures import assert_labelled, texts

pytest.importorskip("networkx")


def _clusters() -> pl.DataFrame:
    """Two triangles of genes, one with stronger edges; signs known on some edges."""
    edges = [("A", "B", 3.0), ("B", "C", 3.0), ("C", "A", 3.0)]
    edges += [("D", "E", 1.0), ("E", "F", 1.0), ("F", "D", 1.0), ("C", "D", 0.1)]
    return pl.DataFrame(
        {
            "source": [s for s, _, _ in edges],
            "target": [t for _, t, _ in edges],
            "score": [w for _, _, w in edges],
            "sign": [1, -1, None, 1, 1, 1, -1],
        },
        schema_overrides={"sign": pl.Int8},
    )


def test_the_strongest_module_is_drawn_with_its_genes() -> None:
    fig = plot_strongest_module(_clusters(), title="knockdown edges")
    assert fig is not None
    assert_labelled(fig)
    said = texts(fig)
    assert any(t.startswith("knockdown edges: 3 genes") for t in said)
    assert {"A", "B", "C"} <= set(said) and "E" not in said
    assert MAX_DRAWN >= 3


def test_no_module_of_three_genes_draws_nothing() -> None:
    star = pl.DataFrame({"source": ["A"], "target": ["B"], "score": [1.0]})
    assert plot_strongest_module(star) is None

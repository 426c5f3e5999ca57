"""Gene graphs: GEARS-style GO Jaccard graph, edge tables, co-expression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.priors.gene_graph import (
    coexpression_graph,
    edge_table_graph,
    go_similarity_graph,
    graph_source,
    normalised_adjacency,
)


def _gene2go(path: Path) -> Path:
    rows = [
        ("A", "GO:1"), ("A", "GO:2"), ("B", "GO:1"), ("B", "GO:2"), ("C", "GO:2"),
        ("C", "GO:3"), ("D", "GO:4"), ("E", "GO:4"), ("E", "GO:5"),
    ]  # fmt: skip
    table = pl.DataFrame(rows, schema=["symbol", "go_id"], orient="row")
    table.with_columns(pl.lit("IDA").alias("evidence")).write_csv(path, separator="\t")
    return path


def test_go_graph_is_jaccard_top_k_and_symmetric(tmp_path: Path) -> None:
    path = _gene2go(tmp_path / "g2g.tsv")
    graph = go_similarity_graph(path, k=1, min_similarity=0.1, max_genes_fraction=1.0)
    w = {(s, t): v for s, t, v in graph.iter_rows()}
    assert w[("A", "B")] == pytest.approx(1.0)  # identical GO sets
    assert w[("B", "A")] == pytest.approx(1.0)
    assert w[("D", "E")] == pytest.approx(0.5)  # {4} vs {4, 5}
    assert ("A", "D") not in w  # nothing shared
    # C's best neighbour (1/3 with A and B; tie → lower index) is kept, and symmetrised
    assert w[("C", "A")] == pytest.approx(1 / 3) and w[("A", "C")] == pytest.approx(1 / 3)
    assert all(s != t for s, t in w)


def test_go_graph_threshold_and_cache(tmp_path: Path) -> None:
    path = _gene2go(tmp_path / "g2g.tsv")
    strict = go_similarity_graph(path, k=5, min_similarity=0.6, max_genes_fraction=1.0)
    assert set(strict["source"]) == {"A", "B"}
    cache = tmp_path / "cache"
    first = go_similarity_graph(path, k=5, max_genes_fraction=1.0, cache_dir=cache)
    assert len(list(cache.glob("go_graph_*.parquet"))) == 1
    again = go_similarity_graph(path, k=5, max_genes_fraction=1.0, cache_dir=cache)
    assert first.equals(again)


def test_broad_terms_are_dropped(tmp_path: Path) -> None:
    path = _gene2go(tmp_path / "g2g.tsv")
    # GO:2 is on 3 of 5 genes; above 50% it is dropped, so C keeps only GO:3 (no neighbour)
    graph = go_similarity_graph(path, k=5, max_genes_fraction=0.5)
    assert "C" not in set(graph["source"])


def test_edge_table_graph_undirected_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "edges.csv"
    pl.DataFrame(
        {"source": ["A", "B", "A"], "target": ["B", "A", "A"], "weight": [0.5, -2.0, 1.0]}
    ).write_csv(path)
    graph = edge_table_graph(path)
    assert graph.rows() == [("A", "B", 2.0), ("B", "A", 2.0)]  # |weight|, larger wins, no self loop
    with pytest.raises(LpmInputError, match="not found"):
        edge_table_graph(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    pl.DataFrame({"from": ["A"], "target": ["B"]}).write_csv(bad)
    with pytest.raises(LpmInputError, match="source"):
        edge_table_graph(bad)
    nan = tmp_path / "nan.csv"
    pl.DataFrame({"source": ["A"], "target": ["B"], "weight": [float("nan")]}).write_csv(nan)
    with pytest.raises(LpmInputError, match="NaN"):
        edge_table_graph(nan)


def test_coexpression_graph_links_correlated_readouts() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 1))
    x = np.hstack([z, z + 0.1 * rng.normal(size=(40, 1)), rng.normal(size=(40, 1))])
    x[3, 2] = np.nan
    graph = coexpression_graph(x, ["r0", "r1", "r2"], k=2, min_correlation=0.4)
    assert set(zip(graph["source"], graph["target"], strict=True)) == {("r0", "r1"), ("r1", "r0")}


def test_normalised_adjacency_rows_sum_to_one() -> None:
    edges = pl.DataFrame(
        {
            "source": ["A", "A", "B", "X"],
            "target": ["B", "C", "A", "A"],
            "weight": [1.0, 3.0, 1.0, 1.0],
        }
    )
    adj = normalised_adjacency(edges, ["A", "B", "C"]).toarray()
    np.testing.assert_allclose(adj[0], [0, 0.25, 0.75])
    np.testing.assert_allclose(adj.sum(1), [1, 1, 0])  # C has no out-edge; X is not a node


def test_edge_table_ids_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "edges.csv"
    path.write_text("source,target,weight\n007,2,1.0\n2,10,0.5\n")
    graph = edge_table_graph(path)
    assert set(graph["source"].to_list()) == {"007", "2", "10"}


def test_none_is_an_empty_graph_and_needs_no_priors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LPM_PRIORS", str(tmp_path / "absent"))
    edges = graph_source("none")
    assert edges.height == 0 and edges.columns == ["source", "target", "weight"]

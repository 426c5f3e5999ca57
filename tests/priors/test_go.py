"""GO propagation up the DAG and the cached GO gene features built on it."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.priors.go import go_gene_features, propagate_go
from tests.conftest import shared_data

#   ROOT
#   ├─ A (is_a ROOT)
#   │  ├─ A1 (is_a A)      └─ A1a (part_of A1)
#   │  └─ A2 (is_a A)
#   └─ B (is_a ROOT)
#      └─ B1 (is_a B)      R (regulates B1)
EDGES = pl.DataFrame(
    {
        "child": ["A", "B", "A1", "A2", "A1a", "B1", "R"],
        "parent": ["ROOT", "ROOT", "A", "A", "A1", "B", "B1"],
        "relationship_type": ["isa", "isa", "isa", "isa", "part of", "isa", "regulates"],
    }
)


def _pairs(table: pl.DataFrame, symbol: str) -> set[str]:
    return set(table.filter(pl.col("symbol") == symbol)["go_id"].to_list())


def test_leaf_gets_all_ancestors() -> None:
    g2g = pl.DataFrame({"symbol": ["G1", "G2", "G2"], "go_id": ["A1a", "B1", "A2"]})
    out = propagate_go(g2g, EDGES)
    assert out.columns == ["symbol", "go_id"]
    assert _pairs(out, "G1") == {"A1a", "A1", "A", "ROOT"}
    assert _pairs(out, "G2") == {"B1", "B", "A2", "A", "ROOT"}
    assert out.height == out.unique().height
    assert out.equals(out.sort("symbol", "go_id"))


def test_relation_filter() -> None:
    g2g = pl.DataFrame({"symbol": ["G1", "G3"], "go_id": ["A1a", "R"]})
    only_isa = propagate_go(g2g, EDGES, relations=("is_a",))
    assert _pairs(only_isa, "G1") == {"A1a"}  # part_of edge not followed
    default = propagate_go(g2g, EDGES)
    assert _pairs(default, "G3") == {"R"}  # regulates not on the true path
    everything = propagate_go(g2g, EDGES, relations=None)
    assert _pairs(everything, "G3") == {"R", "B1", "B", "ROOT"}
    spelled = propagate_go(g2g, EDGES, relations=("IS A", "Part_Of"))
    assert spelled.equals(default)


def test_cycle_and_unknown_term() -> None:
    edges = pl.DataFrame(
        {"child": ["X", "Y", "Y"], "parent": ["Y", "X", "Z"], "relationship_type": ["isa"] * 3}
    )
    g2g = pl.DataFrame({"symbol": ["G", "H"], "go_id": ["X", "NOT_IN_DAG"]})
    out = propagate_go(g2g, edges)
    assert _pairs(out, "G") == {"X", "Y", "Z"}
    assert _pairs(out, "H") == {"NOT_IN_DAG"}


def test_propagate_missing_columns() -> None:
    with pytest.raises(LpmInputError, match=r"gene→GO table: missing column.*go_id"):
        propagate_go(pl.DataFrame({"symbol": ["G"]}), EDGES)
    with pytest.raises(LpmInputError, match=r"GO parents table: missing column.*relationship"):
        propagate_go(
            pl.DataFrame({"symbol": ["G"], "go_id": ["A"]}), EDGES.drop("relationship_type")
        )


def _toy_files(tmp_path: Path) -> tuple[Path, Path]:
    """Two families of genes on disjoint GO branches, plus filler genes on other terms."""
    rng = np.random.default_rng(0)
    leaves = [f"L{i}" for i in range(40)]
    edges = [(leaf, f"M{i // 4}", "isa") for i, leaf in enumerate(leaves)]
    edges += [(f"M{j}", f"H{j // 5}", "part of") for j in range(10)]
    edges += [(f"H{h}", "ROOT", "isa") for h in range(2)]
    rows = []
    for i in range(6):  # family A: leaves under M0 (branch H0)
        rows += [(f"FA{i}", leaves[k], "IDA") for k in rng.choice(4, 2, replace=False)]
    for i in range(6):  # family B: leaves under M9 (branch H1)
        rows += [(f"FB{i}", leaves[36 + k], "IDA") for k in rng.choice(4, 2, replace=False)]
    for i in range(40):
        rows += [(f"Z{i}", leaves[k], "IEA") for k in rng.choice(np.arange(4, 36), 3)]
    rows.append(("NODATA", "ROOT", "ND"))
    g2g = tmp_path / "gene2go.tsv.gz"
    with gzip.open(g2g, "wt") as fh:
        fh.write("entrez\tsymbol\tgo_id\tevidence\n")
        fh.writelines(f"{n}\t{s}\t{t}\t{e}\n" for n, (s, t, e) in enumerate(rows))
    parents = tmp_path / "parents.tsv"
    parents.write_text(
        "child\tparent\trelationship_type\n" + "".join(f"{c}\t{p}\t{r}\n" for c, p, r in edges)
    )
    return g2g, parents


def test_features_shape_norm_and_similarity(tmp_path: Path) -> None:
    g2g, parents = _toy_files(tmp_path)
    out = go_gene_features(g2g, parents, n_components=8, min_genes=2, max_genes_fraction=0.5)
    assert out.columns == ["symbol", *[f"go_{i}" for i in range(8)]]
    assert all(out[c].dtype == pl.Float32 for c in out.columns[1:])
    assert "NODATA" not in out["symbol"].to_list()  # ND excluded, root filtered anyway
    assert out["symbol"].is_sorted()
    x = out.drop("symbol").to_numpy()
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sym = out["symbol"].to_list()
    fa = x[[sym.index(f"FA{i}") for i in range(6)]]
    fb = x[[sym.index(f"FB{i}") for i in range(6)]]
    within = (fa @ fa.T)[np.triu_indices(6, 1)].min()
    across = (fa @ fb.T).max()
    assert within > across + 0.3


def test_determinism_and_seed(tmp_path: Path) -> None:
    g2g, parents = _toy_files(tmp_path)
    kw = {"n_components": 6, "min_genes": 2, "max_genes_fraction": 0.5}
    a = go_gene_features(g2g, parents, seed=3, **kw)
    b = go_gene_features(g2g, parents, seed=3, **kw)
    assert a.equals(b)
    fewer = go_gene_features(g2g, parents, evidence_exclude=("ND", "IEA"), **kw)
    assert not any(s.startswith("Z") for s in fewer["symbol"].to_list())


def test_cache_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g2g, parents = _toy_files(tmp_path)
    cache = tmp_path / "cache"
    kw = {"n_components": 6, "min_genes": 2, "max_genes_fraction": 0.5, "cache_dir": cache}
    first = go_gene_features(g2g, parents, **kw)
    files = list(cache.glob("go_features_*.parquet"))
    assert len(files) == 1
    assert not list(cache.glob(".*"))  # no temporary left behind

    import lpm.priors.go as gf

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed despite a cache hit")

    monkeypatch.setattr(gf, "propagate_go", boom)
    assert go_gene_features(g2g, parents, **kw).equals(first)
    monkeypatch.undo()
    go_gene_features(g2g, parents, **{**kw, "seed": 1})  # other parameters: new entry
    assert len(list(cache.glob("go_features_*.parquet"))) == 2
    with gzip.open(g2g, "at") as fh:  # other content: new entry
        fh.write("999\tFA0\tL39\tIDA\n")
    go_gene_features(g2g, parents, **kw)
    assert len(list(cache.glob("go_features_*.parquet"))) == 3


def test_bad_inputs(tmp_path: Path) -> None:
    g2g, parents = _toy_files(tmp_path)
    with pytest.raises(LpmInputError, match="no such gene→GO file"):
        go_gene_features(tmp_path / "nope.tsv", parents)
    bad = tmp_path / "bad.tsv"
    bad.write_text("symbol\tterm\tevidence\nG\tA\tIDA\n")
    with pytest.raises(LpmInputError, match=r"bad\.tsv: missing column\(s\) go_id"):
        go_gene_features(bad, parents)
    noev = tmp_path / "noev.tsv"
    noev.write_text("symbol\tgo_id\nG\tL1\n")
    with pytest.raises(LpmInputError, match=r"missing column.*evidence"):
        go_gene_features(noev, parents)
    with pytest.raises(LpmInputError, match="left after the term filter"):
        go_gene_features(g2g, parents, min_genes=1000)
    with pytest.raises(LpmInputError, match="n_components"):
        go_gene_features(g2g, parents, n_components=0)
    only_nd = tmp_path / "nd.tsv"
    only_nd.write_text("symbol\tgo_id\tevidence\nG\tROOT\tND\n")
    with pytest.raises(LpmInputError, match="no annotations left"):
        go_gene_features(only_nd, parents)


@pytest.mark.realdata
def test_full_go_files() -> None:
    folder = shared_data("gene_ontology")
    out = go_gene_features(
        folder / "human_gene2go_direct_orgHsEgDb_3.16.tsv.gz",
        folder / "go_parents_GOdb_3.16.tsv.gz",
    )
    assert out.height > 15_000
    assert out.width == 65
    x = out.drop("symbol").to_numpy()
    ribo = out["symbol"].str.contains(r"^RP[LS]\d+[AX]?$").to_numpy()
    assert ribo.sum() > 50
    r = x[ribo]
    within = (r @ r.T)[np.triu_indices(len(r), 1)].mean()
    rng = np.random.default_rng(0)
    others = x[rng.choice(np.flatnonzero(~ribo), 2000, replace=False)]
    assert within > 0.5
    assert within > (r @ others.T).mean() + 0.4

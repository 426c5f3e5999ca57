"""Regulon gene features: spectral embedding of the union TF→target graph, cached."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.priors.regulons import regulon_files, regulon_gene_features
from tests.conftest import shared_data

GENE_INFO = "gene_ontology/human_gene_info_orgHsEgDb_3.16.tsv.gz"


def _toy_folder(tmp_path: Path) -> Path:
    """TFA, TFB, TFC each regulate four targets; TFA and TFB share one more target (S)."""
    folder = tmp_path / "regulons"
    folder.mkdir()
    collectri = ["source,target,weight,PMID"]
    collectri += [f"TF{t},{t}{i},{1 if i % 2 else -1},1" for t in "AB" for i in range(4)]
    collectri += ["TFA,S,1,1", "TFB,S,-1,1"]
    (folder / "collectri_toy.csv").write_text("\n".join(collectri) + "\n")
    dorothea = ["source,confidence,target,weight"]
    dorothea += [f"TFC,B,C{i},1.0" for i in range(4)]
    dorothea += ["TFA,A,A0,1.0"]  # repeats a CollecTRI edge: merged, not counted twice
    with gzip.open(folder / "dorothea_toy.csv.gz", "wt") as fh:
        fh.write("\n".join(dorothea) + "\n")
    (folder / "trrust_toy.tsv").write_text("TF\tTarget\tRegulation\nTFC\tA1\tActivation\n")
    return folder


def _rows(table: pl.DataFrame, names: list[str]) -> np.ndarray:
    sym = table["symbol"].to_list()
    return table.drop("symbol").to_numpy()[[sym.index(n) for n in names]]


def test_shape_norm_and_co_regulated_targets_are_close(tmp_path: Path) -> None:
    # k = 3: one component per connected part (2) plus the TFA-vs-TFB side of the first; the
    # next eigenvalue is degenerate (any contrast between targets of one TF), so not taken
    out = regulon_gene_features(_toy_folder(tmp_path), n_components=3)
    assert out.columns == ["symbol", *[f"reg_{i}" for i in range(3)]]
    assert all(out[c].dtype == pl.Float32 for c in out.columns[1:])
    assert out["symbol"].is_sorted()
    assert set(out["symbol"]) == {"TFA", "TFB", "TFC", "S"} | {
        f"{t}{i}" for t in "ABC" for i in range(4)
    }
    x = out.drop("symbol").to_numpy()
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    a, b, c = (_rows(out, [f"{t}{i}" for i in range(4)]) for t in "ABC")
    within = min((g @ g.T)[np.triu_indices(4, 1)].min() for g in (a, b, c))
    across = max((a @ b.T).max(), (a @ c.T).max(), (b @ c.T).max())
    assert within > across + 0.2
    tf_a, tf_c = _rows(out, ["TFA", "TFC"])
    assert (a @ tf_a).min() > (a @ tf_c).max()  # a TF sits near its own targets


def test_determinism_seed_and_sources(tmp_path: Path) -> None:
    folder = _toy_folder(tmp_path)
    a = regulon_gene_features(folder, n_components=3, seed=5)
    b = regulon_gene_features(folder, n_components=3, seed=5)
    assert a.equals(b)
    with_trrust = regulon_gene_features(folder, sources=["collectri", "dorothea", "trrust"])
    assert with_trrust.height == a.height  # TRRUST adds an edge, no gene
    assert with_trrust.width == 1 + a.height - 1  # n_components clamped to n_genes - 1
    only_c = regulon_gene_features(folder, sources=["dorothea"], n_components=2)
    assert set(only_c["symbol"]) == {"TFA", "A0", "TFC", "C0", "C1", "C2", "C3"}


def test_cache_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _toy_folder(tmp_path)
    cache = tmp_path / "cache"
    first = regulon_gene_features(folder, n_components=3, cache_dir=cache)
    assert len(list(cache.glob("regulon_features_*.parquet"))) == 1
    assert not list(cache.glob(".*"))  # no temporary left behind

    import lpm.priors.regulons as rf

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed despite a cache hit")

    monkeypatch.setattr(rf, "load_gene_network", boom)
    assert regulon_gene_features(folder, n_components=3, cache_dir=cache).equals(first)
    with pytest.raises(AssertionError, match="recomputed"):
        regulon_gene_features(folder, n_components=3, seed=1, cache_dir=cache)


def test_clear_errors(tmp_path: Path) -> None:
    folder = _toy_folder(tmp_path)
    with pytest.raises(LpmInputError, match="no such regulon folder"):
        regulon_gene_features(tmp_path / "absent")
    with pytest.raises(LpmInputError, match=r"starting with 'pathwaycommons', found none"):
        regulon_gene_features(folder, sources=["pathwaycommons"])
    with pytest.raises(LpmInputError, match="n_components must be"):
        regulon_gene_features(folder, n_components=0)
    with pytest.raises(LpmInputError, match="sources is empty"):
        regulon_files(folder, [])
    (folder / "collectri_other.csv").write_text("source,target,weight,PMID\nX,Y,1,1\n")
    with pytest.raises(LpmInputError, match=r"found collectri_other\.csv, collectri_toy\.csv"):
        regulon_gene_features(folder)


def test_real_regulons(tmp_path: Path) -> None:
    folder = shared_data("tf_regulons")
    gene_info = shared_data("gene_ontology") / Path(GENE_INFO).name
    out = regulon_gene_features(folder, n_components=16, gene_info=gene_info, cache_dir=tmp_path)
    assert out.height > 10_000
    assert out.width == 17
    assert out["symbol"].is_unique().all()
    x = out.drop("symbol").to_numpy()
    assert np.isfinite(x).all()
    myc, tert, vegfa = _rows(out, ["MYC", "TERT", "VEGFA"])
    hif1a = _rows(out, ["HIF1A"])[0]
    assert hif1a @ vegfa > hif1a @ tert  # HIF1A drives VEGFA, MYC drives TERT
    assert myc @ tert > myc @ vegfa - 0.5

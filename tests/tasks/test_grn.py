"""Gene networks (``lpm.tasks.grn``, files and figure in ``lpm.pl.grn``): knock-down
edges find the simulator's planted network, embedding and imputed edges run on a tiny LPM,
random rewiring keeps degrees and is seeded, files are whole and readable, bad input is named."""

from __future__ import annotations

import doctest
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.sim.simulate import SimulationResult, simulate
from lpm.tasks import grn
from lpm.tasks.grn import (
    embedding_edges,
    imputed_edges,
    knockdown_edges,
    load_reference,
    load_simulator_truth,
    plot_strongest_module,
    rewire_edges,
    run_grn,
    score_edges,
    strongest_module,
    write_network,
)
from tests.conftest import shared_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Tiny network and batches, as in tests/tasks/test_embeddings.py.
SMALL: dict[str, Any] = {"embedding_dim": 8, "hidden": [32, 32], "batch_size": 64, "lr": 1e-2}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """100 genes, 40 perturbations, 3 contexts (one L1000-like reading 50 landmarks)."""
    out = tmp_path_factory.mktemp("grn") / "sim"
    return simulate(out, n_genes=100, n_perturbations=40, n_contexts=3, seed=0)


@pytest.fixture(scope="module")
def frame(sim: SimulationResult) -> pl.DataFrame:
    return sim.open().read()


@pytest.fixture(scope="module")
def fitted(frame: pl.DataFrame, one_torch_thread: None) -> Any:
    pytest.importorskip("lightning")
    from lpm.models.registry import get_model

    return get_model("lpm_fast", **SMALL, max_epochs=3, val_fraction=0, seed=0).fit(frame)


def _universe(frame: pl.DataFrame) -> dict[str, Any]:
    singles = grn._genetic_singles(frame, "frame")
    return {
        "universe_sources": sorted(set(singles["_gene"].to_list())),
        "universe_targets": sorted(set(frame["readout"].cast(pl.String).to_list())),
    }


def _toy() -> pl.DataFrame:
    """5 knock-downs × readouts R0-R2 and A; A's knock-down lowers R0, B's CRISPRa raises R1."""
    rng = np.random.default_rng(0)
    perts = ["CRISPRi:A", "CRISPRa:B", "CRISPRi:C", "CRISPRi:D", "CRISPRi:E"]
    readouts = ["R0", "R1", "R2", "A"]
    rows = []
    for ctx in ("toy/X", "toy/Y"):
        for p in [*perts, "compound:drug", "CRISPRi:A+CRISPRi:C", "control"]:
            for r in readouts:
                v = 0.1 * rng.normal()
                v += -3.0 if (p, r) == ("CRISPRi:A", "R0") else 0.0
                v += 3.0 if (p, r) == ("CRISPRa:B", "R1") else 0.0
                v += -5.0 if (p, r) == ("CRISPRi:A", "A") else 0.0  # the guide on its own gene
                v += 9.0 if p in ("compound:drug", "CRISPRi:A+CRISPRi:C") else 0.0
                rows.append((ctx, p, r, v))
    return pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")


# --- knock-down edges ---------------------------------------------------------------------------


def test_knockdown_edges_on_a_toy_frame() -> None:
    e = knockdown_edges(_toy())
    assert e.columns == ["source", "target", "effect", "z", "n_perturbations", "score", "sign"]
    assert set(e["source"]) == {"A", "B", "C", "D", "E"}  # no compound, no combination
    assert e.filter(pl.col("source") == pl.col("target")).height == 0  # no self edge
    top = e.head(2).select("source", "target", "sign").rows()
    # A's knock-down lowers R0: activation; B's activation raises R1, read as knock-down: +1
    assert sorted(top) == [("A", "R0", 1), ("B", "R1", 1)]
    assert e.row(0, named=True)["effect"] < 0
    assert e.filter(pl.col("source") == "B", pl.col("target") == "R1")["effect"].item() < 0
    assert e["score"].to_list() == sorted(e["score"].to_list(), reverse=True)
    strict = knockdown_edges(_toy(), min_abs_z=5.0)
    assert 2 <= strict.height < e.height and (strict["z"].abs() >= 5.0).all()
    big = knockdown_edges(_toy(), min_abs_effect=1.0)
    assert sorted(big.select("source", "target").rows()) == [("A", "R0"), ("B", "R1")]
    one = knockdown_edges(_toy(), context="toy/X")
    assert one.height == e.height


def test_knockdown_edges_find_the_planted_network(
    frame: pl.DataFrame, sim: SimulationResult
) -> None:
    e = knockdown_edges(frame)
    truth = load_simulator_truth(sim.out)
    r = score_edges(e, truth, **_universe(frame), k=(10, 50), top=200, n_random=3)
    assert r["auprc"] > 2.5 * r["base_rate"]
    assert r["precision_at_10"] >= 0.8
    assert r["lift_auprc_top"] > 1.3 and r["lift_precision_at_50"] > 1.3
    assert r["n_reference"] > 0 and r["n_universe"] > r["n_reference"]
    one = load_simulator_truth(sim.truth, context="sim_rnaseq/S01")
    assert one.height < truth.height and set(one["resource"]) == {"simulator_truth_sim_rnaseq/S01"}


def test_bad_inputs_are_named(frame: pl.DataFrame, tmp_path: Path) -> None:
    compounds = _toy().filter(pl.col("perturbation") == "compound:drug")
    with pytest.raises(LpmInputError, match="no single genetic perturbation"):
        knockdown_edges(compounds)
    with pytest.raises(LpmInputError, match="missing column"):
        knockdown_edges(_toy().drop("value"))
    with pytest.raises(LpmInputError, match="toy/Z"):
        knockdown_edges(_toy(), context="toy/Z")
    elsewhere = pl.DataFrame({"source": ["X1"], "target": ["X2"]})
    with pytest.raises(LpmInputError, match="no reference edge"):
        score_edges(knockdown_edges(frame), elsewhere, **_universe(frame))
    with pytest.raises(LpmInputError, match="no simulator truth"):
        load_simulator_truth(tmp_path)
    ref = tmp_path / "trrust.tsv"
    ref.write_text("TF\tTarget\tRegulation\tReference\nX1\tX2\tActivation\t1\n")
    out = tmp_path / "run"
    with pytest.raises(LpmInputError, match=r"trrust\.tsv: no reference edge"):
        run_grn(frame, out=out, reference=ref)
    assert not out.exists()  # nothing half-written
    with pytest.raises(LpmInputError, match="needs a trained LPM"):
        run_grn(frame, out=out, method="embedding")
    assert load_reference(ref).rows() == [("X1", "X2", 1.0, 1, "trrust")]


# --- random rewiring ----------------------------------------------------------------------------


def test_rewire_keeps_degrees_and_scores_and_is_seeded(frame: pl.DataFrame) -> None:
    net = knockdown_edges(frame).head(300).select("source", "target", "score")
    a = rewire_edges(net, seed=1)
    assert a.height == net.height
    assert Counter(a["source"]) == Counter(net["source"])
    assert Counter(a["target"]) == Counter(net["target"])
    # each source keeps its own scores; only targets moved
    assert sorted(a.select("source", "score").rows()) == sorted(
        net.select("source", "score").rows()
    )
    assert a.filter(pl.col("source") == pl.col("target")).height == 0
    assert not a.select(pl.struct("source", "target").is_duplicated().any()).item()
    assert a.equals(rewire_edges(net, seed=1))
    assert not a.equals(rewire_edges(net, seed=2))
    moved = set(a.select("source", "target").rows()) - set(net.select("source", "target").rows())
    assert len(moved) > net.height // 4  # dense: many swaps are refused
    with pytest.raises(LpmInputError, match="self-loops"):
        rewire_edges(pl.DataFrame({"source": ["A"], "target": ["A"], "score": [1.0]}), seed=0)


# --- LPM-based edges ----------------------------------------------------------------------------


def test_embedding_edges(fitted: Any, frame: pl.DataFrame, sim: SimulationResult) -> None:
    e = embedding_edges(fitted)
    genes = set(e["source"])
    assert genes == set(_universe(frame)["universe_sources"])
    # every ordered pair of genes perturbed in a common modality (CRISPRi or CRISPRa), at least
    # those measured as singles (members seen only in combinations are embeddable too)
    singles = grn._genetic_singles(frame, "frame").select("_kind", "_gene").unique()
    pairs = singles.join(singles, on="_kind").filter(pl.col("_gene") != pl.col("_gene_right"))
    expected = set(pairs.select("_gene", "_gene_right").rows())
    assert expected <= set(e.select("source", "target").rows())
    assert e.height <= len(genes) * (len(genes) - 1)
    sym = e.join(e, left_on=["source", "target"], right_on=["target", "source"])
    assert np.allclose(sym["similarity"], sym["similarity_right"])
    assert e["score"].is_between(-1.0 - 1e-9, 1.0 + 1e-9).all()
    knn = embedding_edges(fitted, top_k=3)
    assert knn.group_by("source").len()["len"].max() == 3
    r = score_edges(e, load_simulator_truth(sim.out), **_universe(frame), k=(10,), top=100)
    assert np.isfinite(r["auprc"]) and np.isfinite(r["random_auprc_top"])


def test_imputed_edges_fill_unmeasured_pairs(fitted: Any, frame: pl.DataFrame) -> None:
    e = imputed_edges(fitted, frame, context="sim_l1000/S03")
    u = _universe(frame)
    n_genes = len(u["universe_sources"])
    assert e.height == n_genes * len(u["universe_targets"]) - n_genes  # complete, no self edges
    assert e["imputed"].any() and not e["imputed"].all()
    measured = (
        grn._genetic_singles(frame, "f")
        .filter(pl.col("context") == "sim_l1000/S03")
        .select(pl.col("_gene").alias("source"), pl.col("readout").alias("target"))
        .unique()
    )
    flags = measured.join(e, on=["source", "target"])["imputed"]
    assert flags.len() > 0 and not flags.any()
    with pytest.raises(LpmInputError, match="context 'nowhere/X'"):
        imputed_edges(fitted, frame, context="nowhere/X")


# --- files, figure, the whole run ---------------------------------------------------------------


def test_files_and_figure(frame: pl.DataFrame, tmp_path: Path) -> None:
    nx = pytest.importorskip("networkx")
    e = knockdown_edges(frame)
    csv, graphml = write_network(e, tmp_path / "net", top=50)
    assert pl.read_csv(csv).height == 50
    g = nx.read_graphml(graphml)
    assert g.is_directed() and g.number_of_edges() == 50
    s, t = e.row(0)[:2]
    assert g.edges[s, t]["score"] == pytest.approx(e.row(0, named=True)["score"])
    nodes = strongest_module(e, top=200)
    assert len(nodes) >= 3
    png = plot_strongest_module(e, tmp_path / "module.png", top=200)
    assert png is not None and png.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["module.png", "net.csv", "net.graphml"]
    star = pl.DataFrame({"source": ["A"], "target": ["B"], "score": [1.0]})
    assert plot_strongest_module(star, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_run_grn_writes_every_method(fitted: Any, sim: SimulationResult, tmp_path: Path) -> None:
    nx = pytest.importorskip("networkx")
    out = tmp_path / "grn"
    res = run_grn(
        sim.store, out=out, method="all", model=fitted, reference=sim.out, top=100, k=(10, 50)
    )
    assert res.methods == ("knockdown", "embedding", "imputed")
    names = sorted(p.name for p in out.iterdir())
    for m in res.methods:
        assert {f"edges_{m}.csv", f"edges_{m}.graphml", f"module_{m}.png"} <= set(names)
        assert nx.read_graphml(out / f"edges_{m}.graphml").number_of_edges() == 100
    assert {"scores.csv", "grn.json"} <= set(names)
    assert all(p.exists() for p in res.files)
    scores = pl.read_csv(out / "scores.csv")
    assert scores.columns == ["method", "reference", "metric", "value"]
    assert set(scores["method"]) == set(res.methods)
    assert set(scores["reference"]) == {"simulator_truth"}
    wanted = {"auprc", "precision_at_10", "random_auprc_top", "lift_auprc_top", "base_rate"}
    assert wanted <= set(scores["metric"])
    assert "simulator_truth" in str(res)
    with pytest.raises(LpmInputError, match="already exists"):
        run_grn(sim.store, out=out)
    again = run_grn(sim.store, out=out, overwrite=True, top=100)
    assert again.methods == ("knockdown",) and not (out / "scores.csv").exists()


def test_docstring_examples() -> None:
    result = doctest.testmod(grn, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --- real data ----------------------------------------------------------------------------------


@pytest.mark.realdata
def test_replogle_knockdown_edges_against_collectri() -> None:
    """Mechanics only on the real matrix (2000 CRISPRi × 300 genes): finite scores, counts."""
    replogle = shared_data("replogle22_k562_gw")
    regulons = shared_data("tf_regulons")
    z = np.load(replogle / "replogle_k562.npz")
    effects = np.asarray(z["effects"], dtype=np.float32)
    perts = [f"CRISPRi:{s}" for s in z["target_symbols"].tolist()]
    genes = [str(g) for g in z["gene_symbols"].tolist()]
    frame = pl.DataFrame(
        {
            "context": "replogle22/K562",
            "perturbation": np.repeat(perts, len(genes)),
            "readout": np.tile(genes, len(perts)),
            "value": effects.ravel(),
        }
    )
    e = knockdown_edges(frame)
    gene_info = shared_data("gene_ontology") / "human_gene_info_orgHsEgDb_3.16.tsv.gz"
    ref = load_reference(regulons / "collectri_2023__hengkp.csv.gz", gene_info=gene_info)
    u = _universe(frame)
    r = score_edges(e, ref, **u, k=(100, 500), top=1000, n_random=2)
    n_sources = len(u["universe_sources"])
    n_shared = len(set(u["universe_sources"]) & set(u["universe_targets"]))
    assert r["n_universe"] == n_sources * len(u["universe_targets"]) - n_shared
    assert 0 < r["n_reference"] < r["n_universe"]
    for key in ("auprc", "auprc_top", "random_auprc_top", "precision_at_100", "base_rate"):
        assert np.isfinite(r[key]), key

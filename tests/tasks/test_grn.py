"""Gene networks (``lpm.tasks.grn``): knock-down edges on a toy frame, embedding and imputed
edges on a tiny LPM, the strongest module, the registered task, bad input named."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.sim.simulate import SimulationResult
from lpm.sim.truth import read_true_network
from lpm.tasks import grn
from lpm.tasks.grn import (
    GeneNetworkTask,
    edge_graph,
    embedding_edges,
    imputed_edges,
    knockdown_edges,
    perturbed_genes,
    strongest_module,
    top_edges,
    widest_context,
)
from lpm.tasks.grn_scores import score_edges
from lpm.tasks.registry import get_task
from tests.conftest import SMALL_LPM


@pytest.fixture(scope="module")
def frame(small_frame: pl.DataFrame) -> pl.DataFrame:
    return small_frame


@pytest.fixture(scope="module")
def fitted(frame: pl.DataFrame, one_torch_thread: None) -> Any:
    pytest.importorskip("lightning")
    from lpm.models.registry import get_model

    return get_model("lpm_fast", **SMALL_LPM, max_epochs=3, val_fraction=0, seed=0).fit(frame)


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


def test_bad_inputs_are_named() -> None:
    compounds = _toy().filter(pl.col("perturbation") == "compound:drug")
    with pytest.raises(LpmInputError, match="no single genetic perturbation"):
        knockdown_edges(compounds)
    with pytest.raises(LpmInputError, match="missing column"):
        knockdown_edges(_toy().drop("value"))
    with pytest.raises(LpmInputError, match="toy/Z"):
        knockdown_edges(_toy(), context="toy/Z")


# --- LPM-based edges ----------------------------------------------------------------------------


def test_embedding_edges(fitted: Any, frame: pl.DataFrame, small_world: SimulationResult) -> None:
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
    r = score_edges(e, read_true_network(small_world.out), **_universe(frame), k=(10,), top=100)
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


# --- modules and the task ----------------------------------------------------------------------


def test_strongest_module_and_the_graph_of_the_top_edges(frame: pl.DataFrame) -> None:
    e = knockdown_edges(frame)
    best = top_edges(e, 50)
    assert best.height == 50 and best.equals(e.head(50))
    g = edge_graph(best)
    assert g.is_directed() and g.number_of_edges() == 50
    s, t = best.row(0)[:2]
    assert g.edges[s, t]["score"] == pytest.approx(best.row(0, named=True)["score"])
    assert len(strongest_module(e, top=200)) >= 3
    star = pl.DataFrame({"source": ["A"], "target": ["B"], "score": [1.0]})
    assert strongest_module(star) == []
    with pytest.raises(LpmInputError, match="missing column"):
        top_edges(star.drop("score"), 10)
    with pytest.raises(LpmInputError, match="top"):
        top_edges(star, 0)


def test_the_registered_task_runs_each_method(fitted: Any, frame: pl.DataFrame) -> None:
    task = get_task("grn", method="knockdown", min_abs_z=2.0)
    assert isinstance(task, GeneNetworkTask) and not task.needs_model()
    assert task.run(frame).equals(knockdown_edges(frame, min_abs_z=2.0))
    knn = get_task("grn", method="embedding", top_k=3).run(frame, model=fitted)
    assert knn.equals(embedding_edges(fitted, top_k=3))
    imputed = get_task("grn", method="imputed").run(frame, model=fitted)
    assert imputed.equals(imputed_edges(fitted, frame, context=widest_context(frame)))
    assert perturbed_genes(frame) == sorted(set(knockdown_edges(frame)["source"]))
    with pytest.raises(LpmInputError, match="needs a fitted model"):
        get_task("grn", method="imputed").run(frame)


def test_docstring_examples() -> None:
    result = doctest.testmod(grn, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

"""Scores of inferred networks (``lpm.tasks.grn_scores``): knock-down edges find the simulator's
planted network, degree-preserving rewiring is seeded, references read, real CollecTRI edges."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.sim.simulate import SimulationResult
from lpm.sim.truth import read_true_network
from lpm.tasks.grn import knockdown_edges, perturbed_genes
from lpm.tasks.grn_scores import load_reference, rewire_edges, score_edges
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def frame(small_frame: pl.DataFrame) -> pl.DataFrame:
    return small_frame


def _universe(frame: pl.DataFrame) -> dict[str, Any]:
    return {
        "universe_sources": perturbed_genes(frame),
        "universe_targets": sorted(set(frame["readout"].cast(pl.String).to_list())),
    }


def test_knockdown_edges_find_the_planted_network(
    frame: pl.DataFrame, small_world: SimulationResult
) -> None:
    e = knockdown_edges(frame)
    truth = read_true_network(small_world.out)
    r = score_edges(e, truth, **_universe(frame), k=(10, 50), top=200, n_random=3)
    assert r["auprc"] > 2.5 * r["base_rate"]
    assert r["precision_at_10"] >= 0.8
    assert r["lift_auprc_top"] > 1.3 and r["lift_precision_at_50"] > 1.3
    assert r["n_reference"] > 0 and r["n_universe"] > r["n_reference"]
    one = read_true_network(small_world.truth, context="sim_rnaseq/S01")
    assert one.height < truth.height and set(one["resource"]) == {"simulator_truth_sim_rnaseq/S01"}


def test_references_are_read_and_must_meet_the_universe(
    frame: pl.DataFrame, tmp_path: Path
) -> None:
    ref = tmp_path / "trrust.tsv"
    ref.write_text("TF\tTarget\tRegulation\tReference\nX1\tX2\tActivation\t1\n")
    assert load_reference(ref).rows() == [("X1", "X2", 1.0, 1, "trrust")]
    elsewhere = pl.DataFrame({"source": ["X1"], "target": ["X2"]})
    with pytest.raises(LpmInputError, match="no reference edge"):
        score_edges(knockdown_edges(frame), elsewhere, **_universe(frame))


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

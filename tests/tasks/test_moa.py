"""Mechanism of action by similarity (``lpm.tasks.moa``, ``lpm.tasks.moa_scores``): the measured
baseline ranks a compound's own target first, orientation of gain-of-function candidates, the
model's embedding and predicted-profile rankings (mechanics), scores on known examples with
unscored pairs ranked last, a tiny simulated ``run_moa``, the real L1000 A375 plate, bad input."""

from __future__ import annotations

import doctest
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.models.registry import get_model
from lpm.tasks import moa
from lpm.tasks import moa_scores as _moa_scores
from lpm.tasks.moa import (
    FIGURE_FILE,
    METHODS,
    OPTIONS_FILE,
    RANKING_COLUMNS,
    RANKING_FILE,
    SCORES_FILE,
    SIMILARITY_COLUMNS,
    cross_dataset_target_scores,
    embedding_similarity,
    measured_profile_similarity,
    predicted_profile_similarity,
    rank_moa,
    reference_doses,
    run_moa,
    score_shared_annotation,
    score_targets,
)
from tests.conftest import shared_data

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

SMALL: dict[str, Any] = {"embedding_dim": 8, "hidden": [32, 32], "batch_size": 64, "lr": 1e-2}
N_READOUTS = 30
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frame(seed: int = 0) -> pl.DataFrame:
    """Compound X looks like CRISPRi:T (and like the mirror of CRISPRa:T); Y like CRISPRi:U.

    Two contexts; compounds at two doses (the top dose carries the signal), genetic singles
    without dose; a pair and the control are present but never ranked.
    """
    rng = np.random.default_rng(seed)
    base = {g: rng.normal(size=N_READOUTS) for g in ("T", "U", "V", "W")}
    profiles = {
        "CRISPRi:T": base["T"],
        "CRISPRi:U": base["U"],
        "CRISPRi:V": base["V"],
        "CRISPRa:T": -base["T"],
        "CRISPRi:W": base["W"],
        "CRISPRi:T+CRISPRi:U": base["T"] + base["U"],
        "control": np.zeros(N_READOUTS),
    }
    rows = []
    for c, ctx in enumerate(("toy/A", "toy/B")):
        shift = 0.05 * rng.normal(size=N_READOUTS)
        for p, v in profiles.items():
            noisy = v + shift + 0.1 * rng.normal(size=N_READOUTS)
            rows += [(ctx, p, f"R{j}", float(x), None) for j, x in enumerate(noisy)]
        for name, gene in (("X", "T"), ("Y", "U")):
            for dose, scale in ((0.1, 0.0), (10.0, 1.0)):
                v = scale * base[gene] + 0.1 * rng.normal(size=N_READOUTS) + 0.01 * c
                rows += [
                    (ctx, f"compound:{name}", f"R{j}", float(x), dose) for j, x in enumerate(v)
                ]
    return pl.DataFrame(
        rows,
        schema={
            "context": pl.String,
            "perturbation": pl.String,
            "readout": pl.String,
            "value": pl.Float64,
            "dose": pl.Float32,
        },
        orient="row",
    )


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def fitted(frame: pl.DataFrame) -> Any:
    return get_model("lpm_fast", **SMALL, max_epochs=3, val_fraction=0, seed=0).fit(frame)


def _top(table: pl.DataFrame, query: str) -> str:
    return str(
        table.filter(pl.col("query") == query).sort("score", descending=True)["candidate"][0]
    )


# ---- similarities -------------------------------------------------------------------------------
def test_measured_profile_ranks_own_target_first(frame: pl.DataFrame) -> None:
    t = measured_profile_similarity(frame)
    assert t.columns == list(SIMILARITY_COLUMNS)
    assert set(t["query"]) == {"compound:X", "compound:Y"}  # only compounds are queries
    assert "control" not in set(t["candidate"]) and not t["candidate"].str.contains("\\+").any()
    assert (t["query"] != t["candidate"]).all()
    assert _top(t, "compound:X") in {"CRISPRi:T", "CRISPRa:T"}
    assert _top(t, "compound:Y") == "CRISPRi:U"
    x = t.filter(pl.col("query") == "compound:X")
    kd = x.filter(pl.col("candidate") == "CRISPRi:T").row(0, named=True)
    up = x.filter(pl.col("candidate") == "CRISPRa:T").row(0, named=True)
    assert kd["similarity"] > 0.9 and kd["score"] == kd["similarity"]
    # an activation of the target is the mirror image: negative similarity, positive score
    assert up["similarity"] < -0.9 and up["score"] == -up["similarity"]
    assert t["similarity"].is_between(-1, 1).all()


def test_measured_profile_dose_choice_matters(frame: pl.DataFrame) -> None:
    top = measured_profile_similarity(frame, dose="max")
    mean = measured_profile_similarity(frame, dose="mean")
    pick = (pl.col("query") == "compound:X") & (pl.col("candidate") == "CRISPRi:T")
    assert top.filter(pick)["similarity"][0] > mean.filter(pick)["similarity"][0] - 1e-9
    with pytest.raises(LpmInputError, match="max"):
        measured_profile_similarity(frame, dose="low")


def test_measured_profile_needs_overlap() -> None:
    rows = [("a/A", "compound:X", f"R{j}", float(j % 7)) for j in range(25)]
    rows += [("b/B", "CRISPRi:T", f"S{j}", float(j % 5)) for j in range(25)]  # no shared readout
    rows += [("b/B", "CRISPRi:U", f"R{j}", float(j % 3)) for j in range(15)]  # 15 shared
    t = pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")
    assert measured_profile_similarity(t).height == 0
    assert set(measured_profile_similarity(t, min_overlap=10)["candidate"]) == {"CRISPRi:U"}


def test_embedding_similarity_mechanics(fitted: Any) -> None:
    t = embedding_similarity(fitted)
    assert t.columns == list(SIMILARITY_COLUMNS)
    assert set(t["query"]) == {"compound:X", "compound:Y"}
    singles = {"CRISPRi:T", "CRISPRi:U", "CRISPRi:V", "CRISPRi:W", "CRISPRa:T"}
    assert set(t["candidate"]) == singles | {"compound:X", "compound:Y"}
    assert t.height == 2 * 6 and t["score"].is_finite().all()
    assert t["similarity"].is_between(-1, 1).all()


def test_predicted_profile_mechanics(frame: pl.DataFrame, fitted: Any) -> None:
    assert reference_doses(frame) == {"compound:X": 10.0, "compound:Y": 10.0}
    t = predicted_profile_similarity(fitted, frame=frame)
    assert t.columns == list(SIMILARITY_COLUMNS)
    assert t.height == 2 * 6 and t["score"].is_finite().all()
    same = predicted_profile_similarity(
        fitted, context="toy/B", readouts=["R0", "R1", "R2"], dose=10.0
    )
    assert same.height == 2 * 6
    with pytest.raises(LpmInputError, match="context"):
        predicted_profile_similarity(fitted, frame=frame, context="toy/Z")
    with pytest.raises(LpmInputError, match="dose"):
        predicted_profile_similarity(fitted, context="toy/A")


def test_rank_moa_table(frame: pl.DataFrame, fitted: Any) -> None:
    r = rank_moa(frame, model=fitted)
    assert r.columns == list(RANKING_COLUMNS)
    assert tuple(r["method"].unique(maintain_order=True)) == METHODS
    firsts = r.filter(pl.col("rank") == 1)
    assert firsts.group_by("method", "query").len()["len"].max() == 1  # no ties here
    best = r.filter((pl.col("method") == "measured_profile") & (pl.col("query") == "compound:Y"))
    assert best.sort("rank")["candidate"][0] == "CRISPRi:U"
    assert rank_moa(frame)["method"].unique().to_list() == ["measured_profile"]
    with pytest.raises(LpmInputError, match="model"):
        rank_moa(frame, methods=["embedding"])


# ---- scores -------------------------------------------------------------------------------------
def _ranking(rows: list[tuple[str, str, float]], method: str = "measured_profile") -> pl.DataFrame:
    t = pl.DataFrame(rows, schema=["query", "candidate", "score"], orient="row")
    return moa._ranked(
        t.with_columns(
            candidate_type=pl.col("candidate").str.split(":").list.first(),
            similarity=pl.col("score"),
        ),
        method,
    )


def test_score_targets_known_example() -> None:
    r = _ranking(
        [
            ("compound:X", "CRISPRi:T", 0.9),
            ("compound:X", "CRISPRi:U", 0.5),
            ("compound:X", "CRISPRi:V", 0.1),
            ("compound:X", "compound:Y", 0.99),
            ("compound:Y", "CRISPRi:T", 0.2),
            ("compound:Y", "CRISPRi:U", 0.1),
        ]
    )
    s = score_targets(r, {"X": {"T", "V"}, "compound:Y": {"U"}}, k=1).row(0, named=True)
    # X: T first, V last of three genetic candidates -> AUROC 0.5, AP (1 + 2/3)/2, recall@1 1/2
    # Y: V is unscored, so ranks last: U second of (T, U, V) -> AUROC 0.5, AP 1/2, recall@1 0
    assert s["auroc"] == pytest.approx(0.5)
    assert s["average_precision"] == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)
    assert s["recall_at_k"] == pytest.approx(0.25)
    assert (s["n_queries"], s["n_pairs"], s["n_candidates"]) == (2, 3, 3)
    assert (s["n_scored"], s["n_unscored"]) == (5, 1)
    only_i = score_targets(r, {"X": {"T"}}, genetic_types={"CRISPRa"}.union({"CRISPRi"}))
    assert only_i["n_queries"][0] == 1


def test_unscored_pairs_rank_last() -> None:
    # leaving the target out does not help: it ranks below every scored candidate
    r = _ranking([("compound:X", "CRISPRi:U", -0.9), ("compound:Y", "CRISPRi:T", 0.1)])
    s = score_targets(r, {"X": {"T"}}).row(0, named=True)
    assert s["auroc"] == 0.0 and s["n_unscored"] == 2


def test_score_shared_annotation_known_example() -> None:
    r = _ranking(
        [
            ("compound:A", "compound:B", 0.8),
            ("compound:A", "compound:C", 0.1),
            ("compound:B", "compound:A", 0.8),
            ("compound:B", "compound:C", 0.9),
            ("compound:C", "compound:A", 0.1),
            ("compound:C", "compound:B", 0.9),
            ("compound:A", "compound:D", 0.95),  # D is unannotated: neither positive nor negative
        ]
    )
    mech = {
        "A": {"MEK inhibitor"},
        "B": {"MEK inhibitor", "RAF inhibitor"},
        "C": {"HDAC inhibitor"},
    }
    s = score_shared_annotation(r, mech).row(0, named=True)
    # A: B (pos) above C -> 1; B: A (pos) below C -> 0; C has no positive
    assert s["auroc"] == pytest.approx(0.5) and s["n_queries"] == 2
    assert s["n_pairs"] == 2 and s["n_candidates"] == 3
    with pytest.raises(LpmInputError, match="annotated"):
        score_shared_annotation(r, {"A": {"x"}})


def test_cross_dataset_reports_zero_pairs(frame: pl.DataFrame) -> None:
    kd = frame.filter(pl.col("perturbation").str.starts_with("CRISPRi:T")).with_columns(
        context=pl.lit("other/K562")
    )
    joint = pl.concat([frame.filter(pl.col("context") == "toy/A"), kd])
    r = rank_moa(joint)
    s = cross_dataset_target_scores(
        r, {"X": {"T"}}, joint, query_context="toy/A", candidate_context="other/K562"
    ).row(0, named=True)
    assert s["n_pairs"] == 1 and s["n_candidates"] == 1
    assert math.isnan(s["auroc"])  # one candidate: no negative
    none = cross_dataset_target_scores(
        r, {"X": {"NOPE"}}, joint, query_context="toy/A", candidate_context="other/K562"
    )
    assert none["n_pairs"][0] == 0 and math.isnan(none["auroc"][0])


# ---- the whole task -----------------------------------------------------------------------------
def test_run_moa_on_a_tiny_simulation(tmp_path: Path) -> None:
    from lpm.sim.simulate import simulate

    sim = simulate(tmp_path / "sim", n_genes=60, n_perturbations=30, n_contexts=2, seed=0)
    data = sim.open().read()
    model = get_model("lpm_fast", **SMALL, max_epochs=2, val_fraction=0, seed=0).fit(data)
    out = tmp_path / "moa"
    res = run_moa(sim.store, out=out, model=model, truth=sim.truth)
    for name in (RANKING_FILE, SCORES_FILE, OPTIONS_FILE):
        assert (out / name).exists()
    assert (out / FIGURE_FILE).read_bytes()[:8] == PNG_MAGIC
    assert res.methods == METHODS and res.n_queries > 0
    scores = pl.read_csv(out / SCORES_FILE)
    assert set(scores["truth"]) == {"sim_targets"}
    assert scores["auroc"].is_finite().all() and scores["recall_at_k"].is_finite().all()
    assert (scores["n_pairs"] > 0).all()
    assert "sim_targets" in str(res)


def test_bad_input(frame: pl.DataFrame) -> None:
    genetic = frame.filter(~pl.col("perturbation").str.starts_with("compound:"))
    with pytest.raises(LpmInputError, match="no single compound"):
        measured_profile_similarity(genetic)
    compounds = frame.filter(pl.col("perturbation").str.starts_with("compound:"))
    r = rank_moa(compounds)
    with pytest.raises(LpmInputError, match="no genetic perturbation"):
        score_targets(r, {"X": {"T"}})
    with pytest.raises(LpmInputError, match="compound_targets"):
        moa.simulator_targets(Path("/nonexistent/truth"))


def test_doctests() -> None:
    for module in (moa, _moa_scores):
        result = doctest.testmod(module, extraglobs={"pl": pl, "np": np})
        assert result.failed == 0


# ---- real data ----------------------------------------------------------------------------------
@pytest.mark.realdata
def test_real_a375_measured_baseline_mechanisms() -> None:
    from lpm.data.io.base import IngestOptions
    from lpm.data.io.ingest import read_source

    plate = shared_data("lincs_l1000_a375") / "test_l1000.gct"
    folder = shared_data("compounds")
    data = read_source(plate, IngestOptions(dataset="lincs")).measurements
    r = rank_moa(data)
    assert r["query"].n_unique() == 59
    from lpm.tasks.moa import _annotation_truths

    targets, mechanisms, n_matched = _annotation_truths(r, folder, None)
    assert n_matched >= 40
    for truth, ann in (("shared_mechanism", mechanisms), ("shared_target", targets)):
        s = score_shared_annotation(r, ann, truth=truth).row(0, named=True)
        assert s["n_queries"] > 5 and s["n_pairs"] > 0
        assert 0.0 <= s["auroc"] <= 1.0 and 0.0 < s["average_precision"] <= 1.0
    with pytest.raises(LpmInputError, match="no genetic perturbation"):
        score_targets(r, targets)

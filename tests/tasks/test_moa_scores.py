"""Scores of mechanism-of-action rankings (``lpm.tasks.moa_scores``): known examples, unscored
pairs ranked last, shared annotations, cross-dataset target scores, every truth at once."""

from __future__ import annotations

import doctest
import math

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.tasks import moa, moa_scores
from lpm.tasks.moa import rank_moa
from lpm.tasks.moa_scores import (
    cross_dataset_target_scores,
    score_moa,
    score_shared_annotation,
    score_targets,
)
from tests.tasks.test_moa import moa_frame


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return moa_frame()


# ---- known examples -------------------------------------------------------------------------------------
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


def test_score_moa_scores_every_truth_and_notes_the_ones_it_cannot() -> None:
    r = _ranking(
        [
            ("compound:X", "CRISPRi:T", 0.9),
            ("compound:X", "CRISPRi:U", 0.1),
            ("compound:Y", "CRISPRi:T", 0.2),
            ("compound:Y", "CRISPRi:U", 0.8),
        ]
    )
    scores, per_query, notes = score_moa(
        r,
        targets={"compound:X": {"T"}, "compound:Y": {"U"}},
        annotated_targets={"X": {"T"}},
        annotated_mechanisms={"X": {"MEK inhibitor"}},
    )
    assert scores["truth"].to_list() == ["sim_targets", "annotated_targets"]
    assert scores["auroc"].to_list() == [1.0, 1.0]
    assert set(per_query["truth"]) == {"sim_targets", "annotated_targets"}
    assert set(notes) == {"shared_mechanism", "shared_target"}
    assert "1 annotated compound(s)" in notes["shared_mechanism"]
    empty, none, no_notes = score_moa(r)
    assert empty.height == 0 and none.height == 0 and no_notes == {}


def test_doctests() -> None:
    result = doctest.testmod(moa_scores, extraglobs={"pl": pl, "np": np})
    assert result.attempted > 0 and result.failed == 0

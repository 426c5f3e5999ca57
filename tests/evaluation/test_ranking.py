"""Ranking scores: hand-computed cases, agreement with scikit-learn (ties included), the
unscored tail of the universe, degree-preserving randomisation, and every refused input."""

from __future__ import annotations

import doctest
import itertools
from collections import Counter

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

import lpm.evaluation.ranking as ranking
from lpm.errors import LpmInputError
from lpm.evaluation.ranking import (
    degree_preserving_random,
    edge_scores_auprc,
    mean_over_queries,
    per_query_scores,
    ranking_scores,
)

GENES = ["A", "B", "C", "D"]


def _edges(pairs: list[tuple[str, str]], scores: list[float] | None = None) -> pl.DataFrame:
    df = pl.DataFrame(pairs, schema=["source", "target"], orient="row")
    return df if scores is None else df.with_columns(score=pl.Series(scores, dtype=pl.Float64))


# 4 genes: 12 ordered pairs without self-loops; 3 reference edges
REF = _edges([("A", "B"), ("A", "C"), ("B", "D")])
ALL_PAIRS = [(s, t) for s, t in itertools.product(GENES, GENES) if s != t]


def _score(pred: pl.DataFrame, **kw: object) -> dict[str, float]:
    return edge_scores_auprc(pred, REF, universe_sources=GENES, universe_targets=GENES, **kw)  # type: ignore[arg-type]


def test_perfect_and_reversed_edge_rankings() -> None:
    positives = {("A", "B"), ("A", "C"), ("B", "D")}
    order = sorted(ALL_PAIRS, key=lambda p: p not in positives)  # positives first
    perfect = _score(_edges(order, list(range(12, 0, -1))), k=[1, 3, 6])
    assert perfect["auprc"] == 1.0 and perfect["auroc"] == 1.0
    assert (perfect["precision_at_1"], perfect["precision_at_3"], perfect["precision_at_6"]) == (
        1.0,
        1.0,
        0.5,
    )
    assert (perfect["n_reference"], perfect["n_universe"], perfect["base_rate"]) == (3, 12, 0.25)
    worst = _score(_edges(order, list(range(1, 13))), k=[3])
    # positives at ranks 10, 11, 12: AP = (1/10 + 2/11 + 3/12) / 3
    assert worst["auprc"] == pytest.approx((1 / 10 + 2 / 11 + 3 / 12) / 3)
    assert worst["auroc"] == 0.0 and worst["precision_at_3"] == 0.0


def test_unscored_pairs_rank_last_as_one_tie() -> None:
    # nothing scored: one block, AP = base rate, AUROC = 0.5, p@k = base rate
    empty = _score(_edges([("A", "B")], [1.0]).head(0), k=[4])
    assert empty["auprc"] == pytest.approx(0.25) and empty["auroc"] == 0.5
    assert empty["precision_at_4"] == pytest.approx(0.25) and empty["n_scored"] == 0
    # one positive scored, the rest unscored: P@1 = 1, then the 11 others tie with 2 positives
    one = _score(_edges([("A", "B")], [5.0]), k=[1, 2])
    assert one["precision_at_1"] == 1.0
    assert one["precision_at_2"] == pytest.approx((1 + 2 / 11) / 2)
    assert one["auprc"] == pytest.approx(1 / 3 * 1.0 + 2 / 3 * 3 / 12)
    # the same as scoring the missing pairs explicitly below everything (scikit-learn)
    y = [p in {("A", "B"), ("A", "C"), ("B", "D")} for p in ALL_PAIRS]
    s = [5.0 if p == ("A", "B") else -1.0 for p in ALL_PAIRS]
    assert one["auprc"] == pytest.approx(average_precision_score(y, s))
    assert one["auroc"] == pytest.approx(roc_auc_score(y, s))


def test_pairs_outside_universe_are_ignored() -> None:
    base = _score(_edges([("A", "B"), ("C", "D")], [2.0, 1.0]), k=[1, 5])
    noisy = edge_scores_auprc(
        _edges([("A", "B"), ("C", "D"), ("X", "A"), ("A", "A"), ("B", "Z")], [2.0, 1.0, 9, 9, 9]),
        pl.concat([REF, _edges([("X", "B"), ("A", "A")])]),
        universe_sources=GENES,
        universe_targets=GENES,
        k=[1, 5],
    )
    assert noisy == base
    # a smaller universe: sources A only -> pairs A->B, A->C, A->D; reference edges A->B, A->C
    small = edge_scores_auprc(
        _edges([("A", "D"), ("A", "B")], [2.0, 1.0]),
        REF,
        universe_sources=["A"],
        universe_targets=GENES,
        k=[1],
    )
    assert (small["n_universe"], small["n_reference"], small["n_scored"]) == (3, 2, 2)
    assert small["precision_at_1"] == 0.0
    assert small["auprc"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_edge_scores_match_sklearn_with_ties() -> None:
    rng = np.random.default_rng(1)
    genes = [f"G{i}" for i in range(15)]
    pairs = [(s, t) for s, t in itertools.product(genes, genes) if s != t]
    ref_mask = rng.random(len(pairs)) < 0.1
    scores = rng.integers(0, 5, len(pairs)).astype(float)  # many ties
    ref = _edges([p for p, r in zip(pairs, ref_mask, strict=True) if r])
    res = edge_scores_auprc(
        _edges(pairs, list(scores)), ref, universe_sources=genes, universe_targets=genes, k=[7]
    )
    assert res["auprc"] == pytest.approx(average_precision_score(ref_mask, scores))
    assert res["auroc"] == pytest.approx(roc_auc_score(ref_mask, scores))
    # precision@7 cuts through a tied block: its expected share of positives
    order = np.argsort(-scores, kind="stable")
    top = scores[order][6]
    above = scores > top
    tied = scores == top
    expected = (ref_mask[above].sum() + (7 - above.sum()) * ref_mask[tied].mean()) / 7
    assert res["precision_at_7"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("pred", "ref", "sources", "problem"),
    [
        (_edges([("A", "B")], [float("nan")]), REF, GENES, "NaN or infinite"),
        (_edges([("A", "B")], [float("inf")]), REF, GENES, "NaN or infinite"),
        (_edges([("A", "B"), ("A", "B")], [1.0, 2.0]), REF, GENES, "more than once"),
        (_edges([("A", "B")], [1.0]), REF, [], "universe is empty"),
        (_edges([("A", "B")], [1.0]), REF, ["C"], "no reference edge lies"),
        (_edges([("A", "B")]), REF, GENES, "missing column"),
    ],
)
def test_edge_scores_refuse_bad_input(
    pred: pl.DataFrame, ref: pl.DataFrame, sources: list[str], problem: str
) -> None:
    with pytest.raises(LpmInputError, match=problem):
        edge_scores_auprc(pred, ref, universe_sources=sources, universe_targets=GENES)


def test_edge_scores_k_beyond_universe_is_nan_and_bad_k_refused() -> None:
    res = _score(_edges([("A", "B")], [1.0]), k=[12, 13])
    assert res["precision_at_12"] == pytest.approx(0.25) and np.isnan(res["precision_at_13"])
    with pytest.raises(LpmInputError, match="positive integers"):
        _score(_edges([("A", "B")], [1.0]), k=[0])


# --- degree-preserving randomisation -------------------------------------------------------------


def _random_graph(n_nodes: int, n_edges: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    pairs: set[tuple[str, str]] = set()
    while len(pairs) < n_edges:
        a, b = rng.integers(0, n_nodes, 2)
        if a != b:
            pairs.add((f"g{a}", f"g{b}"))
    return _edges(sorted(pairs))


def test_degree_preserving_random_keeps_every_degree_exactly() -> None:
    edges = _random_graph(60, 400, seed=3)
    rand = degree_preserving_random(edges, seed=7)
    assert rand.height == edges.height
    assert Counter(rand["source"]) == Counter(edges["source"])
    assert Counter(rand["target"]) == Counter(edges["target"])
    assert (rand["source"] != rand["target"]).all()
    assert not rand.select(pl.struct("source", "target").is_duplicated().any()).item()
    kept = set(rand.rows()) & set(edges.rows())
    assert len(kept) < 0.2 * edges.height  # well mixed after 10 swaps per edge


def test_degree_preserving_random_is_seeded() -> None:
    edges = _random_graph(40, 150, seed=0)
    a = degree_preserving_random(edges, seed=1)
    assert a.equals(degree_preserving_random(edges, seed=1))
    assert not a.equals(degree_preserving_random(edges, seed=2))
    assert degree_preserving_random(edges, seed=1, n_swaps_per_edge=0).equals(edges.sort(pl.all()))


def test_degree_preserving_random_star_cannot_change() -> None:
    star = _edges([("hub", f"t{i}") for i in range(5)])
    assert degree_preserving_random(star, seed=0).equals(star.sort(pl.all()))


@pytest.mark.parametrize(
    ("edges", "problem"),
    [
        (_edges([("A", "A"), ("A", "B")]), "self-loops"),
        (_edges([("A", "B"), ("A", "B")]), "repeated"),
        (_edges([("A", "B")]).head(0), "no edges"),
    ],
)
def test_degree_preserving_random_refuses(edges: pl.DataFrame, problem: str) -> None:
    with pytest.raises(LpmInputError, match=problem):
        degree_preserving_random(edges, seed=0)


# --- one query, many queries --------------------------------------------------------------------


def test_ranking_scores_perfect_reversed_and_ties() -> None:
    cands = {c: float(s) for c, s in zip("ABCDEF", [6, 5, 4, 3, 2, 1], strict=True)}
    best = ranking_scores(cands, {"A", "B"}, k=2)
    assert (best["auroc"], best["average_precision"], best["recall_at_k"]) == (1.0, 1.0, 1.0)
    worst = ranking_scores(cands, {"E", "F"}, k=2)
    assert worst["auroc"] == 0.0 and worst["recall_at_k"] == 0.0
    assert worst["average_precision"] == pytest.approx((1 / 5 + 2 / 6) / 2)
    assert (worst["n_candidates"], worst["n_positives"], worst["base_rate"]) == (6, 2, 1 / 3)
    # all tied: chance everywhere; positives that are not candidates are ignored
    flat = ranking_scores(dict.fromkeys("ABCD", 0.0), {"A", "Z"}, k=2)
    assert (flat["auroc"], flat["average_precision"], flat["recall_at_k"]) == (0.5, 0.25, 0.5)
    assert flat["n_positives"] == 1


def test_ranking_scores_match_sklearn() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        n = int(rng.integers(5, 40))
        s = np.round(rng.normal(size=n), 1)
        y = rng.random(n) < 0.3
        if y.all() or not y.any():
            continue
        r = ranking_scores(
            {f"c{i}": float(v) for i, v in enumerate(s)}, {f"c{i}" for i in np.flatnonzero(y)}
        )
        assert r["auroc"] == pytest.approx(roc_auc_score(y, s))
        assert r["average_precision"] == pytest.approx(average_precision_score(y, s))


@pytest.mark.parametrize(
    ("scores", "positives", "problem"),
    [
        ({}, {"A"}, "no candidates"),
        ({"A": 1.0, "B": float("nan")}, {"A"}, "NaN or infinite"),
        ({"A": 1.0, "B": 0.0}, {"Z"}, "0 of 2 candidates"),
        ({"A": 1.0, "B": 0.0}, {"A", "B"}, "2 of 2 candidates"),
    ],
)
def test_ranking_scores_refuse(scores: dict[str, float], positives: set[str], problem: str) -> None:
    with pytest.raises(LpmInputError, match=problem):
        ranking_scores(scores, positives)


def test_mean_over_queries_counts_evaluable_queries() -> None:
    table = pl.DataFrame(
        {
            "query": ["q1"] * 3 + ["q2"] * 3 + ["q3"] * 2 + ["q4"] * 2,
            "candidate": ["A", "B", "C"] * 2 + ["A", "B"] * 2,
            "score": [3.0, 2.0, 1.0, 3.0, 2.0, 1.0, 1.0, 0.0, 1.0, 0.0],
        }
    )
    positives = {"q1": {"A"}, "q2": {"C"}, "q3": {"Z"}, "q4": {"A", "B"}}
    per = per_query_scores(table, positives, k=1)
    assert per["query"].to_list() == ["q1", "q2", "q3", "q4"]
    assert per["n_positives"].to_list() == [1, 1, 0, 2]
    assert per["auroc"].to_list() == [1.0, 0.0, None, None]
    res = mean_over_queries(table, positives, k=1)
    assert (res["n_queries"], res["n_queries_with_positive"], res["n_evaluated"]) == (4, 3, 2)
    assert res["auroc"] == 0.5 and res["recall_at_k"] == 0.5
    assert res["average_precision"] == pytest.approx((1 + 1 / 3) / 2)
    none = mean_over_queries(table, {}, k=1)
    assert none["n_evaluated"] == 0 and np.isnan(none["auroc"])


def test_per_query_scores_refuse_duplicates_and_missing_columns() -> None:
    dup = pl.DataFrame({"query": ["q", "q"], "candidate": ["A", "A"], "score": [1.0, 2.0]})
    with pytest.raises(LpmInputError, match="more than once"):
        per_query_scores(dup, {"q": {"A"}})
    with pytest.raises(LpmInputError, match="missing column"):
        mean_over_queries(dup.drop("score"), {"q": {"A"}})


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ranking, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

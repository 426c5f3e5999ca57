"""Tests of lpm.design.selection: reach matrix, lazy-greedy coverage, spectral k-centre."""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.design.selection import coverage_selection, reach_matrix, spectral_selection
from lpm.errors import LpmInputError


def _graph(pairs: list[tuple[str, str]]) -> pl.DataFrame:
    """Both directions of each pair, weight 1."""
    src = [a for a, b in pairs] + [b for a, b in pairs]
    dst = [b for a, b in pairs] + [a for a, b in pairs]
    return pl.DataFrame({"source": src, "target": dst, "weight": [1.0] * len(src)})


def _path(n: int) -> tuple[pl.DataFrame, list[str]]:
    genes = [f"g{i}" for i in range(n)]
    return _graph(list(itertools.pairwise(genes))), genes


def _random_graph(n: int, p: float, seed: int) -> tuple[pl.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    genes = [f"r{i}" for i in range(n)]
    pairs = [(a, b) for a, b in itertools.combinations(genes, 2) if rng.random() < p]
    return _graph(pairs), genes


def _dense_reach(edges: pl.DataFrame, genes: list[str], hops: int) -> np.ndarray:
    """Breadth-first reference over the whole graph (through any node)."""
    nbrs: dict[str, set[str]] = {}
    for s, t in zip(edges["source"], edges["target"], strict=True):
        nbrs.setdefault(s, set()).add(t)
        nbrs.setdefault(t, set()).add(s)
    out = np.zeros((len(genes), len(genes)), dtype=bool)
    for i, g in enumerate(genes):
        frontier, seen = {g}, {g}
        for _ in range(hops):
            frontier = {m for f in frontier for m in nbrs.get(f, ())} - seen
            seen |= frontier
        out[i] = [h in seen for h in genes]
    return out


def _value(reach: np.ndarray, picks: list[int], w: np.ndarray) -> float:
    return float(w[reach[picks].any(axis=0)].sum()) if picks else 0.0


def _plain_greedy(reach: np.ndarray, w: np.ndarray, k: int, seed: int) -> list[int]:
    """Non-lazy greedy: full gain recomputation each round, ties by the same seeded order."""
    tie = np.empty(len(w), dtype=np.int64)
    tie[np.random.default_rng(seed).permutation(len(w))] = np.arange(len(w))
    picks: list[int] = []
    for _ in range(k):
        covered = reach[picks].any(axis=0) if picks else np.zeros(len(w), dtype=bool)
        gains = [
            (-float(w[reach[i] & ~covered].sum()), tie[i], i)
            for i in range(len(w))
            if i not in picks
        ]
        picks.append(min(gains)[2])
    return picks


# --- reach_matrix -------------------------------------------------------------------------


def test_reach_matrix_path_hops_one_and_two() -> None:
    edges, genes = _path(5)
    one = reach_matrix(edges, genes, 1).toarray()
    assert one.dtype == bool
    assert one[0].tolist() == [True, True, False, False, False]
    assert one[2].tolist() == [False, True, True, True, False]
    two = reach_matrix(edges, genes, 2).toarray()
    assert two[0].tolist() == [True, True, True, False, False]
    assert two[2].tolist() == [True, True, True, True, True]
    assert (reach_matrix(edges, genes, 0).toarray() == np.eye(5, dtype=bool)).all()


def test_reach_matrix_passes_through_non_candidates() -> None:
    edges, _ = _path(5)
    genes = ["g0", "g2", "g4"]
    two = reach_matrix(edges, genes, 2).toarray()
    assert two.shape == (3, 3)
    assert two.tolist() == [[True, True, False], [True, True, True], [False, True, True]]
    one = reach_matrix(edges, genes, 1).toarray()
    assert (one == np.eye(3, dtype=bool)).all()  # no candidate is a direct neighbour


def test_reach_matrix_matches_breadth_first_and_absent_genes() -> None:
    edges, genes = _random_graph(25, 0.08, seed=3)
    genes = [*genes, "absent1", "absent2"]
    for hops in (1, 2, 3):
        got = reach_matrix(edges, genes, hops).toarray()
        assert (got == _dense_reach(edges, genes, hops)).all()
        assert got[-1].sum() == 1 and got[-1, -1]


# --- coverage_selection -------------------------------------------------------------------


def test_coverage_picks_hub_of_star_first() -> None:
    leaves = [f"leaf{i}" for i in range(6)]
    edges = _graph([("hub", leaf) for leaf in leaves] + [("leaf0", "tail")])
    genes = ["tail", *leaves, "hub"]
    out = coverage_selection(edges, genes, 2, hops=1)
    assert out.columns == ["rank", "gene", "gain", "covered", "covered_fraction"]
    assert out["gene"][0] == "hub"
    assert out["gain"][0] == 7.0  # hub + six leaves
    assert out["covered"].to_list() == [7.0, 8.0]
    assert out["covered_fraction"][-1] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_greedy_within_one_minus_one_over_e_of_optimum(seed: int) -> None:
    edges, genes = _random_graph(10, 0.2, seed=seed)
    w = np.random.default_rng(seed).integers(1, 5, size=10).astype(float)
    weights = dict(zip(genes, w, strict=True))
    reach = _dense_reach(edges, genes, 1)
    best = max(_value(reach, list(c), w) for c in itertools.combinations(range(10), 3))
    out = coverage_selection(edges, genes, 3, hops=1, weights=weights, seed=seed)
    assert out["covered"][-1] >= (1 - 1 / math.e) * best - 1e-9
    picks = [genes.index(g) for g in out["gene"]]
    assert out["covered"][-1] == pytest.approx(_value(reach, picks, w))


@pytest.mark.parametrize("seed", range(6))
def test_lazy_greedy_equals_plain_greedy(seed: int) -> None:
    edges, genes = _random_graph(30, 0.07, seed=seed + 10)
    w = np.random.default_rng(seed).integers(0, 4, size=30).astype(float)
    weights = dict(zip(genes, w, strict=True))
    reach = _dense_reach(edges, genes, 2)
    out = coverage_selection(edges, genes, 12, hops=2, weights=weights, seed=seed)
    assert out["gene"].to_list() == [genes[i] for i in _plain_greedy(reach, w, 12, seed)]
    assert (np.diff(out["gain"].to_numpy()) <= 1e-12).all()  # submodular: gains never grow


def test_selected_excluded_and_counted() -> None:
    edges, genes = _path(7)
    out = coverage_selection(edges, genes, 2, hops=1, selected=["g1"])
    assert "g1" not in out["gene"].to_list()
    # g1 already covers g0..g2, so the first new pick covers 3 fresh genes (g4 or g5)
    assert out["gain"][0] == 3.0
    assert out["covered"][0] == 6.0
    assert out["covered_fraction"][0] == pytest.approx(6 / 7)
    # a selected gene outside the candidates still covers its neighbours
    out2 = coverage_selection(edges, genes[2:], 1, hops=1, selected=["g1"])
    assert out2["covered"][0] - out2["gain"][0] == 1.0  # g2 was already covered by g1


def test_weights_change_the_choice() -> None:
    edges, genes = _path(6)
    plain = coverage_selection(edges, genes, 1, hops=1, seed=0)
    assert plain["gene"][0] in {"g1", "g2", "g3", "g4"}
    heavy = coverage_selection(edges, genes, 1, hops=1, weights={"g0": 10.0}, seed=0)
    assert heavy["gene"][0] in {"g0", "g1"}
    assert heavy["gain"][0] == 10.0 and heavy["covered_fraction"][0] == 1.0


def test_same_seed_same_output_and_seeds_only_change_ties() -> None:
    edges, genes = _random_graph(40, 0.05, seed=1)
    a = coverage_selection(edges, genes, 15, seed=4)
    assert a.equals(coverage_selection(edges, genes, 15, seed=4))
    outs = [coverage_selection(edges, genes, 15, seed=s) for s in range(8)]
    assert all(o["gain"][0] == a["gain"][0] for o in outs)  # best first gain is seed-free
    # a graph with no edges: every pick is a tie, so the order follows the seed
    empty = pl.DataFrame(
        {"source": ["x"], "target": ["y"], "weight": [1.0]}
    )  # genes below are all absent
    lone = [f"n{i}" for i in range(20)]
    orders = {tuple(coverage_selection(empty, lone, 5, seed=s)["gene"]) for s in range(6)}
    assert len(orders) > 1


def test_zero_gain_continues_to_k_and_hops_zero() -> None:
    edges, genes = _path(3)
    out = coverage_selection(edges, genes, 3, hops=1)
    assert out.height == 3
    assert out["gene"][0] == "g1" and out["gain"].to_list()[1:] == [0.0, 0.0]
    zero = coverage_selection(edges, genes, 3, hops=0)
    assert zero["gain"].to_list() == [1.0, 1.0, 1.0]
    assert zero["covered"].to_list() == [1.0, 2.0, 3.0]


def test_candidates_missing_from_graph(caplog: pytest.LogCaptureFixture) -> None:
    edges, genes = _path(4)
    with caplog.at_level(logging.INFO, logger="lpm.design.selection"):
        out = coverage_selection(edges, [*genes, "ghost1", "ghost2"], 6, hops=2)
    assert "2 of 6 candidate(s) are absent" in caplog.text
    assert set(out["gene"]) == {*genes, "ghost1", "ghost2"}
    assert out["covered_fraction"][-1] == pytest.approx(1.0)
    ghost_gain = out.filter(pl.col("gene").str.starts_with("ghost"))["gain"]
    assert ghost_gain.to_list() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be >= 1"),
        ({"k": 5}, "exceeds the 4 candidate"),
        ({"k": 4, "selected": ["g0"]}, "exceeds the 3 candidate"),
        ({"candidates": ["g0", "g1", "g0"]}, "duplicate candidates: g0"),
        ({"weights": {"g0": -1.0}}, "finite and >= 0: g0"),
        ({"weights": {"g1": float("nan")}}, "finite and >= 0: g1"),
        ({"weights": {"zzz": 1.0}}, "non-candidate gene(s): zzz"),
        ({"hops": -1}, "hops must be >= 0"),
    ],
)
def test_coverage_errors(kwargs: dict[str, object], message: str) -> None:
    edges, genes = _path(4)
    args: dict[str, Any] = {"candidates": genes, "k": 2, **kwargs}
    with pytest.raises(LpmInputError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        coverage_selection(edges, **args)
    assert "\n" not in str(e.value)


# --- spectral_selection -------------------------------------------------------------------


def _two_cliques(m: int = 5) -> tuple[pl.DataFrame, list[str], list[str]]:
    a = [f"a{i}" for i in range(m)]
    b = [f"b{i}" for i in range(m)]
    pairs = list(itertools.combinations(a, 2)) + list(itertools.combinations(b, 2))
    return _graph(pairs), a, b


@pytest.mark.parametrize("seed", range(4))
def test_spectral_two_cliques_first_picks_differ(seed: int) -> None:
    edges, a, b = _two_cliques()
    out = spectral_selection(edges, a + b, 2, n_vectors=2, seed=seed)
    assert out.columns == ["rank", "gene", "distance"]
    first, second = out["gene"].to_list()
    assert (first in a) != (second in a)
    assert math.isinf(out["distance"][0])
    assert out["distance"][1] == pytest.approx(math.sqrt(2))


def test_spectral_selected_is_first_centre() -> None:
    edges, a, b = _two_cliques()
    out = spectral_selection(edges, a + b, 1, n_vectors=2, selected=["a0"])
    assert out["gene"][0] in b
    assert out["distance"][0] == pytest.approx(math.sqrt(2))


def test_spectral_deterministic_and_distances_non_increasing() -> None:
    edges, genes = _random_graph(60, 0.06, seed=7)
    genes = [*genes, "ghost"]
    a = spectral_selection(edges, genes, 20, n_vectors=8, seed=3)
    assert a.equals(spectral_selection(edges, genes, 20, n_vectors=8, seed=3))
    assert a["gene"].n_unique() == 20
    d = a["distance"].to_numpy()[1:]
    assert (np.diff(d) <= 1e-12).all()


def test_spectral_errors() -> None:
    edges, a, _ = _two_cliques()
    with pytest.raises(LpmInputError, match="k must be >= 1"):
        spectral_selection(edges, a, 0)
    with pytest.raises(LpmInputError, match="exceeds the 4 candidate"):
        spectral_selection(edges, a, 5, selected=["a1"])
    with pytest.raises(LpmInputError, match="duplicate candidates"):
        spectral_selection(edges, [*a, "a0"], 2)
    with pytest.raises(LpmInputError, match="n_vectors must be >= 1"):
        spectral_selection(edges, a, 2, n_vectors=0)


def test_spectral_tiny_graph_uses_dense_fallback() -> None:
    edges, a, b = _two_cliques(3)
    out = spectral_selection(edges, [*a, *b, "ghost"], 7, seed=1)  # n_vectors 32 > 7 nodes
    assert sorted(out["gene"]) == sorted([*a, *b, "ghost"])

"""What a strategy sees: a round's state, with one-line errors for what it lacks."""

from __future__ import annotations

import polars as pl
import pytest

from lpm.design.base import RoundState
from lpm.design.pool import Oracle
from lpm.errors import LpmInputError

ROWS = pl.DataFrame(
    {"context": ["c"], "perturbation": ["CRISPRi:A"], "readout": ["g"], "value": [1.0]}
)


def _state(**kw: object) -> RoundState:
    return RoundState(
        round=2, batch=1, seed=5, labelled=[], unlabelled=["CRISPRi:A"], oracle=Oracle(ROWS), **kw
    )  # type: ignore[arg-type]


def test_the_generator_is_seeded_by_seed_and_round() -> None:
    a, b = _state(), _state()
    assert a.rng.random() == b.rng.random()
    b.round = 3
    assert _state().rng.random() != b.rng.random()


def test_a_strategy_without_what_it_needs_says_so() -> None:
    with pytest.raises(LpmInputError, match="strategy 'coreset' needs a fitted model"):
        _state().need_model("coreset")
    with pytest.raises(LpmInputError, match=r"strategy 'coverage' needs a gene graph \(--graph\)"):
        _state().need_graph("coverage")
    graph = pl.DataFrame({"source": ["A"], "target": ["B"], "weight": [1.0]})
    assert _state(graph=graph).need_graph("coverage") is graph

"""Acquisition strategies by name: the same register/list/describe/get shape as the model registry."""

from __future__ import annotations

import doctest
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import lpm.design.registry as registry
from lpm.design import STRATEGIES
from lpm.design.base import Choice, RoundState, StrategySpec
from lpm.design.loop import run_design
from lpm.design.registry import (
    describe_strategy,
    get_strategy,
    list_strategies,
    one_shot_strategies,
    register_strategy,
)
from lpm.errors import LpmError, LpmInputError
from tests.design.test_loop import _config, chain_world

BUILTINS = ["random", "coverage", "spectral", "variance", "coreset", "kernel"]


def first_in_pool(state: RoundState) -> Choice:
    """The batch at the head of the unlabelled pool (a user's strategy)."""
    return state.unlabelled[: state.batch], [0.0] * state.batch


@pytest.fixture
def user_strategy() -> Iterator[str]:
    register_strategy("head", StrategySpec(first_in_pool, needs_model=False))
    yield "head"
    registry._STRATEGIES._registered.pop("head")


def test_builtins_come_from_the_fixed_list_in_order() -> None:
    assert list_strategies() == BUILTINS == list(STRATEGIES)
    assert one_shot_strategies() == ["random", "coverage", "spectral"]
    assert describe_strategy("coreset") == {
        "name": "coreset",
        "summary": "k-centre greedy in the model's perturbation space.",
        "needs_model": True,
    }


def test_importing_lpm_design_registers_nothing() -> None:
    code = "import lpm.design, lpm.design.registry as r; print(len(r._STRATEGIES._registered))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_unknown_name_is_one_line_listing_the_valid_ones() -> None:
    with pytest.raises(LpmInputError) as err:
        get_strategy("nope")
    assert str(err.value) == f"unknown strategy 'nope'; available: {', '.join(BUILTINS)}"


def test_duplicate_and_bad_registrations_are_errors(user_strategy: str) -> None:
    spec = get_strategy(user_strategy)
    with pytest.raises(LpmError, match="already registered"):
        register_strategy(user_strategy, spec)
    with pytest.raises(LpmError, match="already registered"):
        register_strategy("random", spec)
    with pytest.raises(LpmError, match="not a StrategySpec"):
        register_strategy("bare", first_in_pool)  # type: ignore[arg-type]


def test_a_registered_strategy_runs_in_the_loop_and_may_start_it(
    tmp_path: Path, user_strategy: str
) -> None:
    assert user_strategy in list_strategies() and user_strategy in one_shot_strategies()
    rows, edges = chain_world(tmp_path)
    result = run_design(rows, [user_strategy], _config(edges, first=user_strategy))
    pool = result.universe.pool
    assert result.acquired["perturbation"].to_list() == pool[:14]


def test_docstring_examples_run() -> None:
    result = doctest.testmod(registry, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

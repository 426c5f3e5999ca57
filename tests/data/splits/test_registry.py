"""Split kinds by name: the same register/list/describe/get shape as the model registry."""

from __future__ import annotations

import doctest
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest

import lpm.data.splits.registry as registry
from lpm.data import schema as S
from lpm.data.splits import (
    SPLIT_KINDS,
    SplitKind,
    describe_split_kind,
    get_split_kind,
    list_split_kinds,
    make_split,
    register_split_kind,
)
from lpm.data.splits.base import TEST, TRAIN, HoldOut
from lpm.errors import LpmError, LpmInputError

ROWS = pl.DataFrame(
    {
        S.CONTEXT: ["A", "A", "B", "B"],
        S.PERTURBATION: ["CRISPRi:X", "CRISPRi:Y", "CRISPRi:X", "CRISPRi:Y"],
        S.READOUT: ["g1"] * 4,
        S.VALUE: [1.0, 2.0, 3.0, 4.0],
    }
)


class ContextA(SplitKind):
    """Context A is the test set (a user's kind)."""

    def parts(self, rows: pl.DataFrame, rng: np.random.Generator, asked: HoldOut) -> np.ndarray:
        return np.where(rows[S.CONTEXT].to_numpy() == "A", TEST, TRAIN)


@pytest.fixture
def user_kind() -> Iterator[str]:
    register_split_kind("context_a", ContextA)
    yield "context_a"
    registry._KINDS._registered.pop("context_a")


def test_builtins_come_from_the_fixed_list_in_order() -> None:
    assert list_split_kinds()[: len(SPLIT_KINDS)] == list(SPLIT_KINDS)
    assert SPLIT_KINDS == (
        "random",
        "unseen_pair",
        "unseen_perturbation",
        "unseen_context",
        "combination",
        "unseen_dose",
    )
    for name in SPLIT_KINDS:
        assert issubclass(get_split_kind(name), SplitKind)


def test_importing_the_registry_loads_no_kind() -> None:
    code = "import sys, lpm.data.splits; print('lpm.data.splits.kinds' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_describe_lists_each_kind_s_own_parameters() -> None:
    assert describe_split_kind("combination") == {
        "name": "combination",
        "summary": "Combination symbols held out in every context, labelled by members seen in training.",
        "params": {"test_fraction": 0.2, "val_fraction": 0.1, "holdout_singles_fraction": 0.0},
    }
    assert describe_split_kind("random")["params"] == {"test_fraction": 0.2, "val_fraction": 0.1}


def test_unknown_kind_is_one_line_listing_the_valid_ones() -> None:
    with pytest.raises(LpmInputError) as err:
        get_split_kind("nope")
    assert str(err.value) == f"unknown split kind 'nope'; available: {', '.join(SPLIT_KINDS)}"


def test_registered_kind_splits_by_name_and_is_listed(user_kind: str) -> None:
    assert user_kind in list_split_kinds()
    split = make_split(ROWS, kind=user_kind, seed=3)
    assert split.kind == user_kind
    assert split.test[S.CONTEXT].to_list() == ["A", "A"]
    assert split.test_groups["group"].to_list() == [user_kind, user_kind]
    with pytest.raises(LpmInputError, match="cannot split 1 row"):
        make_split(ROWS.head(1), kind=user_kind)  # the shared checks apply to every kind


def test_duplicate_and_bad_registrations_are_errors(user_kind: str) -> None:
    with pytest.raises(LpmError, match="already registered"):
        register_split_kind(user_kind, ContextA)
    with pytest.raises(LpmError, match="already registered"):
        register_split_kind("random", ContextA)
    with pytest.raises(LpmError, match="not a concrete SplitKind"):
        register_split_kind("abstract", SplitKind)
    with pytest.raises(LpmError, match="not a concrete SplitKind"):
        register_split_kind("other", dict)  # type: ignore[arg-type]


def test_parameters_of_the_kind_and_of_other_kinds() -> None:
    # another kind's option at its default is accepted (callers pass context=None to any kind)
    make_split(ROWS, kind="random", context=None, holdout_singles_fraction=0.0)
    with pytest.raises(LpmInputError, match="context only applies to kind='unseen_context'"):
        make_split(ROWS, kind="random", context="A")
    with pytest.raises(LpmInputError, match=r"split 'random' has no parameter 'tset_fraction'"):
        make_split(ROWS, kind="random", tset_fraction=0.5)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(registry, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

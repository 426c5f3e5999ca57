"""Parameter rules: types from annotations, ranges and choices, each refusal one line naming
the parameter and what it accepts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lpm.errors import LpmInputError
from lpm.models.params import (
    COUNT,
    FRACTION,
    Choice,
    Range,
    check_params,
    describe,
    matches,
    out_of_range,
    wrong_value,
)


class _Toy:
    name = "toy"

    def __init__(
        self,
        *,
        width: int = 4,
        hidden: list[int] | None = None,
        rate: float = 0.5,
        mode: str = "mean",
        spec: str | list[str] | None = None,
        flag: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        pass


RULES = {"width": COUNT, "hidden": COUNT, "rate": FRACTION, "mode": Choice("mean", "sum")}


@pytest.mark.parametrize(
    ("value", "hint", "ok"),
    [
        (3, int, True),
        (np.int64(3), int, True),
        (3.0, int, False),
        (True, int, False),
        (3, float, True),
        (1e-3, float, True),
        ("3", float, False),
        (None, int | None, True),
        ([1, 2], list[int], True),
        ((1, 2), list[int], True),
        ([1e12], list[int], False),
        ("go", str | list[str] | None, True),
        (["go", "morgan"], str | list[str] | None, True),
        ([1], str | list[str] | None, False),
        ({"a": 1}, dict[str, Any], True),
        (np.True_, bool, True),
        (1, bool, False),
    ],
)
def test_values_match_their_annotation(value: Any, hint: Any, ok: bool) -> None:
    assert matches(value, hint) is ok


def test_a_wrong_type_names_the_parameter_and_the_type() -> None:
    with pytest.raises(
        LpmInputError, match=r"model 'toy': parameter width must be a whole number, got 'x'"
    ):
        check_params(_Toy, {"width": "x"}, RULES)
    with pytest.raises(LpmInputError, match=r"hidden must be a list of \(a whole number\) or null"):
        check_params(_Toy, {"hidden": [1e12]}, RULES)


def test_a_value_out_of_range_names_the_rule() -> None:
    with pytest.raises(LpmInputError, match=r"parameter width must be ≥ 1, got -5"):
        check_params(_Toy, {"width": -5}, RULES)
    with pytest.raises(LpmInputError, match=r"parameter hidden must be ≥ 1, got \[8, 0\]"):
        check_params(_Toy, {"hidden": [8, 0]}, RULES)
    with pytest.raises(LpmInputError, match=r"rate must be in \[0, 1\), got 1"):
        check_params(_Toy, {"rate": 1}, RULES)
    with pytest.raises(LpmInputError, match=r"mode must be one of 'mean', 'sum', got 'max'"):
        check_params(_Toy, {"mode": "max"}, RULES)


def test_good_values_and_defaults_pass() -> None:
    check_params(
        _Toy, {"width": 2, "hidden": [8, 8], "rate": 0.0, "mode": "sum", "flag": False}, RULES
    )
    check_params(_Toy, {"hidden": None, "spec": "go", "extra": {"k": [1]}}, RULES)


def test_ranges_read_as_math() -> None:
    assert str(Range(0, 1, high_open=True)) == "in [0, 1)"
    assert str(Range(0, low_open=True)) == "> 0"
    assert str(Range(high=10)) == "≤ 10"
    assert describe(int | None) == "a whole number or null"


@pytest.mark.parametrize(
    "rule", [COUNT, FRACTION, Range(0, low_open=True), Range(high=3), Choice("a")]
)
def test_out_of_range_values_are_refused_by_their_rule(rule: Any) -> None:
    bad = out_of_range(rule)
    if isinstance(rule, Choice):
        assert bad not in rule.values
    else:
        assert not rule.accepts(bad)


@pytest.mark.parametrize(
    "hint", [int, float, str, bool, list[int], str | list[str] | None, int | None]
)
def test_wrong_values_are_refused_by_their_type(hint: Any) -> None:
    assert not matches(wrong_value(hint), hint)

"""``KEY=VALUE`` options: JSON where it parses, text otherwise, and malformed items named."""

from __future__ import annotations

import pytest

from lpm._utils.params import parse_model_params, parse_params, parse_value
from lpm.errors import LpmInputError


def test_values_are_json_when_they_parse_and_text_otherwise() -> None:
    assert parse_value("3") == 3 and parse_value("[64, 64]") == [64, 64]
    assert parse_value("go") == "go" and parse_value('"2"') == "2"
    assert parse_params(["a=1", "b=x=y"], option="--param") == {"a": 1, "b": "x=y"}


def test_model_params_group_by_model_name() -> None:
    got = parse_model_params(["linear.ridge=0.5", "lpm_fast@a.hidden=[8]", "linear.n_components=4"])
    assert got == {"linear": {"ridge": 0.5, "n_components": 4}, "lpm_fast@a": {"hidden": [8]}}


@pytest.mark.parametrize("item", ["novalue", "=3"])
def test_malformed_items_name_the_option(item: str) -> None:
    with pytest.raises(LpmInputError, match="--split-param expects KEY=VALUE"):
        parse_params([item], option="--split-param")
    with pytest.raises(LpmInputError, match="--param expects"):
        parse_model_params([item if "=" in item else "ridge=1"])

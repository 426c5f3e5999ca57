"""Docstring examples are run, so they stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "lpm.data.profiles",
    "lpm.evaluation.compare",
    "lpm.evaluation.metrics",
    "lpm.evaluation.panel",
    "lpm.evaluation.ranking",
    "lpm.priors.networks",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0

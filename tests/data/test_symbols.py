"""Perturbation symbols: ``TYPE:TARGET``, combinations in one canonical order, the control."""

from __future__ import annotations

import pytest

from lpm.data.symbols import (
    Member,
    combine,
    genetic_targets,
    is_combination,
    make_symbol,
    members,
    parse,
    perturbation_type,
)
from lpm.errors import LpmInputError


def test_make_symbol_checks_type_and_target() -> None:
    assert make_symbol("CRISPRi", " MAPK1 ") == "CRISPRi:MAPK1"
    assert make_symbol("CRISPRi", "007") == "CRISPRi:007"  # ids that look like numbers are text
    with pytest.raises(LpmInputError, match="unknown perturbation type 'crispr'"):
        make_symbol("crispr", "A")
    for bad in ("", "A+B", "x:y"):
        with pytest.raises(LpmInputError, match="invalid perturbation target"):
            make_symbol("CRISPRi", bad)


def test_combinations_are_canonical() -> None:
    assert combine(["CRISPRa:KLF1", "CRISPRa:B"]) == combine(["CRISPRa:B", "CRISPRa:KLF1"])
    assert combine(["CRISPRa:B+CRISPRa:A", "CRISPRa:A"]) == "CRISPRa:A+CRISPRa:B"
    assert members("CRISPRa:A+CRISPRa:B") == ["CRISPRa:A", "CRISPRa:B"] and members("control") == []
    assert is_combination("CRISPRa:A+CRISPRa:B") and not is_combination("CRISPRa:A")


def test_parse_and_types() -> None:
    assert parse("control") == ()
    assert parse("compound:x+CRISPRi:A") == (Member("compound", "x"), Member("CRISPRi", "A"))
    assert str(Member("CRISPRi", "A")) == "CRISPRi:A"
    for bad in ("MAPK1", "weird:A", "CRISPRi:"):
        with pytest.raises(LpmInputError, match="malformed perturbation symbol"):
            parse(bad)
    assert [perturbation_type(s) for s in ("control", "CRISPRi:A", "CRISPRi:A+CRISPRi:B")] == [
        "control",
        "CRISPRi",
        "combination",
    ]
    assert genetic_targets("CRISPRi:A+CRISPRa:B") == [("CRISPRi", "A"), ("CRISPRa", "B")]
    assert genetic_targets("CRISPRi:A+compound:x") is None

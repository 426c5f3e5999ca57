"""The LPM's vocabulary: every symbol in one pass, combinations by their members, a table
round trip, and unknown symbols named (never quietly no effect)."""

from __future__ import annotations

import polars as pl

from lpm.data import schema as S
from lpm.errors import UnknownSymbolError
from lpm.models.lpm.vocab import Vocab, member_symbols
from lpm.models.source import RowSource
from tests.conftest import boring_rows


def _vocab() -> Vocab:
    return Vocab.build(RowSource(frame=boring_rows()))


def test_build_collects_sorted_symbols_and_the_members_of_combinations() -> None:
    v = _vocab()
    assert v.contexts == ["toy/A", "toy/B", "toy/C"]
    assert len(v.readouts) == 12 and v.readouts == sorted(v.readouts)
    assert "CRISPRi:G0+CRISPRi:G1" in v.perturbations
    assert "CRISPRi:G0+CRISPRi:G1" not in v.members and "CRISPRi:G1" in v.members
    row = v.perturbation_index["CRISPRi:G0+CRISPRi:G1"]
    members = [v.members[i] for i in v.member_matrix[row] if i >= 0]
    assert members == ["CRISPRi:G0", "CRISPRi:G1"]
    assert member_symbols(S.CONTROL) == [S.CONTROL]


def test_tables_round_trip_and_control_is_added_once() -> None:
    v = _vocab()
    again = Vocab.from_tables(v.to_tables())
    assert (again.contexts, again.members, again.perturbations) == (
        v.contexts, v.members, v.perturbations,
    )  # fmt: skip
    with_control = v.with_control().with_control()
    assert with_control.perturbations.count(S.CONTROL) == 1


def test_unknown_symbols_are_named_and_new_combinations_of_known_members_are_not() -> None:
    v = _vocab()
    rows = pl.DataFrame(
        {
            S.CONTEXT: ["toy/A", "toy/A"],
            S.PERTURBATION: ["CRISPRi:G4+CRISPRi:G5", "CRISPRi:G4"],
            S.READOUT: ["G1", "G1"],
        }
    )
    assert v.unknown(rows) is None  # a new pair of known members is predicted from them
    err = v.unknown(rows.with_columns(pl.lit("CRISPRi:NEW").alias(S.PERTURBATION)))
    assert isinstance(err, UnknownSymbolError) and "CRISPRi:NEW" in str(err)
    err = v.unknown(rows.with_columns(pl.lit("toy/Z").alias(S.CONTEXT)))
    assert isinstance(err, UnknownSymbolError) and err.kind == S.CONTEXT

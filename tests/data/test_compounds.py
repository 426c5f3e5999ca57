"""The store's compound table: written with the store, hashed, merged, absent from older stores."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from lpm.data.compounds import merge_compounds
from lpm.data.store import merge_stores, open_store, write_store
from lpm.errors import LpmInputError

ROWS = pl.DataFrame(
    {
        "context": ["d/A", "d/A", "d/A"],
        "perturbation": ["compound:a", "compound:b", "CRISPRi:G1"],
        "readout": ["R1", "R1", "R1"],
        "value": [0.1, 0.2, 0.3],
    }
)


def _table(*rows: tuple[str, str | None, str | None]) -> pl.DataFrame:
    schema = dict.fromkeys(("perturbation", "compound_id", "smiles"), pl.String)
    return pl.DataFrame(list(rows), schema=schema, orient="row")


def test_written_hashed_and_read_back(tmp_path: Path) -> None:
    table = _table(
        ("compound:b", "BRD-K2", "CCO"), ("compound:a", None, None), ("compound:z", "x", "C")
    )
    store = write_store(ROWS, tmp_path / "s", compounds=table)
    back = store.compounds()
    assert back is not None
    assert back["perturbation"].to_list() == ["compound:a", "compound:b"]  # unmeasured z left out
    assert "compounds.parquet" in json.loads((tmp_path / "s" / "store.json").read_text())["files"]
    (tmp_path / "s" / "compounds.parquet").write_bytes(b"changed")
    with pytest.raises(LpmInputError, match=r"compounds\.parquet was changed"):
        open_store(tmp_path / "s")


def test_stores_without_a_table_and_bad_tables(tmp_path: Path) -> None:
    assert write_store(ROWS, tmp_path / "plain").compounds() is None
    with pytest.raises(LpmInputError, match="names 'compound:a' more than once"):
        write_store(
            ROWS,
            tmp_path / "dup",
            compounds=_table(("compound:a", None, "C"), ("compound:a", None, "CC")),
        )
    with pytest.raises(LpmInputError, match="'CRISPRi:G1' is not a compound symbol"):
        write_store(ROWS, tmp_path / "gene", compounds=_table(("CRISPRi:G1", None, None)))


def test_merge_keeps_every_id_and_the_first_smiles(tmp_path: Path) -> None:
    merged = merge_compounds(
        [
            _table(("compound:a", "BRD-1", None)),
            _table(("compound:a", "BRD-2|BRD-1", "CC"), ("compound:b", None, None)),
        ]
    )
    assert merged is not None
    assert merged.rows() == [("compound:a", "BRD-1|BRD-2", "CC"), ("compound:b", None, None)]
    assert merge_compounds([]) is None
    one = write_store(ROWS, tmp_path / "one", compounds=_table(("compound:a", "BRD-1", "C")))
    two = write_store(ROWS.with_columns(pl.lit("e/B").alias("context")), tmp_path / "two")
    joint = merge_stores([one, two], tmp_path / "joint")
    assert joint.compounds() is not None and joint.compounds().height == 1

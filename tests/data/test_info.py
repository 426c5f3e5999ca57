"""What ``lpm info`` says about a store: contexts, perturbation types, values, gene mapping."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lpm.data.info import format_info, gene_mapping_lines, store_info
from lpm.data.store import write_store


def test_info_counts_contexts_types_and_values(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    rows = pl.concat(
        [
            toy_rows,
            toy_rows.filter(pl.col("perturbation") == "CRISPRi:G0").with_columns(
                pl.lit("control").alias("perturbation")
            ),
        ]
    )
    store = write_store(rows, tmp_path / "s")
    info = store_info(store)
    assert info.rows == rows.height and info.content_hash == store.meta.content_hash
    assert info.contexts["context"].to_list() == ["toy/A", "toy/B", "toy/C"]
    assert dict(info.perturbation_types.iter_rows()) == {
        "CRISPRi": 6,
        "combination": 2,
        "control": 1,
    }
    assert info.n_readouts == 12 and info.values["rows"].to_list() == [rows.height]
    text = format_info(info)
    assert f"hash       {store.meta.content_hash}" in text
    assert "gene symbols: not harmonised" in text


def test_gene_mapping_lines_read_nested_notes() -> None:
    record = {
        "harmonised": True,
        "readouts": {"renamed": 2, "unmapped": 1, "n": 10, "unmapped_examples": ["X1"]},
    }
    notes = {"merged": {"a.csv": {"genes": record}}}
    assert gene_mapping_lines(notes) == ["a.csv: readouts: 2 renamed, 1 of 10 unmapped (e.g. X1)"]

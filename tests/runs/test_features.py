"""``lpm features`` and ``lpm prior-embedding`` as library calls: the output is checked before the
work, an existing file is kept unless asked, and the table is written whole."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.runs.features import (
    compound_features_to_file,
    context_features_to_file,
    gene_features_to_file,
    prior_embedding_to_file,
)


def _gene2go(path: Path) -> Path:
    rows = "".join(f"G{i}\tGO:{i % 3}\nG{i}\tGO:{i % 4 + 10}\n" for i in range(8))
    path.write_text("symbol\tgo_id\n" + rows)
    return path


def test_prior_embedding_writes_and_keeps_an_existing_file(tmp_path: Path) -> None:
    gene2go = _gene2go(tmp_path / "g.tsv")
    out = tmp_path / "e.parquet"
    table = prior_embedding_to_file(gene2go, out, dims=2)
    assert pl.read_parquet(out).equals(table)
    out.write_text("mine")
    with pytest.raises(LpmInputError, match=r"already exists \(pass --overwrite"):
        prior_embedding_to_file(gene2go, out, dims=2)
    assert out.read_text() == "mine"
    prior_embedding_to_file(gene2go, out, dims=2, overwrite=True)
    assert pl.read_parquet(out).equals(table)
    with pytest.raises(LpmInputError, match="--dims must be between 1 and 1024"):
        prior_embedding_to_file(gene2go, tmp_path / "x.parquet", dims=0)


def test_each_command_checks_its_output_before_the_work(tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    out.write_text("mine")
    folder = tmp_path / "folder"
    folder.mkdir()
    for call in (
        lambda target, **kw: gene_features_to_file(target, **kw),
        lambda target, **kw: compound_features_to_file(tmp_path / "no_store", target, **kw),
        lambda target, **kw: context_features_to_file(target, store=tmp_path / "no_store", **kw),
        lambda target, **kw: prior_embedding_to_file(tmp_path / "no.tsv", target, **kw),
    ):
        with pytest.raises(LpmInputError, match="already exists"):
            call(out)
        with pytest.raises(LpmInputError, match="is a folder; an output file cannot replace it"):
            call(folder, overwrite=True)
    assert out.read_text() == "mine"


def test_context_features_need_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(LpmInputError, match="give exactly one of --h5ad, --truth, --store"):
        context_features_to_file(tmp_path / "f.parquet")
    with pytest.raises(LpmInputError, match="--epochs must be at least 0"):
        context_features_to_file(tmp_path / "f.parquet", store=tmp_path, epochs=-1)

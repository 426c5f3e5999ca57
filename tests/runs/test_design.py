"""``lpm design`` as library calls: symbol files read as text, outputs checked before the work."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lpm.data.store import write_store
from lpm.design.loop import LoopConfig
from lpm.errors import LpmInputError
from lpm.runs.design import design_loop_to_dir, read_symbols, select_to_file
from tests.design.test_loop import chain_world


def test_symbol_files_keep_numeric_looking_ids_as_text(tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("gene,score\n007,1\n2,0.5\n1e3,2\n")
    assert read_symbols(csv) == ["007", "2", "1e3"]
    txt = tmp_path / "c.txt"
    txt.write_text("# ids\n007\n2\n")
    assert read_symbols(txt) == ["007", "2"]
    floats = tmp_path / "c.parquet"
    pl.DataFrame({"gene": [2.0, 7.0]}).write_parquet(floats)
    with pytest.raises(LpmInputError, match="column 'gene' holds Float64 values, not text"):
        read_symbols(floats)


def test_select_chooses_among_numeric_looking_candidates(tmp_path: Path) -> None:
    edges = tmp_path / "edges.csv"
    edges.write_text("source,target\n1,2\n2,3\n3,007\n")
    candidates = tmp_path / "candidates.csv"
    candidates.write_text("gene\n1\n2\n3\n007\n")
    selected = tmp_path / "selected.txt"
    selected.write_text("007\n")
    table = select_to_file(
        tmp_path / "sel.csv", k=2, graph=str(edges), hops=1, candidates=candidates,
        selected=selected,
    )  # fmt: skip
    assert set(table["gene"].to_list()) <= {"1", "2", "3"}
    written = pl.read_csv(tmp_path / "sel.csv", schema_overrides={"gene": pl.String})
    assert written["gene"].to_list() == table["gene"].to_list()


def test_select_refuses_an_existing_file_before_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "sel.csv"
    out.write_text("mine")

    def no_graph(spec: str) -> None:
        raise AssertionError("the graph was read before the output was checked")

    monkeypatch.setattr("lpm.priors.gene_graph.graph_source", no_graph)
    with pytest.raises(LpmInputError, match=r"already exists \(pass --overwrite"):
        select_to_file(out, k=1, graph="go")
    assert out.read_text() == "mine"


def test_select_overwrites_only_when_asked(tmp_path: Path) -> None:
    rows, edges = chain_world(tmp_path)
    write_store(rows, tmp_path / "s")
    out = tmp_path / "sel.parquet"
    out.write_text("mine")
    select_to_file(out, k=3, graph=str(edges), hops=1, store=tmp_path / "s", overwrite=True)
    assert pl.read_parquet(out).height == 3


def test_loop_refuses_an_existing_output_before_reading_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "loop"
    out.mkdir()

    def no_store(path: object) -> None:
        raise AssertionError("the store was read before the output was checked")

    monkeypatch.setattr("lpm.data.store.open_store", no_store)
    with pytest.raises(LpmInputError, match=r"already exists \(pass --overwrite"):
        design_loop_to_dir(tmp_path / "s", out, strategies=["random"], config=LoopConfig())
    file_out = tmp_path / "loop.txt"
    file_out.write_text("mine")
    with pytest.raises(LpmInputError, match="is a file"):
        design_loop_to_dir(
            tmp_path / "s", file_out, strategies=["random"], config=LoopConfig(), overwrite=True
        )

"""``lpm design select`` and ``lpm design loop`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from lpm.data.store import write_store
from tests.conftest import lpm
from tests.design.test_loop import chain_world


def test_design_select_from_a_store_and_from_genes(tmp_path: Path) -> None:
    rows, edges = chain_world(tmp_path)
    write_store(rows, tmp_path / "s")
    proc = lpm("design", "select", "--store", str(tmp_path / "s"), "--graph", str(edges),
               "--k", "5", "--hops", "1", "--out", str(tmp_path / "sel.csv"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sel = pl.read_csv(tmp_path / "sel.csv")
    assert sel["rank"].to_list() == [1, 2, 3, 4, 5]
    assert sel["perturbation"].str.starts_with("CRISPRi:").all()
    assert (sel["perturbation"].str.slice(8) == sel["gene"]).all()
    assert sel["gain"][0] == 3  # a gene in the chain's middle covers itself and two neighbours
    assert "within 1 hops" in proc.stdout
    genes = tmp_path / "genes.txt"
    genes.write_text("# candidates\nG01\nG02\nG03\nG10\n")
    proc = lpm("design", "select", "--candidates", str(genes), "--graph", str(edges),
               "--k", "2", "--method", "spectral", "--out", str(tmp_path / "sel.parquet"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert pl.read_parquet(tmp_path / "sel.parquet")["gene"].n_unique() == 2


def test_design_select_errors_are_one_line(tmp_path: Path) -> None:
    rows, edges = chain_world(tmp_path)
    write_store(rows, tmp_path / "s")
    proc = lpm("design", "select", "--store", str(tmp_path / "s"), "--graph", str(edges),
               "--k", "5", "--method", "magic", "--out", str(tmp_path / "x.csv"))  # fmt: skip
    assert proc.returncode == 2 and "--method must be one of" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x.csv").exists()
    proc = lpm("design", "select", "--store", str(tmp_path / "s"), "--graph", str(edges),
               "--k", "500", "--out", str(tmp_path / "x.csv"))  # fmt: skip
    assert proc.returncode == 2 and "error:" in proc.stderr
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_design_loop_writes_rounds_acquisitions_and_figure(tmp_path: Path) -> None:
    rows, edges = chain_world(tmp_path)
    write_store(rows, tmp_path / "s")
    out = tmp_path / "loop"
    proc = lpm(
        "design", "loop", "--store", str(tmp_path / "s"), "--graph", str(edges),
        "--strategies", "random,coverage", "--initial", "6", "--batch", "4", "--rounds", "2",
        "--param", "epochs=2", "--param", "hidden=8", "--param", f"readout_graph={edges}",
        "--seed", "2", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for name in ("rounds.csv", "acquired.csv", "summary.csv", "universe.csv", "design.json"):
        assert (out / name).is_file(), name
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    rounds = pl.read_csv(out / "rounds.csv")
    assert rounds.height == 6 and rounds["pearson_delta"].is_finite().all()
    meta = json.loads((out / "design.json").read_text())
    assert meta["n_excluded"] == 2 and meta["config"]["seed"] == 2
    proc = lpm("design", "loop", "--store", str(tmp_path / "s"), "--graph", str(edges),
               "--strategies", "random", "--out", str(out))  # fmt: skip
    assert proc.returncode == 2 and "already exists" in proc.stderr
    proc = lpm("design", "loop", "--store", str(tmp_path / "s"), "--graph", str(edges),
               "--strategies", "oracle", "--out", str(tmp_path / "o"))  # fmt: skip
    assert proc.returncode == 2 and "unknown strategy 'oracle'" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_design_select_keeps_an_existing_file_without_overwrite(tmp_path: Path) -> None:
    rows, edges = chain_world(tmp_path)
    write_store(rows, tmp_path / "s")
    out = tmp_path / "sel.csv"
    out.write_text("mine")
    select = ("design", "select", "--store", str(tmp_path / "s"), "--graph", str(edges),
              "--k", "3", "--hops", "1", "--out", str(out))  # fmt: skip
    proc = lpm(*select)
    assert proc.returncode == 2 and "already exists (pass --overwrite" in proc.stderr
    assert out.read_text() == "mine"
    proc = lpm(*select, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert pl.read_csv(out)["rank"].to_list() == [1, 2, 3]


def test_design_loop_counts_below_their_minimum_are_one_line_errors(tmp_path: Path) -> None:
    for option, value in (("--rounds", "-1"), ("--batch", "0"), ("--top-fraction", "-1")):
        proc = lpm("design", "loop", "--store", str(tmp_path / "none"), "--out",
                   str(tmp_path / "loop"), option, value)  # fmt: skip
        assert proc.returncode == 2 and f"error: {option} must be" in proc.stderr
        assert "Traceback" not in proc.stderr

"""``benchmark_to_dir``: the output folder is checked before the work, refused when it exists
(a user's files in it survive), replaced whole with ``overwrite``, never made of a file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import lpm.runs.benchmark as runs_benchmark
from lpm.data.store import write_store
from lpm.errors import LpmInputError
from lpm.runs.benchmark import benchmark_to_dir

BASELINES = ["no_change", "perturbation_mean"]


def _bench(store: Path, out: Path, **kw: object) -> Path:
    return benchmark_to_dir(
        [store], split="unseen_pair", models=BASELINES, seeds=[0], out=out, n_boot=10, **kw
    )


@pytest.fixture
def store(toy_rows: pl.DataFrame, tmp_path: Path) -> Path:
    return write_store(toy_rows, tmp_path / "store").path


def test_writes_tables_report_and_figure(store: Path, tmp_path: Path) -> None:
    report = _bench(store, tmp_path / "out", command=["lpm", "benchmark"])
    assert report == tmp_path / "out" / "results.md"
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"results.csv", "scores_per_seed.csv", "coverage.csv", "run.json", "results.md"} <= names
    assert set(pl.read_csv(tmp_path / "out" / "results.csv")["model"]) == set(BASELINES)


def test_an_existing_folder_is_refused_before_the_work_and_kept(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the benchmark ran before its output was checked")

    monkeypatch.setattr(runs_benchmark, "run_benchmark", no_work)
    with pytest.raises(LpmInputError, match=r"already exists \(pass --overwrite"):
        _bench(store, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_the_folder_whole(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("old run")
    _bench(store, out, overwrite=True)
    assert not (out / "notes.txt").exists() and (out / "results.csv").is_file()


def test_a_file_is_never_turned_into_a_folder(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.write_text("a user's file")
    for overwrite in (False, True):
        with pytest.raises(LpmInputError, match="is a file; an output folder cannot replace it"):
            _bench(store, out, overwrite=overwrite)
    assert out.read_text() == "a user's file"


@pytest.mark.parametrize("seeds", [[], list(range(1001))])
def test_seed_counts_outside_1_to_1000_are_refused(
    store: Path, tmp_path: Path, seeds: list[int]
) -> None:
    with pytest.raises(LpmInputError, match=r"--seeds must be between 1 and 1000"):
        benchmark_to_dir(
            [store], split="unseen_pair", models=BASELINES, seeds=seeds, out=tmp_path / "out"
        )
    assert not (tmp_path / "out").exists()

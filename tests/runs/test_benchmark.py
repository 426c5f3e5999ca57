"""``benchmark_to_dir``: the output folder is checked before the work, refused when it exists
(a user's files in it survive), replaced whole with ``overwrite``, never made of a file; it
keeps one checkpoint per neural fit (none with ``checkpoints=False``) and nothing in the
temporary folder; a model not applicable to the data is marked in every output."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import lpm.runs.benchmark as runs_benchmark
from lpm.data.store import write_store
from lpm.errors import LpmInputError
from lpm.runs.benchmark import benchmark_to_dir, not_applicable_notes
from tests.conftest import SMALL_LPM

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


def _spy_on_temp(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> list[str]:
    """Make ``tmp`` the temporary folder and record what is created in it."""
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    made: list[str] = []
    for name in ("mkdtemp", "mkstemp"):
        real = getattr(tempfile, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            out = _real(*args, **kwargs)
            path = out if isinstance(out, str) else out[1]
            if Path(path).resolve().is_relative_to(tmp.resolve()):
                made.append(path)
            return out

        monkeypatch.setattr(tempfile, name, spy)
    return made


NEURAL = {"lpm_fast": {**SMALL_LPM, "max_epochs": 3}, "peper": {"epochs": 2}}


@pytest.mark.usefixtures("one_torch_thread")
def test_one_checkpoint_per_fit_in_the_output_and_nothing_in_the_temp_folder(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _spy_on_temp(monkeypatch, tmp_path / "tmp")
    out = tmp_path / "out"
    benchmark_to_dir(
        [store], split="unseen_pair", models=["no_change", "lpm_fast", "peper"], seeds=[0, 1],
        out=out, n_boot=10, model_params=NEURAL,
    )  # fmt: skip
    kept = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ckpt"))
    assert kept == [
        f"checkpoints/seed{s}/{m}/best.ckpt" for s in (0, 1) for m in ("lpm_fast", "peper")
    ]
    assert json.loads((out / "run.json").read_text())["checkpoints"] == "checkpoints"
    assert made == [] and not any((tmp_path / "tmp").iterdir())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no leftovers


@pytest.mark.usefixtures("one_torch_thread")
def test_no_checkpoints_writes_none(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    benchmark_to_dir(
        [store], split="unseen_pair", models=["no_change", "lpm_fast"], seeds=[0], out=out,
        n_boot=10, model_params=NEURAL, checkpoints=False,
    )  # fmt: skip
    assert not list(out.rglob("*.ckpt")) and not (out / "checkpoints").exists()
    assert json.loads((out / "run.json").read_text())["checkpoints"] is None
    assert not list(tmp_path.rglob("*.ckpt"))


def test_a_model_not_applicable_is_marked_in_every_output(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    compounds = toy_rows.with_columns(
        pl.col("perturbation").str.replace_all("CRISPRi:G", "compound:D")
    )
    store = write_store(compounds, tmp_path / "compounds").path
    out = tmp_path / "out"
    benchmark_to_dir(
        [store], split="unseen_pair", models=[*BASELINES, "gene_graph"], seeds=[0, 1], out=out,
        n_boot=10, model_params={"gene_graph": {"graph": "none"}},
    )  # fmt: skip
    na = pl.read_csv(out / "not_applicable.csv")
    assert na["model"].to_list() == ["gene_graph", "gene_graph"]
    assert set(na["reason"]) == {"gene_graph: no genetic perturbation rows to train on"}
    assert set(pl.read_csv(out / "results.csv")["model"]) == set(BASELINES)
    text = (out / "results.md").read_text()
    assert (
        "| gene_graph | all | fit | gene_graph: no genetic perturbation rows to train on |" in text
    )
    assert not_applicable_notes(out) == [
        "not applicable: gene_graph (fit, seeds 0, 1): "
        "gene_graph: no genetic perturbation rows to train on"
    ]

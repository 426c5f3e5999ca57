"""The command line: thin over the library, one-line errors with exit code 2, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from lpm.data.store import write_store
from tests.conftest import error_line, lpm


def test_info_on_a_missing_store_is_one_line(tmp_path: Path) -> None:
    proc = lpm("info", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert "not an lpm store" in error_line(proc)
    assert "Traceback" not in proc.stderr


def test_train_predict_evaluate_round(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    write_store(toy_rows, tmp_path / "s")
    proc = lpm(
        "train",
        "--store",
        str(tmp_path / "s"),
        "--model",
        "linear",
        "--out",
        str(tmp_path / "m"),
        "--split",
        "unseen_pair",
        "--param",
        "n_components=4",
    )
    assert proc.returncode == 0, proc.stderr
    proc = lpm(
        "predict",
        "--model",
        str(tmp_path / "m"),
        "--store",
        str(tmp_path / "s"),
        "--split",
        "unseen_pair",
        "--out",
        str(tmp_path / "p.parquet"),
    )
    assert proc.returncode == 0, proc.stderr
    pred = pl.read_parquet(tmp_path / "p.parquet")
    assert pred.height > 0 and pred["prediction"].is_finite().all()
    proc = lpm(
        "evaluate",
        str(tmp_path / "p.parquet"),
        "--store",
        str(tmp_path / "s"),
        "--out",
        str(tmp_path / "ev"),
    )
    assert proc.returncode == 0, proc.stderr
    summary = pl.read_csv(tmp_path / "ev" / "summary.csv")
    assert "pearson_delta" in summary["metric"].to_list()


def test_unknown_perturbation_at_prediction_is_refused_and_nothing_written(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    write_store(toy_rows, tmp_path / "s")
    assert (
        lpm(
            "train",
            "--store",
            str(tmp_path / "s"),
            "--model",
            "perturbation_mean",
            "--out",
            str(tmp_path / "m"),
        ).returncode
        == 0
    )
    rows = toy_rows.head(3).with_columns(pl.lit("CRISPRi:NOVEL").alias("perturbation"))
    rows.write_csv(tmp_path / "rows.csv")
    proc = lpm(
        "predict",
        "--model",
        str(tmp_path / "m"),
        "--rows",
        str(tmp_path / "rows.csv"),
        "--out",
        str(tmp_path / "p.parquet"),
    )
    assert proc.returncode == 2
    assert "unknown perturbation(s)" in error_line(proc) and "CRISPRi:NOVEL" in proc.stderr
    assert not (tmp_path / "p.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_model_parameter_names_the_valid_ones(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    write_store(toy_rows, tmp_path / "s")
    proc = lpm(
        "train",
        "--store",
        str(tmp_path / "s"),
        "--model",
        "linear",
        "--out",
        str(tmp_path / "m"),
        "--param",
        "bogus=1",
    )
    assert proc.returncode == 2
    assert "no parameter(s) bogus" in error_line(proc)
    assert not (tmp_path / "m").exists()


def test_truncated_input_file_fails_in_one_line_and_writes_no_store(tmp_path: Path) -> None:
    src = tmp_path / "plate.gct"
    src.write_text(
        "#1.3\n3\t2\t1\t1\nid\tpr_gene_symbol\tS1\tS2\npert_type\tna\tctl_vehicle\ttrt_cp\nP1\tA\t1.0\t2.0\n"
    )
    proc = lpm("ingest", str(src), "--out", str(tmp_path / "store"))
    assert proc.returncode == 2
    line = error_line(proc)
    assert str(src) in line and "truncated" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plate.gct"]


def test_every_command_refuses_a_store_changed_after_it_was_written(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    store = write_store(toy_rows, tmp_path / "s")
    data = store.path / "measurements.parquet"
    rows = pl.read_parquet(data)
    rows.with_columns(pl.col("value") * 2).write_parquet(data)  # one way a user edits it
    expected = "measurements.parquet was changed after the store was written (content hash differs)"
    for args in (
        ("info", str(store.path)),
        ("train", "--store", str(store.path), "--model", "no_change", "--out", str(tmp_path / "m")),
        ("benchmark", "--store", str(store.path), "--split", "random", "--models", "no_change",
         "--seeds", "1", "--out", str(tmp_path / "b")),
    ):  # fmt: skip
        proc = lpm(*args)
        assert proc.returncode == 2, proc.stderr
        assert expected in error_line(proc)
        assert "hash       sha256" not in proc.stdout  # info prints no stale hash
    assert not (tmp_path / "m").exists() and not (tmp_path / "b").exists()


def test_benchmark_seeds_outside_1_to_1000_are_one_line_errors(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    write_store(toy_rows, tmp_path / "s")
    for seeds in ("0", "-2", "100000000000"):
        proc = lpm("benchmark", "--store", str(tmp_path / "s"), "--split", "random",
                   "--models", "no_change", "--seeds", seeds, "--out", str(tmp_path / "b"))  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert error_line(proc) == f"error: --seeds must be between 1 and 1000, got {seeds}"
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_benchmark_and_evaluate_keep_an_existing_output_without_overwrite(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    write_store(toy_rows, tmp_path / "s")
    held = toy_rows.filter(pl.col("perturbation") == "CRISPRi:G0")
    held.with_columns(pl.col("value").alias("prediction")).write_parquet(tmp_path / "p.parquet")
    folder, file = tmp_path / "kept", tmp_path / "kept.txt"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    file.write_text("mine")
    bench = ("benchmark", "--store", str(tmp_path / "s"), "--split", "random", "--models",
             "no_change", "--seeds", "1", "--n-boot", "10")  # fmt: skip
    evaluate = ("evaluate", str(tmp_path / "p.parquet"), "--store", str(tmp_path / "s"))
    for command in (bench, evaluate):
        proc = lpm(*command, "--out", str(folder))
        assert proc.returncode == 2 and "already exists (pass --overwrite" in error_line(proc)
        proc = lpm(*command, "--out", str(file), "--overwrite")
        assert proc.returncode == 2 and "is a file" in error_line(proc)
        assert (folder / "notes.txt").read_text() == file.read_text() == "mine"
    for command in (bench, evaluate):
        proc = lpm(*command, "--out", str(tmp_path / command[0]))
        assert proc.returncode == 0, proc.stderr
        proc = lpm(*command, "--out", str(tmp_path / command[0]), "--overwrite")
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "benchmark" / "results.csv").is_file()
    assert (tmp_path / "evaluate" / "summary.csv").is_file()


def test_two_ingests_to_one_store_started_together_one_wins(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "rows.parquet"
    toy_rows.write_parquet(source)
    out = tmp_path / "store"
    command = [sys.executable, "-m", "lpm.cli", "ingest", str(source), "--out", str(out)]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    results = [(p.returncode, err) for p, err in zip(procs, errors, strict=True)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "already exists" in loser or "another lpm run" in loser
    from lpm.data.store import open_store

    store = open_store(out)  # whole: its content hash verifies
    assert store.n_rows == toy_rows.height
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.parquet", "store"]

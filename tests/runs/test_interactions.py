"""``lpm interactions`` as a run (``lpm.runs.interactions``): outputs written whole, an existing
folder kept unless ``--overwrite``, a model's predicted doubles typed beside the measured ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpm.cli import app
from lpm.data.store import write_store
from lpm.errors import LpmInputError
from lpm.runs.interactions import run_interactions
from lpm.tasks.interactions import TYPES
from tests.tasks.test_interactions import built_truth, synthetic_rows


def test_cli_writes_outputs_atomically(tmp_path: Path) -> None:
    rows = synthetic_rows()
    write_store(rows, tmp_path / "store")
    truth = tmp_path / "truth"
    truth.mkdir()
    built_truth().rename({"type": "interaction"}).write_parquet(truth / "pair_types.parquet")
    out = tmp_path / "gi"
    runner = CliRunner()
    result = runner.invoke(
        app, ["interactions", str(tmp_path / "store"), "--out", str(out), "--truth", str(truth)]
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"interactions.csv", "interactions.parquet", "interactions.png", "summary.json"} <= names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["truth"]["accuracy"] == 1.0
    assert summary["types"] == {t: 1 for t in TYPES}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gi.")]  # no temp left
    # an existing folder is kept unless --overwrite; a failing run leaves it untouched
    result = runner.invoke(app, ["interactions", str(tmp_path / "store"), "--out", str(out)])
    assert isinstance(result.exception, LpmInputError)
    assert "already exists" in str(result.exception)
    result = runner.invoke(
        app,
        [
            *("interactions", str(tmp_path / "store"), "--out", str(out), "--overwrite"),
            *("--norman", str(tmp_path / "absent.csv")),
        ],
    )
    assert isinstance(result.exception, LpmInputError)
    assert (out / "summary.json").read_text() == json.dumps(summary, indent=2) + "\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gi.")]


def test_cli_types_a_models_predicted_doubles(tmp_path: Path) -> None:
    from lpm.runs.train import train_model

    write_store(synthetic_rows(), tmp_path / "store")
    train_model(
        [tmp_path / "store"], model="linear", out=tmp_path / "m", params={"n_components": 4}
    )
    out = tmp_path / "gi"
    result = CliRunner().invoke(
        app,
        [
            "interactions",
            str(tmp_path / "store"),
            "--out",
            str(out),
            "--model",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profiles"] == "predicted doubles, measured singles"
    assert summary["n_unpredictable_doubles"] == 0
    assert summary["vs_measured"]["n_pairs"] == len(TYPES)


def test_the_output_is_checked_before_the_store_is_read(tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    with pytest.raises(LpmInputError, match="is a file"):
        run_interactions(tmp_path / "no_store", out=a_file, overwrite=True)
    assert a_file.read_text() == "mine"
    write_store(synthetic_rows(), tmp_path / "store")
    with pytest.raises(LpmInputError, match=r"store: no rows in context 'other/X'"):
        run_interactions(tmp_path / "store", out=tmp_path / "gi", context="other/X")
    assert not (tmp_path / "gi").exists()

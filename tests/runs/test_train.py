"""``lpm train`` as a run: hardware goes to the engine and into training.json (never into the
model), a failed run leaves nothing that blocks the corrected one, Ctrl-C exits 130 saying what
was kept, and the rerun says it resumed and from which epoch."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.data.store import write_store
from lpm.errors import Interrupted, LpmInputError
from lpm.runs.train import train_model
from tests.conftest import boring_rows

SMALL: dict[str, Any] = {"embedding_dim": 4, "hidden": [8], "max_epochs": 2}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    write_store(boring_rows(), tmp_path / "s")
    return tmp_path / "s"


def test_hardware_options_are_refused_for_a_model_the_engine_does_not_train(
    store: Path, tmp_path: Path
) -> None:
    with pytest.raises(
        LpmInputError,
        match="'linear' is not trained by the Lightning engine: it takes no --devices",
    ):
        train_model([store], model="linear", out=tmp_path / "m", devices=2)
    assert not (tmp_path / "m").exists()


def test_an_existing_output_is_refused_before_any_work(store: Path, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(LpmInputError, match="already exists"):
        train_model([store], model="lpm_fast", out=tmp_path / "m", params={"max_epochs": 0})


def test_the_run_records_hardware_beside_the_model_not_in_it(store: Path, tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    model = train_model(
        [store], model="lpm_fast", out=tmp_path / "m", params=SMALL, seed=3, accelerator="cpu"
    )
    config = json.loads((tmp_path / "m" / "model.json").read_text())
    assert not {"devices", "strategy", "accelerator", "checkpoint_dir", "progress"} & set(
        config["params"]
    )
    record = json.loads((tmp_path / "m" / "training.json").read_text())
    assert record["params"] == {**SMALL, "seed": 3}  # the run's seed reached the model
    assert record["trainer"] == {
        "devices": 1,
        "strategy": "auto",
        "accelerator": "cpu",
        "checkpoint_dir": str(tmp_path / "m.checkpoints"),
    }
    assert model.get_params()["seed"] == 3
    assert not (tmp_path / "m.checkpoints").exists()  # finished: nothing left to resume


def test_a_failed_run_leaves_nothing_that_blocks_the_corrected_one(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("lightning")
    import lpm.models.lpm.model as lpm_model

    real = lpm_model.run_fit

    def fails(*args: Any, **kwargs: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(lpm_model, "run_fit", fails)
    with pytest.raises(
        LpmInputError, match="ran out of memory; lower embedding_dim=4, hidden=\\[8\\]"
    ):
        train_model([store], model="lpm_fast", out=tmp_path / "m", params=SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    monkeypatch.setattr(lpm_model, "run_fit", real)
    train_model([store], model="lpm_fast", out=tmp_path / "m", params={**SMALL, "hidden": [4]})
    assert (tmp_path / "m" / "model.json").is_file()


def test_ctrl_c_before_a_checkpoint_writes_nothing(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("lightning")
    import lpm.models.lpm.model as lpm_model

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lpm_model, "run_fit", interrupted)
    with pytest.raises(Interrupted, match=r"^interrupted; nothing written$"):
        train_model([store], model="lpm_fast", out=tmp_path / "m", params=SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


# ---- Ctrl-C and resume from the command line ----------------------------------------------------
def _train_command(store: Path, out: Path, params: dict[str, Any], model: str) -> list[str]:
    command = [sys.executable, "-m", "lpm.cli", "train", "--store", str(store)]
    command += ["--model", model, "--out", str(out)]
    for key, value in params.items():
        command += ["--param", f"{key}={json.dumps(value)}"]
    return command


def _interrupt_when(command: list[str], ready: Path, log: Path) -> subprocess.CompletedProcess[str]:
    """Start ``command``, send SIGINT once ``ready`` exists, and wait for it to end."""
    with log.open("w") as err:
        proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 240
            while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proc.poll() is None, (
                f"the run ended before it could be interrupted:\n{log.read_text()}"
            )
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    return subprocess.CompletedProcess(command, code, "", log.read_text())


def _big_rows(n_pert: int = 200, n_read: int = 200) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(n_pert, 3)), rng.normal(size=(3, n_read))
    values = (u @ v).ravel()
    return pl.DataFrame(
        {
            "context": ["toy/A"] * (n_pert * n_read),
            "perturbation": np.repeat([f"CRISPRi:G{i}" for i in range(n_pert)], n_read),
            "readout": np.tile([f"R{j}" for j in range(n_read)], n_pert),
            "value": values,
        }
    )


@pytest.mark.slow
def test_ctrl_c_during_the_first_epoch_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    write_store(_big_rows(), tmp_path / "s")
    params = {"hidden": [256, 256], "batch_size": 64, "max_epochs": 50, "val_fraction": 0}
    out = tmp_path / "m"
    command = _train_command(tmp_path / "s", out, params, "lpm")
    ready = tmp_path / "m.checkpoints" / "run.json"  # training has begun; no epoch ended yet
    proc = _interrupt_when(command, ready, tmp_path / "first.log")
    assert not (tmp_path / "m.checkpoints" / "member0" / "last.ckpt").exists()
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "interrupted; nothing written", proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.log", "s"]


@pytest.mark.slow
def test_ctrl_c_keeps_the_checkpoint_and_the_rerun_says_from_which_epoch_it_resumes(
    tmp_path: Path,
) -> None:
    write_store(boring_rows(), tmp_path / "s")
    params = {**SMALL, "hidden": [32], "max_epochs": 400, "val_fraction": 0, "batch_profiles": 1}
    out = tmp_path / "m"
    command = _train_command(tmp_path / "s", out, params, "lpm_fast")
    last = tmp_path / "m.checkpoints" / "member0" / "last.ckpt"
    proc = _interrupt_when(command, last, tmp_path / "first.log")
    assert proc.returncode == 130, proc.stderr
    kept = tmp_path / "m.checkpoints"
    assert proc.stderr.strip().splitlines()[-1] == f"interrupted; checkpoint kept at {kept}"
    assert "Traceback" not in proc.stderr and not out.exists() and last.is_file()
    again = subprocess.run(
        _train_command(tmp_path / "s", out, {**params, "max_epochs": 400}, "lpm_fast"),
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    said = re.search(r"resuming from .* (\d+) of 400 epochs done", " ".join(again.stderr.split()))
    assert said is not None and int(said.group(1)) >= 1, again.stderr
    assert out.is_dir() and not kept.exists()

"""The LPM (``lpm`` exact mode, ``lpm_fast`` fast mode): it learns, mixes binary and continuous
readouts, ensembles with a spread, refuses unknown symbols, resumes a killed run to the same
weights, and trains data-parallel (DDP on CPU) to a model like the single-process one."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.data.store import open_store, write_store
from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.registry import get_model, load_model
from lpm.models.source import RowSource
from lpm.runs.train import train_model
from tests.conftest import SMALL_LPM, boring_rows

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
from lpm.models.training import TrainerOptions  # noqa: E402

MODES = ["lpm", "lpm_fast"]
#: Subprocesses use one thread per process, like the in-process fits (see ``_one_thread``).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mse(pred: np.ndarray, rows: pl.DataFrame) -> float:
    return float(np.mean((pred - rows["value"].to_numpy()) ** 2))


def _context_mean_mse(rows: pl.DataFrame) -> float:
    return _mse(get_model("context_mean").fit(rows).predict(rows), rows)


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def _mixed_rows(seed: int = 0) -> pl.DataFrame:
    """3 contexts × 12 perturbations × (8 continuous + 4 binary readouts).

    Continuous deltas are a context-scaled low-rank effect plus a context shift; binary
    readouts are 1 where a perturbation's (hidden) effect on them is positive.
    """
    rng = np.random.default_rng(seed)
    n_pert, n_cont, n_bin = 12, 8, 4
    u = rng.normal(size=(n_pert, 3))
    v, b = rng.normal(size=(3, n_cont)), rng.normal(size=(3, n_bin))
    rows = []
    for c in ("toy/A", "toy/B", "toy/C"):
        gain, shift = 1.0 + 0.3 * rng.normal(), 0.3 * rng.normal(size=n_cont)
        for i in range(n_pert):
            delta = gain * u[i] @ v + shift + 0.05 * rng.normal(size=n_cont)
            p = f"CRISPRi:G{i}"
            rows += [(c, p, f"R{j}", float(x), "delta") for j, x in enumerate(delta)]
            rows += [(c, p, f"B{j}", float(x > 0), "binary") for j, x in enumerate(u[i] @ b)]
    return pl.DataFrame(
        rows, schema=["context", "perturbation", "readout", "value", "readout_type"], orient="row"
    )


@pytest.fixture(scope="module", params=MODES)
def fitted(request: pytest.FixtureRequest) -> Any:
    """Each mode fitted once on the boring rows (no validation carve-out: every row trains)."""
    return get_model(request.param, **SMALL_LPM, max_epochs=20, val_fraction=0).fit(boring_rows())


# ---- learning -------------------------------------------------------------------------------------
def test_both_modes_fit_training_rows_better_than_the_context_mean(fitted: Any) -> None:
    rows = boring_rows()
    assert _mse(fitted.predict(rows), rows) < 0.6 * _context_mean_mse(rows)


@pytest.mark.parametrize("name", MODES)
def test_binary_and_continuous_readouts_train_in_one_model(name: str) -> None:
    rows = _mixed_rows()
    model = get_model(name, **SMALL_LPM, max_epochs=30, val_fraction=0).fit(rows)
    pred = model.predict(rows)
    binary = (rows["readout_type"] == "binary").to_numpy()
    prob = pred[binary]
    assert np.all((prob > 0) & (prob < 1)), "binary rows are predicted as probabilities"
    assert _auroc(rows["value"].to_numpy()[binary], prob) > 0.8
    continuous = rows.filter(pl.Series(~binary))
    cont_pred = pred[~binary]
    assert cont_pred.min() < 0 and cont_pred.max() > 1, "continuous rows are not squashed"
    assert _mse(cont_pred, continuous) < 0.6 * _context_mean_mse(continuous)
    # logits far beyond float32's logistic range still give probabilities strictly inside (0, 1)
    # (and no overflow warning): every weight scaled up 50-fold
    hot = copy.copy(model)
    hot.states_ = [{k: np.asarray(v) * 50 for k, v in st.items()} for st in model.states_]
    prob = hot.predict(rows)[binary]
    assert np.all((prob > 0) & (prob < 1)) and prob.min() < 1e-6 and prob.max() > 1 - 1e-6


# ---- ensembles --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ensemble() -> Any:
    return get_model("lpm_fast", **SMALL_LPM, max_epochs=3, ensemble=2, val_fraction=0).fit(
        boring_rows()
    )


def test_ensemble_mean_and_spread_come_from_its_members(ensemble: Any, tmp_path: Path) -> None:
    rows = boring_rows()
    members = ensemble.predict_members(rows)
    assert members.shape == (2, rows.height)
    mean, spread = ensemble.predict_with_spread(rows)
    np.testing.assert_allclose(mean, members.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(ensemble.predict(rows), mean, rtol=1e-6)
    assert (spread > 0).any() and (spread >= 0).all()
    ensemble.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_members(rows), members)


def test_lpm_predict_writes_the_ensemble_spread(ensemble: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lpm.cli import app

    rows = boring_rows().head(40)
    rows.write_parquet(tmp_path / "rows.parquet")
    ensemble.save(tmp_path / "m")
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "--model",
            str(tmp_path / "m"),
            "--rows",
            str(tmp_path / "rows.parquet"),
            "--out",
            str(tmp_path / "p.parquet"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(tmp_path / "p.parquet")
    _, spread = ensemble.predict_with_spread(rows)
    np.testing.assert_allclose(out["prediction_sd"].to_numpy(), spread, rtol=1e-6)
    assert (out["prediction_sd"] > 0).any()


# ---- unknown symbols ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "symbol"),
    [
        ("perturbation", "CRISPRi:NEVER_SEEN"),
        ("perturbation", "CRISPRi:G0+CRISPRi:NEVER_SEEN"),
        ("context", "toy/NEVER_SEEN"),
        ("readout", "NEVER_SEEN"),
    ],
)
def test_an_unseen_symbol_is_an_error_naming_it(fitted: Any, column: str, symbol: str) -> None:
    rows = boring_rows().head(5).with_columns(pl.lit(symbol).alias(column))
    for predict in (fitted.predict, fitted.predict_with_spread):
        with pytest.raises(UnknownSymbolError) as err:
            predict(rows)
        assert err.value.kind == column and symbol in str(err.value)


def test_an_unseen_combination_of_seen_singles_is_predicted(fitted: Any) -> None:
    rows = boring_rows()
    assert "CRISPRi:G4+CRISPRi:G5" not in rows["perturbation"].to_list()
    combo = rows.filter(pl.col("perturbation") == "CRISPRi:G4").with_columns(
        pl.lit("CRISPRi:G4+CRISPRi:G5").alias("perturbation")
    )
    assert fitted.supported(combo).all()
    pred = fitted.predict(combo)
    assert pred.shape == (combo.height,) and np.isfinite(pred).all()


# ---- resuming -----------------------------------------------------------------------------------
def _weights(model: Any) -> list[dict[str, np.ndarray]]:
    return [{k: np.asarray(v) for k, v in state.items()} for state in model.states_]


def _assert_same_weights(a: Any, b: Any) -> None:
    wa, wb = _weights(a), _weights(b)
    assert len(wa) == len(wb)
    for sa, sb in zip(wa, wb, strict=True):
        assert sa.keys() == sb.keys()
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


@pytest.mark.parametrize("name", MODES)
def test_a_run_stopped_early_and_resumed_matches_an_uninterrupted_run(
    name: str, tmp_path: Path
) -> None:
    # dropout and a decaying learning rate make the data order, RNG and scheduler matter;
    # validation (never stopping early) makes the early-stopping and best-checkpoint state matter
    params = {**SMALL_LPM, "dropout": 0.2, "decay": 0.9, "patience": 100, "val_fraction": 0.2}
    rows = boring_rows()
    whole = get_model(name, **params, max_epochs=5)
    whole.fit(rows, trainer=TrainerOptions(checkpoint_dir=tmp_path / "a"))
    get_model(name, **params, max_epochs=2).fit(
        rows, trainer=TrainerOptions(checkpoint_dir=tmp_path / "b")
    )
    said: list[str] = []
    resumed = get_model(name, **params, max_epochs=5)
    resumed.fit(rows, trainer=TrainerOptions(checkpoint_dir=tmp_path / "b", report=said.append))
    assert said == [
        f"resuming from {tmp_path / 'b' / 'member0' / 'last.ckpt'}: 2 of 5 epochs done (member 0)"
    ]
    assert resumed.history_[0]["epochs"] == whole.history_[0]["epochs"] == 5
    assert whole.history_[0]["val_loss"] is not None
    _assert_same_weights(whole, resumed)


def test_checkpoints_of_a_different_run_are_refused_not_resumed(tmp_path: Path) -> None:
    rows = boring_rows()
    folder = tmp_path / "ckpt"
    options = TrainerOptions(checkpoint_dir=folder)
    get_model("lpm_fast", **SMALL_LPM, max_epochs=1).fit(rows, trainer=options)
    other = get_model("lpm_fast", **{**SMALL_LPM, "lr": 5e-3}, max_epochs=2)
    with pytest.raises(LpmInputError, match="different training run"):
        other.fit(rows, trainer=options)
    with pytest.raises(LpmInputError, match="different training run"):
        get_model("lpm_fast", **SMALL_LPM, max_epochs=2).fit(boring_rows(seed=1), trainer=options)


def _last_epoch(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"])


@pytest.mark.slow
def test_a_killed_lpm_train_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    """The issue's requirement, literally: kill ``lpm train`` after its first checkpoint, run
    the same command again, and get the weights of an uninterrupted run with the same seed."""
    epochs = 16
    write_store(_mixed_rows(), tmp_path / "s")
    params = {**SMALL_LPM, "dropout": 0.2, "decay": 0.9, "patience": 100, "max_epochs": epochs}
    # the uninterrupted run, in process (the library call `lpm train` makes, same options)
    train_model(
        [tmp_path / "s"],
        model="lpm",
        out=tmp_path / "a",
        split="random",
        params={**params, "seed": 0},
        checkpoint_dir=tmp_path / "ck_a",
    )
    command = [sys.executable, "-m", "lpm.cli", "train", "--store", str(tmp_path / "s")]
    command += ["--model", "lpm", "--out", str(tmp_path / "b"), "--split", "random"]
    command += ["--checkpoint-dir", str(tmp_path / "ck_b")]
    for key, value in params.items():
        command += ["--param", f"{key}={json.dumps(value)}"]
    last = tmp_path / "ck_b" / "member0" / "last.ckpt"
    log = tmp_path / "killed.log"  # a file, not a pipe nobody reads while we wait
    with log.open("w") as err:
        proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 240
            while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            running = proc.poll() is None
        finally:
            proc.kill()
            proc.wait(timeout=60)
    assert running, f"the run ended before it could be killed:\n{log.read_text()}"
    assert last.exists() and not (tmp_path / "b").exists()
    assert _last_epoch(last) < epochs - 1, "the kill came after the last epoch"
    again = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    assert a.history_[0]["epochs"] == b.history_[0]["epochs"] == epochs
    assert a.history_[0]["val_loss"] is not None  # validation picked the saved epoch
    _assert_same_weights(a, b)  # the best-validation epoch's weights (the saved model)
    final_a = torch.load(tmp_path / "ck_a" / "member0" / "last.ckpt", weights_only=False)
    final_b = torch.load(last, weights_only=False)
    assert final_a["epoch"] == final_b["epoch"] == epochs - 1
    for key, tensor in final_a["state_dict"].items():  # and the last epoch's weights
        assert torch.equal(tensor, final_b["state_dict"][key]), key


# ---- data-parallel ------------------------------------------------------------------------------
@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_like_one_process(tmp_path: Path) -> None:
    """``lpm train --devices 2 --strategy ddp`` finishes, writes one model (only rank 0 saves)
    and predicts like the single-process model.

    Not bit-identical: each of the two processes takes half of every chunk's profiles, so each
    optimiser step averages two batches (twice the values) and an epoch has half the steps.
    After 30 epochs both models fit the training rows far better than the context mean, and
    their predictions correlate well above 0.9 (0.97 when this test was written).
    """
    rows = boring_rows()
    write_store(rows, tmp_path / "s")
    params = {**SMALL_LPM, "max_epochs": 30, "val_fraction": 0.0}  # no early stop: 30 epochs each
    command = [sys.executable, "-m", "lpm.cli", "train", "--store", str(tmp_path / "s")]
    command += ["--model", "lpm_fast", "--out", str(tmp_path / "m2")]
    command += ["--devices", "2", "--strategy", "ddp", "--accelerator", "cpu"]
    for key, value in params.items():
        command += ["--param", f"{key}={json.dumps(value)}"]
    proc = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    # one model folder, no half-written copies, and the finished run's checkpoints removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m2", "s"]
    two = load_model(tmp_path / "m2")
    assert two.history_[0]["epochs"] == 30
    # the hardware is the run's, recorded beside the model, not among its parameters
    assert "devices" not in json.loads((tmp_path / "m2" / "model.json").read_text())["params"]
    record = json.loads((tmp_path / "m2" / "training.json").read_text())
    assert record["trainer"]["devices"] == 2 and record["trainer"]["strategy"] == "ddp"
    one = train_model(
        [tmp_path / "s"],
        model="lpm_fast",
        out=tmp_path / "one" / "m1",
        params=params,
        devices=1,
        checkpoint_dir=tmp_path / "one" / "ck",
    )
    p1, p2 = one.predict(rows), two.predict(rows)
    baseline = _context_mean_mse(rows)
    assert _mse(p1, rows) < 0.5 * baseline and _mse(p2, rows) < 0.5 * baseline
    assert np.corrcoef(p1, p2)[0, 1] > 0.9


def test_stores_with_different_columns_train_jointly_from_disk(tmp_path: Path) -> None:
    """``lpm train --store A --store B`` where only A has doses (L1000 beside Replogle): the
    held-out rows of both stores are gathered into one validation table (it once failed there,
    "unable to append a DataFrame of width 7 with one of width 5")."""
    plain = boring_rows()
    dosed = (
        _mixed_rows()
        .filter(pl.col("readout_type") == "delta")
        .drop("readout_type")
        .with_columns(pl.lit(1.0, dtype=pl.Float32).alias("dose"), pl.lit(24.0).alias("time"))
    )
    write_store(plain, tmp_path / "a")
    write_store(dosed, tmp_path / "b")
    model = train_model(
        [tmp_path / "a", tmp_path / "b"],
        model="lpm_fast",
        out=tmp_path / "m",
        params={**SMALL_LPM, "max_epochs": 3},
    )
    assert model.history_[0]["epochs"] >= 1
    both = pl.concat([plain, dosed], how="diagonal_relaxed")
    assert np.isfinite(model.predict(both)).all()


def test_a_store_fit_without_validation_rows_stops_early_on_held_out_rows(
    store_path: Path,
) -> None:
    small = {"embedding_dim": 8, "hidden": [16], "batch_size": 256, "max_epochs": 3}
    model = get_model("lpm_fast", val_fraction=0.2, seed=0, **small)
    model.fit_source(RowSource(stores=[open_store(store_path)]))
    assert np.isfinite(model.history_[0]["val_loss"])
    unchecked = get_model("lpm_fast", val_fraction=0.0, seed=0, **small)
    unchecked.fit_source(RowSource(stores=[open_store(store_path)]))
    assert unchecked.history_[0].get("val_loss") is None

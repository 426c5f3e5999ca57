"""Files written by earlier lpm versions must still load and give the same numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from lpm.data.store import open_store
from lpm.models.registry import load_model
from tests.conftest import boring_rows

FIXTURES = Path(__file__).parent / "fixtures"


def test_store_written_by_0_1_0_loads() -> None:
    store = open_store(FIXTURES / "store_v0.1.0")
    assert store.meta.schema_version == 1
    rows = store.read().sort("context", "perturbation", "readout")
    expected = boring_rows().sort("context", "perturbation", "readout")
    np.testing.assert_allclose(rows["value"].to_numpy(), expected["value"].to_numpy(), rtol=1e-6)


def test_models_saved_by_0_1_0_load_and_predict() -> None:
    rows = boring_rows().filter(pl.col("context") == "toy/A")
    for name in ("linear_v0.1.0", "perturbation_mean_v0.1.0"):
        model = load_model(FIXTURES / name)
        pred = model.predict(rows)
        assert pred.shape == (rows.height,) and np.isfinite(pred).all()
        # both fit the data they were saved from well
        assert np.corrcoef(pred, rows["value"].to_numpy())[0, 1] > 0.8


def test_lpm_saved_by_0_1_0_with_hardware_params_loads_and_predicts_the_same() -> None:
    """0.1.0 saved the run's hardware (devices, strategy, accelerator, checkpoint_dir, progress)
    among an LPM's parameters; such a folder still loads and gives the same numbers."""
    rows = boring_rows().filter(pl.col("context") == "toy/A")
    model = load_model(FIXTURES / "lpm_fast_v0.1.0")
    expected = np.load(FIXTURES / "lpm_fast_v0.1.0_toy_A_predictions.npy")
    np.testing.assert_allclose(model.predict(rows), expected, rtol=1e-5, atol=1e-6)

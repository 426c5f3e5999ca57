"""lpm_ame trained by the shared engine: early stopping on the held-out profiles and the best
validation epoch's weights kept (the Granger-causal pieces are tested with the explain task)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lpm.data.holdout import carve_validation
from lpm.models.registry import get_model
from tests.conftest import boring_rows

L = pytest.importorskip("lightning")
from lpm.models.training import TrainerOptions  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _ValLosses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self.losses.append(float(trainer.callback_metrics["val_loss"]))


def test_the_best_validation_epochs_weights_are_kept() -> None:
    seen = _ValLosses()
    model = get_model("lpm_ame", max_epochs=12, patience=3, val_fraction=0.3, seed=0)
    model.fit(boring_rows(), trainer=TrainerOptions(callbacks=(seen,)))
    assert len(seen.losses) == model.history_["epochs"] < 12  # stopped early
    assert model.history_["best_val_mse"] == pytest.approx(min(seen.losses), rel=1e-6)
    best = int(np.argmin(seen.losses))
    assert best == len(seen.losses) - 1 - 3  # then three epochs without improvement
    # and the model is that epoch's: its error on the held-out profiles is the best one
    _, val = carve_validation(boring_rows(), fraction=0.3, seed=0)
    assert val is not None
    mse = float(np.mean((model.predict(val) - val["value"].to_numpy()) ** 2))
    assert mse == pytest.approx(min(seen.losses), rel=1e-4)


def test_without_validation_the_last_epoch_is_kept() -> None:
    model = get_model("lpm_ame", max_epochs=3, val_fraction=0.0, seed=0).fit(boring_rows())
    assert model.history_["best_val_mse"] is None and model.history_["epochs"] == 3

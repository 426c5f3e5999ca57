"""The built-in acquisition strategies on a model whose spread is known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.design.base import RoundState
from lpm.design.manager import ModelManager
from lpm.design.pool import Oracle
from lpm.design.registry import get_strategy
from lpm.design.strategies import _k_centre
from lpm.errors import LpmInputError
from lpm.models import registry as model_registry
from lpm.models.baselines import NoChange
from lpm.models.registry import register_model
from tests.design.test_loop import chain_world

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_k_centre_picks_the_farthest_points() -> None:
    x = np.array([0.0, 1.0, 10.0, 5.0, 9.0])
    names = ["a", "b", "c", "d", "e"]
    chosen, scores = _k_centre(lambda i: np.abs(x - x[i]), 5, 1, 2, names)
    assert chosen == ["c", "d"] and scores == [10.0, 5.0]


# ---- strategies with a model whose spread is known ------------------------------------------
class SpreadModel(NoChange):
    """Predicts seed × (gene number): members disagree most on the highest-numbered gene."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        number = rows["perturbation"].str.extract(r"G(\d+)").cast(pl.Float64).to_numpy()
        return self.seed * number


@pytest.fixture
def spread_model() -> Any:
    register_model("_spread_test", SpreadModel)
    yield "_spread_test"
    model_registry._MODELS._registered.pop("_spread_test", None)


def test_variance_strategy_picks_the_largest_ensemble_spread(
    tmp_path: Path, spread_model: str
) -> None:
    rows, _ = chain_world(tmp_path)
    manager = ModelManager(spread_model, seed=0)
    labelled = ["CRISPRi:G00", "CRISPRi:G01"]
    manager.fit(Oracle(rows).reveal(labelled))
    state = RoundState(
        round=1,
        batch=2,
        seed=0,
        labelled=labelled,
        unlabelled=[f"CRISPRi:G{i:02d}" for i in range(2, 10)],
        oracle=Oracle(rows),
        models=manager,
        ensemble=3,
    )
    chosen, scores = get_strategy("variance").choose(state)
    assert chosen == ["CRISPRi:G09", "CRISPRi:G08"] and scores[0] > scores[1]
    assert len(manager.members) == 3
    state.ensemble = 1
    manager.fit(Oracle(rows).reveal(labelled))
    with pytest.raises(LpmInputError, match="at least 2"):
        get_strategy("variance").choose(state)


def test_strategy_errors() -> None:
    with pytest.raises(LpmInputError, match="unknown strategy 'nope'"):
        get_strategy("nope")

"""The loop's model manager: member 0 fitted on every labelled row, bagged members on demand,
predicted profiles pivoted per perturbation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.design.manager import ModelManager, predicted_profiles
from lpm.design.pool import Oracle
from lpm.errors import LpmInputError
from tests.design.test_loop import READOUTS, chain_world


def test_member_zero_first_and_bagged_members_are_seeded(tmp_path: Path) -> None:
    rows, _ = chain_world(tmp_path)
    labelled = Oracle(rows).reveal([f"CRISPRi:G{i:02d}" for i in range(8)])
    manager = ModelManager("context_mean", seed=3)
    with pytest.raises(LpmInputError, match="no fitted model yet"):
        manager.model  # noqa: B018
    manager.fit(labelled)
    assert len(manager.members) == 1 and manager.fit_seconds >= 0
    manager.ensure_members(3, round_=1)
    assert len(manager.members) == 3
    keys = labelled.select("context", "perturbation", "readout")
    spread = manager.predict_members(keys)
    assert spread.shape == (3, labelled.height)
    again = ModelManager("context_mean", seed=3)
    again.fit(labelled)
    again.ensure_members(3, round_=1)
    np.testing.assert_array_equal(again.predict_members(keys), spread)
    with pytest.raises(LpmInputError, match="--ensemble of at least 2"):
        manager.ensure_members(1, round_=1)
    manager.fit(labelled)  # a new round drops the extra members
    assert len(manager.members) == 1


def test_predicted_profiles_follow_the_asked_order_with_zero_for_unmeasured() -> None:
    keys = pl.DataFrame(
        {
            "context": ["c", "c", "c"],
            "perturbation": ["CRISPRi:A", "CRISPRi:A", "CRISPRi:B"],
            "readout": READOUTS[:2] + READOUTS[:1],
        }
    )
    out = predicted_profiles(
        keys, np.array([1.0, 2.0, 3.0]), ["CRISPRi:B", "CRISPRi:Z", "CRISPRi:A"]
    )
    np.testing.assert_array_equal(out, [[3.0, 0.0], [0.0, 0.0], [1.0, 2.0]])

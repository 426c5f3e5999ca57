"""Sampled cells → pseudobulk: seeded per key, the same on one thread as on many."""

from __future__ import annotations

import numpy as np
import pytest

import lpm.sim.counts as counts
from lpm.sim.counts import pseudobulk, pseudobulk_many


def test_pseudobulk_is_seeded_by_its_key_and_log_normalised() -> None:
    x = np.log(np.linspace(1.0, 50.0, 30))
    size = np.full(30, 10.0)
    a = pseudobulk(x, size, 40, (0, 1, 2))
    assert np.array_equal(a, pseudobulk(x, size, 40, (0, 1, 2)))
    assert not np.array_equal(a, pseudobulk(x, size, 40, (0, 1, 3)))
    assert (a >= 0).all() and a[-1] > a[0]  # more expressed genes read higher


def test_many_rows_do_not_depend_on_the_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    xs = np.log(np.linspace(1.0, 20.0, 20))[None, :] + np.zeros((5, 1))
    size = np.full(20, 5.0)
    keys = [(7, i) for i in range(5)]
    many = pseudobulk_many(xs, size, [10] * 5, keys)
    monkeypatch.setattr(counts, "n_workers", lambda: 1)
    assert np.array_equal(many, pseudobulk_many(xs, size, [10] * 5, keys))

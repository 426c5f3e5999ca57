"""The linear baseline's factorisation: large profile matrices get a seeded top-k SVD that
agrees with the full one."""

from __future__ import annotations

import numpy as np
import pytest

import lpm.models.linear as linear


def test_large_matrices_take_the_top_components_of_the_full_svd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 200)) + 0.01 * rng.normal(size=(300, 200))
    monkeypatch.setattr(linear, "FULL_SVD_LIMIT", 50)  # force the randomized path
    u, s, vt = linear._top_svd(m, 4)
    _, s_full, vt_full = np.linalg.svd(m, full_matrices=False)
    np.testing.assert_allclose(s, s_full[:4], rtol=1e-6)
    # the same subspace: each component up to sign
    np.testing.assert_allclose(np.abs(np.sum(vt * vt_full[:4], axis=1)), 1.0, rtol=1e-6)
    assert u.shape == (300, 4) and vt.shape == (4, 200)
    again = linear._top_svd(m, 4)
    np.testing.assert_array_equal(again[0], u)  # seeded: the same numbers every time

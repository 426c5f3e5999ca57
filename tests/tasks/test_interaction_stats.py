"""The statistics of interaction fits (``lpm.tasks.interaction_stats``): Theil–Sen equals
scikit-learn's, distance correlation equals its definition."""

from __future__ import annotations

import numpy as np
import pytest

from lpm.tasks.interaction_stats import distance_correlation, dominance, pair_metrics


def test_theil_sen_matches_scikit_learn() -> None:
    from sklearn.linear_model import TheilSenRegressor

    rng = np.random.default_rng(3)
    for n in (60, 142):  # every subset, then random subsets (binom(142, 2) > 10,000)
        x = rng.normal(size=(n, 2))
        y = x @ np.array([0.7, 1.3]) + 0.3 * rng.standard_t(2, size=n)
        ref = TheilSenRegressor(fit_intercept=False, random_state=5).fit(x, y).coef_
        ours = pair_metrics(x[:, 0], x[:, 1], y, seed=5)
        assert [ours["c1"], ours["c2"]] == pytest.approx(list(ref), abs=1e-9)


def test_distance_correlation_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    x, noise = rng.normal(size=120), rng.normal(size=120)
    y = x**2 + 0.2 * noise

    def slow(u: np.ndarray, v: np.ndarray) -> float:
        def centred(w: np.ndarray) -> np.ndarray:
            d = np.abs(w[:, None] - w[None, :])
            return d - d.mean(0) - d.mean(1)[:, None] + d.mean()

        a, b = centred(u), centred(v)
        return float(np.sqrt((a * b).mean() / np.sqrt((a * a).mean() * (b * b).mean())))

    assert distance_correlation(x, y) == pytest.approx(slow(x, y), abs=1e-5)
    assert distance_correlation(x, 3 * x + 1) == pytest.approx(1.0, abs=1e-5)
    assert distance_correlation(x, np.zeros_like(x)) == 0.0


def test_dominance_of_a_zero_coefficient_is_large_not_an_error() -> None:
    assert dominance(1.0, 1.0) == 0.0
    assert dominance(1.0, 0.0) == pytest.approx(12.0)

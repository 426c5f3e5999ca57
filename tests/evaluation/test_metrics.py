"""The vectorised metric kernels against plain definitions (numpy, scipy, scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import average_precision_score, roc_auc_score

from lpm.evaluation import metrics as M


def test_grouped_mean_and_pearson_match_per_group_loops() -> None:
    rng = np.random.default_rng(0)
    gid = np.repeat(np.arange(4), [5, 1, 0, 6])
    x, y = rng.normal(size=gid.size), rng.normal(size=gid.size)
    means = M.grouped_mean(gid, x, 4)
    assert means[0] == pytest.approx(x[:5].mean()) and np.isnan(means[2])
    r = M.grouped_pearson(gid, x, y, 4)
    assert r[0] == pytest.approx(pearsonr(x[:5], y[:5])[0])
    assert r[3] == pytest.approx(pearsonr(x[6:], y[6:])[0])
    assert np.isnan(r[1]) and np.isnan(r[2])  # one point; no points
    flat = M.grouped_pearson(np.zeros(3, np.int64), np.ones(3), np.arange(3.0), 1)
    assert np.isnan(flat[0])  # a constant vector has no correlation


def test_binary_scores_match_scikit_learn_per_group() -> None:
    rng = np.random.default_rng(1)
    gid = np.repeat(np.arange(2), 20)
    label = rng.integers(0, 2, size=40).astype(np.float64)
    score = rng.normal(size=40) + label
    auroc, auprc = M.binary_scores(gid, label, score, 2)
    for g in range(2):
        sel = gid == g
        assert auroc[g] == pytest.approx(roc_auc_score(label[sel], score[sel]))
        assert auprc[g] == pytest.approx(average_precision_score(label[sel], score[sel]))


def test_discrimination_is_one_for_exact_predictions_and_half_for_ties() -> None:
    true = np.array([[0.0, 1.0], [5.0, 5.0], [9.0, -3.0]])
    assert M.discrimination(true.copy(), true).tolist() == [1.0, 1.0, 1.0]
    same = np.zeros((3, 2))
    assert M.discrimination(same, same).tolist() == [0.5, 0.5, 0.5]
    assert np.isnan(M.discrimination(true[:1], true[:1])).all()


def test_bootstrap_ci_brackets_the_mean_and_is_seeded() -> None:
    values = np.random.default_rng(2).normal(size=50)
    lo, hi = M.bootstrap_ci(values, n_boot=200, rng=np.random.default_rng(3))
    assert lo < values.mean() < hi
    assert (lo, hi) == M.bootstrap_ci(values, n_boot=200, rng=np.random.default_rng(3))
    assert all(np.isnan(M.bootstrap_ci(values, n_boot=0, rng=np.random.default_rng(3))))

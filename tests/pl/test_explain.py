"""The figure of ``lpm explain`` (``lpm.pl.explain``): shares per context, the simulator panel
when a truth is given, n/a without explained rows."""

from __future__ import annotations

import polars as pl

from lpm.pl.explain import plot_importance
from tests.pl._figures import assert_labelled, texts


def _by_context() -> pl.DataFrame:
    rows = [
        ("toy/A", "posthoc", "perturbation", 0.7),
        ("toy/A", "posthoc", "context", 0.3),
        ("toy/B", "posthoc", "perturbation", 0.4),
        ("toy/B", "posthoc", "context", 0.6),
    ]
    return pl.DataFrame(rows, schema=["context", "method", "input", "share"], orient="row")


def test_shares_per_context_and_the_simulator_panel() -> None:
    scores = pl.DataFrame(
        {
            "perturbation": ["a", "b", "c", "d"],
            "posthoc_mean_substitution": [0.0, 0.1, 1.0, 2.0],
            "has_downstream_effect": [False, False, True, True],
        }
    )
    fig = plot_importance(_by_context(), scores)
    assert_labelled(fig)
    assert len(fig.axes) == 2
    said = texts(fig)
    assert "share of importance" in said and "toy/A (posthoc)" in said
    assert {"perturbation", "context"} <= set(said)  # the legend
    assert "Simulator: perturbations with vs without downstream effect" in said


def test_one_panel_without_truth_and_n_a_without_rows() -> None:
    assert len(plot_importance(_by_context()).axes) == 1
    fig = plot_importance(_by_context().head(0))
    assert_labelled(fig)
    assert "n/a: no rows explained" in texts(fig)

"""The metric panel of a benchmark (``lpm.pl.benchmark``): a panel per metric and group with the
models as bars, n/a without scores, undefined metrics left out."""

from __future__ import annotations

import polars as pl

from lpm.pl.benchmark import defined_metrics, plot_benchmark_panel
from tests.pl._figures import assert_labelled, texts


def _results() -> pl.DataFrame:
    rows = [
        ("g", "linear", "mse", 0.2, 0.1, 0.3),
        ("g", "no_change", "mse", 0.4, 0.3, 0.5),
        ("g", "linear", "auroc", float("nan"), float("nan"), float("nan")),
    ]
    return pl.DataFrame(
        rows, schema=["group", "model", "metric", "mean", "ci_low", "ci_high"], orient="row"
    )


def test_a_panel_per_defined_metric_with_a_bar_per_model() -> None:
    assert defined_metrics(_results()) == ["mse"]
    fig = plot_benchmark_panel(_results())
    assert_labelled(fig)
    said = texts(fig)
    assert "mse ↓" in said
    assert len(fig.axes[0].patches) == 2


def test_n_a_without_scores() -> None:
    fig = plot_benchmark_panel(_results().head(0))
    assert_labelled(fig)
    assert "n/a: no scores" in texts(fig)


def test_a_model_not_applicable_is_marked_n_a() -> None:
    na = pl.DataFrame({"seed": [0], "model": ["gene_graph"], "stage": ["fit"], "reason": ["r"]})
    fig = plot_benchmark_panel(_results(), not_applicable=na)
    assert_labelled(fig)
    assert "n/a" in texts(fig)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["gene_graph (n/a)", "linear", "no_change"]
    assert len(fig.axes[0].patches) == 2  # no bar for it

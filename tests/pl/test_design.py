"""Learning curves of design strategies (``lpm.pl.design``): one panel per metric, one line per
strategy, n/a for a metric the rounds lack; the deprecated writer still writes."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lpm.pl.design import learning_curves_figure
from lpm.pl.save import save_png
from tests.pl._figures import assert_labelled, texts


def _rounds() -> pl.DataFrame:
    rows = [
        (s, seed, r, 10 * (r + 1), 0.1 * r + 0.01 * seed)
        for s in ("random", "uncertainty")
        for seed in (0, 1)
        for r in range(3)
    ]
    return pl.DataFrame(
        rows, schema=["strategy", "seed", "round", "n_labelled", "pearson_delta"], orient="row"
    )


def test_one_panel_per_metric_and_n_a_where_a_metric_is_missing(tmp_path: Path) -> None:
    fig = learning_curves_figure(_rounds(), metrics=("pearson_delta", "mse"), title="toy")
    assert_labelled(fig)
    said = texts(fig)
    assert "toy (mean ± sd over 2 seeds)" in said
    assert "Pearson Δ (held-out)" in said and "MSE (lower is better)" in said
    assert {"random", "uncertainty"} <= set(said) and "n/a" in said
    png = save_png(
        learning_curves_figure(_rounds(), metrics=("pearson_delta",)), tmp_path / "c.png"
    )
    assert png.read_bytes()[:4] == b"\x89PNG"

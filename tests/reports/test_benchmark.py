"""The benchmark report (``lpm.reports.benchmark``), made from the tables a benchmark wrote."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from lpm.reports.benchmark import benchmark_markdown


def _folder(tmp_path: Path) -> Path:
    rows = [
        ("g", m, metric, mean, mean - 0.05, mean + 0.05, 10)
        for m, mean in (("no_change", 0.1), ("linear", 0.3))
        for metric in ("pearson_delta_vs_mean", "mse")
    ]
    pl.DataFrame(
        rows,
        schema=["group", "model", "metric", "mean", "ci_low", "ci_high", "n"],
        orient="row",
    ).write_csv(tmp_path / "results.csv")
    pl.DataFrame(
        {
            "group": ["g", "g"],
            "model": ["no_change", "linear"],
            "scored": [10, 10],
            "conditions": [10, 10],
        }
    ).write_csv(tmp_path / "coverage.csv")
    spec = {"split": "unseen_pair", "seeds": [0], "models": ["no_change", "linear"]}
    (tmp_path / "run.json").write_text(json.dumps({"spec": spec, "command": ["lpm", "x"]}))
    return tmp_path


def test_the_markdown_is_made_from_the_tables(tmp_path: Path) -> None:
    text = benchmark_markdown(_folder(tmp_path), title="Toy", stores=["s"])
    assert text.startswith("# Toy") and "## Test group `g`" in text
    assert "| linear | 10 / 10 |" in text and "![metric panel](results.png)" in text
    assert not (tmp_path / "results.md").exists(), "making the Markdown writes nothing"

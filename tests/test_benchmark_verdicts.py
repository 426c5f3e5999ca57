"""The verdicts the benchmark scripts print (benchmarks/lpm_accuracy.py, _combinations_report.py,
_design_report.py) on small constructed result tables: "beats" only where the paired interval
lies above 0 (``comparisons.csv`` of an ``lpm benchmark`` folder, or the seeded bootstrap of
:func:`lpm.evaluation.compare.paired_verdict`), never from means alone; both key metrics named."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from tests.conftest import REPO


def _script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A benchmark script as a module (they import ``_common`` from their own folder)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module(name)


def _results(folder: Path, means: dict[tuple[str, str, str], float]) -> Path:
    """A benchmark folder's results.csv from ``means[(group, model, metric)]``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(g, model, metric, m, m - 0.1, m + 0.1) for (g, model, metric), m in means.items()]
    pl.DataFrame(
        rows, schema=["group", "model", "metric", "mean", "ci_low", "ci_high"], orient="row"
    ).write_csv(folder / "results.csv")
    return folder


def _comparisons(
    folder: Path, rows: list[tuple[str, str, str, str, float, float, float, str]]
) -> None:
    """comparisons.csv: (group, model, metric, baseline, difference, ci_low, ci_high, verdict)."""
    table = pl.DataFrame(
        rows,
        schema=[
            "group",
            "model",
            "metric",
            "baseline",
            "difference",
            "ci_low",
            "ci_high",
            "verdict",
        ],
        orient="row",
    ).with_columns(pl.lit(40).alias("n_pairs"), pl.lit(2).alias("seeds"))
    table.write_csv(folder / "comparisons.csv")


# ---- lpm_accuracy.py ----------------------------------------------------------------------------
def test_lpm_accuracy_verdicts_come_from_paired_intervals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A higher mean than the best baseline's (the old "matches or beats") with a paired interval
    spanning 0 is a tie, printed with its difference and interval; both key metrics are named."""
    acc = _script("lpm_accuracy", monkeypatch)
    folder = _results(
        tmp_path / "run",
        {
            ("unseen_pair", "no_change", "pearson_delta_vs_mean"): 0.30,
            ("unseen_pair", "lpm_fast", "pearson_delta_vs_mean"): 0.32,
            ("unseen_pair", "perturbation_mean", "discrimination"): 0.54,
            ("unseen_pair", "lpm_fast", "discrimination"): 0.60,
        },
    )
    _comparisons(
        folder,
        [
            ("unseen_pair", "lpm_fast", "pearson_delta_vs_mean", "no_change", 0.02, -0.03, 0.07, "ties"),
            ("unseen_pair", "lpm_fast", "discrimination", "perturbation_mean", 0.06, 0.01, 0.11, "beats"),
        ],
    )  # fmt: skip
    lines = acc.verdict(folder)
    assert len(lines) == 2 and not any("matches" in line for line in lines)
    pearson, disc = lines
    assert "pearson_delta_vs_mean" in pearson and "no_change 0.300" in pearson
    assert "+0.020 [−0.030, +0.070] over 40 conditions in 2 seeds" in pearson
    assert pearson.endswith("**ties** |")
    assert "discrimination" in disc and "perturbation_mean 0.540" in disc
    assert disc.endswith("**beats** |")


def test_lpm_accuracy_binary_tables_name_auroc_and_auprc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acc = _script("lpm_accuracy", monkeypatch)
    folder = _results(
        tmp_path / "run",
        {
            ("g", m, k): v
            for m in ("context_mean", "lpm")
            for k, v in (("auroc", 0.9), ("auprc", 0.7))
        },
    )
    _comparisons(
        folder,
        [("g", "lpm", "auroc", "context_mean", -0.01, -0.02, -0.005, "loses")],
    )
    lines = acc.verdict(folder)
    assert [line.split(" | ")[1] for line in lines] == ["auroc", "auprc"]
    assert lines[0].endswith("**loses** |")
    assert "no verdict (no baseline or no paired condition)" in lines[1]


def test_lpm_accuracy_without_comparisons_gives_no_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder an older lpm wrote (no comparisons.csv) gets no verdict, even where the LPM's
    mean is the higher."""
    acc = _script("lpm_accuracy", monkeypatch)
    folder = _results(
        tmp_path / "old",
        {("g", "no_change", "discrimination"): 0.5, ("g", "lpm", "discrimination"): 0.9},
    )
    lines = acc.verdict(folder)  # both key metrics named, though one has no score
    assert [line.split(" | ")[1] for line in lines] == ["pearson_delta_vs_mean", "discrimination"]
    assert all("no verdict" in x and "comparisons.csv" in x and "beats" not in x for x in lines)


# ---- _combinations_report.py --------------------------------------------------------------------
def test_combination_targets_need_both_key_metrics_to_beat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Peper's higher means (the old **met**) are only partly met where one key metric ties;
    a best baseline other than the target's is named as such."""
    report = _script("_combinations_report", monkeypatch)
    folder = _results(tmp_path / "sim", {("seen2", "peper", "pearson_delta"): 0.68})
    _comparisons(
        folder,
        [
            ("seen2", "peper", "pearson_delta_vs_mean", "salt", 0.09, 0.05, 0.13, "beats"),
            ("seen2", "peper", "discrimination", "linear", 0.01, -0.02, 0.04, "ties"),
            ("seen1", "gene_graph", "pearson_delta_vs_mean", "context_mean", 0.1, 0.02, 0.2, "beats"),
            ("seen1", "gene_graph", "discrimination", "context_mean", 0.1, 0.01, 0.3, "beats"),
        ],
    )  # fmt: skip
    seen2 = report._beats(folder, "seen2", "peper", "salt")
    assert seen2.startswith("**partly met**")
    assert "corrected Pearson: beats salt, +0.090 [+0.050, +0.130]" in seen2
    assert "discrimination: ties linear (best baseline), +0.010 [−0.020, +0.040]" in seen2
    assert report._beats(folder, "seen1", "gene_graph", "context_mean").startswith("**met**")
    assert report._beats(folder, "seen0", "gene_graph", "context_mean").startswith("**not met**")
    (folder / "comparisons.csv").unlink()
    assert report._beats(folder, "seen2", "peper", "salt").startswith("**no verdict**")


# ---- _design_report.py --------------------------------------------------------------------------
def _design_summary(gains: dict[str, list[float]]) -> pl.DataFrame:
    """Areas under the curves per seed: random at 0.5, each strategy at 0.5 + its gain (for
    every AUC column; MSE's gain is random's minus the strategy's)."""
    rows = []
    for strategy, g in {"random": [0.0] * 5, **gains}.items():
        for seed, x in enumerate(g):
            rows.append(
                {"strategy": strategy, "seed": seed, "auc_pearson_delta": 0.5 + x,
                 "auc_pearson_delta_vs_mean": 0.5 + x, "auc_mse": 0.5 - x,
                 "auc_top_acquired": 0.5 + x}
            )  # fmt: skip
    return pl.DataFrame(rows)


def test_design_verdict_needs_the_interval_over_seeds_above_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A positive mean gain, better on 4 of 5 seeds (the old rule's "beats"), with one large
    loss ties; a steady gain beats; a steady loss loses; same numbers on a second call."""
    design = _script("_design_report", monkeypatch)
    summary = _design_summary(
        {
            "lucky": [0.05, 0.04, 0.06, 0.05, -0.15],
            "steady": [0.02, 0.03, 0.01, 0.04, 0.02],
            "worse": [-0.02, -0.03, -0.01, -0.04, -0.02],
        }
    )
    _, verdict = design.auc_table(summary)
    assert verdict["lucky"]["auc_pearson_delta"][0].difference == pytest.approx(0.01)
    assert verdict["lucky"]["auc_pearson_delta"][1:] == (4, 5)
    assert {s: v["auc_mse"][0].verdict for s, v in verdict.items()} == {
        "lucky": "ties", "steady": "beats", "worse": "loses",
    }  # fmt: skip
    lines = design._verdict_lines(verdict)
    pearson = next(line for line in lines if line.startswith("- AUC of Pearson Δ:"))
    beats, rest = pearson.split(". ties: ")
    assert "steady +0.024 [" in beats and "lucky" not in beats
    assert rest.startswith("lucky +0.01 [-") and "loses: worse -0.024 [" in rest
    assert design._verdict_lines(design.auc_table(summary)[1]) == lines
    none = design._verdict_lines(
        design.auc_table(_design_summary({"lucky": [0.05, 0.04, 0.06, 0.05, -0.15]}))[1]
    )
    assert "**no informed strategy beats random**" in none[2]

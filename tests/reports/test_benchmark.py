"""The benchmark report (``lpm.reports.benchmark``), made from the tables a benchmark wrote, on
small constructed tables: coverage over the seeds that hold a group, verdicts from paired
intervals naming both key metrics, no ratio to a baseline that cannot be told from 0, models
that were not applicable listed with their reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from lpm.reports.benchmark import NO_RATIO, NO_RATIO_NOTE, benchmark_markdown

RESULTS = ["group", "model", "metric", "mean", "ci_low", "ci_high", "n"]
COMPARISONS = [
    "group", "model", "metric", "baseline", "difference", "ci_low", "ci_high", "n_pairs", "seeds",
    "verdict",
]  # fmt: skip


def _write(
    folder: Path,
    results: list[tuple[Any, ...]],
    coverage: list[tuple[Any, ...]],
    *,
    models: list[str],
    seeds: list[int],
    comparisons: list[tuple[Any, ...]] | None = None,
    not_applicable: list[tuple[Any, ...]] | None = None,
) -> Path:
    pl.DataFrame(results, schema=RESULTS, orient="row").write_csv(folder / "results.csv")
    pl.DataFrame(
        coverage, schema=["seed", "group", "model", "scored", "conditions"], orient="row"
    ).write_csv(folder / "coverage.csv")
    if comparisons is not None:
        pl.DataFrame(comparisons, schema=COMPARISONS, orient="row").write_csv(
            folder / "comparisons.csv"
        )
    if not_applicable is not None:
        pl.DataFrame(
            not_applicable,
            schema={"seed": pl.Int64, "model": pl.String, "stage": pl.String, "reason": pl.String},
            orient="row",
        ).write_csv(folder / "not_applicable.csv")
    spec = {"split": "unseen_pair", "seeds": seeds, "models": models}
    (folder / "run.json").write_text(json.dumps({"spec": spec, "command": ["lpm", "x"]}))
    return folder


def _folder(tmp_path: Path) -> Path:
    rows = [
        ("g", m, metric, mean, mean - 0.05, mean + 0.05, 10)
        for m, mean in (("no_change", 0.1), ("linear", 0.3))
        for metric in ("pearson_delta_vs_mean", "mse")
    ]
    coverage = [(0, "g", m, 10, 10) for m in ("no_change", "linear")]
    return _write(tmp_path, rows, coverage, models=["no_change", "linear"], seeds=[0])


def test_the_markdown_is_made_from_the_tables(tmp_path: Path) -> None:
    text = benchmark_markdown(_folder(tmp_path), title="Toy", stores=["s"])
    assert text.startswith("# Toy") and "## Test group `g`" in text
    assert "| linear | 10 / 10 conditions, 1 of 1 seeds |" in text
    assert "![metric panel](results.png)" in text
    assert not (tmp_path / "results.md").exists(), "making the Markdown writes nothing"


def test_coverage_counts_only_the_seeds_that_hold_the_group(tmp_path: Path) -> None:
    """Seeds 0 and 2 hold group g (12 conditions each), seed 1 does not: 12 / 12 over 2 of 3
    seeds, never 8 / 12 (a seed without the group counted as 0 % covered)."""
    models = ["no_change", "lpm"]
    rows = [("g", m, "mse", 0.2, 0.1, 0.3, 12) for m in models]
    coverage = [(s, "g", m, 12, 12) for s in (0, 2) for m in models]
    text = benchmark_markdown(
        _write(tmp_path, rows, coverage, models=models, seeds=[0, 1, 2]), title="t"
    )
    assert "| lpm | 12 / 12 conditions, 2 of 3 seeds |" in text
    assert "| no_change | 12 / 12 conditions, 2 of 3 seeds |" in text


def _issue_case(tmp_path: Path, verdict: str, lo: float, hi: float) -> str:
    """The issue's case: the best baseline's mean 0.087 (per seed −0.00, 0.19, 0.07, every
    interval spanning 0) and the model at 0.175 (the old report: "beats ×2.01")."""
    models = ["context_mean", "lpm"]
    rows = [
        ("g", "context_mean", "pearson_delta_vs_mean", 0.087, -0.09, 0.26, 12),
        ("g", "lpm", "pearson_delta_vs_mean", 0.175, -0.01, 0.35, 12),
        ("g", "context_mean", "discrimination", 0.6, 0.55, 0.65, 12),
        ("g", "lpm", "discrimination", 0.7, 0.62, 0.78, 12),
    ]
    coverage = [(s, "g", m, 12, 12) for s in (0, 1, 2) for m in models]
    comparisons = [
        ("g", "lpm", "pearson_delta_vs_mean", "context_mean", 0.088, lo, hi, 36, 3, verdict),
        ("g", "lpm", "discrimination", "context_mean", 0.1, 0.02, 0.18, 36, 3, "beats"),
    ]
    folder = _write(
        tmp_path, rows, coverage, models=models, seeds=[0, 1, 2], comparisons=comparisons
    )
    return benchmark_markdown(folder, title="t")


def test_no_ratio_to_a_baseline_that_cannot_be_told_from_zero(tmp_path: Path) -> None:
    text = _issue_case(tmp_path, "ties", -0.1, 0.27)
    lpm_row = next(line for line in text.splitlines() if line.startswith("| lpm |"))
    pearson_cell = lpm_row.split(" | ")[2]
    assert pearson_cell == f"0.175 [-0.010, 0.350] {NO_RATIO}"
    assert "×2.01" not in text and "beats ×" not in text
    assert "×1.17" in lpm_row  # discrimination: the baseline's interval lies above 0
    assert NO_RATIO_NOTE in text


def test_the_verdict_comes_from_the_paired_interval_and_names_both_key_metrics(
    tmp_path: Path,
) -> None:
    text = _issue_case(tmp_path, "ties", -0.1, 0.27)
    line = next(x for x in text.splitlines() if x.startswith("- **lpm**"))
    assert "corrected Pearson (`pearson_delta_vs_mean`): **ties** with context_mean" in line
    assert "+0.088 [−0.100, +0.270] over 36 conditions in 3 seeds" in line
    assert (
        "discrimination (`discrimination`): **beats** context_mean, +0.100 [+0.020, +0.180]" in line
    )
    assert "**beats** context_mean" not in line.split(";")[0]


def test_binary_readouts_get_auroc_and_auprc_verdicts(tmp_path: Path) -> None:
    models = ["no_change", "lpm"]
    rows = [
        ("g", m, metric, v, v - 0.05, v + 0.05, 20)
        for m, v in (("no_change", 0.5), ("lpm", 0.8))
        for metric in ("auroc", "auprc")
    ]
    coverage = [(0, "g", m, 20, 20) for m in models]
    comparisons = [
        ("g", "lpm", "auroc", "no_change", 0.3, 0.2, 0.4, 20, 1, "beats"),
        ("g", "lpm", "auprc", "no_change", 0.3, -0.1, 0.5, 20, 1, "ties"),
    ]
    folder = _write(tmp_path, rows, coverage, models=models, seeds=[0], comparisons=comparisons)
    line = next(x for x in benchmark_markdown(folder, title="t").splitlines() if "- **lpm**" in x)
    assert "AUROC (`auroc`): **beats** no_change" in line
    assert "AUPRC (`auprc`): **ties** with no_change" in line
    assert "pearson" not in line and "discrimination" not in line


def test_a_model_not_applicable_is_listed_with_its_reason(tmp_path: Path) -> None:
    models = ["no_change", "gene_graph"]
    reason = "gene_graph: no genetic perturbation rows to train on"
    folder = _write(
        tmp_path,
        [("g", "no_change", "mse", 0.2, 0.1, 0.3, 12)],
        [(s, "g", m, 12 if m == "no_change" else 0, 12) for s in (0, 1) for m in models],
        models=models,
        seeds=[0, 1],
        comparisons=[],
        not_applicable=[(0, "gene_graph", "fit", reason), (1, "gene_graph", "fit", reason)],
    )
    text = benchmark_markdown(folder, title="t")
    assert "**Not applicable:** gene_graph" in text and "went on with the other models" in text
    assert f"| gene_graph | all | fit | {reason} |" in text
    assert "| gene_graph |" not in text.split("## Not applicable")[0]


def test_single_readout_tables_are_judged_across_conditions(tmp_path: Path) -> None:
    models = ["context_mean", "lpm"]
    across = ("spearman_per_perturbation", "auroc_top10_per_perturbation")
    rows = [
        ("g", m, metric, v, v - 0.05, v + 0.05, n)
        for m, v, n in (("context_mean", 0.4, 1390), ("lpm", 0.56, 1396))
        for metric in ("discrimination", *across)
    ]
    coverage = [(0, "g", m, 5000, 5000) for m in models]
    comparisons = [
        ("g", "lpm", "spearman_per_perturbation", "context_mean", 0.16, 0.15, 0.17, 1396, 1, "beats"),
        ("g", "lpm", "discrimination", "context_mean", 0.0, -0.1, 0.1, 5000, 1, "ties"),
    ]  # fmt: skip
    folder = _write(tmp_path, rows, coverage, models=models, seeds=[0], comparisons=comparisons)
    pl.DataFrame(
        [("g", m, "spearman_per_perturbation", n, 1396 - n, 0) for m, n in (("context_mean", 1390), ("lpm", 1396))],
        schema=["group", "model", "metric", "n", "n_excluded", "seed"], orient="row",
    ).write_csv(folder / "scores_per_seed.csv")  # fmt: skip
    text = benchmark_markdown(folder, title="t")
    line = next(x for x in text.splitlines() if x.startswith("- **lpm**"))
    assert (
        "per-perturbation Spearman (`spearman_per_perturbation`): **beats** context_mean, "
        "+0.160 [+0.150, +0.170] over 1396 perturbations in 1 seed" in line
    )
    assert "discrimination" not in line  # the key metrics of a single-readout table
    assert "1396 perturbations held out, up to 1396 scored" in text
    assert (
        "| spearman_per_perturbation |"
        in text.splitlines()[text.splitlines().index("## Test group `g`") + 2]
    )

"""The discovery section (``lpm.reports.discovery``), made from written tables only: scores as
Markdown tables, the explanation summary in sentences, figures linked where they exist."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from lpm.reports.discovery import RUN_FILE, discovery_section, explain_lines

SUMMARY = {
    "shares": {"posthoc": {"context": 0.25, "perturbation": 0.75}},
    "context_vs_perturbation": {"posthoc": 0.25},
    "sanity_check": {
        "posthoc_vs_control": {
            "mean_no_effect": 0.0, "mean_effect": 1.0, "auroc": 0.9, "n_no_effect": 2, "n_effect": 8
        },
        "posthoc_mean_substitution": {
            "mean_no_effect": 0.1, "mean_effect": 2.0, "auroc": 0.8, "n_no_effect": 2, "n_effect": 8
        },
    },
    "test_mse": {"lpm": 0.5, "ame": None},
}  # fmt: skip


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "discovery"
    for sub in ("moa", "grn", "explain"):
        (folder / sub).mkdir(parents=True)
    (folder / RUN_FILE).write_text(
        json.dumps({"model": "lpm_fast", "seed": 3, "seconds": 12.4, "layout": "UMAP"})
    )
    pl.DataFrame(
        {
            "method": ["measured_profile"],
            "truth": ["sim_targets"],
            "auroc": [0.9],
            "average_precision": [0.5],
            "recall_at_k": [0.6],
            "base_rate": [0.1],
            "n_queries": [7],
        }
    ).write_csv(folder / "moa" / "moa_scores.csv")
    metrics = ["auprc", "base_rate", "precision_at_100", "random_precision_at_100"]
    pl.DataFrame(
        {
            "method": ["knockdown"] * 4,
            "reference": ["simulator_truth"] * 4,
            "metric": metrics,
            "value": [0.5, 0.1, 0.9, 0.2],
        }
    ).write_csv(folder / "grn" / "scores.csv")
    (folder / "grn" / "grn.json").write_text(json.dumps({"methods": ["knockdown", "imputed"]}))
    (folder / "grn" / "module_knockdown.png").write_bytes(b"png")
    (folder / "explain" / "summary.json").write_text(json.dumps(SUMMARY, sort_keys=True))
    return folder


def test_the_section_is_made_from_the_tables(tmp_path: Path) -> None:
    text = "\n".join(discovery_section(_folder(tmp_path)))
    assert "An `lpm_fast` trained on the whole store (seed 3)" in text and "12 s." in text
    assert "**Embeddings** (UMAP; `discovery/embeddings.h5ad`)" in text
    assert "| measured_profile | 0.900 | 0.500 | 0.600 | 0.100 | 7 |" in text
    assert "| knockdown | 0.500 | 0.100 | 0.900 | 0.200 | nan |" in text
    assert "![module knockdown](discovery/grn/module_knockdown.png)" in text
    assert "module_imputed" not in text and "moa.png" not in text, "only figures that exist"
    assert "- posthoc: share of importance by input: context 25%, perturbation 75%" in text


def test_sanity_checks_keep_their_order_whatever_the_json_order() -> None:
    lines = explain_lines(SUMMARY)
    assert lines[1].startswith("sanity check (posthoc_mean_substitution)")
    assert lines[2].startswith("sanity check (posthoc_vs_control)")
    assert lines[3] == "held-out MSE: explained model 0.5"

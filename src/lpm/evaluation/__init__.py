"""Scoring: the evaluation panel and benchmarks (a declared split, models, metrics and seeds)."""

from lpm.evaluation.across import AcrossResult, evaluate_across
from lpm.evaluation.benchmark import BenchmarkSpec, run_benchmark, summarise
from lpm.evaluation.compare import compare_to_best_baseline, paired_verdict
from lpm.evaluation.panel import HIGHER_IS_BETTER, METRICS, PanelResult, evaluate, ratio_to_baseline
from lpm.evaluation.ranking import (
    degree_preserving_random,
    edge_scores_auprc,
    mean_over_queries,
    per_query_scores,
    ranking_scores,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "AcrossResult",
    "BenchmarkSpec",
    "PanelResult",
    "compare_to_best_baseline",
    "degree_preserving_random",
    "edge_scores_auprc",
    "evaluate",
    "evaluate_across",
    "mean_over_queries",
    "paired_verdict",
    "per_query_scores",
    "ranking_scores",
    "ratio_to_baseline",
    "run_benchmark",
    "summarise",
]

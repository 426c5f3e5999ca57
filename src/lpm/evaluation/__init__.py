"""Scoring: the evaluation panel and benchmarks (a declared split, models, metrics and seeds)."""

from lpm.evaluation.benchmark import BenchmarkSpec, run_benchmark
from lpm.evaluation.panel import HIGHER_IS_BETTER, METRICS, PanelResult, evaluate, ratio_to_baseline

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "BenchmarkSpec",
    "PanelResult",
    "evaluate",
    "ratio_to_baseline",
    "run_benchmark",
]

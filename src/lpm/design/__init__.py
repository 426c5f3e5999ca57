"""Which experiments to run next: one-shot selection from prior knowledge and active learning.

- :mod:`lpm.design.selection`: choose k perturbations before any model is trained (coverage of
  a gene graph within L hops, lazy greedy; a spectral variant).
- :mod:`lpm.design.loop`: an active-learning loop in PyRelationAL's five parts (pool, model
  manager, strategy, oracle, loop), with :mod:`lpm.design.strategies` by name
  (:mod:`lpm.design.registry`).
"""

from lpm.design.base import RoundState, StrategySpec
from lpm.design.kernels import cosine_kernel, feature_kernel, graph_kernel, prior_kernel
from lpm.design.loop import (
    DesignResult,
    LoopConfig,
    area_under_curve,
    perturbation_graph,
    run_design,
    run_strategy,
)
from lpm.design.manager import ModelManager
from lpm.design.pool import DesignUniverse, LabelledPool, Oracle, design_universe
from lpm.design.registry import (
    describe_strategy,
    get_strategy,
    list_strategies,
    one_shot_strategies,
    register_strategy,
)
from lpm.design.selection import coverage_selection, reach_matrix, spectral_selection
from lpm.design.strategies import STRATEGIES

__all__ = [
    "STRATEGIES",
    "DesignResult",
    "DesignUniverse",
    "LabelledPool",
    "LoopConfig",
    "ModelManager",
    "Oracle",
    "RoundState",
    "StrategySpec",
    "area_under_curve",
    "cosine_kernel",
    "coverage_selection",
    "describe_strategy",
    "design_universe",
    "feature_kernel",
    "get_strategy",
    "graph_kernel",
    "list_strategies",
    "one_shot_strategies",
    "perturbation_graph",
    "prior_kernel",
    "reach_matrix",
    "register_strategy",
    "run_design",
    "run_strategy",
    "spectral_selection",
]

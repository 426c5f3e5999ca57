"""The active-learning loop: choose, reveal, refit, score, round after round.

PyRelationAL's five parts, one module each: the data manager (:mod:`lpm.design.pool`), the
model manager (:mod:`lpm.design.manager`), the strategy (:mod:`lpm.design.strategies`), the oracle
(:class:`lpm.design.pool.Oracle`, held-out measured data in benchmarks) and this loop.

Round 0 labels ``initial`` perturbations chosen without a model (``first``: random, coverage or
spectral; graph strategies start from their own one-shot choice), then each round labels
``batch`` more, up to ``budget``. After every round the model is refitted on the labelled rows
and scored with the full evaluation panel on a fixed held-out set of perturbations (the same for
every strategy of a seed), so the learning curves of strategies are comparable point by point.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.design.base import RoundState
from lpm.design.manager import ModelManager
from lpm.design.pool import (
    DesignUniverse,
    LabelledPool,
    Oracle,
    design_universe,
    perturbation_strength,
    strongest,
)
from lpm.design.registry import get_strategy, one_shot_strategies
from lpm.errors import LpmInputError
from lpm.evaluation.panel import evaluate

#: Panel metrics logged per round (the full panel, less the binary ones a delta store lacks).
ROUND_METRICS = (
    "pearson_delta",
    "pearson_delta_vs_mean",
    "pearson_delta_top20",
    "mse",
    "mse_top20",
    "direction_acc_top20",
    "discrimination",
)
#: Metrics whose area under the learning curve is reported (lower is better for mse).
AUC_METRICS = ("pearson_delta", "pearson_delta_vs_mean", "mse", "discrimination", "top_acquired")
LOWER_IS_BETTER = frozenset({"mse", "mse_top20"})


@dataclass(frozen=True)
class LoopConfig:
    """Everything that defines a design run; the same config and seed give the same numbers."""

    model: str = "gene_graph"
    model_params: Mapping[str, Any] = field(default_factory=dict)
    initial: int = 100
    batch: int = 100
    rounds: int = 5
    budget: int | None = None
    test_fraction: float = 0.2
    seed: int = 0
    graph: str | None = "go"
    hops: int | None = None
    prior: tuple[str, ...] = ("graph",)
    ensemble: int = 3
    first: str = "random"
    top_fraction: float = 0.05

    def __post_init__(self) -> None:
        """Refuse counts and shares no loop can run with, before any work."""
        for option, value, low in (
            ("--initial", self.initial, 1),
            ("--batch", self.batch, 1),
            ("--rounds", self.rounds, 0),
            ("--ensemble", self.ensemble, 1),
            ("--budget", self.budget, 1),
            ("--hops", self.hops, 0),
        ):
            if value is not None and value < low:
                raise LpmInputError(None, f"{option} must be at least {low}, got {value}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise LpmInputError(
                None, f"--test-fraction must be in [0, 1), got {self.test_fraction}"
            )
        if not 0.0 <= self.top_fraction <= 1.0:
            raise LpmInputError(None, f"--top-fraction must be in [0, 1], got {self.top_fraction}")

    def resolved_hops(self) -> int:
        """L = the graph model's message-passing layers unless given."""
        if self.hops is not None:
            return self.hops
        return int(self.model_params.get("layers", 2))


@dataclass(frozen=True)
class DesignResult:
    """Per-round metrics, acquisitions and the per-strategy summary of one seed."""

    universe: DesignUniverse
    rounds: pl.DataFrame
    acquired: pl.DataFrame
    summary: pl.DataFrame
    config: LoopConfig


def perturbation_graph(edges: pl.DataFrame, gene: Mapping[str, str]) -> pl.DataFrame:
    """The gene graph with each gene replaced by the perturbations of it (genes nobody perturbs
    stay as nodes, so paths may pass through them); perturbations of one gene are neighbours."""
    nodes = pl.DataFrame({"g": list(gene.values()), "node": list(gene.keys())})

    def to_nodes(frame: pl.DataFrame, col: str) -> pl.DataFrame:
        table = nodes.rename({"g": col, "node": "_node"})
        joined = frame.join(table, on=col, how="left")  # one row per perturbation of the gene
        return joined.with_columns(pl.coalesce("_node", col).alias(col)).drop("_node")

    mapped = to_nodes(to_nodes(edges, "source"), "target")
    same = nodes.join(nodes, on="g", suffix="_b").filter(pl.col("node") != pl.col("node_b"))
    same_gene = same.select(
        pl.col("node").alias("source"),
        pl.col("node_b").alias("target"),
        pl.lit(1.0, pl.Float32).alias("weight"),
    )
    return pl.concat(
        [mapped.select("source", "target", pl.col("weight").cast(pl.Float32)), same_gene]
    ).unique(subset=["source", "target"], keep="first", maintain_order=True)


def area_under_curve(x: Sequence[float], y: Sequence[float]) -> float:
    """Trapezoid area under a learning curve divided by its x-range: the curve's mean level."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(xs) < 2 or xs[-1] == xs[0]:
        return float(ys[0]) if len(ys) else float("nan")
    return float(np.trapezoid(ys, xs) / (xs[-1] - xs[0]))


def _batches(config: LoopConfig, n_pool: int) -> list[int]:
    """Labelled counts to add per round: ``initial``, then ``batch`` each, capped by budget/pool."""
    budget = config.budget if config.budget is not None else n_pool
    if config.initial > min(budget, n_pool):
        raise LpmInputError(
            None,
            f"--initial {config.initial} exceeds the budget or the pool ({min(budget, n_pool)})",
        )
    sizes, total = [config.initial], config.initial
    for _ in range(config.rounds):
        step = min(config.batch, budget - total, n_pool - total)
        if step <= 0:
            break
        sizes.append(step)
        total += step
    return sizes


def run_strategy(
    strategy: str,
    *,
    universe: DesignUniverse,
    oracle: Oracle,
    config: LoopConfig,
    strength: Mapping[str, float],
    graph: pl.DataFrame | None,
    progress: Callable[[str], None] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One strategy's loop: per-round metrics and the acquisitions, both as tables."""
    spec = get_strategy(strategy)
    one_shot = one_shot_strategies()
    if config.first not in one_shot:
        raise LpmInputError(None, f"--first must be one of {', '.join(one_shot)}")
    first = get_strategy(strategy if strategy in one_shot else config.first)
    test_rows = oracle.reveal(universe.test)
    top = strongest(universe.pool, dict(strength), config.top_fraction)
    pool = LabelledPool(universe.pool)
    models = ModelManager(config.model, config.model_params, seed=config.seed)
    state = _first_state(universe, oracle, config, graph)
    records, acquired = [], []
    for round_, size in enumerate(_batches(config, len(universe.pool))):
        state.round, state.batch = round_, size
        state.labelled, state.unlabelled = pool.labelled, pool.unlabelled
        state.models = models if round_ > 0 else None
        start = time.perf_counter()
        chosen, scores = (first if round_ == 0 else spec).choose(state)
        select_s = time.perf_counter() - start
        pool.label(chosen, round_)
        acquired += [(strategy, round_, p, s) for p, s in zip(chosen, scores, strict=True)]
        train = oracle.reveal(pool.labelled)
        models.fit(train)
        record = _score(models, test_rows, train)
        record.update(
            strategy=strategy,
            round=round_,
            n_labelled=len(pool.labelled),
            top_acquired=len(top & set(pool.labelled)) / len(top),
            fit_seconds=models.fit_seconds,
            select_seconds=select_s,
        )
        records.append(record)
        if progress is not None:
            progress(
                f"{strategy} round {round_}: {len(pool.labelled)} labelled, "
                f"pearson_delta {record['pearson_delta']:.3f}, mse {record['mse']:.4g}"
            )
    return _tables(records, acquired)


def _first_state(
    universe: DesignUniverse, oracle: Oracle, config: LoopConfig, graph: pl.DataFrame | None
) -> RoundState:
    """What the strategies see before round 0: the graphs and priors, nothing labelled yet."""
    return RoundState(
        round=0,
        batch=0,
        seed=config.seed,
        labelled=[],
        unlabelled=[],
        oracle=oracle,
        hops=config.resolved_hops(),
        graph=perturbation_graph(graph, universe.gene) if graph is not None else None,
        ensemble=config.ensemble,
        prior=config.prior,
        prior_graph=graph,
        gene=dict(universe.gene),
    )


def _tables(
    records: list[dict[str, Any]], acquired: list[tuple[str, int, str, float]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The per-round metrics and the acquisitions of one strategy as tables."""
    rounds = pl.DataFrame(records).select(
        "strategy",
        "round",
        "n_labelled",
        *ROUND_METRICS,
        "top_acquired",
        "n_test_conditions",
        "n_test_unsupported",
        "fit_seconds",
        "select_seconds",
    )
    table = pl.DataFrame(
        acquired,
        schema={
            "strategy": pl.String,
            "round": pl.Int64,
            S.PERTURBATION: pl.String,
            "score": pl.Float64,
        },
        orient="row",
    )
    return rounds, table


def _score(models: ModelManager, test_rows: pl.DataFrame, train: pl.DataFrame) -> dict[str, Any]:
    """The panel on the held-out rows the model can predict; the others are counted, not hidden."""
    ok = models.model.supported(test_rows)
    rows = test_rows.filter(pl.Series(ok))
    if rows.height == 0:
        raise LpmInputError(
            None, f"model {models.name!r} can predict none of the held-out perturbations"
        )
    res = evaluate(rows, models.model.predict(rows), train=train, n_boot=0)
    values = dict(zip(res.summary["metric"], res.summary["mean"], strict=True))
    n_bad = test_rows.filter(pl.Series(~ok))[S.PERTURBATION].n_unique()
    return {
        **{m: float(values.get(m, float("nan"))) for m in ROUND_METRICS},
        "n_test_conditions": int(res.per_condition.height),
        "n_test_unsupported": int(n_bad),
    }


def summarise(rounds: pl.DataFrame) -> pl.DataFrame:
    """Per strategy: area under each learning curve and the last round's values."""
    out = []
    for (strategy,), part in rounds.sort("round").group_by("strategy", maintain_order=True):
        row: dict[str, Any] = {"strategy": strategy, "n_labelled": int(part["n_labelled"][-1])}
        x = part["n_labelled"].to_list()
        for m in AUC_METRICS:
            row[f"auc_{m}"] = area_under_curve(x, part[m].to_list())
        for m in AUC_METRICS:
            row[f"final_{m}"] = float(part[m][-1])
        out.append(row)
    return pl.DataFrame(out)


def run_design(
    rows: pl.DataFrame,
    strategies: Sequence[str],
    config: LoopConfig,
    *,
    strength: Mapping[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DesignResult:
    """Run each strategy from the same split and seed; strength defaults to the data's energy."""
    if not strategies:
        raise LpmInputError(None, "no strategy given (--strategies)")
    for name in strategies:
        get_strategy(name)
    graph = None
    if config.graph is not None:
        from lpm.priors.gene_graph import graph_source

        graph = graph_source(config.graph)
    params = dict(config.model_params)
    if config.graph is not None and config.model == "gene_graph":
        params.setdefault("graph", config.graph)
    config = LoopConfig(**{**config.__dict__, "model_params": params})
    graph_genes = None
    if graph is not None:
        graph_genes = set(graph["source"].to_list()) | set(graph["target"].to_list())
    universe = design_universe(
        rows, test_fraction=config.test_fraction, seed=config.seed, graph_genes=graph_genes
    )
    if progress is not None:
        progress(
            f"{len(universe.pool)} pool and {len(universe.test)} held-out perturbations; "
            f"{len(universe.excluded)} excluded"
        )
    kept = [*universe.pool, *universe.test]
    oracle = Oracle(rows.filter(pl.col(S.PERTURBATION).cast(pl.String).is_in(kept)))
    if strength is None:
        strength = perturbation_strength(oracle.reveal(universe.pool))
    all_rounds, all_acquired = [], []
    for name in strategies:
        rounds, acquired = run_strategy(
            name,
            universe=universe,
            oracle=oracle,
            config=config,
            strength=strength,
            graph=graph,
            progress=progress,
        )
        all_rounds.append(rounds)
        all_acquired.append(acquired)
    rounds = pl.concat(all_rounds)
    return DesignResult(
        universe=universe,
        rounds=rounds,
        acquired=pl.concat(all_acquired),
        summary=summarise(rounds),
        config=config,
    )

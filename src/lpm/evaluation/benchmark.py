"""A benchmark is a declared set of split, models, metrics and seeds, run on one table of rows.

Every model is scored on the same held-out rows: within each test group, the rows that all
applicable models can predict (a model that can predict none of a group is listed as n/a).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.splits import make_split
from lpm.evaluation.panel import evaluate
from lpm.models.registry import get_model, get_model_class

GROUP = "group"


@dataclass(frozen=True)
class BenchmarkSpec:
    """What to run: one split kind, models by name (with optional params), seeds."""

    split: str
    models: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    model_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    split_params: Mapping[str, Any] = field(default_factory=dict)
    n_boot: int = 1000

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)


@dataclass
class BenchmarkResult:
    """Tidy tables: one row per (seed, group, model, metric) and the coverage of each model."""

    spec: BenchmarkSpec
    scores: pl.DataFrame
    coverage: pl.DataFrame
    timings: pl.DataFrame
    per_context: pl.DataFrame


def _instantiate(name: str, spec: BenchmarkSpec, seed: int) -> Any:
    params = dict(spec.model_params.get(name, {}))
    if "seed" in get_model_class(name).param_names():
        params.setdefault("seed", seed)
    return get_model(name, **params)


def run_benchmark(
    rows: pl.DataFrame,
    spec: BenchmarkSpec,
    *,
    progress: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Split, fit each model on train (val for early stopping), score on the common test rows."""
    scores, coverage, timings, per_ctx = [], [], [], []
    for seed in spec.seeds:
        split = make_split(rows, kind=spec.split, seed=seed, **dict(spec.split_params))
        group_keys = [c for c in split.test_groups.columns if c != GROUP]
        test = split.test.join(
            split.test_groups, on=group_keys, how="left", nulls_equal=True, maintain_order="left"
        )
        supported: dict[str, np.ndarray] = {}
        preds: dict[str, np.ndarray] = {}
        for name in spec.models:
            if progress:
                progress(f"seed {seed}: fitting {name}")
            model = _instantiate(name, spec, seed)
            t0 = time.perf_counter()
            model.fit(split.train, split.val)
            t_fit = time.perf_counter() - t0
            mask = model.supported(test)
            pred = np.full(test.height, np.nan, dtype=np.float32)
            t0 = time.perf_counter()
            if mask.any():
                pred[mask] = model.predict(test.filter(pl.Series(mask)))
            t_pred = time.perf_counter() - t0
            supported[name], preds[name] = mask, pred
            timings.append(
                {
                    "seed": seed,
                    "model": name,
                    "fit_s": t_fit,
                    "predict_s": t_pred,
                    "train_rows": split.train.height,
                }
            )
        groups = test[GROUP].to_numpy()
        for group in sorted(set(groups.tolist())):
            in_group = groups == group
            applicable = [m for m in spec.models if supported[m][in_group].any()]
            common = in_group.copy()
            for m in applicable:
                common &= supported[m]
            truth = test.filter(pl.Series(common))
            n_cond = (
                test.filter(pl.Series(in_group)).select(S.CONTEXT, S.PERTURBATION).unique().height
            )
            n_common = truth.select(S.CONTEXT, S.PERTURBATION).unique().height
            for m in spec.models:
                own = (
                    test.filter(pl.Series(in_group & supported[m]))
                    .select(S.CONTEXT, S.PERTURBATION)
                    .unique()
                    .height
                )
                coverage.append(
                    {
                        "seed": seed,
                        GROUP: group,
                        "model": m,
                        "conditions": n_cond,
                        "covered": own,
                        "scored": n_common if m in applicable else 0,
                    }
                )
            if truth.height == 0:
                continue
            for m in applicable:
                res = evaluate(
                    truth, preds[m][common], train=split.train, n_boot=spec.n_boot, seed=seed
                )
                scores.append(
                    res.summary.with_columns(
                        pl.lit(seed).alias("seed"),
                        pl.lit(group).alias(GROUP),
                        pl.lit(m).alias("model"),
                    )
                )
                per_ctx.append(
                    res.per_context.with_columns(
                        pl.lit(seed).alias("seed"),
                        pl.lit(group).alias(GROUP),
                        pl.lit(m).alias("model"),
                    )
                )
    score_df = pl.concat(scores, how="diagonal_relaxed") if scores else pl.DataFrame()
    ctx_df = pl.concat(per_ctx, how="diagonal_relaxed") if per_ctx else pl.DataFrame()
    return BenchmarkResult(spec, score_df, pl.DataFrame(coverage), pl.DataFrame(timings), ctx_df)


def summarise(result: BenchmarkResult) -> pl.DataFrame:
    """Average over seeds: mean of per-seed means, mean bootstrap bounds and the seed spread."""
    return (
        result.scores.group_by(GROUP, "model", "metric")
        .agg(
            pl.col("mean").mean().alias("mean"),
            pl.col("ci_low").mean().alias("ci_low"),
            pl.col("ci_high").mean().alias("ci_high"),
            pl.col("mean").std().alias("seed_sd"),
            pl.col("n").mean().alias("n"),
            pl.len().alias("seeds"),
        )
        .sort(GROUP, "metric", "model")
    )


def save_benchmark(
    result: BenchmarkResult, out: Path, *, command: Sequence[str] | None = None
) -> Path:
    """Write the raw tables; the report (Markdown, figure) is made from them by ``lpm.reports``."""
    out.mkdir(parents=True, exist_ok=True)
    result.scores.write_csv(out / "scores_per_seed.csv")
    summarise(result).write_csv(out / "results.csv")
    result.coverage.write_csv(out / "coverage.csv")
    result.timings.write_csv(out / "timings.csv")
    if result.per_context.height:
        result.per_context.write_csv(out / "per_context.csv")
    run = {"spec": json.loads(result.spec.to_json()), "command": list(command) if command else None}
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    return out

"""A benchmark is a declared set of split, models, metrics and seeds, run on one table of rows.

Every model is scored on the same held-out rows: within each test group, the rows that all
applicable models can predict (a model that can predict none of a group is listed as n/a).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.splits import get_split_kind, make_split
from lpm.errors import LpmInputError
from lpm.evaluation.panel import check_n_boot, evaluate
from lpm.models.registry import make_model

GROUP = "group"
#: The most seeds one benchmark runs (each seed fits every model once).
MAX_SEEDS: Final = 1000


@dataclass(frozen=True)
class BenchmarkSpec:
    """What to run: one split kind, models by name (with optional params), seeds."""

    split: str
    models: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    model_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    split_params: Mapping[str, Any] = field(default_factory=dict)
    n_boot: int = 1000
    #: Stores whose rows are added to every training set (joint training); scoring stays on the split.
    extra_stores: tuple[str, ...] = ()
    #: A model predicting at least this share of a group's rows joins the main table (scored on
    #: the rows all such models predict); one below it gets a table of its own rows.
    min_coverage: float = 0.9

    def __post_init__(self) -> None:
        """Refuse a benchmark that cannot run, before any work: a split kind that is not
        registered, no models, a seed count outside 1..1000, a negative bootstrap count."""
        get_split_kind(self.split)
        if not self.models:
            raise LpmInputError(None, "no models given (--models)")
        check_seed_count(len(self.seeds))
        if len(set(self.seeds)) != len(self.seeds):
            raise LpmInputError(None, f"seeds repeat: {list(self.seeds)}")
        check_n_boot(self.n_boot)
        if not 0.0 <= self.min_coverage <= 1.0:
            raise LpmInputError(None, f"min_coverage must be in [0, 1], got {self.min_coverage}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)


def check_seed_count(n: int) -> int:
    """``n`` if it is a seed count a benchmark can run (1 to :data:`MAX_SEEDS`), else a one-line
    error naming ``--seeds`` and the range."""
    if isinstance(n, bool) or not 1 <= n <= MAX_SEEDS:
        raise LpmInputError(None, f"--seeds must be between 1 and {MAX_SEEDS}, got {n}")
    return n


@dataclass
class BenchmarkResult:
    """Tidy tables: one row per (seed, group, model, metric) and the coverage of each model."""

    spec: BenchmarkSpec
    scores: pl.DataFrame
    coverage: pl.DataFrame
    timings: pl.DataFrame
    per_context: pl.DataFrame


#: ``lpm_fast@anchored``: a variant of a registered model, with its base's parameters and its
#: own on top (``--param lpm_fast@anchored.anchor_controls=8``), scored as a model of its own.
VARIANT_SEPARATOR = "@"


def _instantiate(name: str, spec: BenchmarkSpec, seed: int) -> Any:
    base = name.partition(VARIANT_SEPARATOR)[0]
    params = dict(spec.model_params.get(base, {}))
    if base != name:
        params.update(spec.model_params.get(name, {}))
    return make_model(base, params, seed=seed)


def _conditions(rows: pl.DataFrame) -> int:
    """Held-out profiles: (context, perturbation[, dose, time]); replicates are one profile."""
    keys = [c for c in S.condition_columns(rows.columns) if c != S.REPLICATE]
    return rows.select(keys).unique().height


def _scoring_sets(
    group: str,
    in_group: np.ndarray,
    supported: Mapping[str, np.ndarray],
    share: Mapping[str, float],
    min_coverage: float,
) -> list[tuple[str, list[str], np.ndarray]]:
    """Which models are scored on which rows: one main table on the rows every well-covering
    model predicts, and for each partial model a table on its own rows beside the main models.

    ``share`` is each model's share of the group's rows it can predict (mean over seeds).
    """
    main = [m for m, f in share.items() if f >= min_coverage]
    common = in_group.copy()
    for m in main:
        common &= supported[m]
    sets = [(group, main, common)] if main else []
    for m, f in share.items():
        if 0 < f < min_coverage:
            rows = common & supported[m]
            sets.append((f"{group} | rows {m} can predict", [m, *main], rows))
    return sets


def _coverage_rows(
    seed: int,
    table: str,
    test: pl.DataFrame,
    in_group: np.ndarray,
    rows: np.ndarray,
    supported: Mapping[str, np.ndarray],
    models: Sequence[str],
    scored: Sequence[str],
) -> list[dict[str, Any]]:
    n_cond = _conditions(test.filter(pl.Series(in_group)))
    n_scored = _conditions(test.filter(pl.Series(rows)))
    return [
        {
            "seed": seed,
            GROUP: table,
            "model": m,
            "conditions": n_cond,
            "covered": _conditions(test.filter(pl.Series(in_group & supported[m]))),
            "scored": n_scored if m in scored else 0,
        }
        for m in models
    ]


@dataclass
class _SeedRun:
    seed: int
    train: pl.DataFrame
    test: pl.DataFrame
    supported: dict[str, np.ndarray]
    preds: dict[str, np.ndarray]

    def coverage(self, group: str, model: str) -> float:
        in_group = self.test[GROUP].to_numpy() == group
        return float(self.supported[model][in_group].mean()) if in_group.any() else 0.0


def _fit_and_predict(
    rows: pl.DataFrame,
    spec: BenchmarkSpec,
    seed: int,
    timings: list[dict[str, Any]],
    progress: Callable[[str], None] | None,
    extra_train: pl.DataFrame | None,
) -> _SeedRun:
    split = make_split(rows, kind=spec.split, seed=seed, **dict(spec.split_params))
    train = split.train
    if extra_train is not None:
        # joint training: other data sets join the training rows, never the held-out keys
        keys = [
            c
            for c in (*S.KEY_COLUMNS, S.DOSE, S.TIME, *S.MEMBER_COLUMNS)
            if c in extra_train.columns and c in split.test.columns
        ]
        held = pl.concat([split.test.select(keys), split.val.select(keys)])
        train = pl.concat(
            [train, extra_train.join(held, on=keys, how="anti", nulls_equal=True)],
            how="diagonal_relaxed",
        )
    group_keys = [c for c in split.test_groups.columns if c != GROUP]
    test = split.test.join(
        split.test_groups, on=group_keys, how="left", nulls_equal=True, maintain_order="left"
    )
    run = _SeedRun(seed, split.train, test, {}, {})
    for name in spec.models:
        if progress:
            progress(f"seed {seed}: fitting {name}")
        model = _instantiate(name, spec, seed)
        t0 = time.perf_counter()
        model.fit(train, split.val)
        t_fit = time.perf_counter() - t0
        mask = model.supported(test)
        pred = np.full(test.height, np.nan, dtype=np.float32)
        t0 = time.perf_counter()
        if mask.any():
            pred[mask] = model.predict(test.filter(pl.Series(mask)))
        t_pred = time.perf_counter() - t0
        run.supported[name], run.preds[name] = mask, pred
        timings.append(
            {
                "seed": seed,
                "model": name,
                "fit_s": t_fit,
                "predict_s": t_pred,
                "train_rows": train.height,
            }
        )
    return run


def run_benchmark(
    rows: pl.DataFrame,
    spec: BenchmarkSpec,
    *,
    progress: Callable[[str], None] | None = None,
    extra_train: pl.DataFrame | None = None,
) -> BenchmarkResult:
    """Split, fit each model on train (val for early stopping), score on the common test rows.

    ``extra_train`` rows (other data sets) join every training set: joint training, scored on
    the same held-out rows as training alone.

    Which models share a table is decided once over all seeds (mean coverage), so every seed
    fills the same tables.
    """
    timings: list[dict[str, Any]] = []
    runs = [
        _fit_and_predict(rows, spec, seed, timings, progress, extra_train) for seed in spec.seeds
    ]
    all_groups = sorted({g for run in runs for g in run.test[GROUP].unique().to_list()})
    scores, coverage, per_ctx = [], [], []
    for group in all_groups:
        share = {m: float(np.mean([run.coverage(group, m) for run in runs])) for m in spec.models}
        for run in runs:
            in_group = run.test[GROUP].to_numpy() == group
            if not in_group.any():
                continue
            for table, models, scored_rows in _scoring_sets(
                group, in_group, run.supported, share, spec.min_coverage
            ):
                coverage += _coverage_rows(
                    run.seed,
                    table,
                    run.test,
                    in_group,
                    scored_rows,
                    run.supported,
                    spec.models,
                    models,
                )
                truth = run.test.filter(pl.Series(scored_rows))
                if truth.height == 0:
                    continue
                for m in models:
                    res = evaluate(
                        truth,
                        run.preds[m][scored_rows],
                        train=run.train,
                        n_boot=spec.n_boot,
                        seed=run.seed,
                    )
                    tag = [
                        pl.lit(run.seed).alias("seed"),
                        pl.lit(table).alias(GROUP),
                        pl.lit(m).alias("model"),
                    ]
                    scores.append(res.summary.with_columns(tag))
                    per_ctx.append(res.per_context.with_columns(tag))
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

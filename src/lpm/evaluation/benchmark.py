"""A benchmark is a declared set of split, models, metrics and seeds, run on one table of rows.

Every model is scored on the same held-out rows: within each test group, the rows that all
applicable models can predict (a model that can predict none of a group is listed as n/a).
A table whose rows hold one (non-binary) readout, as viability screens do, is also scored
across conditions (:mod:`lpm.evaluation.across`: per perturbation over its contexts, per
context over its perturbations); tables with several readouts are scored as before.

A model that cannot be fitted on the data, or cannot predict it, says so with an
:class:`~lpm.errors.LpmInputError` from ``fit``, ``supported`` or ``predict`` (``gene_graph``
on compound-only data, a model out of memory): it is *not applicable* in that seed, with that
one-line reason, and the benchmark goes on with the other models. Any other exception is a bug
and stops the benchmark; so does a benchmark where no model could be fitted at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.splits import get_split_kind, make_split
from lpm.errors import LpmInputError, first_line
from lpm.evaluation.across import AXES, evaluate_across, single_readout
from lpm.evaluation.compare import (
    COMPARISON_SCHEMA,
    VERDICT_METRICS,
    compare_to_best_baseline,
)
from lpm.evaluation.metrics import ACROSS_METRICS
from lpm.evaluation.panel import check_n_boot, evaluate
from lpm.models.registry import BASELINES, make_model

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


#: Columns of :attr:`BenchmarkResult.not_applicable`.
NOT_APPLICABLE_SCHEMA: Final = {
    "seed": pl.Int64,
    "model": pl.String,
    "stage": pl.String,
    "reason": pl.String,
}


@dataclass
class BenchmarkResult:
    """Tidy tables: one row per (seed, group, model, metric), the coverage of each model, the
    paired comparisons with the best baseline (:mod:`lpm.evaluation.compare`) and the models
    that were not applicable (``seed, model, stage, reason``)."""

    spec: BenchmarkSpec
    scores: pl.DataFrame
    coverage: pl.DataFrame
    timings: pl.DataFrame
    per_context: pl.DataFrame
    comparisons: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=COMPARISON_SCHEMA)
    )
    not_applicable: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=NOT_APPLICABLE_SCHEMA)
    )


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

    ``share`` is each model's share of the group's rows it can predict (mean over the seeds
    whose test part holds the group).
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

    def has(self, group: str) -> bool:
        return bool((self.test[GROUP].to_numpy() == group).any())

    def coverage(self, group: str, model: str) -> float:
        in_group = self.test[GROUP].to_numpy() == group
        return float(self.supported[model][in_group].mean())


def _trainer_options(model: Any, name: str, seed: int, checkpoint_dir: Path | None) -> Any:
    """Trainer options of a Lightning-trained model: its kept checkpoint in
    ``checkpoint_dir/seed<seed>/<name>``; None for other models or without a folder."""
    if checkpoint_dir is None or not model.uses_trainer:
        return None
    from lpm.models.training import TrainerOptions

    return TrainerOptions(best_checkpoint_dir=checkpoint_dir / f"seed{seed}" / name)


class _NotApplicable(Exception):
    """A model's fit or prediction refused these data (its :class:`LpmInputError`)."""

    def __init__(self, stage: str, exc: LpmInputError) -> None:
        super().__init__(first_line(exc))
        self.stage, self.reason = stage, first_line(exc)


def _fit_one(
    model: Any, train: pl.DataFrame, val: pl.DataFrame, test: pl.DataFrame, trainer: Any
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Fit, then predict the supported test rows: (mask, predictions, fit s, predict s)."""
    t0 = time.perf_counter()
    try:
        model.fit(train, val, **({"trainer": trainer} if trainer is not None else {}))
    except LpmInputError as exc:
        raise _NotApplicable("fit", exc) from exc
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        mask = model.supported(test)
        pred = np.full(test.height, np.nan, dtype=np.float32)
        if mask.any():
            pred[mask] = model.predict(test.filter(pl.Series(mask)))
    except LpmInputError as exc:
        raise _NotApplicable("predict", exc) from exc
    return mask, pred, t_fit, time.perf_counter() - t0


def _joint_train(split: Any, extra_train: pl.DataFrame | None) -> pl.DataFrame:
    """The split's training rows, with other data sets' rows (never the held-out keys)."""
    if extra_train is None:
        return split.train
    keys = [
        c
        for c in (*S.KEY_COLUMNS, S.DOSE, S.TIME, *S.MEMBER_COLUMNS)
        if c in extra_train.columns and c in split.test.columns
    ]
    held = pl.concat([split.test.select(keys), split.val.select(keys)])
    return pl.concat(
        [split.train, extra_train.join(held, on=keys, how="anti", nulls_equal=True)],
        how="diagonal_relaxed",
    )


def _fit_and_predict(
    rows: pl.DataFrame,
    spec: BenchmarkSpec,
    seed: int,
    log: dict[str, list[dict[str, Any]]],
    progress: Callable[[str], None] | None,
    extra_train: pl.DataFrame | None,
    checkpoint_dir: Path | None,
) -> _SeedRun:
    """One seed: split, then fit and predict every model. A model whose fit or prediction
    raises :class:`LpmInputError` predicts nothing in this seed and is logged not applicable."""
    split = make_split(rows, kind=spec.split, seed=seed, **dict(spec.split_params))
    train = _joint_train(split, extra_train)
    group_keys = [c for c in split.test_groups.columns if c != GROUP]
    test = split.test.join(
        split.test_groups, on=group_keys, how="left", nulls_equal=True, maintain_order="left"
    )
    run = _SeedRun(seed, split.train, test, {}, {})
    for name in spec.models:
        if progress:
            progress(f"seed {seed}: fitting {name}")
        model = _instantiate(name, spec, seed)
        trainer = _trainer_options(model, name, seed, checkpoint_dir)
        t_fit: float | None
        t_pred: float | None
        try:
            mask, pred, t_fit, t_pred = _fit_one(model, train, split.val, test, trainer)
        except _NotApplicable as na:
            log["not_applicable"].append(
                {"seed": seed, "model": name, "stage": na.stage, "reason": na.reason}
            )
            mask, pred = np.zeros(test.height, bool), np.full(test.height, np.nan, np.float32)
            t_fit = t_pred = None
        run.supported[name], run.preds[name] = mask, pred
        log["timings"].append(
            {
                "seed": seed,
                "model": name,
                "fit_s": t_fit,
                "predict_s": t_pred,
                "train_rows": train.height,
            }
        )
    return run


def _check_some_applicable(spec: BenchmarkSpec, not_applicable: pl.DataFrame) -> None:
    """A benchmark where no model could be fitted in any seed has nothing to report: an error
    with every model's reason."""
    failed = not_applicable.group_by("model").agg(pl.col("seed").n_unique(), pl.col("reason"))
    every = {m for m, n, _ in failed.iter_rows() if n == len(spec.seeds)}
    if every >= set(spec.models):
        reasons = "; ".join(f"{m}: {r[0]}" for m, _, r in failed.sort("model").iter_rows())
        raise LpmInputError(None, f"no model could be fitted on these data ({reasons})")


def _score_group(
    group: str,
    runs: Sequence[_SeedRun],
    spec: BenchmarkSpec,
    out: dict[str, list[Any]],
) -> None:
    """Score every model on ``group`` in each seed whose test part holds it."""
    present = [run for run in runs if run.has(group)]
    # coverage over the seeds that hold the group: a seed without it is no evidence of 0 %
    share = {m: float(np.mean([run.coverage(group, m) for run in present])) for m in spec.models}
    for run in present:
        in_group = run.test[GROUP].to_numpy() == group
        for table, models, scored_rows in _scoring_sets(
            group, in_group, run.supported, share, spec.min_coverage
        ):
            out["coverage"] += _coverage_rows(
                run.seed, table, run.test, in_group, scored_rows, run.supported, spec.models, models
            )
            truth = run.test.filter(pl.Series(scored_rows))
            if truth.height == 0:
                continue
            across = single_readout(truth)
            for m in models:
                res = evaluate(
                    truth, run.preds[m][scored_rows], train=run.train, n_boot=spec.n_boot,
                    seed=run.seed,
                )  # fmt: skip
                tag = [
                    pl.lit(run.seed).alias("seed"),
                    pl.lit(table).alias(GROUP),
                    pl.lit(m).alias("model"),
                ]
                out["scores"].append(res.summary.with_columns(tag))
                out["per_context"].append(res.per_context.with_columns(tag))
                keep = [c for c in VERDICT_METRICS if c in res.per_condition.columns]
                out["per_condition"].append(
                    res.per_condition.select(keep).with_row_index("condition").with_columns(tag)
                )
                if across:
                    _score_across(truth, run.preds[m][scored_rows], spec, run.seed, tag, out)


def _score_across(
    truth: pl.DataFrame,
    pred: np.ndarray,
    spec: BenchmarkSpec,
    seed: int,
    tag: list[pl.Expr],
    out: dict[str, list[Any]],
) -> None:
    """Single-readout tables: the scores across conditions (:mod:`lpm.evaluation.across`) join
    the summary, and their units (perturbations, contexts) are the verdicts' pairs."""
    res = evaluate_across(truth, pred, n_boot=spec.n_boot, seed=seed)
    out["scores"].append(res.summary.with_columns(tag))
    for name, _ in AXES:
        units = getattr(res, f"per_{name}")
        keep = [c for c in ACROSS_METRICS if c in units.columns]
        out["per_condition"].append(
            units.select(keep).with_row_index("condition").with_columns(tag)
        )


def _stack(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def run_benchmark(
    rows: pl.DataFrame,
    spec: BenchmarkSpec,
    *,
    progress: Callable[[str], None] | None = None,
    extra_train: pl.DataFrame | None = None,
    checkpoint_dir: Path | None = None,
) -> BenchmarkResult:
    """Split, fit each model on train (val for early stopping), score on the common test rows.

    ``extra_train`` rows (other data sets) join every training set: joint training, scored on
    the same held-out rows as training alone. ``checkpoint_dir``: where each Lightning-trained
    fit writes the one checkpoint it keeps (``seed<s>/<model>/best.ckpt``); None: none is
    written.

    Which models share a table is decided once over the seeds that hold each group (mean
    coverage), so every seed fills the same tables. Models that raise
    :class:`~lpm.errors.LpmInputError` are listed in ``not_applicable`` (see the module).
    """
    log: dict[str, list[dict[str, Any]]] = {"timings": [], "not_applicable": []}
    runs = [
        _fit_and_predict(rows, spec, seed, log, progress, extra_train, checkpoint_dir)
        for seed in spec.seeds
    ]
    not_applicable = pl.DataFrame(log["not_applicable"], schema=NOT_APPLICABLE_SCHEMA)
    _check_some_applicable(spec, not_applicable)
    all_groups = sorted({g for run in runs for g in run.test[GROUP].unique().to_list()})
    out: dict[str, list[Any]] = {
        k: [] for k in ("scores", "coverage", "per_context", "per_condition")
    }
    for group in all_groups:
        _score_group(group, runs, spec, out)
    result = BenchmarkResult(
        spec,
        _stack(out["scores"]),
        pl.DataFrame(out["coverage"]),
        pl.DataFrame(log["timings"]),
        _stack(out["per_context"]),
        not_applicable=not_applicable,
    )
    if result.scores.height:
        result.comparisons = compare_to_best_baseline(
            _stack(out["per_condition"]),
            summarise(result),
            baselines=[b for b in BASELINES if b in spec.models],
            n_boot=spec.n_boot,
            seed=spec.seeds[0],
        )
    return result


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

"""Evaluate and benchmark as the CLI does it, writing outputs atomically."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from lpm.data import schema as S
from lpm.data._atomic import atomic_dir
from lpm.data.store import open_store
from lpm.errors import LpmInputError
from lpm.evaluation.benchmark import BenchmarkSpec, run_benchmark, save_benchmark
from lpm.evaluation.panel import evaluate
from lpm.models.workflow import PREDICTION, PREDICTION_SD, read_stores


def evaluate_file(
    predictions: str | Path, *, store: str | Path, out: str | Path | None = None, seed: int = 0
) -> pl.DataFrame:
    """Score a predictions Parquet (value = truth, prediction) against the panel.

    The store's rows that were not predicted serve as training rows for the mean perturbed
    profile (the systematic-variation correction).
    """
    path = Path(predictions)
    if not path.is_file():
        raise LpmInputError(path, "no such file")
    try:
        pred = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LpmInputError(path, f"cannot read predictions: {str(exc).splitlines()[0]}") from None
    for col in (*S.KEY_COLUMNS, S.VALUE, PREDICTION):
        if col not in pred.columns:
            raise LpmInputError(path, f"missing column {col!r} (predict rows whose truth is known)")
    rows = open_store(store).read()
    keys = [
        c
        for c in (*S.KEY_COLUMNS, S.DOSE, S.TIME, S.REPLICATE)
        if c in rows.columns and c in pred.columns
    ]
    train = rows.join(pred.select(keys), on=keys, how="anti", nulls_equal=True)
    res = evaluate(
        pred.drop(PREDICTION, PREDICTION_SD, strict=False),
        pred[PREDICTION].to_numpy(),
        train=train,
        seed=seed,
    )
    if out is not None:
        with atomic_dir(Path(out), overwrite=True) as tmp:
            res.per_condition.write_csv(tmp / "per_condition.csv")
            res.summary.write_csv(tmp / "summary.csv")
            res.per_context.write_csv(tmp / "per_context.csv")
    return res.summary


def benchmark_to_dir(
    stores: Sequence[str | Path],
    *,
    split: str,
    models: Sequence[str],
    seeds: Sequence[int],
    out: str | Path,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    split_params: Mapping[str, Any] | None = None,
    title: str | None = None,
    n_boot: int = 1000,
    command: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    extra_stores: Sequence[str | Path] = (),
) -> Path:
    """Run a benchmark and write its tables, Markdown report and figure into ``out`` (atomically)."""
    from lpm.reports.benchmark_report import write_benchmark_report

    if not models:
        raise LpmInputError(None, "no models given (--models)")
    spec = BenchmarkSpec(
        split=split,
        models=tuple(models),
        seeds=tuple(seeds),
        model_params={k: dict(v) for k, v in (model_params or {}).items()},
        split_params=dict(split_params or {}),
        n_boot=n_boot,
        extra_stores=tuple(str(s) for s in extra_stores),
    )
    rows = read_stores(stores)
    extra = read_stores(extra_stores) if extra_stores else None
    result = run_benchmark(rows, spec, progress=progress, extra_train=extra)
    out = Path(out)
    with atomic_dir(out, overwrite=True) as tmp:
        save_benchmark(result, tmp, command=command)
        write_benchmark_report(
            tmp,
            title=title or f"{split} on {', '.join(str(s) for s in stores)}",
            stores=[str(s) for s in stores],
        )
    return out / "results.md"

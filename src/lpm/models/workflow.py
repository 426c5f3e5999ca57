"""Train and predict as the CLI does it: read stores, fit a registered model, save, predict rows."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from lpm.data import schema as S
from lpm.data._atomic import atomic_file, write_text_atomic
from lpm.data.convert import to_anndata
from lpm.data.splits import make_split
from lpm.data.store import open_store
from lpm.errors import LpmInputError
from lpm.models.base import PerturbationModel
from lpm.models.registry import get_model, load_model

PREDICTION = "prediction"
#: Spread of an ensemble's members (standard deviation), where the model has one.
PREDICTION_SD = "prediction_sd"
TRAINING_FILE = "training.json"
#: True where a combination model returned its fallback (Peper: Salt's sum of the singles).
FALLBACK = "fallback"


def read_stores(paths: Sequence[str | Path]) -> pl.DataFrame:
    """All rows of one or several stores as one table (joint training reads several)."""
    if not paths:
        raise LpmInputError(None, "no store given (--store)")
    frames = [open_store(p).read() for p in paths]
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def train_model(
    stores: Sequence[str | Path],
    *,
    model: str,
    out: str | Path,
    params: Mapping[str, Any] | None = None,
    split: str | None = None,
    seed: int = 0,
    split_params: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> PerturbationModel:
    """Fit ``model`` on the stores (or on a split's training part) and save it to ``out``.

    Models that stream (the LPM) read the stores row group by row group when no split is
    asked for; a split needs the rows in memory to be drawn. In a data-parallel run every
    process executes this, and only the first saves.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise LpmInputError(out, "already exists (pass --overwrite to replace it)")
    estimator = get_model(model, **dict(params or {}))
    if split:
        rows = read_stores(stores)
        n_rows = rows.height
        parts = make_split(rows, kind=split, seed=seed, **dict(split_params or {}))
        estimator.fit(parts.train, parts.val)
    elif hasattr(estimator, "fit_source"):
        from lpm.models._lpm_data import RowSource

        handles = [open_store(p) for p in stores]
        n_rows = sum(h.n_rows for h in handles)
        estimator.fit_source(RowSource(stores=handles))
    else:
        rows = read_stores(stores)
        n_rows = rows.height
        estimator.fit(rows)
    if not getattr(estimator, "is_global_zero_", True):
        return estimator
    estimator.save(out, overwrite=overwrite)
    record = {
        "stores": [str(p) for p in stores],
        "model": model,
        "params": dict(params or {}),
        "split": split,
        "seed": seed,
        "split_params": dict(split_params or {}),
        "rows": n_rows,
    }
    write_text_atomic(out / TRAINING_FILE, json.dumps(record, indent=2) + "\n")
    return estimator


def read_rows(path: str | Path) -> pl.DataFrame:
    """Rows to predict from Parquet/CSV/TSV: context, perturbation, readout (+ dose, time)."""
    path = Path(path)
    if not path.is_file():
        raise LpmInputError(path, "no such file")
    try:
        if path.suffix == ".parquet":
            df = pl.read_parquet(path)
        else:
            df = pl.read_csv(path, separator="\t" if ".tsv" in path.name else ",")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LpmInputError(path, f"cannot read rows: {str(exc).splitlines()[0]}") from None
    missing = [c for c in S.KEY_COLUMNS if c not in df.columns]
    if missing:
        raise LpmInputError(
            path, f"missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}"
        )
    return df


def rows_from_store(
    store: str | Path, *, split: str | None, seed: int, part: str = "test"
) -> pl.DataFrame:
    rows = open_store(store).read()
    if not split:
        return rows
    parts = make_split(rows, kind=split, seed=seed)
    if part not in ("train", "val", "test"):
        raise LpmInputError(None, f"--part must be train, val or test, got {part!r}")
    frame: pl.DataFrame = getattr(parts, part)
    return frame


def predict_to_file(model_dir: str | Path, rows: pl.DataFrame, out: str | Path) -> pl.DataFrame:
    """Predict every row (unknown symbols raise) and write Parquet or h5ad atomically."""
    out = Path(out)
    if out.suffix not in (".parquet", ".h5ad"):
        raise LpmInputError(out, "output must end in .parquet or .h5ad")
    model = load_model(model_dir)
    if hasattr(model, "predict_with_spread"):
        pred, spread = model.predict_with_spread(rows)
        result = rows.with_columns(pl.Series(PREDICTION, pred), pl.Series(PREDICTION_SD, spread))
    else:
        result = rows.with_columns(pl.Series(PREDICTION, model.predict(rows)))
    if hasattr(model, "fallback"):  # Peper: rows given Salt's sum, not the learned correction
        result = result.with_columns(pl.Series(FALLBACK, model.fallback(rows)))
    with atomic_file(out) as tmp:
        if out.suffix == ".h5ad":
            table = result.drop(S.VALUE, PREDICTION_SD, FALLBACK, strict=False).rename(
                {PREDICTION: S.VALUE}
            )
            to_anndata(table).write_h5ad(tmp)
        else:
            result.write_parquet(tmp)
    return result

"""``lpm predict``: rows in, predictions out (Parquet or h5ad), written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lpm._utils.atomic import atomic_file
from lpm.data import schema as S
from lpm.data.convert import to_anndata
from lpm.data.schema import FALLBACK, PREDICTION, PREDICTION_SD
from lpm.data.splits import make_split
from lpm.data.store import open_store
from lpm.errors import LpmInputError
from lpm.models.registry import load_model


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
    with atomic_file(out, overwrite=True) as tmp:
        if out.suffix == ".h5ad":
            table = result.drop(S.VALUE, PREDICTION_SD, FALLBACK, strict=False).rename(
                {PREDICTION: S.VALUE}
            )
            to_anndata(table).write_h5ad(tmp)
        else:
            result.write_parquet(tmp)
    return result

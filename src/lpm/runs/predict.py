"""``lpm predict``: rows in, predictions out (Parquet or h5ad), written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lpm._utils.atomic import atomic_file, check_output
from lpm.data import members
from lpm.data import schema as S
from lpm.data.convert import to_anndata
from lpm.data.schema import FALLBACK, PREDICTION, PREDICTION_SD
from lpm.data.splits import make_split
from lpm.data.store import open_store
from lpm.errors import LpmInputError, first_line
from lpm.models.base import PerturbationModel
from lpm.models.registry import load_model

#: Columns that name symbols: text, whatever they look like (a context called ``2``).
SYMBOL_COLUMNS = (S.CONTEXT, S.PERTURBATION, S.READOUT)
OUTPUT_SUFFIXES = (".parquet", ".h5ad")


def read_rows(path: str | Path) -> pl.DataFrame:
    """Rows to predict from Parquet/CSV/TSV: context, perturbation, readout (+ dose, time, a
    combination's per member as ``1.5+6``); the symbol columns are read as text."""
    path = Path(path)
    if not path.is_file():
        raise LpmInputError(path, "no such file")
    try:
        if path.suffix == ".parquet":
            df = pl.read_parquet(path)
        else:
            df = pl.read_csv(
                path,
                separator="\t" if ".tsv" in path.name else ",",
                schema_overrides={c: pl.String for c in SYMBOL_COLUMNS},
            )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LpmInputError(path, f"cannot read rows: {first_line(exc)}") from None
    missing = [c for c in S.KEY_COLUMNS if c not in df.columns]
    if missing:
        raise LpmInputError(
            path, f"missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}"
        )
    df = df.with_columns(pl.col(c).cast(pl.String) for c in SYMBOL_COLUMNS)
    return members.read_cells(df, path)  # a dose cell ``1.5+6``: one dose per member


def rows_from_store(
    store: str | Path, *, split: str | None, seed: int, part: str = "test"
) -> pl.DataFrame:
    """A store's rows, or one part of a split of them."""
    if part not in ("train", "val", "test"):
        raise LpmInputError(None, f"--part must be train, val or test, got {part!r}")
    rows = open_store(store).read()
    if not split:
        return rows
    parts = make_split(rows, kind=split, seed=seed)
    frame: pl.DataFrame = getattr(parts, part)
    return frame


def check_prediction_output(out: str | Path, *, overwrite: bool) -> Path:
    """Refuse, before any work, an output that is not .parquet/.h5ad or exists (no overwrite)."""
    out = Path(out)
    if out.suffix not in OUTPUT_SUFFIXES:
        raise LpmInputError(out, "output must end in .parquet or .h5ad")
    return check_output(out, kind="file", overwrite=overwrite)


def predict_table(model: PerturbationModel, rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with the model's predictions: a spread where the model gives one, and which rows
    fell back to a simpler rule where the model flags that."""
    if model.gives_spread:
        pred, spread = model.predict_with_spread(rows)
        result = rows.with_columns(pl.Series(PREDICTION, pred), pl.Series(PREDICTION_SD, spread))
    else:
        result = rows.with_columns(pl.Series(PREDICTION, model.predict(rows)))
    if model.flags_fallback:  # Peper: rows given Salt's sum, not the learned correction
        result = result.with_columns(pl.Series(FALLBACK, model.fallback(rows)))
    return result


def predict_to_file(
    model_dir: str | Path,
    *,
    out: str | Path,
    rows: str | Path | None = None,
    store: str | Path | None = None,
    split: str | None = None,
    part: str = "test",
    seed: int = 0,
    overwrite: bool = False,
) -> pl.DataFrame:
    """Predict every row of a file (``rows``) or of a store (or its split ``part``); unknown
    symbols raise. The output is checked first and written atomically."""
    if (rows is None) == (store is None):
        raise LpmInputError(None, "give exactly one of --rows or --store")
    out = check_prediction_output(out, overwrite=overwrite)
    model = load_model(model_dir)
    table = (
        read_rows(rows)
        if rows is not None
        else rows_from_store(store, split=split, seed=seed, part=part)  # type: ignore[arg-type]
    )
    result = predict_table(model, table)
    with atomic_file(out, overwrite=overwrite) as tmp:
        if out.suffix == ".h5ad":
            frame = result.drop(S.VALUE, PREDICTION_SD, FALLBACK, strict=False).rename(
                {PREDICTION: S.VALUE}
            )
            to_anndata(frame).write_h5ad(tmp)
        else:
            result.write_parquet(tmp)
    return result

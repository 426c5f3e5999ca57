"""``lpm evaluate``: score a predictions file on the evaluation panel."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lpm._utils.atomic import atomic_dir, check_output
from lpm.data import members
from lpm.data import schema as S
from lpm.data.schema import PREDICTION, PREDICTION_SD
from lpm.data.store import open_store
from lpm.errors import LpmInputError, first_line
from lpm.evaluation.panel import evaluate


def evaluate_file(
    predictions: str | Path,
    *,
    store: str | Path,
    out: str | Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> pl.DataFrame:
    """Score a predictions Parquet (value = truth, prediction) against the panel.

    The store's rows that were not predicted serve as training rows for the mean perturbed
    profile (the systematic-variation correction). ``out``, if given, is checked before any
    work (an existing one is refused unless ``overwrite``) and receives the per-condition,
    summary and per-context tables whole or not at all.
    """
    if out is not None:
        out = check_output(out, kind="folder", overwrite=overwrite)
    path = Path(predictions)
    if not path.is_file():
        raise LpmInputError(path, "no such file")
    try:
        pred = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LpmInputError(path, f"cannot read predictions: {first_line(exc)}") from None
    for col in (*S.KEY_COLUMNS, S.VALUE, PREDICTION):
        if col not in pred.columns:
            raise LpmInputError(path, f"missing column {col!r} (predict rows whose truth is known)")
    rows = open_store(store).read()
    keys = [
        c
        for c in (*S.KEY_COLUMNS, S.DOSE, S.TIME, *S.MEMBER_COLUMNS, S.REPLICATE)
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
        with atomic_dir(out, overwrite=overwrite) as tmp:
            members.as_text(res.per_condition).write_csv(tmp / "per_condition.csv")
            res.summary.write_csv(tmp / "summary.csv")
            res.per_context.write_csv(tmp / "per_context.csv")
    return res.summary

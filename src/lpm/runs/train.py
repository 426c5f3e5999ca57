"""Train and predict as the CLI does it: read stores, fit a registered model, save, predict rows."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lpm._utils.atomic import write_text_atomic
from lpm.data.splits import make_split
from lpm.data.store import open_store, read_stores
from lpm.errors import LpmInputError
from lpm.models.base import PerturbationModel
from lpm.models.registry import get_model

TRAINING_FILE = "training.json"


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
        from lpm.models.lpm.rows import RowSource

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

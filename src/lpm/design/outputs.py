"""What ``lpm design`` writes: whole folders and files, or nothing (temp then rename)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from lpm.data._atomic import atomic_dir, atomic_file
from lpm.design._figure import plot_learning_curves
from lpm.design.loop import DesignResult
from lpm.errors import LpmInputError


def save_design(
    result: DesignResult,
    out: str | Path,
    *,
    overwrite: bool = False,
    command: Sequence[str] | None = None,
    store: str | None = None,
) -> Path:
    """``rounds.csv`` (panel per round), ``acquired.csv``, ``summary.csv`` (AUC per strategy),
    ``universe.csv`` (pool/test/excluded), ``design.json`` and ``learning_curves.png``."""
    out = Path(out)
    config = result.config
    with atomic_dir(out, overwrite=overwrite) as tmp:
        result.rounds.write_csv(tmp / "rounds.csv")
        result.acquired.write_csv(tmp / "acquired.csv")
        result.summary.write_csv(tmp / "summary.csv")
        result.universe.table().write_csv(tmp / "universe.csv")
        meta = {
            "store": store,
            "command": list(command) if command else None,
            "config": {**config.__dict__, "prior": list(config.prior)},
            "hops": config.resolved_hops(),
            "n_pool": len(result.universe.pool),
            "n_test": len(result.universe.test),
            "n_excluded": len(result.universe.excluded),
        }
        (tmp / "design.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        plot_learning_curves(
            result.rounds,
            tmp / "learning_curves.png",
            title=f"{config.model} on {store or 'store'}, seed {config.seed}",
            top_label=f"strongest {config.top_fraction:.0%} acquired (fraction)",
        )
    return out


def write_selection(table: pl.DataFrame, out: str | Path) -> Path:
    """A selection as CSV or Parquet (by suffix), written atomically."""
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise LpmInputError(out, "selection output must end in .csv or .parquet")
    with atomic_file(out) as tmp:
        if out.suffix == ".parquet":
            table.write_parquet(tmp)
        else:
            table.write_csv(tmp)
    return out

"""Our interaction fits beside Norman et al.'s published ones (``regr_fits_final.csv``).

Norman's ``name`` is ``GENE1_GENE2`` in either order: pairs are matched unordered on the members'
targets, and their first/second columns swapped where their order is ours reversed. Their type
comes from their own columns with our thresholds (:func:`lpm.tasks.interactions.type_expression`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.symbols import TYPE_SEPARATOR
from lpm.errors import LpmInputError, first_line
from lpm.tasks.interaction_stats import dominance
from lpm.tasks.interactions import DEFAULT_THRESHOLDS, InteractionThresholds, type_expression

#: Columns of Norman's ``regr_fits_final.csv`` the comparison reads (first/second by ``name``).
NORMAN_COLUMNS: Final = (
    "name",
    "ts_coef_first",
    "ts_coef_second",
    "ts_norm",
    "ts_linear_dcor",
    "dcor_first",
    "dcor_second",
    "dcor_singles",
)
_NORMAN_SWAP: Final = {
    "ts_coef_first": "ts_coef_second",
    "dcor_first": "dcor_second",
}


def _target(symbol: str) -> str:
    return symbol.partition(TYPE_SEPARATOR)[2] or symbol


def read_norman_fits(regr_fits_csv: Path) -> pl.DataFrame:
    """Norman's per-pair fits (``regr_fits_final.csv``), checked; a one-line error otherwise."""
    path = Path(regr_fits_csv)
    if not path.is_file():
        raise LpmInputError(path, "no such file (Norman et al.'s regr_fits_final.csv)")
    try:
        df = pl.read_csv(path, infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LpmInputError(path, f"cannot read CSV: {first_line(exc)}") from None
    missing = [c for c in NORMAN_COLUMNS if c not in df.columns]
    if missing:
        raise LpmInputError(path, f"missing column(s) {', '.join(missing)}")
    numeric = [c for c in NORMAN_COLUMNS if c != "name"]
    try:
        return df.select(
            pl.col("name").cast(pl.String), *[pl.col(c).cast(pl.Float64) for c in numeric]
        )
    except pl.exceptions.PolarsError:
        bad = [c for c in numeric if not df[c].dtype.is_numeric()]
        raise LpmInputError(path, f"non-numeric column(s) {', '.join(bad)}") from None


def norman_comparison(
    table: pl.DataFrame,
    regr_fits_csv: Path,
    *,
    thresholds: InteractionThresholds = DEFAULT_THRESHOLDS,
) -> pl.DataFrame:
    """Our pairs beside Norman's fits of the same pairs, oriented to our first/second member.

    Norman's ``name`` is ``GENE1_GENE2`` in either order: matched unordered on the members'
    targets, and their first/second columns swapped where their order is ours reversed. Their
    ``type`` comes from their columns (``ts_norm``, ``ts_linear_dcor``, coefficient ratio) with
    the same thresholds as ours.
    """
    theirs = read_norman_fits(regr_fits_csv)
    by_name = {n: i for i, n in enumerate(theirs["name"].to_list())}
    out: list[dict[str, Any]] = []
    for r in table.iter_rows(named=True):
        g1, g2 = _target(r["first"]), _target(r["second"])
        if f"{g1}_{g2}" in by_name:
            row, swap = theirs.row(by_name[f"{g1}_{g2}"], named=True), False
        elif f"{g2}_{g1}" in by_name:
            row, swap = theirs.row(by_name[f"{g2}_{g1}"], named=True), True
        else:
            continue
        if swap:
            for x, y in _NORMAN_SWAP.items():
                row[x], row[y] = row[y], row[x]
        out.append(
            {
                S.CONTEXT: r[S.CONTEXT],
                S.PERTURBATION: r[S.PERTURBATION],
                "norman_name": row["name"],
                "c1": r["c1"],
                "c2": r["c2"],
                "magnitude": r["magnitude"],
                "fit_dcor": r["fit_dcor"],
                "dcor_first": r["dcor_first"],
                "dcor_second": r["dcor_second"],
                "dcor_singles": r["dcor_singles"],
                "type": r["type"],
                **{f"norman_{c}": row[c] for c in NORMAN_COLUMNS if c != "name"},
                "norman_dominance": dominance(row["ts_coef_first"], row["ts_coef_second"]),
            }
        )
    schema = {
        S.CONTEXT: pl.String,
        S.PERTURBATION: pl.String,
        "norman_name": pl.String,
        **{c: pl.Float64 for c in ("c1", "c2", "magnitude", "fit_dcor")},
        **{c: pl.Float64 for c in ("dcor_first", "dcor_second", "dcor_singles")},
        "type": pl.String,
        **{f"norman_{c}": pl.Float64 for c in NORMAN_COLUMNS if c != "name"},
        "norman_dominance": pl.Float64,
    }
    df = pl.DataFrame(out, schema=schema)
    return df.with_columns(
        type_expression(
            thresholds, "norman_ts_norm", "norman_ts_linear_dcor", "norman_dominance"
        ).alias("norman_type")
    )


def _spearman(x: pl.Series, y: pl.Series) -> float | None:
    if x.len() < 3:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr(x.to_numpy(), y.to_numpy()).statistic
    return None if not np.isfinite(rho) else float(rho)


def norman_summary(comparison: pl.DataFrame) -> dict[str, Any]:
    """How our fits agree with Norman's on the matched pairs: Spearman ρ per metric, type agreement."""
    n = comparison.height
    pairs = {
        "magnitude": "norman_ts_norm",
        "fit_dcor": "norman_ts_linear_dcor",
        "c1": "norman_ts_coef_first",
        "c2": "norman_ts_coef_second",
        "dcor_first": "norman_dcor_first",
        "dcor_singles": "norman_dcor_singles",
    }
    return {
        "n_matched": n,
        "spearman": {
            ours: _spearman(comparison[ours], comparison[th]) for ours, th in pairs.items()
        },
        "type_agreement": (
            float(np.mean(comparison["type"].to_numpy() == comparison["norman_type"].to_numpy()))
            if n
            else None
        ),
        "types_ours": dict(sorted(comparison["type"].value_counts().iter_rows())) if n else {},
        "types_norman": dict(sorted(comparison["norman_type"].value_counts().iter_rows()))
        if n
        else {},
    }


__all__ = ["NORMAN_COLUMNS", "norman_comparison", "norman_summary", "read_norman_fits"]

"""What a store holds, for ``lpm info``: contexts, perturbations by type, readouts, value ranges."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from lpm.data import schema as S
from lpm.data.compounds import SMILES
from lpm.data.io.ranked import ranked_lines
from lpm.data.store import PerturbationStore, value_summary


@dataclass(frozen=True)
class StoreInfo:
    path: str
    rows: int
    row_groups: int
    content_hash: str
    contexts: pl.DataFrame
    perturbation_types: pl.DataFrame
    n_perturbations: int
    n_readouts: int
    values: pl.DataFrame
    has_controls: bool
    notes: dict[str, Any]
    #: Compounds in the store's compound table, and how many of them have a SMILES from the file.
    compound_structures: tuple[int, int] | None = None
    #: Rows giving a dose (time) per member of a combination, by column (absent: none).
    member_rows: dict[str, int] = field(default_factory=dict)


def _ptype() -> pl.Expr:
    sym = pl.col(S.PERTURBATION)
    return (
        pl.when(sym == S.CONTROL)
        .then(pl.lit(S.CONTROL))
        .when(sym.str.contains("+", literal=True))
        .then(pl.lit("combination"))
        .otherwise(sym.str.split(":").list.first())
        .alias("type")
    )


def store_info(store: PerturbationStore) -> StoreInfo:
    """Summaries computed lazily over the Parquet file (no full materialisation of values)."""
    lf = store.scan()
    extra = [pl.col(S.DATASET).first().alias(S.DATASET)] if S.DATASET in store.columns else []
    contexts = (
        lf.group_by(S.CONTEXT)
        .agg(
            pl.len().alias("rows"),
            pl.col(S.PERTURBATION).n_unique().alias("perturbations"),
            pl.col(S.READOUT).n_unique().alias("readouts"),
            *extra,
        )
        .sort(S.CONTEXT)
        .collect()
    )
    ptypes = (
        lf.select(S.PERTURBATION)
        .unique()
        .with_columns(_ptype())
        .group_by("type")
        .agg(pl.len().alias("perturbations"))
        .sort("type")
        .collect()
    )
    compounds = store.compounds()
    structures = (
        (compounds.height, int(compounds[SMILES].drop_nulls().len()))
        if compounds is not None
        else None
    )
    counts = lf.select(
        pl.col(S.PERTURBATION).n_unique().alias("p"), pl.col(S.READOUT).n_unique().alias("r")
    ).collect()
    members = [c for c in S.MEMBER_COLUMNS if c in store.columns]
    member_rows = (
        lf.select(pl.col(c).is_not_null().sum() for c in members).collect().row(0, named=True)
        if members
        else {}
    )
    return StoreInfo(
        path=str(store.path),
        rows=store.n_rows,
        row_groups=store.n_row_groups,
        content_hash=store.meta.content_hash,
        contexts=contexts,
        perturbation_types=ptypes,
        n_perturbations=int(counts["p"][0]),
        n_readouts=int(counts["r"][0]),
        values=value_summary(store),
        has_controls=store.meta.has_controls,
        notes=store.meta.notes,
        compound_structures=structures,
        member_rows={k: int(v) for k, v in member_rows.items()},
    )


def _gene_notes(notes: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every harmonisation record in the (possibly nested, for merged stores) notes."""
    if not isinstance(notes, dict):
        return []
    if notes.get("harmonised") is True:
        return [(where, notes)]
    found = []
    for key, value in notes.items():
        found += _gene_notes(value, key if key != "genes" else where)
    return found


def gene_mapping_lines(notes: dict[str, Any]) -> list[str]:
    """One line per source: how many readout and target symbols were renamed or left unmapped."""
    lines = []
    for source, rec in _gene_notes(notes):
        parts = []
        for key, label in (
            ("readouts", "readouts"),
            ("perturbation_targets", "perturbation targets"),
        ):
            if key in rec:
                r = rec[key]
                examples = ", ".join(r.get("unmapped_examples", [])[:5])
                parts.append(
                    f"{label}: {r['renamed']} renamed, {r['unmapped']} of {r['n']} unmapped"
                    + (f" (e.g. {examples})" if examples else "")
                )
        lines.append(f"{source}: " + "; ".join(parts))
    return lines


def _reader_notes(notes: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every reader's notes (a dict recording its value rule or unmeasured cells), nested or not."""
    if not isinstance(notes, dict):
        return []
    if "unmeasured" in notes or "level_rule" in notes:
        return [(where, notes)]
    return [found for key, value in notes.items() for found in _reader_notes(value, key)]


def source_lines(notes: dict[str, Any]) -> list[str]:
    """Per source: what its values are, cells not measured, samples left out, compounds."""
    lines = []
    for source, rec in _reader_notes(notes):
        name = Path(source).name or source
        if "level_rule" in rec:
            lines.append(
                f"{name}: values: {rec['level_rule']} (readout type {rec.get('readout_type')})"
            )
        if isinstance(rec.get("unmeasured"), dict):
            u = rec["unmeasured"]
            lines.append(
                f"{name}: unmeasured: {u.get('nan_cells', 0)} NaN cell(s), "
                f"{u.get('rows_dropped', 0)} row(s) left out"
            )
        dropped = dict(rec.get("samples_dropped") or {})
        if rec.get("n_other_controls_dropped"):
            dropped["other ctl_*"] = rec["n_other_controls_dropped"]
        if dropped:
            listed = ", ".join(f"{k} {v}" for k, v in dropped.items())
            lines.append(f"{name}: samples left out: {listed}")
        if isinstance(rec.get("compounds"), dict):
            c = rec["compounds"]
            lines.append(f"{name}: compounds: {c.get('n')}; SMILES: {c.get('smiles')}")
    return lines


def format_info(info: StoreInfo) -> str:
    """Plain-text rendering (also used by the CLI), stable enough to paste into notes."""
    pl_cfg = pl.Config(
        tbl_rows=60,
        tbl_cols=12,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_formatting="ASCII_MARKDOWN",
    )
    with pl_cfg:
        lines = [
            f"store      {info.path}",
            f"rows       {info.rows:,} in {info.row_groups} row group(s)",
            f"hash       {info.content_hash}",
            f"contexts   {info.contexts.height}; perturbations {info.n_perturbations:,}; readouts {info.n_readouts:,}; "
            f"control profiles: {'yes' if info.has_controls else 'no'}",
            *(
                [
                    "per member "
                    + "; ".join(
                        f"{c.removeprefix('member_')} on {n:,} row(s)"
                        for c, n in info.member_rows.items()
                    )
                    + " (combinations with a dose/time per member)"
                ]
                if info.member_rows
                else []
            ),
            "",
            "contexts:",
            str(info.contexts),
            "",
            "perturbations by type:",
            str(info.perturbation_types),
            "",
            "values:",
            str(info.values),
        ]
    sources = source_lines(info.notes)
    if sources:
        lines += ["", "sources:", *(f"  {line}" for line in sources)]
    if info.compound_structures is not None:
        n, with_smiles = info.compound_structures
        lines += [f"compound table: {n} compounds, {with_smiles} with a SMILES from the source"]
    genes = gene_mapping_lines(info.notes)
    lines += (
        ["", "gene symbols (harmonised through aliases):", *genes]
        if genes
        else ["", "gene symbols: not harmonised (ingest with --gene-info)"]
    )
    ranked = ranked_lines(info.notes)
    if ranked:
        lines += ["", "ranked lists (binary 'gene in the top k' readouts):", *ranked]
    return "\n".join(lines)

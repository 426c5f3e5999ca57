"""Reference gene networks (TF -> target) in the formats they ship in, as one edge table.

:func:`load_gene_network` returns the columns of :data:`NETWORK_COLUMNS`. Formats, told apart
by their header (the first that fits wins):

========================  ======================================  =====================================
format (resource)         columns                                 weight / sign
========================  ======================================  =====================================
DoRothEA (``dorothea``)   ``source, confidence, target, weight``  confidence A/B/C -> 3/2/1; sign of
                                                                  ``weight`` for A, null for B and C
                                                                  (the file gives them no sign)
CollecTRI (``collectri``) ``source, target, weight, PMID``        1; sign of ``weight`` (±1)
TRRUST v2 (``trrust``)    ``TF, Target, Regulation[, Reference]`` 1; Activation +1, Repression -1,
                          (or the headerless original)            Unknown null
Pathway Commons SIF       ``UpGene, Type, DownGene`` (or          1; null. Only
(``pathwaycommons``)      headerless ``A <relation> B``)          ``controls-expression-of`` rows
CausalBench ChIP-seq      ``source, target, weight`` (plus the    peak weight; null. The resource is
(``chipseq_<cell>``)      unnamed index column)                   ``chipseq_`` + the cell line in the
                                                                  file name (``Hep_G2_ChipSeq`` ->
                                                                  ``chipseq_HepG2``)
========================  ======================================  =====================================

Gene names: with ``gene_info`` each name maps to its official symbol (:mod:`lpm.data.genes`:
symbol, Ensembl id, unique alias, then case-insensitively). Names found nowhere, and every name
when no ``gene_info`` is given, are upper-cased. Official symbols keep HGNC's spelling
(``C1orf112``), as the readouts of a harmonised store do, so edges and stores compare by
equality. ``GTF2H2C_2`` and ``C4B_2`` in the ChIP-seq files are official symbols of second gene
copies and stay as they are. An alias can name a complex's member: CollecTRI's ``AP1`` becomes
``JUN``.

After mapping, self-loops are dropped and repeated ``(source, target)`` pairs merge into one
edge with the largest weight; its sign is the sign its rows agree on, null when they disagree or
none had one.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from lpm.data.genes import GeneAliases, load_gene_aliases
from lpm.errors import LpmInputError, first_line

NETWORK_COLUMNS: Final = ("source", "target", "weight", "sign", "resource")
#: DoRothEA confidence letter -> edge weight (higher is more confident).
DOROTHEA_WEIGHT: Final[dict[str, float]] = {"A": 3.0, "B": 2.0, "C": 1.0}
#: TRRUST ``Regulation`` -> sign (``None``: unknown).
TRRUST_SIGN: Final[dict[str, int | None]] = {"Activation": 1, "Repression": -1, "Unknown": None}
#: The one Pathway Commons relation that is a regulatory edge.
PC_RELATION: Final = "controls-expression-of"
_RELATION = re.compile(r"^[a-z]+(?:-[a-z]+)+$")
_CHIPSEQ_NAME = re.compile(r"^(.+?)_chipseq", re.IGNORECASE)
_EDGE_SCHEMA: Final = {
    "source": pl.String,
    "target": pl.String,
    "weight": pl.Float64,
    "sign": pl.Int8,
}


# --- reading ----------------------------------------------------------------------------------


def _decompressed(path: Path) -> tuple[bytes, str]:
    """File bytes (gunzipped) and the file name without ``.gz``."""
    name = path.name.lower()
    if not path.is_file():
        raise LpmInputError(path, "no such gene network file")
    try:
        raw = path.read_bytes()
        if name.endswith(".gz"):
            raw = gzip.decompress(raw)
            name = name[:-3]
    except (OSError, EOFError, zlib.error) as exc:
        raise LpmInputError(
            path, f"cannot read file (truncated or corrupt?): {first_line(exc)}"
        ) from None
    return raw, name


def _separator(raw: bytes, name: str) -> str:
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".txt", ".sif")):
        return "\t"
    head = raw.split(b"\n", 1)[0]
    return "\t" if b"\t" in head else ","


def _read_table(path: Path) -> pl.DataFrame:
    """All columns as strings; a headerless TRRUST or SIF file gets its header's names."""
    raw, name = _decompressed(path)
    if not raw.strip():
        raise LpmInputError(path, "empty file, no edges")
    sep = _separator(raw, name)
    first = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r").split(sep)
    header: list[str] | None = None
    if sep == "\t" and len(first) in (3, 4) and first[2] in TRRUST_SIGN:
        header = ["TF", "Target", "Regulation", "Reference"][: len(first)]
    elif sep == "\t" and len(first) == 3 and _RELATION.match(first[1]):
        header = ["UpGene", "Type", "DownGene"]
    try:
        return pl.read_csv(
            io.BytesIO(raw),
            separator=sep,
            has_header=header is None,
            new_columns=header,
            infer_schema=False,
            quote_char='"' if sep == "," else None,
        )
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise LpmInputError(path, f"cannot parse table (malformed?): {first_line(exc)}") from None


def _numeric(table: pl.DataFrame, column: str, path: Path) -> pl.Series:
    """A string column as float, refusing text and non-finite numbers with the first bad row."""
    values = table[column].str.strip_chars().cast(pl.Float64, strict=False)
    bad = (values.is_null() & table[column].is_not_null()) | ~values.is_finite().fill_null(True)
    if bad.any():
        row = int(bad.arg_true()[0])
        raise LpmInputError(
            path,
            f"column {column!r}: {int(bad.sum())} value(s) not a finite number, first {table[column][row]!r} at data row {row + 1}",
        )
    return values


def _dorothea(t: pl.DataFrame, path: Path) -> pl.DataFrame:
    conf = t["confidence"].str.strip_chars().str.to_uppercase()
    bad = ~conf.is_in(list(DOROTHEA_WEIGHT)).fill_null(False)
    if bad.any():
        row = int(bad.arg_true()[0])
        raise LpmInputError(
            path,
            f"column 'confidence': {int(bad.sum())} value(s) not A, B or C, first {t['confidence'][row]!r} at data row {row + 1}",
        )
    mor = _numeric(t, "weight", path)
    return t.select("source", "target").with_columns(
        weight=conf.replace_strict(DOROTHEA_WEIGHT, return_dtype=pl.Float64),
        sign=pl.when((conf == "A") & (mor != 0)).then(mor.sign()).cast(pl.Int8),
    )


def _collectri(t: pl.DataFrame, path: Path) -> pl.DataFrame:
    mor = _numeric(t, "weight", path)
    return t.select("source", "target").with_columns(
        weight=pl.lit(1.0), sign=pl.when(mor != 0).then(mor.sign()).cast(pl.Int8)
    )


def _trrust(t: pl.DataFrame, path: Path) -> pl.DataFrame:
    reg = t["Regulation"].str.strip_chars()
    bad = ~reg.is_in(list(TRRUST_SIGN)).fill_null(False)
    if bad.any():
        row = int(bad.arg_true()[0])
        raise LpmInputError(
            path,
            f"column 'Regulation': {int(bad.sum())} value(s) not Activation, Repression or Unknown, first {t['Regulation'][row]!r} at data row {row + 1}",
        )
    return t.select(source="TF", target="Target").with_columns(
        weight=pl.lit(1.0), sign=reg.replace_strict(TRRUST_SIGN, return_dtype=pl.Int8)
    )


def _pathwaycommons(t: pl.DataFrame, path: Path) -> pl.DataFrame:
    kept = t.filter(pl.col("Type").str.strip_chars() == PC_RELATION)
    if kept.height == 0:
        raise LpmInputError(path, f"no {PC_RELATION!r} rows in this Pathway Commons table")
    return kept.select(source="UpGene", target="DownGene").with_columns(
        weight=pl.lit(1.0), sign=pl.lit(None, dtype=pl.Int8)
    )


def _chipseq(t: pl.DataFrame, path: Path) -> pl.DataFrame:
    return t.select("source", "target").with_columns(
        weight=_numeric(t, "weight", path), sign=pl.lit(None, dtype=pl.Int8)
    )


def _chipseq_resource(path: Path) -> str:
    m = _CHIPSEQ_NAME.match(path.name)
    cell = m.group(1) if m else path.name.split(".", 1)[0]
    return "chipseq_" + cell.replace("_", "")


@dataclass(frozen=True)
class _Format:
    columns: frozenset[str]
    parse: Callable[[pl.DataFrame, Path], pl.DataFrame]
    resource: Callable[[Path], str]
    #: other columns it may carry; ``None``: any
    extra: frozenset[str] | None = None


_FORMATS: Final = (
    _Format(
        frozenset({"source", "confidence", "target", "weight"}), _dorothea, lambda p: "dorothea"
    ),
    _Format(frozenset({"source", "target", "weight", "PMID"}), _collectri, lambda p: "collectri"),
    _Format(frozenset({"TF", "Target", "Regulation"}), _trrust, lambda p: "trrust"),
    _Format(frozenset({"UpGene", "Type", "DownGene"}), _pathwaycommons, lambda p: "pathwaycommons"),
    _Format(
        frozenset({"source", "target", "weight"}),
        _chipseq,
        _chipseq_resource,
        extra=frozenset({""}),
    ),
)
_KNOWN = "; ".join(
    [
        "DoRothEA (source, confidence, target, weight)",
        "CollecTRI (source, target, weight, PMID)",
        "TRRUST (TF, Target, Regulation)",
        "Pathway Commons SIF (UpGene, Type, DownGene)",
        "CausalBench ChIP-seq (source, target, weight)",
    ]
)


def _detect(columns: list[str], path: Path) -> _Format:
    have = set(columns)
    for fmt in _FORMATS:
        if fmt.columns <= have and (fmt.extra is None or have - fmt.columns <= fmt.extra):
            return fmt
    shown = ", ".join(repr(c) for c in columns[:8]) + (" ..." if len(columns) > 8 else "")
    raise LpmInputError(
        path, f"unrecognised gene network format (columns {shown}); expected one of: {_KNOWN}"
    )


# --- symbols ----------------------------------------------------------------------------------


def symbol_map(names: Iterable[str], aliases: GeneAliases | None) -> dict[str, str]:
    """Each name -> its official symbol, else its upper-cased self (see the module docstring)."""
    lookup = aliases.lookup if aliases is not None else (lambda name: None)
    return {name: lookup(name) or name.upper() for name in set(names)}


def _aliases(gene_info: str | Path | None) -> GeneAliases | None:
    return None if gene_info is None else load_gene_aliases(gene_info)


def _check_names(edges: pl.DataFrame, path: Path) -> None:
    for col in ("source", "target"):
        bad = edges[col].is_null() | (edges[col] == "")
        if bad.any():
            row = int(bad.arg_true()[0])
            raise LpmInputError(
                path, f"{int(bad.sum())} edge(s) without a {col} gene, first at data row {row + 1}"
            )


def _finish(edges: pl.DataFrame, aliases: GeneAliases | None) -> pl.DataFrame:
    edges = edges.with_columns(pl.col("source", "target").str.strip_chars())
    names = set(edges["source"].unique().to_list()) | set(edges["target"].unique().to_list())
    mapping = symbol_map(names, aliases)
    edges = edges.with_columns(
        pl.col("source", "target").replace_strict(mapping, return_dtype=pl.String)
    ).filter(pl.col("source") != pl.col("target"))
    merged = edges.group_by("source", "target").agg(
        pl.col("weight").max(), pl.col("sign").drop_nulls().unique().alias("_signs")
    )
    return merged.select(
        "source",
        "target",
        "weight",
        sign=pl.when(pl.col("_signs").list.len() == 1)
        .then(pl.col("_signs").list.first())
        .cast(pl.Int8),
    ).sort("source", "target")


def load_gene_network(
    path: str | Path, *, resource: str | None = None, gene_info: str | Path | None = None
) -> pl.DataFrame:
    """Read one TF→target reference network in the format it ships in.

    The format comes from the header (see the module docstring); symbols are harmonised,
    self-loops dropped and repeated edges merged, so an edge is one row.

    Parameters
    ----------
    path
        A CausalBench ChIP-seq, CollecTRI, DoRothEA, TRRUST or Pathway Commons SIF file
        (CSV/TSV, optionally gzipped).
    resource
        Value of the ``resource`` column; by default named after the format (``collectri``,
        ``chipseq_K562``, ...).
    gene_info
        Gene-info table for :func:`lpm.data.genes.load_gene_aliases`; ``None`` only upper-cases.

    Returns
    -------
    polars.DataFrame
        Columns ``source, target, weight`` (Float64), ``sign`` (Int8: +1, -1 or null) and
        ``resource``, sorted by ``source, target``.

    Raises
    ------
    LpmInputError
        Naming the file: unreadable or truncated, unknown format, a missing gene name, a
        non-numeric weight, an unknown confidence or regulation value, no edges.

    Example
    -------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "trrust.tsv"
    >>> _ = f.write_text("TF\\tTarget\\tRegulation\\tReference\\nmyc\\tTERT\\tActivation\\t1\\n")
    >>> load_gene_network(f).rows()
    [('MYC', 'TERT', 1.0, 1, 'trrust')]
    """
    path = Path(path)
    table = _read_table(path)
    fmt = _detect(table.columns, path)
    edges = fmt.parse(table, path)
    _check_names(edges, path)
    out = _finish(edges.cast(_EDGE_SCHEMA), _aliases(gene_info))  # type: ignore[arg-type]
    if out.height == 0:
        raise LpmInputError(path, "no edges left after dropping self-loops")
    return out.with_columns(resource=pl.lit(resource or fmt.resource(path), dtype=pl.String))


__all__ = [
    "DOROTHEA_WEIGHT",
    "NETWORK_COLUMNS",
    "PC_RELATION",
    "TRRUST_SIGN",
    "load_gene_network",
    "symbol_map",
]

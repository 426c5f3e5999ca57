"""Gene-symbol harmonisation: one official symbol per gene, across years of HGNC renames.

Sources name the same gene differently (``KIAA1804`` vs ``MAP3K21``, an Ensembl id where the
source had no symbol). :func:`harmonise_frame` maps readouts and genetic perturbation targets to
the official symbols of a gene-info table (Bioconductor ``org.Hs.eg.db`` export with columns
``entrez, symbol, gene_name, gene_type, chromosome, ensembl_id, alias_symbol``).

Lookup order for each name, the first hit wins:

1. the name is an official symbol;
2. the name is an Ensembl gene id (``ENSG...``, a ``.version`` suffix is dropped) of exactly one gene;
3. the name is an alias of exactly one gene (an alias shared by several genes is ambiguous).
   Pseudogenes inherit their parent's names, so an alias counts for a pseudogene only when no
   other gene carries it (``GBA`` -> ``GBA1``, not also ``GBAP1``; ``ALG1L`` -> ``ALG1L1P``),
   and mitochondrial ``MT-`` names never map through aliases (NCBI spells the genes ``COX2``,
   ``ND1``; only pseudogenes such as ``MTCO2P12`` carry ``MT-CO2`` as an alias);
4. steps 1 and 3 again on the upper-cased name (``c1orf112`` -> ``C1orf112``).

A name found nowhere stays as given and is counted as unmapped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from lpm.data import members
from lpm.data import schema as S
from lpm.data.io.symbol_tables import read_text_table
from lpm.data.symbols import COMBINATION_SEPARATOR, GENETIC_TYPES, TYPE_SEPARATOR
from lpm.errors import LpmInputError

GENE_INFO_COLUMNS: Final = ("symbol", "ensembl_id", "alias_symbol")
#: ``gene_type`` of pseudogenes (alias targets only where no other gene carries the alias).
PSEUDOGENE: Final = "pseudo"
_MITO: Final = "MT-"
#: Readout ids may carry a qualifier after this separator (``ATP5IF1:up``); only the gene part maps.
READOUT_QUALIFIER: Final = ":"
_ENSEMBL = re.compile(r"^(ENSG\d{11})(?:\.\d+)?$")
#: Official symbols lpm cannot use as ids (they contain its separators); never mapped to.
_UNUSABLE = re.compile(r"[+:|]")
_N_EXAMPLES: Final = 10


@dataclass(frozen=True)
class HarmonisedSymbols:
    """Result of :meth:`GeneAliases.harmonise`, position by position with the input.

    ``n_unmapped`` and ``n_renamed`` count input positions; ``unmapped`` lists distinct names.
    """

    mapped: list[str]
    n_unmapped: int
    unmapped: list[str]
    n_renamed: int


@dataclass(frozen=True)
class GeneAliases:
    """Lookup tables from a gene-info file; build with :func:`load_gene_aliases`."""

    path: str
    symbols: frozenset[str]
    ensembl: dict[str, str]
    aliases: dict[str, str]
    upper_symbols: dict[str, str]
    upper_aliases: dict[str, str]

    def lookup(self, name: str) -> str | None:
        """The official symbol for one name, or ``None`` if it is unknown or ambiguous."""
        if name in self.symbols:
            return name
        m = _ENSEMBL.match(name)
        if m:
            return self.ensembl.get(m.group(1))
        hit = self.aliases.get(name)
        if hit is not None:
            return hit
        upper = name.upper()
        return self.upper_symbols.get(upper) or self.upper_aliases.get(upper)

    def harmonise(self, symbols: Sequence[str]) -> HarmonisedSymbols:
        """Map each name to its official symbol; unknown names stay as given.

        Parameters
        ----------
        symbols
            Gene names (symbols, aliases or Ensembl ids), repeats allowed.

        Returns
        -------
        HarmonisedSymbols
            ``mapped`` in input order, with counts of renamed and unmapped names.
        """
        table = {name: self.lookup(name) for name in set(symbols)}
        mapped = [table[s] or s for s in symbols]
        n_unmapped = sum(1 for s in symbols if table[s] is None)
        n_renamed = sum(1 for s, m in zip(symbols, mapped, strict=True) if m != s)
        unmapped = sorted(s for s, hit in table.items() if hit is None)
        return HarmonisedSymbols(mapped, n_unmapped, unmapped, n_renamed)


def _unique_map(pairs: pl.DataFrame, key: str) -> dict[str, str]:
    """``key -> symbol`` for keys that name exactly one official symbol.

    With a ``pseudo`` column, pseudogenes count only for keys no other gene carries.
    """
    pairs = pairs.unique([key, "symbol"])
    if "pseudo" in pairs.columns:
        has_real = (~pl.col("pseudo")).any().over(key)
        mito = pl.col(key).str.starts_with(_MITO)
        pairs = pairs.filter(~pl.col("pseudo") | (~has_real & ~mito))
    grouped = pairs.group_by(key).agg(pl.col("symbol").first(), pl.len().alias("n"))
    keep = grouped.filter(pl.col("n") == 1)
    return dict(zip(keep[key].to_list(), keep["symbol"].to_list(), strict=True))


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int, size: int) -> GeneAliases:
    """Parse a gene-info table; the cache key includes mtime and size, so an edited file reloads."""
    info = read_text_table(path, "gene info table", quote_char=None)
    missing = [c for c in GENE_INFO_COLUMNS if c not in info.columns]
    if missing:
        raise LpmInputError(
            path,
            f"gene info table misses column(s) {', '.join(missing)}; found {', '.join(info.columns)}",
        )
    info = info.select(
        *GENE_INFO_COLUMNS, *(["gene_type"] if "gene_type" in info.columns else [])
    ).filter(pl.col("symbol").is_not_null() & ~pl.col("symbol").str.contains(_UNUSABLE.pattern))
    if info.height == 0:
        raise LpmInputError(path, "gene info table has no usable symbols")
    symbols = info["symbol"].unique()
    ens = (
        info.select("symbol", pl.col("ensembl_id").str.split(";").alias("ensembl"))
        .explode("ensembl")
        .filter(pl.col("ensembl").is_not_null() & (pl.col("ensembl") != ""))
        .with_columns(pl.col("ensembl").str.replace(r"\.\d+$", ""))
    )
    if "gene_type" in info.columns:
        info = info.with_columns(pseudo=pl.col("gene_type").eq_missing(PSEUDOGENE))
    else:
        info = info.with_columns(pseudo=pl.lit(False))
    alias = (
        info.select("symbol", "pseudo", pl.col("alias_symbol").str.split(";").alias("alias"))
        .explode("alias")
        .filter(pl.col("alias").is_not_null() & (pl.col("alias") != ""))
    )
    upper_sym = pl.DataFrame({"upper": symbols.str.to_uppercase(), "symbol": symbols})
    upper_alias = alias.select(
        pl.col("alias").str.to_uppercase().alias("upper"), "symbol", "pseudo"
    )
    return GeneAliases(
        path=path,
        symbols=frozenset(symbols.to_list()),
        ensembl=_unique_map(ens, "ensembl"),
        aliases=_unique_map(alias, "alias"),
        upper_symbols=_unique_map(upper_sym, "upper"),
        upper_aliases=_unique_map(upper_alias, "upper"),
    )


def load_gene_aliases(path: str | Path) -> GeneAliases:
    """Read a gene-info table once per path (later calls reuse the parsed tables).

    Parameters
    ----------
    path
        Tab-separated gene info with columns ``symbol``, ``ensembl_id`` (``;``-separated) and
        ``alias_symbol`` (``;``-separated), e.g. ``human_gene_info_orgHsEgDb_3.16.tsv.gz``.

    Returns
    -------
    GeneAliases
        Lookup tables for :meth:`GeneAliases.harmonise`.
    """
    path = Path(path)
    if not path.is_file():
        raise LpmInputError(path, "no such gene info file")
    stat = path.stat()
    return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _split_readout(readout: str) -> tuple[str, str]:
    gene, sep, qualifier = readout.partition(READOUT_QUALIFIER)
    return gene, sep + qualifier


def _map_readouts(values: list[str], aliases: GeneAliases) -> tuple[dict[str, str], dict[str, Any]]:
    genes = sorted({_split_readout(v)[0] for v in values})
    res = aliases.harmonise(genes)
    table = dict(zip(genes, res.mapped, strict=True))
    mapping = {}
    for v in values:
        gene, qualifier = _split_readout(v)
        mapping[v] = table[gene] + qualifier
    return mapping, _summary(genes, res)


def _map_perturbations(
    values: list[str], aliases: GeneAliases, source: str | None
) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """Old → new perturbation symbols, the summary, and old → new member symbols."""
    targets: set[str] = set()
    for v in values:
        if v == S.CONTROL:
            continue
        for member in v.split(COMBINATION_SEPARATOR):
            kind, _, target = member.partition(TYPE_SEPARATOR)
            if kind in GENETIC_TYPES:
                targets.add(target)
    genes = sorted(targets)
    res = aliases.harmonise(genes)
    table = dict(zip(genes, res.mapped, strict=True))
    mapping = {}
    member_map: dict[str, str] = {}
    for v in values:
        if v == S.CONTROL:
            mapping[v] = v
            continue
        old = v.split(COMBINATION_SEPARATOR)
        new = []
        for member in old:
            kind, sep, target = member.partition(TYPE_SEPARATOR)
            new.append(f"{kind}{sep}{table[target]}" if kind in GENETIC_TYPES else member)
            member_map[member] = new[-1]
        if len(set(new)) < len(old):
            raise LpmInputError(
                source,
                f"gene harmonisation merges the members of perturbation {v!r} into one gene ({'+'.join(new)})",
            )
        mapping[v] = COMBINATION_SEPARATOR.join(sorted(new))
    return mapping, _summary(genes, res), member_map


def _summary(genes: list[str], res: HarmonisedSymbols) -> dict[str, Any]:
    renamed = [f"{g}->{m}" for g, m in zip(genes, res.mapped, strict=True) if g != m]
    return {
        "n": len(genes),
        "renamed": res.n_renamed,
        "unmapped": res.n_unmapped,
        "renamed_examples": renamed[:_N_EXAMPLES],
        "unmapped_examples": res.unmapped[:_N_EXAMPLES],
    }


def _merged(mapping: dict[str, str]) -> list[str]:
    """Original values that share their new value with another original value."""
    by_new: dict[str, list[str]] = {}
    for old, new in mapping.items():
        by_new.setdefault(new, []).append(old)
    return sorted(old for olds in by_new.values() if len(olds) > 1 for old in olds)


def _check_collisions(
    df: pl.DataFrame, mappings: dict[str, dict[str, str]], source: str | None
) -> None:
    """Raise if renaming makes two rows share a measurement key (only merged names can).

    ``mappings`` holds, per column, every value present (old -> new, identity included).
    """
    suspects = {col: _merged(m) for col, m in mappings.items()}
    cond = [pl.col(col).cast(pl.String).is_in(names) for col, names in suspects.items() if names]
    if not cond:
        return
    key = [
        c
        for c in (*S.KEY_COLUMNS, S.DOSE, S.TIME, *S.MEMBER_COLUMNS, S.REPLICATE)
        if c in df.columns
    ]
    before = (
        df.filter(pl.any_horizontal(cond))
        .select(key)
        .with_columns(pl.col(pl.Categorical).cast(pl.String))
    )
    if before.select(pl.struct(key).is_duplicated().any()).item():
        return  # duplicates of the source itself; validation reports those
    after = before.with_columns(
        pl.col(col).replace_strict(m, return_dtype=pl.String) for col, m in mappings.items()
    )
    dup = after.with_row_index("_row").filter(pl.struct(key).is_duplicated())
    if dup.height == 0:
        return
    first = dup.row(0, named=True)
    rows = dup.filter(pl.all_horizontal([pl.col(c).eq_missing(first[c]) for c in key]))["_row"]
    where = ", ".join(f"{c}={first[c]!r}" for c in key)
    olds = []
    for col in mappings:
        names = sorted(set(before[col].gather(rows).to_list()))
        if len(names) > 1:
            olds.append(f"{col} {' and '.join(repr(n) for n in names)}")
    raise LpmInputError(
        source,
        f"gene harmonisation makes {dup.height} rows share a key, first {where} "
        f"(from {'; '.join(olds)}); resolve the duplicates in the source or ingest without --gene-info",
    )


def harmonise_frame(
    df: pl.DataFrame, gene_info: Path | None, *, source: str | Path | None = None
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Map readouts and genetic perturbation targets of a long table to official symbols.

    Compound perturbations and the control stay as they are; every member of a combination is
    mapped and the members are re-sorted into canonical order. Readout qualifiers
    (``GENE:up``) are kept. Works on a measurements table or a controls table (no
    ``perturbation`` column).

    Parameters
    ----------
    df
        Long table with a ``readout`` column and optionally ``perturbation``.
    gene_info
        Gene-info table (see :func:`load_gene_aliases`); ``None`` returns ``df`` unchanged.
    source
        Named in errors.

    Returns
    -------
    tuple
        The new table and notes (counts, examples of renamed and unmapped names).

    Raises
    ------
    LpmInputError
        When two names map to one symbol and so make two rows share a measurement key.
    """
    if gene_info is None:
        return df, {"harmonised": False}
    aliases = load_gene_aliases(gene_info)
    src = str(source) if source is not None else None
    notes: dict[str, Any] = {"harmonised": True, "gene_info": str(gene_info)}
    mappings: dict[str, dict[str, str]] = {}
    if S.READOUT in df.columns:
        values = df[S.READOUT].cast(pl.String).unique().drop_nulls().sort().to_list()
        mappings[S.READOUT], notes["readouts"] = _map_readouts(values, aliases)
    if S.PERTURBATION in df.columns:
        values = df[S.PERTURBATION].cast(pl.String).unique().drop_nulls().sort().to_list()
        mappings[S.PERTURBATION], notes["perturbation_targets"], renamed = _map_perturbations(
            values, aliases, src
        )
        # doses per member follow their members into the renamed symbol's order
        df = members.reorder(df, S.PERTURBATION, lambda m: renamed.get(m, m), src)
    _check_collisions(df, mappings, src)
    renames = {col: {k: v for k, v in m.items() if k != v} for col, m in mappings.items()}
    out = df.with_columns(pl.col(col).cast(pl.String).replace(m) for col, m in renames.items() if m)
    return out, notes


__all__ = ["GeneAliases", "HarmonisedSymbols", "harmonise_frame", "load_gene_aliases"]

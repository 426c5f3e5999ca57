"""Compound -> target and mechanism-of-action annotations, read as they ship.

Sources (file names inside one folder, e.g. ``../shared/data/compounds``):

``drh_repurposing_drugs_20200324.txt``
    Drug Repurposing Hub (``!`` comment lines, then ``pert_iname, moa, target, ...``; ``moa`` and
    ``target`` ``|``-separated). Source ``"drh"``. Non-commercial licence.
``drugcentral_drug_target.tsv``
    DrugCentral drug-target pairs (``DRUG_NAME, GENE, SWISSPROT, ...``; ``GENE`` and ``SWISSPROT``
    ``|``-separated, position by position). Only human targets (``*_HUMAN``) are kept; DrugCentral
    gives no mechanism string, so ``moa`` is null. Source ``"drugcentral"``.
``drh_repurposing_samples_20200324.txt.gz``
    Broad ids of the Repurposing Hub samples, for :func:`load_compound_ids`.

Compound names are spelled as LINCS ``pert_iname`` (the Repurposing Hub and LINCS share CLUE's
names, ``PD-0325901``, ``trametinib``) with ``+``/``:`` replaced by ``_`` as the GCT reader does,
so ``compound:<name>`` is the store's symbol. They are *not* lower-cased: LINCS names carry
upper case. A DrugCentral name takes the Hub's spelling where exactly one Hub name has the same
:func:`compound_key`. :func:`match_compounds` matches the names of a plate or store to the
annotations (exact, then by key, then through Broad ids).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import polars as pl

from lpm.data.genes import load_gene_aliases
from lpm.data.io.symbol_tables import read_text_table
from lpm.data.symbols import COMBINATION_SEPARATOR, TYPE_SEPARATOR
from lpm.errors import LpmInputError
from lpm.priors.networks import symbol_map

DRH_DRUGS: Final = "drh_repurposing_drugs_20200324.txt"
DRH_SAMPLES: Final = "drh_repurposing_samples_20200324.txt.gz"
DRUGCENTRAL: Final = "drugcentral_drug_target.tsv"
COMPOUND_COLUMNS: Final = ("compound", "target", "moa", "source")
#: Separator of several targets or mechanisms in one Repurposing Hub or DrugCentral field.
LIST_SEPARATOR: Final = "|"
_PREFIX: Final = "compound" + TYPE_SEPARATOR
_BROAD = re.compile(r"^(BRD-[A-Z]\d{8})")
_SCHEMA: Final = {"compound": pl.String, "target": pl.String, "moa": pl.String, "source": pl.String}


def compound_key(name: str) -> str:
    """Case- and punctuation-free form of a compound name (``PLX-4720`` and ``PLX4720`` agree)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _sanitise(name: str) -> str:
    return name.strip().replace(COMBINATION_SEPARATOR, "_").replace(TYPE_SEPARATOR, "_")


def _read(path: Path, required: tuple[str, ...], *, what: str) -> pl.DataFrame:
    table = read_text_table(path, what, comment_prefix="!", quote_char=None)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise LpmInputError(
            path,
            f"{what} table misses column(s) {', '.join(missing)}; found {', '.join(table.columns[:10])}",
        )
    if table.height == 0:
        raise LpmInputError(path, f"{what} table has no rows")
    return table


def _drh(path: Path) -> pl.DataFrame:
    t = _read(path, ("pert_iname", "moa", "target"), what="Repurposing Hub drug")
    t = t.filter(pl.col("pert_iname").is_not_null())
    return (
        t.select(
            compound=pl.col("pert_iname").map_elements(_sanitise, return_dtype=pl.String),
            target=pl.col("target").str.split(LIST_SEPARATOR),
            moa=pl.col("moa").str.strip_chars().replace("", None),
        )
        .explode("target")
        .with_columns(pl.col("target").str.strip_chars().replace("", None), source=pl.lit("drh"))
        .filter(pl.col("target").is_not_null() | pl.col("moa").is_not_null())
    )


def _drugcentral(path: Path, hub_names: dict[str, str]) -> pl.DataFrame:
    t = _read(path, ("DRUG_NAME", "GENE", "SWISSPROT"), what="DrugCentral drug-target")
    rows: list[tuple[str, str]] = []
    for drug, genes, proteins in t.select("DRUG_NAME", "GENE", "SWISSPROT").iter_rows():
        if not drug or not genes:
            continue
        g = [x.strip() for x in genes.split(LIST_SEPARATOR)]
        p = [x.strip() for x in (proteins or "").split(LIST_SEPARATOR)]
        human = [x.endswith("_HUMAN") for x in p]
        if len(g) == len(p):
            kept = [x for x, h in zip(g, human, strict=True) if h]
        else:  # positions unknown: keep the genes only when every protein is human
            kept = g if all(human) else []
        name = hub_names.get(compound_key(drug), _sanitise(drug))
        rows += [(name, x) for x in kept if x]
    return pl.DataFrame(rows, schema=["compound", "target"], orient="row").with_columns(
        moa=pl.lit(None, dtype=pl.String), source=pl.lit("drugcentral")
    )


def _unique_keys(names: Iterable[str]) -> dict[str, str]:
    """``compound_key -> name`` for keys that exactly one name has."""
    by_key: dict[str, set[str]] = {}
    for n in names:
        by_key.setdefault(compound_key(n), set()).add(n)
    return {k: next(iter(v)) for k, v in by_key.items() if len(v) == 1 and k}


def load_compound_annotations(
    folder: str | Path, *, gene_info: str | Path | None = None
) -> pl.DataFrame:
    """Compound targets and mechanisms from the Repurposing Hub and DrugCentral.

    Parameters
    ----------
    folder
        Folder holding :data:`DRH_DRUGS` and :data:`DRUGCENTRAL`.
    gene_info
        Gene-info table; targets map to official symbols (else they are upper-cased).

    Returns
    -------
    polars.DataFrame
        Columns ``compound, target, moa, source``: one row per compound, target and source
        (``"drh"`` or ``"drugcentral"``); ``moa`` is the Hub's ``|``-separated mechanism string
        (null for DrugCentral). A Hub compound with a mechanism but no target has one row with
        a null ``target``.

    Raises
    ------
    LpmInputError
        Naming the file: missing, unreadable, lacking a column, empty.
    """
    folder = Path(folder)
    drh = _drh(folder / DRH_DRUGS)
    hub_names = _unique_keys(drh["compound"].unique().to_list())
    dc = _drugcentral(folder / DRUGCENTRAL, hub_names)
    table = pl.concat([drh.select(*COMPOUND_COLUMNS), dc.select(*COMPOUND_COLUMNS)]).cast(
        _SCHEMA  # type: ignore[arg-type]
    )
    aliases = None if gene_info is None else load_gene_aliases(gene_info)
    mapping = symbol_map(table["target"].drop_nulls().unique().to_list(), aliases)
    table = table.with_columns(pl.col("target").replace_strict(mapping, default=None))
    return table.unique(maintain_order=True).sort("compound", "source", "target", nulls_last=True)


def load_compound_ids(folder: str | Path) -> pl.DataFrame:
    """Broad ids (``BRD-K12343256``, without batch suffix) of the Repurposing Hub's compounds.

    Returns
    -------
    polars.DataFrame
        Columns ``broad_id, compound``, one row per pair, from :data:`DRH_SAMPLES`.
    """
    path = Path(folder) / DRH_SAMPLES
    t = _read(path, ("broad_id", "pert_iname"), what="Repurposing Hub sample")
    return (
        t.select(
            broad_id=pl.col("broad_id").str.extract(_BROAD.pattern, 1),
            compound=pl.col("pert_iname").map_elements(_sanitise, return_dtype=pl.String),
        )
        .drop_nulls()
        .unique()
        .sort("broad_id", "compound")
    )


def _strip(name: str) -> str:
    return name.removeprefix(_PREFIX)


def match_compounds(
    names: Iterable[str],
    annotations: pl.DataFrame,
    *,
    compound_ids: pl.DataFrame | None = None,
    broad_ids: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Which annotated compound each name (``trametinib`` or ``compound:trametinib``) is.

    In order: the same name; the one annotated name with the same :func:`compound_key`; with
    ``compound_ids`` (from :func:`load_compound_ids`), the name's Broad id (``broad_ids[name]``,
    or the name itself when it is a Broad id, as LINCS names unnamed compounds) to a Hub name,
    matched the same two ways.

    Returns
    -------
    dict
        ``name -> annotated compound`` for the names that match; the others are left out.
    """
    known = set(annotations["compound"].unique().to_list())
    keys = _unique_keys(known)
    by_id: dict[str, list[str]] = {}
    if compound_ids is not None:
        for bid, comp in compound_ids.select("broad_id", "compound").iter_rows():
            by_id.setdefault(bid, []).append(comp)
    ids = dict(broad_ids or {})

    def direct(name: str) -> str | None:
        return name if name in known else keys.get(compound_key(name))

    out: dict[str, str] = {}
    for original in names:
        name = _strip(original)
        hit = direct(name)
        if hit is None and by_id:
            m = _BROAD.match(ids.get(original) or ids.get(name) or name)
            hits = {h for c in by_id.get(m.group(1), []) if (h := direct(c))} if m else set()
            hit = next(iter(hits)) if len(hits) == 1 else None
        if hit is not None:
            out[original] = hit
    return out


def _rekey(found: dict[str, set[str]], names: Mapping[str, str] | None) -> dict[str, set[str]]:
    if names is None:
        return found
    return {q: set(found[c]) for q, c in names.items() if c in found}


def compound_targets(
    annotations: pl.DataFrame,
    *,
    sources: Iterable[str] | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, set[str]]:
    """Each compound's target genes (compounds without one are left out).

    ``sources`` keeps some sources only (``["drh"]``); ``names`` (from :func:`match_compounds`)
    keys the result by the caller's names instead of the annotated ones.
    """
    t = annotations.filter(pl.col("target").is_not_null())
    if sources is not None:
        t = t.filter(pl.col("source").is_in(list(sources)))
    found: dict[str, set[str]] = {}
    for comp, target in t.select("compound", "target").iter_rows():
        found.setdefault(comp, set()).add(target)
    return _rekey(found, names)


def compound_mechanisms(
    annotations: pl.DataFrame, *, names: Mapping[str, str] | None = None
) -> dict[str, set[str]]:
    """Each compound's mechanisms of action, the ``|``-separated ``moa`` split into a set.

    Compounds sharing a mechanism are the positives of a mechanism-of-action query.
    """
    found: dict[str, set[str]] = {}
    t = annotations.filter(pl.col("moa").is_not_null()).select("compound", "moa").unique()
    for comp, moa in t.iter_rows():
        parts = {m.strip() for m in moa.split(LIST_SEPARATOR) if m.strip()}
        if parts:
            found.setdefault(comp, set()).update(parts)
    return _rekey(found, names)


__all__ = [
    "COMPOUND_COLUMNS",
    "DRH_DRUGS",
    "DRH_SAMPLES",
    "DRUGCENTRAL",
    "compound_key",
    "compound_mechanisms",
    "compound_targets",
    "load_compound_annotations",
    "load_compound_ids",
    "match_compounds",
]

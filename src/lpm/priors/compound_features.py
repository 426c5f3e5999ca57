"""Compound structure features: names -> SMILES -> Morgan fingerprints, cached as Parquet.

Groundwork for featurised compound encoders, so that a compound never measured can be placed by
its structure. Sources (file names inside one folder, e.g. ``../shared/data/compounds``; each is
optional, at least one must be there):

``drh_repurposing_samples_20200324.txt.gz``
    Repurposing Hub samples: ``pert_iname, broad_id, smiles`` (several samples per name).
``lincs_drugs_smiles__chemCPA.csv.gz``
    LINCS Broad id (``BRD-K12343256``, no header) -> SMILES, as chemCPA ships it.
``sciplex3_188_compounds_smiles_pathway__chemCPA.csv``
    sci-Plex 3 compound names (Selleck spelling) -> SMILES.
``drugcentral_LINCS_mapping.tsv``
    DrugCentral ``DRUG_NAME`` -> ``SMILES``.

Names are matched as :func:`lpm.priors.compounds.match_compounds` does (exact, then the one name
with the same :func:`~lpm.priors.compounds.compound_key`, then through Broad ids), against the
Hub first, then the LINCS Broad ids, then sci-Plex, then DrugCentral.

RDKit is imported only when fingerprints are computed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from lpm._utils.atomic import atomic_file
from lpm._utils.cache import read_cached
from lpm.data.compounds import COLUMNS, ID_SEPARATOR
from lpm.data.store import PerturbationStore
from lpm.errors import LpmInputError, first_line
from lpm.priors.compounds import (
    DRH_SAMPLES,
    _read,
    _sanitise,
    load_compound_ids,
    match_compounds,
)

LINCS_SMILES: Final = "lincs_drugs_smiles__chemCPA.csv.gz"
SCIPLEX_SMILES: Final = "sciplex3_188_compounds_smiles_pathway__chemCPA.csv"
DRUGCENTRAL_SMILES: Final = "drugcentral_LINCS_mapping.tsv"
_PREFIX: Final = "compound:"
_BROAD_LEN: Final = len("BRD-K12343256")
#: Bumped when the cached table's layout or the fingerprint code changes.
_CACHE_VERSION: Final = 1


def morgan_fingerprints(
    smiles: Mapping[str, str], *, radius: int = 2, n_bits: int = 2048
) -> pl.DataFrame:
    """Morgan (ECFP-like) bit fingerprints of compounds given as SMILES.

    Parameters
    ----------
    smiles
        ``compound name -> SMILES``.
    radius, n_bits
        Morgan radius (2 is ECFP4) and fingerprint length.

    Returns
    -------
    polars.DataFrame
        One row per compound, in the mapping's order: ``compound`` then ``fp_0 .. fp_{n_bits-1}``
        (``UInt8``, 0 or 1).

    Raises
    ------
    LpmInputError
        Naming the compound whose SMILES RDKit cannot parse; or a bad ``radius``/``n_bits``.
    """
    if radius < 0:
        raise LpmInputError("radius", f"must be >= 0, got {radius}")
    if n_bits < 1:
        raise LpmInputError("n_bits", f"must be >= 1, got {n_bits}")
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdFingerprintGenerator

    rdBase.DisableLog("rdApp.*")  # RDKit's C++ parse errors would go to stderr
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    names = list(smiles)
    bits = np.zeros((len(names), n_bits), dtype=np.uint8)
    for i, name in enumerate(names):
        text = smiles[name]
        mol = Chem.MolFromSmiles(text) if text and text.strip() else None
        if mol is None:
            raise LpmInputError(f"compound {name!r}", f"RDKit cannot parse SMILES {text!r}")
        bits[i] = generator.GetFingerprintAsNumPy(mol)
    columns = [f"fp_{j}" for j in range(n_bits)]
    fps = pl.DataFrame(bits, schema=dict.fromkeys(columns, pl.UInt8), orient="row")
    return pl.DataFrame({"compound": names}, schema={"compound": pl.String}).hstack(fps)


def _clean_smiles(text: str | None) -> str:
    """SMILES without surrounding quotes or a CXSMILES extension (`` |&1:1,r|``)."""
    parts = (text or "").strip().strip('"').split()
    return parts[0] if parts else ""


def _most_common(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``key -> SMILES`` taking each key's most frequent SMILES (ties: the smallest)."""
    counts: dict[str, Counter[str]] = {}
    for key, value in pairs:
        if key and (smiles := _clean_smiles(value)):
            counts.setdefault(key, Counter())[smiles] += 1
    return {k: min(c, key=lambda v: (-c[v], v)) for k, c in counts.items()}


def _drh_smiles(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``(name -> SMILES, broad id -> SMILES)`` from the Repurposing Hub samples."""
    path = folder / DRH_SAMPLES
    if not path.is_file():
        return {}, {}
    t = _read(path, ("broad_id", "pert_iname", "smiles"), what="Repurposing Hub sample")
    t = t.filter(pl.col("pert_iname").is_not_null() & pl.col("smiles").is_not_null())
    rows = list(t.select("pert_iname", "broad_id", "smiles").iter_rows())
    by_name = _most_common((_sanitise(n), s) for n, _, s in rows)
    by_id = _most_common(((b or "")[:_BROAD_LEN], s) for _, b, s in rows)
    return by_name, by_id


def _lincs_smiles(folder: Path) -> dict[str, str]:
    path = folder / LINCS_SMILES
    if not path.is_file():
        return {}
    try:
        t = pl.read_csv(path, has_header=False, infer_schema=False, new_columns=["id", "smiles"])
    except (OSError, EOFError, pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise LpmInputError(path, f"cannot parse LINCS SMILES table: {first_line(exc)}") from None
    return _most_common((i.strip(), s) for i, s in t.select("id", "smiles").iter_rows() if i and s)


def _named_smiles(path: Path, name: str, smiles: str, *, separator: str) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        t = pl.read_csv(path, separator=separator, infer_schema=False, quote_char='"')
    except (OSError, EOFError, pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise LpmInputError(
            path, f"cannot parse compound SMILES table: {first_line(exc)}"
        ) from None
    missing = [c for c in (name, smiles) if c not in t.columns]
    if missing:
        raise LpmInputError(path, f"compound SMILES table misses column(s) {', '.join(missing)}")
    return _most_common((_sanitise(n), s) for n, s in t.select(name, smiles).iter_rows() if n)


def _by_name(
    names: list[str],
    table: Mapping[str, str],
    *,
    compound_ids: pl.DataFrame | None = None,
    broad_ids: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``name -> SMILES`` for the names :func:`match_compounds` finds in ``table``."""
    if not table or not names:
        return {}
    known = pl.DataFrame({"compound": list(table)}, schema={"compound": pl.String})
    hits = match_compounds(names, known, compound_ids=compound_ids, broad_ids=broad_ids)
    return {n: table[c] for n, c in hits.items()}


def compound_smiles(
    folder: str | Path | None,
    names: Iterable[str],
    *,
    broad_ids: Mapping[str, str] | None = None,
    known: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """SMILES of compounds named as in lpm symbols (``trametinib`` or ``compound:trametinib``).

    Parameters
    ----------
    folder
        Folder holding the source files listed in the module docstring (any subset); only read
        for names ``known`` does not cover (``None``: no lookup by name).
    names
        Compound names; a LINCS name that is a Broad id (``BRD-K20696416``) is looked up as one.
    broad_ids
        ``name -> Broad id`` (LINCS ``pert_id``), when known: tried where the name is not.
    known
        ``name -> SMILES`` the data came with (a store's compound table): used first, as given.

    Returns
    -------
    dict
        ``name -> SMILES`` (keys as given) for the names that resolve; the others are left out
        for the caller to count or report.

    Raises
    ------
    LpmInputError
        When ``folder`` holds none of the source files, or one of them is malformed.
    """
    wanted = list(dict.fromkeys(names))
    out: dict[str, str] = {n: _clean_smiles(known[n]) for n in wanted if known and known.get(n)}
    if len(out) == len(wanted) or folder is None:
        return {n: out[n] for n in wanted if n in out}
    folder = Path(folder)
    sources = (DRH_SAMPLES, LINCS_SMILES, SCIPLEX_SMILES, DRUGCENTRAL_SMILES)
    if not any((folder / s).is_file() for s in sources):
        raise LpmInputError(folder, f"no compound structure file ({', '.join(sources)})")
    ids = dict(broad_ids or {})

    def left() -> list[str]:
        return [n for n in wanted if n not in out]

    drh_names, drh_ids = _drh_smiles(folder)
    compound_ids = load_compound_ids(folder) if drh_names else None
    out |= _by_name(left(), drh_names, compound_ids=compound_ids, broad_ids=ids)
    by_id = _lincs_smiles(folder) | {k: v for k, v in drh_ids.items() if k}
    for n in left():
        bare = n.removeprefix(_PREFIX)
        for candidate in (ids.get(n), ids.get(bare), bare):
            hit = by_id.get((candidate or "")[:_BROAD_LEN]) if candidate else None
            if hit is not None:
                out[n] = hit
                break
    sciplex = _named_smiles(folder / SCIPLEX_SMILES, "compound", "smiles", separator=",")
    out |= _by_name(left(), sciplex)
    drugcentral = _named_smiles(folder / DRUGCENTRAL_SMILES, "DRUG_NAME", "SMILES", separator="\t")
    out |= _by_name(left(), drugcentral)
    return {n: out[n] for n in wanted if n in out}


def store_compounds(store: PerturbationStore) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """A store's compound symbols, the SMILES its source files gave (its compound table), and
    the first Broad id of each compound that has one (for the lookup of the others)."""
    names = [p for p in store.perturbations if p.startswith(_PREFIX)]
    table = store.compounds()
    if table is None:
        return names, {}, {}
    smiles, ids = {}, {}
    for symbol, compound_id, text in table.select(COLUMNS).iter_rows():
        if text:
            smiles[symbol] = text
        first = (compound_id or "").split(ID_SEPARATOR)[0]
        if first.startswith("BRD-"):
            ids[symbol] = first
    return names, smiles, ids


def _cache_key(smiles: Mapping[str, str], radius: int, n_bits: int) -> str:
    payload = json.dumps(
        {"v": _CACHE_VERSION, "smiles": sorted(smiles.items()), "radius": radius, "bits": n_bits}
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def compound_features(
    folder: str | Path | None,
    names: Iterable[str],
    *,
    cache_dir: Path | None = None,
    radius: int = 2,
    n_bits: int = 2048,
    broad_ids: Mapping[str, str] | None = None,
    known: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """SMILES and Morgan fingerprints of the compounds that resolve (see :func:`compound_smiles`;
    ``known`` SMILES, e.g. from a store's compound table, come before any lookup by name).

    Returns
    -------
    polars.DataFrame
        ``compound, smiles, fp_0 .. fp_{n_bits-1}``, one row per resolved name, sorted by name.
        Unresolved names are left out (compare ``compound`` with ``names`` to count them).

    With ``cache_dir``, the table is read from (or written atomically to)
    ``cache_dir/compound_features-<hash>.parquet``, the hash covering the sorted
    ``name -> SMILES`` pairs, ``radius`` and ``n_bits``.
    """
    found = compound_smiles(folder, names, broad_ids=broad_ids, known=known)
    smiles = dict(sorted(found.items()))
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"compound_features-{_cache_key(smiles, radius, n_bits)}.parquet"
        hit = read_cached(path)
        if hit is not None:
            return hit
    fps = morgan_fingerprints(smiles, radius=radius, n_bits=n_bits)
    table = fps.select(
        "compound",
        pl.Series("smiles", list(smiles.values()), dtype=pl.String),
        pl.exclude("compound"),
    )
    if path is not None:
        with atomic_file(path, overwrite=True) as tmp:
            table.write_parquet(tmp)
    return table


__all__ = [
    "DRUGCENTRAL_SMILES",
    "LINCS_SMILES",
    "SCIPLEX_SMILES",
    "compound_features",
    "compound_smiles",
    "morgan_fingerprints",
    "store_compounds",
]

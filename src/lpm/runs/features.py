"""``lpm features genes|compounds|contexts`` and ``lpm prior-embedding`` as library calls.

Each checks its output before any work (an existing file is refused unless ``overwrite``),
computes one feature table (``symbol`` + numbers) from the priors, and writes it whole or not at
all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from lpm._utils.atomic import atomic_file, check_output
from lpm.errors import LpmInputError

#: The widest prior embedding (a truncated SVD: wider ones cost much and say little more).
MAX_DIMS: Final = 1024


def _write(table: pl.DataFrame, out: Path, *, overwrite: bool) -> None:
    with atomic_file(out, overwrite=overwrite) as tmp:
        table.write_parquet(tmp)


def gene_features_to_file(
    out: str | Path, *, source: str = "go", overwrite: bool = False
) -> pl.DataFrame:
    """Gene features from the priors folder (``go``: GO propagated, SVD; ``regulons``)."""
    from lpm.priors.features import feature_table

    out = check_output(out, kind="file", overwrite=overwrite)
    table = feature_table(source, "readout")
    _write(table, out, overwrite=overwrite)
    return table


def compound_features_to_file(
    store: str | Path,
    out: str | Path,
    *,
    compounds: str | Path | None = None,
    overwrite: bool = False,
) -> tuple[pl.DataFrame, int, int]:
    """Morgan fingerprints of a store's compounds: SMILES from the store's own compound table
    first (what its source files gave), then by name in the compounds folder; and how many
    compounds the store has and how many had their SMILES in the store."""
    from lpm.data.store import open_store
    from lpm.priors.compound_features import compound_features, store_compounds
    from lpm.priors.locations import priors_folder

    out = check_output(out, kind="file", overwrite=overwrite)
    names, known, ids = store_compounds(open_store(store))
    if not names:
        raise LpmInputError(store, "has no compound perturbations")
    folder = None
    if any(n not in known for n in names):  # the folder is needed only for a lookup by name
        folder = Path(compounds) if compounds is not None else priors_folder() / "compounds"
    table = compound_features(folder, names, broad_ids=ids, known=known)
    table = table.drop("smiles").rename({"compound": "symbol"})
    _write(table, out, overwrite=overwrite)
    return table, len(names), sum(n in known for n in names)


def context_features_to_file(
    out: str | Path,
    *,
    h5ad: str | Path | None = None,
    truth: str | Path | None = None,
    store: str | Path | None = None,
    dims: int = 16,
    epochs: int = 300,
    seed: int = 0,
    overwrite: bool = False,
) -> pl.DataFrame:
    """Context features by a SubTab encoder from exactly one of: single cells with control cells
    (``h5ad``), a simulation's truth, or a store's measured readout panel."""
    from lpm.priors import context_features as cf

    if sum(x is not None for x in (h5ad, truth, store)) != 1:
        raise LpmInputError(None, "give exactly one of --h5ad, --truth, --store")
    if epochs < 0:
        raise LpmInputError(None, f"--epochs must be at least 0, got {epochs}")
    out = check_output(out, kind="file", overwrite=overwrite)
    if h5ad is not None:
        x, groups, _ = cf.mcfaline_control_samples(h5ad)
    elif truth is not None:
        x, groups, _ = cf.simulation_control_samples(truth)
    else:
        assert store is not None
        x, groups, _ = cf.measured_readout_samples(store)
    table = cf.subtab_embeddings(x, groups, dim=dims, epochs=epochs, seed=seed)
    _write(table, out, overwrite=overwrite)
    return table


def prior_embedding_to_file(
    gene2go: str | Path,
    out: str | Path,
    *,
    dims: int = 32,
    seed: int = 0,
    overwrite: bool = False,
) -> pl.DataFrame:
    """Gene embeddings from GO annotations (TF-IDF, truncated SVD)."""
    from lpm.priors.go_embedding import go_gene_embedding

    if not 1 <= dims <= MAX_DIMS:
        raise LpmInputError(None, f"--dims must be between 1 and {MAX_DIMS}, got {dims}")
    out = check_output(out, kind="file", overwrite=overwrite)
    table = go_gene_embedding(gene2go, n_components=dims, seed=seed)
    _write(table, out, overwrite=overwrite)
    return table

"""Commands that make and describe data: simulate, ingest, info, feature tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lpm.cli._shared import GeneInfo, OutFile, Overwrite, Seed, opt, out_console, status

Column = Annotated[str | None, opt("Column holding it (default: the reader's documented name).")]


def simulate(
    out: Annotated[Path, opt("Output folder (store/, truth/, config.json).")],
    genes: Annotated[int, opt("Number of genes.")] = 2000,
    perturbations: Annotated[int, opt("Number of perturbations.")] = 500,
    contexts: Annotated[int, opt("Number of cell contexts.")] = 5,
    cells: Annotated[int, opt("Cells sampled per condition.")] = 50,
    landmarks: Annotated[
        int | None, opt("L1000-like landmark genes (default min(978, genes/2)).")
    ] = None,
    seed: Annotated[int, opt("Random seed; the same seed gives the same bytes.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Simulate a perturbation world with known ground truth (the embedded default data)."""
    from lpm.sim.simulate import simulate as run

    result = run(
        out, n_genes=genes, n_perturbations=perturbations, n_contexts=contexts, n_cells=cells,
        n_landmarks=landmarks, seed=seed, overwrite=overwrite, progress=status,
    )  # fmt: skip
    out_console.print(str(result))


def ingest(
    sources: Annotated[
        list[Path], typer.Argument(help="Data files (or stores); several make a joint store.")
    ],
    out: Annotated[Path, opt("Store folder to write.")],
    dataset: Annotated[str | None, opt("Dataset name used in context ids.")] = None,
    cell_line: Annotated[str | None, opt("Cell line, where the file does not say.")] = None,
    perturbation_type: Annotated[
        str | None, opt("Type of bare perturbation names (CRISPRi, compound, ...).")
    ] = None,
    readout_type: Annotated[
        str | None, opt("What values mean (delta, zscore, binary, ...).")
    ] = None,
    context_column: Column = None,
    perturbation_column: Column = None,
    readout_column: Column = None,
    value_column: Column = None,
    control_label: Annotated[str | None, opt("Label of control cells/wells.")] = None,
    gene_info: GeneInfo = None,
    lincs_level: Annotated[
        int | None, opt("LINCS level (3 or 4) when it cannot be inferred.")
    ] = None,
    layout: Annotated[
        str | None,
        opt("table (long or wide, default), pairwise (gene × gene doubles), ranked (gene lists)."),
    ] = None,
    readout_name: Annotated[
        str | None, opt("Readout name of a pairwise matrix (default fitness).")
    ] = None,
    top_k: Annotated[
        int | None, opt("Ranked lists: a gene is labelled 1 when its rank is at most this (100).")
    ] = None,
    panel_min_lists: Annotated[
        int | None, opt("Ranked lists: readouts are genes in the top k of at least N lists (10).")
    ] = None,
    duplicate_genes: Annotated[
        str | None, opt("Ranked lists: a gene twice in one list is an error or best-rank.")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Read real files in the format they come in (h5ad, GCT/GCTX, NPZ, CSV/TSV/Parquet) into a store."""
    from lpm.data.info import format_info, store_info
    from lpm.data.io import IngestOptions
    from lpm.data.io import ingest as run

    options = IngestOptions(
        dataset=dataset, cell_line=cell_line, perturbation_type=perturbation_type,
        readout_type=readout_type, context_column=context_column,
        perturbation_column=perturbation_column, readout_column=readout_column,
        value_column=value_column, control_label=control_label, gene_info=gene_info,
        lincs_level=lincs_level, layout=layout, readout_name=readout_name, top_k=top_k,
        panel_min_lists=panel_min_lists, duplicate_genes=duplicate_genes,
    )  # fmt: skip
    progress = lambda s: status(f"reading {s}")  # noqa: E731
    store = run(sources, out, options=options, overwrite=overwrite, progress=progress)
    out_console.print(format_info(store_info(store)))


def info(store: Annotated[Path, typer.Argument(help="Store folder.")]) -> None:
    """Print contexts, perturbation counts by type, readouts, rows and value ranges."""
    from lpm.data.info import format_info, store_info
    from lpm.data.store import open_store

    out_console.print(format_info(store_info(open_store(store))))


def prior_embedding(
    gene2go: Annotated[Path, opt("Gene→GO annotation TSV (columns symbol, go_id).")],
    out: Annotated[Path, opt("Output Parquet: symbol + embedding columns.")],
    dims: Annotated[int, opt("Embedding dimensions.")] = 32,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Gene embeddings from GO annotations, e.g. for `--param linear.perturbation_embeddings=FILE`."""
    from lpm.runs.features import prior_embedding_to_file

    table = prior_embedding_to_file(gene2go, out, dims=dims, seed=seed, overwrite=overwrite)
    out_console.print(f"wrote {table.height:,} gene embeddings ({table.width - 1} dims) to {out}")


def features_genes(
    out: OutFile,
    source: Annotated[str, opt("go (GO propagated, SVD) or regulons (TF graph).")] = "go",
    overwrite: Overwrite = False,
) -> None:
    """Gene features from the priors folder ($LPM_PRIORS or shared/data beside the work)."""
    from lpm.runs.features import gene_features_to_file

    table = gene_features_to_file(out, source=source, overwrite=overwrite)
    out_console.print(f"wrote {table.height:,} genes × {table.width - 1} features to {out}")


def features_compounds(
    store: Annotated[Path, opt("Store whose compounds are featurised.")],
    out: OutFile,
    compounds: Annotated[
        Path | None, opt("Compound structure folder (default: priors/compounds).")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Morgan fingerprints (RDKit) of the store's compounds whose SMILES resolve by name."""
    from lpm.runs.features import compound_features_to_file

    table, n = compound_features_to_file(store, out, compounds=compounds, overwrite=overwrite)
    out_console.print(f"wrote {table.height} of {n} compounds (resolved SMILES) to {out}")


def features_contexts(
    out: OutFile,
    h5ad: Annotated[
        Path | None, opt("Single cells with control cells (obs: perturbation, cell_type, dataset).")
    ] = None,
    truth: Annotated[
        Path | None, opt("Simulation truth folder (baseline expression per context).")
    ] = None,
    store: Annotated[
        Path | None, opt("Store: its measured-readout panel per context (an expression proxy).")
    ] = None,
    dims: Annotated[int, opt("Feature dimensions.")] = 16,
    epochs: Annotated[int, opt("SubTab training epochs.")] = 300,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Context features by a SubTab encoder (reconstruct the profile from feature subsets)."""
    from lpm.runs.features import context_features_to_file

    table = context_features_to_file(
        out, h5ad=h5ad, truth=truth, store=store, dims=dims, epochs=epochs, seed=seed,
        overwrite=overwrite,
    )  # fmt: skip
    out_console.print(f"wrote {table.height} contexts × {dims} features to {out}")


def register(app: typer.Typer) -> None:
    for command in (simulate, ingest, info):
        app.command()(command)
    app.command("prior-embedding")(prior_embedding)
    features = typer.Typer(
        help="Feature tables for the featurised LPM (--perturbation-features, --context-features).",
        no_args_is_help=True,
    )
    features.command("genes")(features_genes)
    features.command("compounds")(features_compounds)
    features.command("contexts")(features_contexts)
    app.add_typer(features, name="features")

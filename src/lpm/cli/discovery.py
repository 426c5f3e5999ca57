"""Discovery commands: embed, moa, grn, interactions, explain (each one ``lpm.runs`` call)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lpm.cli._shared import GeneInfo, Overwrite, opt, out_console, status

Stores = Annotated[list[Path], opt("Store(s) with the measured profiles; several are joined.")]


def embed(
    model: Annotated[Path, opt("Saved LPM folder (lpm or lpm_fast).")],
    out: Annotated[
        Path,
        opt("Perturbation embeddings F.h5ad; F.contexts.h5ad and F.readouts.h5ad go beside it."),
    ],
    figure: Annotated[
        Path | None, opt("PNG of a 2-D layout (UMAP, else PCA + t-SNE) of the perturbations.")
    ] = None,
    member: Annotated[int, opt("Ensemble member to read (members' spaces are not aligned).")] = 0,
    annotations: Annotated[
        Path | None,
        opt("TSV of name (compound or gene) and mechanism (or moa) columns, for obs.mechanism."),
    ] = None,
    truth: Annotated[
        Path | None, opt("Simulation truth folder: label compounds and knock-downs by target.")
    ] = None,
    store: Annotated[
        list[Path] | None,
        opt("Store(s) the model trained on: adds contexts and doses measured per perturbation."),
    ] = None,
    seed: Annotated[int, opt("Seed of the layout.")] = 0,
    layout: Annotated[
        str, opt("Layout: auto (UMAP if umap-learn is installed), umap or tsne.")
    ] = "auto",
    overwrite: Annotated[
        bool, opt("Replace existing output files (the three h5ad and the figure).")
    ] = False,
) -> None:
    """Write a trained LPM's learned embeddings as AnnData (h5ad), with an optional UMAP figure."""
    from lpm.data.store import read_stores
    from lpm.runs.embed import write_embeddings

    r = write_embeddings(
        model, out, member=member, data=read_stores(store) if store else None,
        annotations=annotations, truth=truth, figure=figure, seed=seed, method=layout,
        overwrite=overwrite,
    )  # fmt: skip
    out_console.print(
        f"wrote {r.n_perturbations:,} perturbation, {r.n_contexts:,} context and {r.n_readouts:,} "
        f"readout embeddings (dim {r.dim}, member {r.member} of {r.n_ensemble}) to "
        f"{r.perturbations}, {r.contexts}, {r.readouts}"
    )
    if r.figure is not None:
        out_console.print(f"figure ({r.layout}): {r.figure}")


def moa(
    store: Stores,
    out: Annotated[Path, opt("Output folder (ranking, scores, per-compound scores, figure).")],
    model: Annotated[
        Path | None,
        opt("Saved LPM folder; without it only the measured-profile baseline is ranked."),
    ] = None,
    context: Annotated[
        str | None,
        opt("Shared context of the predicted profiles (default: the one with most compounds)."),
    ] = None,
    truth: Annotated[
        Path | None, opt("Simulation truth folder: score the compounds' true targets.")
    ] = None,
    compounds: Annotated[
        Path | None,
        opt(
            "Compound annotation folder (Repurposing Hub + DrugCentral), e.g. shared/data/compounds."
        ),
    ] = None,
    gene_info: GeneInfo = None,
    k: Annotated[int, opt("Cut-off of recall@k.")] = 10,
    overwrite: Overwrite = False,
) -> None:
    """Rank genetic perturbations and compounds for every compound by learned and measured similarity, and score it."""
    from lpm.runs._inputs import stores_data
    from lpm.runs.moa import SCORES_FILE, run_moa

    status(f"ranking mechanisms on {', '.join(map(str, store))}")
    result = run_moa(
        stores_data(store), out=out, model=model, context=context, truth=truth,
        compounds_folder=compounds, gene_info=gene_info, k=k, overwrite=overwrite,
    )  # fmt: skip
    out_console.print(str(result))
    figure = f", {result.figure}" if result.figure else ""
    out_console.print(f"wrote {result.ranking}, {out / SCORES_FILE}{figure}")


def grn(
    store: Annotated[list[Path], opt("Store(s) with genetic perturbations; several are joined.")],
    out: Annotated[Path, opt("Output folder (edges CSV/GraphML, module figure, scores).")],
    method: Annotated[
        str, opt("knockdown (measured effects), embedding, imputed (LPM-completed matrix) or all.")
    ] = "knockdown",
    model: Annotated[
        Path | None, opt("Saved LPM folder (needed by embedding and imputed).")
    ] = None,
    context: Annotated[
        str | None,
        opt("Context of the knock-down effects / imputed matrix (default: all / the widest)."),
    ] = None,
    reference: Annotated[
        list[Path] | None,
        opt(
            "Reference network(s) to score against (ChIP-seq, regulon file, or a simulation truth folder)."
        ),
    ] = None,
    gene_info: GeneInfo = None,
    top: Annotated[int, opt("Edges exported, drawn and rewired for the random baseline.")] = 1000,
    n_random: Annotated[int, opt("Degree-preserving random networks averaged.")] = 3,
    min_abs_z: Annotated[
        float | None, opt("Keep knock-down/imputed edges with |z| at least this.")
    ] = None,
    seed: Annotated[int, opt("Seed of the random rewiring and the layout.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Infer gene→gene networks from knock-downs, embeddings or an LPM-imputed matrix, and score them."""
    from lpm.runs._inputs import stores_data
    from lpm.runs.grn import run_grn

    status(f"inferring gene networks ({method}) on {', '.join(map(str, store))}")
    result = run_grn(
        stores_data(store), out=out, method=method, model=model, context=context,  # type: ignore[arg-type]
        reference=list(reference) if reference else None, gene_info=gene_info, seed=seed,
        top=top, n_random=n_random, min_abs_z=min_abs_z, overwrite=overwrite,
    )  # fmt: skip
    out_console.print(str(result))


def interactions(
    store: Annotated[
        Path, typer.Argument(help="Store with double perturbations and their singles.")
    ],
    out: Annotated[Path, opt("Output folder (interactions.csv/.parquet, figure, summary.json).")],
    context: Annotated[str | None, opt("Only this context (default: every context).")] = None,
    model: Annotated[
        Path | None, opt("Saved model folder: type its predicted doubles (singles stay measured).")
    ] = None,
    truth: Annotated[
        Path | None, opt("Simulation truth folder: accuracy and confusion matrix of the types.")
    ] = None,
    norman: Annotated[
        Path | None, opt("Norman et al.'s regr_fits_final.csv: compare our fits with theirs.")
    ] = None,
    method: Annotated[str, opt("Regression: theil_sen (Norman's) or ols.")] = "theil_sen",
    min_abs_z: Annotated[
        float,
        opt("Fit on readouts where A, B or AB moves by this robust z; 0: every moved readout."),
    ] = 5.0,
    seed: Annotated[int, opt("Seed of the Theil–Sen subsets.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Genetic interaction types of double perturbations (Norman et al. 2019): AB ≈ c1·A + c2·B."""
    from lpm.runs.interactions import run_interactions
    from lpm.tasks.interactions import InteractionThresholds

    status(f"typing genetic interactions on {store}")
    thresholds = InteractionThresholds(min_abs_z=min_abs_z if min_abs_z > 0 else None)
    result = run_interactions(
        store, out=out, context=context, model=model, truth=truth, norman=norman, method=method,
        thresholds=thresholds, seed=seed, overwrite=overwrite,
    )  # fmt: skip
    out_console.print(str(result))


def explain(
    store: Annotated[list[Path], opt("Store(s); several are joined.")],
    out: Annotated[Path, opt("Output folder (importance tables, figure, summary.json).")],
    model: Annotated[
        Path | None,
        opt(
            "Saved LPM to explain (it may have seen the held-out rows); default: fit lpm_fast on the rest."
        ),
    ] = None,
    ame: Annotated[
        bool, opt("Also train the attentive mixture of experts (Granger-causal loss).")
    ] = True,
    truth: Annotated[
        Path | None,
        opt("Simulation truth folder: sanity check on perturbations without downstream effect."),
    ] = None,
    context: Annotated[list[str] | None, opt("Keep only this context (repeatable).")] = None,
    test_fraction: Annotated[float, opt("Share of profiles held out and explained.")] = 0.2,
    param: Annotated[
        list[str] | None,
        opt("Model parameter lpm_fast.KEY=VALUE or lpm_ame.KEY=VALUE (repeatable)."),
    ] = None,
    seed: Annotated[int, opt("Seed of the held-out profiles and the models.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Which input (perturbation, context, readout, dose) drives the predictions: input swaps and a trained AME."""
    from lpm._utils.params import parse_model_params
    from lpm.runs._inputs import stores_data
    from lpm.runs.explain import explain_params, run_explain

    lpm_params, ame_params = explain_params(parse_model_params(param or []))
    status(f"explaining predictions on {', '.join(map(str, store))}")
    result = run_explain(
        stores_data(store), out=out, model=model, train_ame=ame, truth=truth,
        contexts=context or None, test_fraction=test_fraction, lpm_params=lpm_params,
        ame_params=ame_params, seed=seed, overwrite=overwrite,
    )  # fmt: skip
    out_console.print(str(result))


def register(app: typer.Typer) -> None:
    for command in (embed, moa, grn, interactions, explain):
        app.command()(command)

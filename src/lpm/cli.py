"""``lpm``: a thin command line over the Python API; each command calls one library function.

Errors lpm raises on purpose print as one line (``error: FILE: problem``) and exit with 2.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from lpm.errors import Interrupted, LpmError, LpmInputError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="lpm: in-silico perturbation biology."
)
console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True, highlight=False)
#: What Ctrl-C outside a run that keeps something prints (outputs are written whole or not at all).
INTERRUPTED = "interrupted; nothing written"


def _status(message: str) -> None:
    console.log(message)


@contextlib.contextmanager
def _progress_bar(total: int, label: str) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr advanced by each step message (e.g. one per model fit)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=total)

        def step(message: str) -> None:
            bar.update(task, advance=1, description=f"{label}: {message}")

        yield step


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Output folder (store/, truth/, config.json).")],
    genes: Annotated[int, typer.Option(help="Number of genes.")] = 2000,
    perturbations: Annotated[int, typer.Option(help="Number of perturbations.")] = 500,
    contexts: Annotated[int, typer.Option(help="Number of cell contexts.")] = 5,
    cells: Annotated[int, typer.Option(help="Cells sampled per condition.")] = 50,
    landmarks: Annotated[
        int | None, typer.Option(help="L1000-like landmark genes (default min(978, genes/2)).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same bytes.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Simulate a perturbation world with known ground truth (the embedded default data)."""
    from lpm.sim.simulate import simulate as run

    result = run(
        out,
        n_genes=genes,
        n_perturbations=perturbations,
        n_contexts=contexts,
        n_cells=cells,
        n_landmarks=landmarks,
        seed=seed,
        overwrite=overwrite,
        progress=_status,
    )
    out_console.print(str(result))


@app.command()
def ingest(
    sources: Annotated[
        list[Path],
        typer.Argument(help="Data files (or stores) to read; several make a joint store."),
    ],
    out: Annotated[Path, typer.Option(help="Store folder to write.")],
    dataset: Annotated[str | None, typer.Option(help="Dataset name used in context ids.")] = None,
    cell_line: Annotated[
        str | None, typer.Option(help="Cell line, where the file does not say.")
    ] = None,
    perturbation_type: Annotated[
        str | None,
        typer.Option(help="Type of bare perturbation names (CRISPRi, CRISPRa, compound, ...)."),
    ] = None,
    readout_type: Annotated[
        str | None, typer.Option(help="What values mean (delta, zscore, binary, ...).")
    ] = None,
    context_column: Annotated[
        str | None, typer.Option(help="Column holding the cell line / context.")
    ] = None,
    perturbation_column: Annotated[
        str | None, typer.Option(help="Column holding the perturbation.")
    ] = None,
    readout_column: Annotated[
        str | None, typer.Option(help="Column holding the readout (long tables).")
    ] = None,
    value_column: Annotated[
        str | None, typer.Option(help="Column holding the value (long tables).")
    ] = None,
    control_label: Annotated[str | None, typer.Option(help="Label of control cells/wells.")] = None,
    gene_info: Annotated[
        Path | None, typer.Option(help="Gene info TSV with aliases, to harmonise gene symbols.")
    ] = None,
    lincs_level: Annotated[
        int | None, typer.Option(help="LINCS level (3 or 4) when it cannot be inferred.")
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            help="Table layout: table (long or wide, default) or pairwise (gene × gene matrix of doubles)."
        ),
    ] = None,
    readout_name: Annotated[
        str | None, typer.Option(help="Readout name for a pairwise matrix (default fitness).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing store.")] = False,
) -> None:
    """Read real files in the format they come in (h5ad, GCT/GCTX, NPZ, CSV/TSV/Parquet) into a store."""
    from lpm.data.info import format_info, store_info
    from lpm.data.io.base import IngestOptions
    from lpm.data.io.ingest import ingest as run

    options = IngestOptions(
        dataset=dataset,
        cell_line=cell_line,
        perturbation_type=perturbation_type,
        readout_type=readout_type,
        context_column=context_column,
        perturbation_column=perturbation_column,
        readout_column=readout_column,
        value_column=value_column,
        control_label=control_label,
        gene_info=gene_info,
        lincs_level=lincs_level,
        layout=layout,
        readout_name=readout_name,
    )
    store = run(
        sources,
        out,
        options=options,
        overwrite=overwrite,
        progress=lambda s: _status(f"reading {s}"),
    )
    out_console.print(format_info(store_info(store)))


@app.command()
def info(store: Annotated[Path, typer.Argument(help="Store folder.")]) -> None:
    """Print contexts, perturbation counts by type, readouts, rows and value ranges."""
    from lpm.data.info import format_info, store_info
    from lpm.data.store import open_store

    out_console.print(format_info(store_info(open_store(store))))


_FEATURES_HELP = (
    "Featurised LPM: comma-separated sources, each a table file (symbol + numbers) or a keyword "
)
PerturbationFeatures = Annotated[
    str | None,
    typer.Option(
        help=_FEATURES_HELP
        + "(go, regulons: genes; morgan: compounds); lets the LPM predict perturbations it never saw."
    ),
]
ContextFeatures = Annotated[
    str | None,
    typer.Option(
        help="Featurised LPM: context feature table(s) (e.g. from `lpm features contexts`); lets "
        "the LPM predict a context it never saw."
    ),
]
ReadoutFeatures = Annotated[
    str | None, typer.Option(help=_FEATURES_HELP + "(go, regulons), for readouts.")
]
AnchorControls = Annotated[
    int | None,
    typer.Option(help="LPM: control profiles added to every batch, trained to show no effect."),
]


def _feature_params(
    perturbation: str | None, context: str | None, readout: str | None, anchor: int | None
) -> dict[str, object]:
    given = {
        "perturbation_features": perturbation,
        "context_features": context,
        "readout_features": readout,
        "anchor_controls": anchor,
    }
    return {k: v for k, v in given.items() if v is not None}


@app.command()
def train(
    store: Annotated[
        list[Path], typer.Option(help="Store(s) to train on; repeat for joint training.")
    ],
    model: Annotated[str, typer.Option(help="Registered model name (see `lpm models`).")],
    out: Annotated[Path, typer.Option(help="Folder to save the fitted model.")],
    param: Annotated[
        list[str] | None, typer.Option(help="Model parameter KEY=VALUE (repeatable).")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Train on this split's training part only.")
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the split (and of the model, if it takes one).")
    ] = 0,
    ensemble: Annotated[
        int | None, typer.Option(help="Train K seeds; predictions carry mean and spread (LPM).")
    ] = None,
    devices: Annotated[
        int | None, typer.Option(help="Processes/GPUs for data-parallel training (LPM).")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="Lightning strategy, e.g. ddp (LPM).")
    ] = None,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu or auto (LPM).")] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where checkpoints go; an interrupted run resumes from here (LPM; default OUT.checkpoints)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
    perturbation_features: PerturbationFeatures = None,
    context_features: ContextFeatures = None,
    readout_features: ReadoutFeatures = None,
    anchor_controls: AnchorControls = None,
) -> None:
    """Fit a registered model on one or several stores and save it."""
    from lpm._utils.params import parse_params
    from lpm.models.registry import get_model_class
    from lpm.runs.train import is_first_process, train_model

    params = parse_params(param or [], option="--param")
    if ensemble is not None:
        params["ensemble"] = ensemble
    featured = _feature_params(
        perturbation_features, context_features, readout_features, anchor_controls
    )
    unsupported = sorted(set(featured) - set(get_model_class(model).param_names()))
    if unsupported:
        raise LpmInputError(
            None,
            f"model {model!r} takes no {', '.join('--' + k.replace('_', '-') for k in unsupported)}",
        )
    params.update(featured)
    fitted = train_model(
        store,
        model=model,
        out=out,
        params=params,
        split=split,
        seed=seed,
        overwrite=overwrite,
        devices=devices,
        strategy=strategy,
        accelerator=accelerator,
        checkpoint_dir=checkpoint_dir,
        progress=_status,
    )
    if is_first_process():  # the other processes of a data-parallel run save nothing
        out_console.print(f"saved {fitted!r} to {out}")


@app.command()
def predict(
    model: Annotated[Path, typer.Option(help="Saved model folder.")],
    out: Annotated[Path, typer.Option(help="Output .parquet (long rows) or .h5ad (profiles).")],
    rows: Annotated[
        Path | None,
        typer.Option(help="Rows to predict (Parquet/CSV with context, perturbation, readout)."),
    ] = None,
    store: Annotated[
        Path | None, typer.Option(help="Predict the rows of this store (or of its split part).")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="With --store: predict this split's part.")
    ] = None,
    part: Annotated[str, typer.Option(help="With --split: train, val or test.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Predict values for rows; symbols the model never saw are an error, never 'no effect'."""
    from lpm.runs.predict import predict_to_file

    result = predict_to_file(
        model, out=out, rows=rows, store=store, split=split, part=part, seed=seed,
        overwrite=overwrite,
    )  # fmt: skip
    out_console.print(f"wrote {result.height:,} predictions to {out}")


@app.command()
def evaluate(
    predictions: Annotated[
        Path,
        typer.Argument(help="Parquet from `lpm predict` holding value (truth) and prediction."),
    ],
    store: Annotated[
        Path,
        typer.Option(
            help="Store the model was trained on (its other rows give the mean perturbed profile)."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Folder for per-condition and summary CSVs.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Score predictions on the evaluation panel, with bootstrap intervals."""
    import polars as pl

    from lpm.runs.evaluate import evaluate_file

    summary = evaluate_file(
        predictions, store=store, out=out, seed=seed, overwrite=overwrite
    ).filter(pl.col("n") > 0)
    with pl.Config(
        tbl_rows=-1,
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_formatting="ASCII_MARKDOWN",
    ):
        out_console.print(str(summary))


@app.command()
def benchmark(
    store: Annotated[list[Path], typer.Option(help="Store(s); several are joined.")],
    split: Annotated[
        str,
        typer.Option(
            help="Split kind: random, unseen_pair, unseen_perturbation, unseen_context, combination, unseen_dose."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder (results.md, results.csv, figure).")],
    models: Annotated[
        str,
        typer.Option(
            help="Comma-separated model names; 'all' is every model that runs without user inputs."
        ),
    ] = "no_change,context_mean,perturbation_mean,additive,linear",
    seeds: Annotated[int, typer.Option(help="Number of seeds (0..N-1), 1 to 1000.")] = 3,
    param: Annotated[
        list[str] | None, typer.Option(help="Model parameter MODEL.KEY=VALUE (repeatable).")
    ] = None,
    split_param: Annotated[
        list[str] | None, typer.Option(help="Split parameter KEY=VALUE (repeatable).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples per metric.")] = 1000,
    extra_store: Annotated[
        list[Path] | None,
        typer.Option(
            help="Store(s) added to every training set (joint training); scoring stays on --store's split."
        ),
    ] = None,
    perturbation_features: PerturbationFeatures = None,
    context_features: ContextFeatures = None,
    readout_features: ReadoutFeatures = None,
    anchor_controls: AnchorControls = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Run models by name on a seeded split and write a report with each model's ratio to the best baseline.

    ``NAME@LABEL`` runs a variant of model NAME with NAME's parameters plus its own
    (``--param lpm_fast@anchored.anchor_controls=8``)."""
    from lpm._utils.params import parse_model_params, parse_params
    from lpm.evaluation.benchmark import check_seed_count
    from lpm.models.registry import expand_model_names, get_model_class
    from lpm.runs.benchmark import benchmark_to_dir

    check_seed_count(seeds)
    model_list = expand_model_names([m.strip() for m in models.split(",") if m.strip()])
    model_params = parse_model_params(param or [])
    featured = _feature_params(
        perturbation_features, context_features, readout_features, anchor_controls
    )
    if featured:  # the feature flags go to every model that takes them (the LPMs)
        takers = [
            m
            for m in model_list
            if set(featured) <= set(get_model_class(m.split("@")[0]).param_names())
        ]
        if not takers:
            raise LpmInputError(
                None, "no model of --models takes the feature options (use lpm or lpm_fast)"
            )
        for m in takers:
            model_params.setdefault(m.split("@")[0], {}).update(featured)
    with _progress_bar(seeds * len(model_list), "benchmark") as step:
        path = benchmark_to_dir(
            store,
            split=split,
            models=model_list,
            seeds=list(range(seeds)),
            model_params=model_params,
            split_params=parse_params(split_param or [], option="--split-param"),
            out=out,
            title=title,
            n_boot=n_boot,
            command=sys.argv,
            progress=step,
            extra_stores=extra_store or [],
            overwrite=overwrite,
        )
    out_console.print(f"wrote {path}")


@app.command()
def embed(
    model: Annotated[Path, typer.Option(help="Saved LPM folder (lpm or lpm_fast).")],
    out: Annotated[
        Path,
        typer.Option(
            help="Perturbation embeddings F.h5ad; F.contexts.h5ad and F.readouts.h5ad go beside it."
        ),
    ],
    figure: Annotated[
        Path | None,
        typer.Option(help="PNG of a 2-D layout (UMAP, else PCA + t-SNE) of the perturbations."),
    ] = None,
    member: Annotated[
        int, typer.Option(help="Ensemble member to read (members' spaces are not aligned).")
    ] = 0,
    annotations: Annotated[
        Path | None,
        typer.Option(
            help="TSV of name (compound or gene) and mechanism (or moa) columns, for obs.mechanism."
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Simulation truth folder: label compounds and knock-downs by target."),
    ] = None,
    store: Annotated[
        list[Path] | None,
        typer.Option(
            help="Store(s) the model trained on: adds contexts and doses measured per perturbation."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the layout.")] = 0,
    layout: Annotated[
        str, typer.Option(help="Layout: auto (UMAP if umap-learn is installed), umap or tsne.")
    ] = "auto",
    overwrite: Annotated[
        bool, typer.Option(help="Replace existing output files (the three h5ad and the figure).")
    ] = False,
) -> None:
    """Write a trained LPM's learned embeddings as AnnData (h5ad), with an optional UMAP figure."""
    from lpm.data.store import read_stores
    from lpm.runs.embed import write_embeddings

    result = write_embeddings(
        model,
        out,
        member=member,
        data=read_stores(store) if store else None,
        annotations=annotations,
        truth=truth,
        figure=figure,
        seed=seed,
        method=layout,
        overwrite=overwrite,
    )
    out_console.print(
        f"wrote {result.n_perturbations:,} perturbation, {result.n_contexts:,} context and "
        f"{result.n_readouts:,} readout embeddings (dim {result.dim}, member {result.member} of "
        f"{result.n_ensemble}) to {result.perturbations}, {result.contexts}, {result.readouts}"
    )
    if result.figure is not None:
        out_console.print(f"figure ({result.layout}): {result.figure}")


@app.command()
def moa(
    store: Annotated[
        list[Path], typer.Option(help="Store(s) with the measured profiles; several are joined.")
    ],
    out: Annotated[
        Path, typer.Option(help="Output folder (ranking, scores, per-compound scores, figure).")
    ],
    model: Annotated[
        Path | None,
        typer.Option(
            help="Saved LPM folder; without it only the measured-profile baseline is ranked."
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            help="Shared context of the predicted profiles (default: the one with most compounds)."
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Simulation truth folder: score the compounds' true targets."),
    ] = None,
    compounds: Annotated[
        Path | None,
        typer.Option(
            help="Compound annotation folder (Repurposing Hub + DrugCentral), e.g. shared/data/compounds."
        ),
    ] = None,
    gene_info: Annotated[
        Path | None, typer.Option(help="Gene-info table mapping annotated targets to symbols.")
    ] = None,
    k: Annotated[int, typer.Option(help="Cut-off of recall@k.")] = 10,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Rank genetic perturbations and compounds for every compound by learned and measured similarity, and score it."""
    from lpm.data.store import read_stores
    from lpm.runs.moa import run_moa

    _status(f"ranking mechanisms on {', '.join(map(str, store))}")
    data = store[0] if len(store) == 1 else read_stores(store)
    result = run_moa(
        data,
        out=out,
        model=model,
        context=context,
        truth=truth,
        compounds_folder=compounds,
        gene_info=gene_info,
        k=k,
        overwrite=overwrite,
    )
    out_console.print(str(result))
    out_console.print(
        f"wrote {result.ranking}, {out / 'moa_scores.csv'}"
        + (f", {result.figure}" if result.figure else "")
    )


@app.command()
def grn(
    store: Annotated[
        list[Path], typer.Option(help="Store(s) with genetic perturbations; several are joined.")
    ],
    out: Annotated[
        Path, typer.Option(help="Output folder (edges CSV/GraphML, module figure, scores).")
    ],
    method: Annotated[
        str,
        typer.Option(
            help="knockdown (measured effects), embedding, imputed (LPM-completed matrix) or all."
        ),
    ] = "knockdown",
    model: Annotated[
        Path | None, typer.Option(help="Saved LPM folder (needed by embedding and imputed).")
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            help="Context of the knock-down effects / imputed matrix (default: all / the widest)."
        ),
    ] = None,
    reference: Annotated[
        list[Path] | None,
        typer.Option(
            help="Reference network(s) to score against (ChIP-seq, regulon file, or a simulation truth folder)."
        ),
    ] = None,
    gene_info: Annotated[
        Path | None, typer.Option(help="Gene-info table harmonising reference symbols.")
    ] = None,
    top: Annotated[
        int, typer.Option(help="Edges exported, drawn and rewired for the random baseline.")
    ] = 1000,
    n_random: Annotated[int, typer.Option(help="Degree-preserving random networks averaged.")] = 3,
    min_abs_z: Annotated[
        float | None, typer.Option(help="Keep knock-down/imputed edges with |z| at least this.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random rewiring and the layout.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Infer gene→gene networks from knock-downs, embeddings or an LPM-imputed matrix, and score them."""
    from lpm.data.store import read_stores
    from lpm.runs.grn import run_grn

    _status(f"inferring gene networks ({method}) on {', '.join(map(str, store))}")
    data = store[0] if len(store) == 1 else read_stores(store)
    result = run_grn(
        data,
        out=out,
        method=method,  # type: ignore[arg-type]
        model=model,
        context=context,
        reference=list(reference) if reference else None,
        gene_info=gene_info,
        seed=seed,
        top=top,
        n_random=n_random,
        min_abs_z=min_abs_z,
        overwrite=overwrite,
    )
    out_console.print(str(result))


@app.command()
def interactions(
    store: Annotated[
        Path, typer.Argument(help="Store with double perturbations and their singles.")
    ],
    out: Annotated[
        Path, typer.Option(help="Output folder (interactions.csv/.parquet, figure, summary.json).")
    ],
    context: Annotated[
        str | None, typer.Option(help="Only this context (default: every context).")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Saved model folder: type its predicted doubles (singles stay measured)."
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Simulation truth folder: accuracy and confusion matrix of the types."),
    ] = None,
    norman: Annotated[
        Path | None,
        typer.Option(help="Norman et al.'s regr_fits_final.csv: compare our fits with theirs."),
    ] = None,
    method: Annotated[str, typer.Option(help="Regression: theil_sen (Norman's) or ols.")] = (
        "theil_sen"
    ),
    min_abs_z: Annotated[
        float,
        typer.Option(
            help="Fit on readouts where A, B or AB moves by this robust z; 0: every moved readout."
        ),
    ] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the Theil–Sen subsets.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Genetic interaction types of double perturbations (Norman et al. 2019): AB ≈ c1·A + c2·B."""
    from lpm.runs.interactions import run_interactions
    from lpm.tasks.interactions import InteractionThresholds

    _status(f"typing genetic interactions on {store}")
    result = run_interactions(
        store,
        out=out,
        context=context,
        model=model,
        truth=truth,
        norman=norman,
        method=method,
        thresholds=InteractionThresholds(min_abs_z=min_abs_z if min_abs_z > 0 else None),
        seed=seed,
        overwrite=overwrite,
    )
    out_console.print(str(result))


@app.command()
def explain(
    store: Annotated[list[Path], typer.Option(help="Store(s); several are joined.")],
    out: Annotated[
        Path, typer.Option(help="Output folder (importance tables, figure, summary.json).")
    ],
    model: Annotated[
        Path | None,
        typer.Option(
            help="Saved LPM to explain (it may have seen the held-out rows); default: fit lpm_fast on the rest."
        ),
    ] = None,
    ame: Annotated[
        bool,
        typer.Option(help="Also train the attentive mixture of experts (Granger-causal loss)."),
    ] = True,
    truth: Annotated[
        Path | None,
        typer.Option(
            help="Simulation truth folder: sanity check on perturbations without downstream effect."
        ),
    ] = None,
    context: Annotated[
        list[str] | None, typer.Option(help="Keep only this context (repeatable).")
    ] = None,
    test_fraction: Annotated[
        float, typer.Option(help="Share of profiles held out and explained.")
    ] = 0.2,
    param: Annotated[
        list[str] | None,
        typer.Option(help="Model parameter lpm_fast.KEY=VALUE or lpm_ame.KEY=VALUE (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the held-out profiles and the models.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Which input (perturbation, context, readout, dose) drives the predictions: input swaps and a trained AME."""
    from lpm._utils.params import parse_model_params
    from lpm.data.store import read_stores
    from lpm.errors import LpmInputError
    from lpm.runs.explain import run_explain

    params = parse_model_params(param or [])
    unknown = sorted(set(params) - {"lpm_fast", "lpm_ame"})
    if unknown:
        raise LpmInputError(
            None,
            f"--param names model(s) {', '.join(unknown)}; explain takes lpm_fast.* and lpm_ame.*",
        )
    _status(f"explaining predictions on {', '.join(map(str, store))}")
    data = store[0] if len(store) == 1 else read_stores(store)
    result = run_explain(
        data,
        out=out,
        model=model,
        train_ame=ame,
        truth=truth,
        contexts=context or None,
        test_fraction=test_fraction,
        lpm_params=params.get("lpm_fast"),
        ame_params=params.get("lpm_ame"),
        seed=seed,
        overwrite=overwrite,
    )
    out_console.print(str(result))


@app.command("prior-embedding")
def prior_embedding(
    gene2go: Annotated[Path, typer.Option(help="Gene→GO annotation TSV (columns symbol, go_id).")],
    out: Annotated[Path, typer.Option(help="Output Parquet: symbol + embedding columns.")],
    dims: Annotated[int, typer.Option(help="Embedding dimensions.")] = 32,
    seed: Annotated[int, typer.Option(help="Random seed of the SVD.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Gene embeddings from GO annotations, e.g. for `--param linear.perturbation_embeddings=FILE`."""
    from lpm.runs.features import prior_embedding_to_file

    table = prior_embedding_to_file(gene2go, out, dims=dims, seed=seed, overwrite=overwrite)
    out_console.print(f"wrote {table.height:,} gene embeddings ({table.width - 1} dims) to {out}")


features_app = typer.Typer(
    help="Feature tables for the featurised LPM (--perturbation-features, --context-features).",
    no_args_is_help=True,
)
app.add_typer(features_app, name="features")


@features_app.command("genes")
def features_genes(
    out: Annotated[Path, typer.Option(help="Output Parquet: symbol + feature columns.")],
    source: Annotated[
        str, typer.Option(help="go (GO propagated, SVD) or regulons (TF graph).")
    ] = "go",
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Gene features from the priors folder ($LPM_PRIORS or shared/data beside the work)."""
    from lpm.runs.features import gene_features_to_file

    table = gene_features_to_file(out, source=source, overwrite=overwrite)
    out_console.print(f"wrote {table.height:,} genes × {table.width - 1} features to {out}")


@features_app.command("compounds")
def features_compounds(
    store: Annotated[Path, typer.Option(help="Store whose compounds are featurised.")],
    out: Annotated[Path, typer.Option(help="Output Parquet: symbol + Morgan bits.")],
    compounds: Annotated[
        Path | None, typer.Option(help="Compound structure folder (default: priors/compounds).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Morgan fingerprints (RDKit) of the store's compounds whose SMILES resolve by name."""
    from lpm.runs.features import compound_features_to_file

    table, n = compound_features_to_file(store, out, compounds=compounds, overwrite=overwrite)
    out_console.print(f"wrote {table.height} of {n} compounds (resolved SMILES) to {out}")


@features_app.command("contexts")
def features_contexts(
    out: Annotated[Path, typer.Option(help="Output Parquet: context + SubTab features.")],
    h5ad: Annotated[
        Path | None,
        typer.Option(
            help="Single cells with control cells (obs: perturbation, cell_type, dataset)."
        ),
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Simulation truth folder (baseline expression per context).")
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(help="Store: its measured-readout panel per context (an expression proxy)."),
    ] = None,
    dims: Annotated[int, typer.Option(help="Feature dimensions.")] = 16,
    epochs: Annotated[int, typer.Option(help="SubTab training epochs.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Context features by a SubTab encoder (reconstruct the profile from feature subsets)."""
    from lpm.runs.features import context_features_to_file

    table = context_features_to_file(
        out,
        h5ad=h5ad,
        truth=truth,
        store=store,
        dims=dims,
        epochs=epochs,
        seed=seed,
        overwrite=overwrite,
    )
    out_console.print(f"wrote {table.height} contexts × {dims} features to {out}")


design_app = typer.Typer(
    help="Which experiments to run next: one-shot selection and an active-learning loop.",
    no_args_is_help=True,
)
app.add_typer(design_app, name="design")


@design_app.command("select")
def design_select(
    out: Annotated[Path, typer.Option(help="Output .csv or .parquet: the ranked selection.")],
    k: Annotated[int, typer.Option(help="How many to choose.")],
    method: Annotated[
        str, typer.Option(help="coverage (lazy greedy, L hops) or spectral (k-centre).")
    ] = "coverage",
    store: Annotated[
        Path | None, typer.Option(help="Choose among this store's single genetic perturbations.")
    ] = None,
    candidates: Annotated[
        Path | None,
        typer.Option(help="Choose among these genes (one per line, or a gene column)."),
    ] = None,
    selected: Annotated[
        Path | None,
        typer.Option(help="Already measured (one per line): counted as covered, never chosen."),
    ] = None,
    graph: Annotated[str, typer.Option(help="Gene graph: go or an edge table file.")] = "go",
    hops: Annotated[
        int, typer.Option(help="L: message-passing layers of the graph model (coverage).")
    ] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the tie order (and the eigensolver).")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Choose k perturbations before any model is trained, from the gene graph alone."""
    import time

    from lpm.runs.design import select_to_file

    start = time.perf_counter()
    table = select_to_file(
        out,
        k=k,
        method=method,
        graph=graph,
        hops=hops,
        seed=seed,
        store=store,
        candidates=candidates,
        selected=selected,
        overwrite=overwrite,
    )
    seconds = time.perf_counter() - start
    tail = (
        f", {table['covered_fraction'][-1]:.1%} of candidates within {hops} hops"
        if "covered_fraction" in table.columns
        else ""
    )
    out_console.print(f"selected {table.height} by {method} in {seconds:.1f} s{tail}; wrote {out}")


_LoopOut = Annotated[
    Path, typer.Option(help="Output folder (rounds.csv, acquired.csv, summary.csv, figure).")
]
_Strategies = Annotated[
    str,
    typer.Option(help="Comma-separated: random, coverage, spectral, variance, coreset, kernel."),
]
_LoopModel = Annotated[
    str, typer.Option(help="Registered model refitted each round (see `lpm models`).")
]
_Budget = Annotated[
    int | None, typer.Option(help="Most perturbations ever labelled (default: no cap).")
]
_First = Annotated[
    str, typer.Option(help="Round 0 of model strategies: random, coverage or spectral.")
]
_Strength = Annotated[
    Path | None,
    typer.Option(help="Per-perturbation energy (table or Replogle NPZ); default from data."),
]
_StrengthGenes = Annotated[
    Path | None,
    typer.Option(help="Gene-info table: map --strength targets to symbols as ingest did."),
]


@design_app.command("loop")
def design_loop(
    store: Annotated[Path, typer.Option(help="Store: the pool, and the oracle's measurements.")],
    out: _LoopOut,
    strategies: _Strategies = "random,coverage,variance",
    model: _LoopModel = "gene_graph",
    param: Annotated[
        list[str] | None, typer.Option(help="Model parameter KEY=VALUE (repeatable).")
    ] = None,
    initial: Annotated[int, typer.Option(help="Perturbations labelled in round 0.")] = 100,
    batch: Annotated[int, typer.Option(help="Perturbations acquired per round.")] = 100,
    rounds: Annotated[int, typer.Option(help="Acquisition rounds after round 0.")] = 5,
    budget: _Budget = None,
    test_fraction: Annotated[
        float, typer.Option(help="Held-out share of perturbations, fixed for the seed.")
    ] = 0.2,
    first: _First = "random",
    graph: Annotated[
        str, typer.Option(help="Gene graph (go or an edge table); 'none' for no graph.")
    ] = "go",
    hops: Annotated[
        int | None, typer.Option(help="L for coverage (default: the model's layers, else 2).")
    ] = None,
    prior: Annotated[
        str, typer.Option(help="Kernel strategy priors: graph, go, regulons or files (comma).")
    ] = "graph",
    ensemble: Annotated[int, typer.Option(help="Bagged members for the variance strategy.")] = 3,
    strength: _Strength = None,
    gene_info: _StrengthGenes = None,
    top_fraction: Annotated[
        float, typer.Option(help="Share of strongest perturbations tracked per round.")
    ] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the split, the strategies and the model.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Active learning: choose, reveal, refit and score each round, for every strategy."""
    from lpm._utils.params import parse_params
    from lpm.design.loop import LoopConfig
    from lpm.runs.design import design_loop_to_dir

    config = LoopConfig(
        model=model,
        model_params=parse_params(param or [], option="--param"),
        initial=initial,
        batch=batch,
        rounds=rounds,
        budget=budget,
        test_fraction=test_fraction,
        seed=seed,
        graph=None if graph == "none" else graph,
        hops=hops,
        prior=tuple(p.strip() for p in prior.split(",") if p.strip()),
        ensemble=ensemble,
        first=first,
        top_fraction=top_fraction,
    )
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    path = design_loop_to_dir(
        store,
        out,
        strategies=names,
        config=config,
        strength=strength,
        gene_info=gene_info,
        overwrite=overwrite,
        command=sys.argv,
        progress=_status,
    )
    out_console.print(f"wrote {path}")


@app.command()
def models() -> None:
    """List registered models: what each does, can do, and its parameters' defaults."""
    from lpm.models.registry import describe_model, list_models

    for name in list_models():
        d = describe_model(name)
        caps = d["capabilities"]
        can = [c.replace("_", " ") for c, on in caps.items() if on is True]
        if caps["needs_inputs"]:
            can.append(f"needs {', '.join(caps['needs_inputs'])}")
        kind = "baseline" if d["baseline"] else "model"
        out_console.print(f"[bold]{name}[/] ({kind}): {escape(d['summary'])}")
        out_console.print(f"  can: {', '.join(can) or 'fit and predict only'}")
        for key, value in d["params"].items():
            out_console.print(
                f"  {key} = {escape(json.dumps(value))}  ({escape(d['accepts'][key])})"
            )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("demo_out"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Simulate, benchmark every registered model on two splits and write a short report."""
    from lpm.runs.demo import run_demo

    report = run_demo(out, seed=seed, progress=_status, overwrite=overwrite)
    out_console.print(f"report: {report}")


def _interrupted(exc: BaseException) -> bool:
    """Whether an exit came from Ctrl-C (typer and click turn it into an exit of their own)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def main() -> None:
    """Console entry point: lpm's own errors print as one line and exit 2; Ctrl-C prints what
    was kept and exits 130; unexpected errors exit 1 with a one-line summary (set LPM_DEBUG=1
    for the traceback)."""
    import os

    try:
        app()
    except Interrupted as exc:
        console.print(escape(str(exc)), highlight=False, soft_wrap=True)
        sys.exit(130)
    except LpmError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print(INTERRUPTED, highlight=False, soft_wrap=True)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code not in (0, None) and _interrupted(exc):
            console.print(INTERRUPTED, highlight=False, soft_wrap=True)
            sys.exit(130)
        raise
    except Exception as exc:
        if os.environ.get("LPM_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(first)} (LPM_DEBUG=1 shows the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Commands that fit, predict, score and compare models: train, predict, evaluate, benchmark,
models, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lpm.cli._shared import (
    AnchorControls,
    ContextFeatures,
    ModelParams,
    Overwrite,
    Params,
    PerturbationFeatures,
    ReadoutFeatures,
    features,
    opt,
    out_console,
    progress_bar,
    status,
)


def train(
    store: Annotated[list[Path], opt("Store(s) to train on; repeat for joint training.")],
    model: Annotated[str, opt("Registered model name (see `lpm models`).")],
    out: Annotated[Path, opt("Folder to save the fitted model.")],
    param: Params = None,
    split: Annotated[str | None, opt("Train on this split's training part only.")] = None,
    seed: Annotated[int, opt("Seed of the split (and of the model, if it takes one).")] = 0,
    ensemble: Annotated[
        int | None, opt("Train K seeds; predictions carry mean and spread (LPM).")
    ] = None,
    devices: Annotated[int | None, opt("Processes/GPUs for data-parallel training (LPM).")] = None,
    strategy: Annotated[str | None, opt("Lightning strategy, e.g. ddp (LPM).")] = None,
    accelerator: Annotated[str | None, opt("cpu, gpu or auto (LPM).")] = None,
    checkpoint_dir: Annotated[
        Path | None,
        opt(
            "Where checkpoints go; an interrupted run resumes from here (LPM; default OUT.checkpoints)."
        ),
    ] = None,
    overwrite: Overwrite = False,
    perturbation_features: PerturbationFeatures = None,
    context_features: ContextFeatures = None,
    readout_features: ReadoutFeatures = None,
    anchor_controls: AnchorControls = None,
) -> None:
    """Fit a registered model on one or several stores and save it."""
    from lpm._utils.params import parse_params
    from lpm.runs.train import is_first_process, train_model

    params = parse_params(param or [], option="--param")
    if ensemble is not None:
        params["ensemble"] = ensemble
    fitted = train_model(
        store, model=model, out=out, params=params, split=split, seed=seed, overwrite=overwrite,
        devices=devices, strategy=strategy, accelerator=accelerator,
        checkpoint_dir=checkpoint_dir, progress=status,
        features=features(perturbation_features, context_features, readout_features, anchor_controls),
    )  # fmt: skip
    if is_first_process():  # the other processes of a data-parallel run save nothing
        out_console.print(f"saved {fitted!r} to {out}")


def predict(
    model: Annotated[Path, opt("Saved model folder.")],
    out: Annotated[Path, opt("Output .parquet (long rows) or .h5ad (profiles).")],
    rows: Annotated[
        Path | None, opt("Rows to predict (Parquet/CSV with context, perturbation, readout).")
    ] = None,
    store: Annotated[
        Path | None, opt("Predict the rows of this store (or of its split part).")
    ] = None,
    split: Annotated[str | None, opt("With --store: predict this split's part.")] = None,
    part: Annotated[str, opt("With --split: train, val or test.")] = "test",
    seed: Annotated[int, opt("Seed of the split.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Predict values for rows; symbols the model never saw are an error, never 'no effect'."""
    from lpm.runs.predict import predict_to_file

    result = predict_to_file(
        model, out=out, rows=rows, store=store, split=split, part=part, seed=seed,
        overwrite=overwrite,
    )  # fmt: skip
    out_console.print(f"wrote {result.height:,} predictions to {out}")


def evaluate(
    predictions: Annotated[
        Path, typer.Argument(help="Parquet from `lpm predict` with value (truth) and prediction.")
    ],
    store: Annotated[
        Path,
        opt("Store the model was trained on (its other rows give the mean perturbed profile)."),
    ],
    out: Annotated[Path | None, opt("Folder for per-condition and summary CSVs.")] = None,
    seed: Annotated[int, opt("Bootstrap seed.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Score predictions on the evaluation panel, with bootstrap intervals."""
    import polars as pl

    from lpm.runs.evaluate import evaluate_file

    summary = evaluate_file(predictions, store=store, out=out, seed=seed, overwrite=overwrite)
    table = pl.Config(
        tbl_rows=-1, tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
        tbl_formatting="ASCII_MARKDOWN",
    )  # fmt: skip
    with table:
        out_console.print(str(summary.filter(pl.col("n") > 0)))


def benchmark(
    store: Annotated[list[Path], opt("Store(s); several are joined.")],
    split: Annotated[
        str,
        opt(
            "Split kind: random, unseen_pair, unseen_perturbation, unseen_context, combination, unseen_dose."
        ),
    ],
    out: Annotated[Path, opt("Output folder (results.md, results.csv, figure).")],
    models: Annotated[
        str, opt("Comma-separated model names; 'all' is every model that runs without user inputs.")
    ] = "no_change,context_mean,perturbation_mean,additive,linear",
    seeds: Annotated[int, opt("Number of seeds (0..N-1), 1 to 1000.")] = 3,
    param: ModelParams = None,
    split_param: Annotated[list[str] | None, opt("Split parameter KEY=VALUE (repeatable).")] = None,
    title: Annotated[str | None, opt("Report title.")] = None,
    n_boot: Annotated[int, opt("Bootstrap resamples per metric.")] = 1000,
    extra_store: Annotated[
        list[Path] | None,
        opt(
            "Store(s) added to every training set (joint training); scoring stays on --store's split."
        ),
    ] = None,
    perturbation_features: PerturbationFeatures = None,
    context_features: ContextFeatures = None,
    readout_features: ReadoutFeatures = None,
    anchor_controls: AnchorControls = None,
    checkpoints: Annotated[
        bool,
        typer.Option(
            "--checkpoints/--no-checkpoints",
            help="Keep each neural fit's best weights as one file in OUT/checkpoints (default); "
            "--no-checkpoints writes none.",
        ),
    ] = True,
    overwrite: Overwrite = False,
) -> None:
    """Run models by name on a seeded split and write a report with each model's verdict against the best baseline.

    ``NAME@LABEL`` runs a variant of model NAME with NAME's parameters plus its own
    (``--param lpm_fast@anchored.anchor_controls=8``)."""
    from lpm._utils.params import parse_model_params, parse_params
    from lpm.evaluation.benchmark import check_seed_count
    from lpm.models.registry import expand_model_names
    from lpm.runs.benchmark import benchmark_to_dir, not_applicable_notes

    check_seed_count(seeds)
    model_list = expand_model_names([m.strip() for m in models.split(",") if m.strip()])
    with progress_bar(seeds * len(model_list), "benchmark") as step:
        path = benchmark_to_dir(
            store, split=split, models=model_list, seeds=list(range(seeds)),
            model_params=parse_model_params(param or []),
            split_params=parse_params(split_param or [], option="--split-param"),
            out=out, title=title, n_boot=n_boot, command=sys.argv, progress=step,
            extra_stores=extra_store or [], overwrite=overwrite, checkpoints=checkpoints,
            features=features(perturbation_features, context_features, readout_features, anchor_controls),
        )  # fmt: skip
    for note in not_applicable_notes(path.parent):
        status(note)
    out_console.print(f"wrote {path}")


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


def demo(
    out: Annotated[Path, opt("Output folder.")] = Path("demo_out"),
    seed: Annotated[int, opt("Random seed.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Simulate, benchmark every registered model on two splits and write a short report."""
    from lpm.runs.demo import run_demo

    report = run_demo(out, seed=seed, progress=status, overwrite=overwrite)
    out_console.print(f"report: {report}")


def register(app: typer.Typer) -> None:
    for command in (train, predict, evaluate, benchmark, models, demo):
        app.command()(command)

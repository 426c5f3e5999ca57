"""``lpm design``: which experiments to run next (one-shot selection, an active-learning loop)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lpm.cli._shared import Overwrite, Params, opt, out_console, status


def select(
    out: Annotated[Path, opt("Output .csv or .parquet: the ranked selection.")],
    k: Annotated[int, opt("How many to choose.")],
    method: Annotated[
        str, opt("coverage (lazy greedy, L hops) or spectral (k-centre).")
    ] = "coverage",
    store: Annotated[
        Path | None, opt("Choose among this store's single genetic perturbations.")
    ] = None,
    candidates: Annotated[
        Path | None, opt("Choose among these genes (one per line, or a gene column).")
    ] = None,
    selected: Annotated[
        Path | None, opt("Already measured (one per line): counted as covered, never chosen.")
    ] = None,
    graph: Annotated[str, opt("Gene graph: go or an edge table file.")] = "go",
    hops: Annotated[int, opt("L: message-passing layers of the graph model (coverage).")] = 2,
    seed: Annotated[int, opt("Seed of the tie order (and the eigensolver).")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Choose k perturbations before any model is trained, from the gene graph alone."""
    import time

    from lpm.runs.design import select_to_file

    start = time.perf_counter()
    table = select_to_file(
        out, k=k, method=method, graph=graph, hops=hops, seed=seed, store=store,
        candidates=candidates, selected=selected, overwrite=overwrite,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    covered = table["covered_fraction"][-1] if "covered_fraction" in table.columns else None
    tail = f", {covered:.1%} of candidates within {hops} hops" if covered is not None else ""
    out_console.print(f"selected {table.height} by {method} in {seconds:.1f} s{tail}; wrote {out}")


def loop(
    store: Annotated[Path, opt("Store: the pool, and the oracle's measurements.")],
    out: Annotated[Path, opt("Output folder (rounds.csv, acquired.csv, summary.csv, figure).")],
    strategies: Annotated[
        str, opt("Comma-separated: random, coverage, spectral, variance, coreset, kernel.")
    ] = "random,coverage,variance",
    model: Annotated[
        str, opt("Registered model refitted each round (see `lpm models`).")
    ] = "gene_graph",
    param: Params = None,
    initial: Annotated[int, opt("Perturbations labelled in round 0.")] = 100,
    batch: Annotated[int, opt("Perturbations acquired per round.")] = 100,
    rounds: Annotated[int, opt("Acquisition rounds after round 0.")] = 5,
    budget: Annotated[
        int | None, opt("Most perturbations ever labelled (default: no cap).")
    ] = None,
    test_fraction: Annotated[
        float, opt("Held-out share of perturbations, fixed for the seed.")
    ] = 0.2,
    first: Annotated[
        str, opt("Round 0 of model strategies: random, coverage or spectral.")
    ] = "random",
    graph: Annotated[str, opt("Gene graph (go or an edge table); 'none' for no graph.")] = "go",
    hops: Annotated[
        int | None, opt("L for coverage (default: the model's layers, else 2).")
    ] = None,
    prior: Annotated[
        str, opt("Kernel strategy priors: graph, go, regulons or files (comma).")
    ] = "graph",
    ensemble: Annotated[int, opt("Bagged members for the variance strategy.")] = 3,
    strength: Annotated[
        Path | None, opt("Per-perturbation energy (table or Replogle NPZ); default from data.")
    ] = None,
    gene_info: Annotated[
        Path | None, opt("Gene-info table: map --strength targets to symbols as ingest did.")
    ] = None,
    top_fraction: Annotated[
        float, opt("Share of strongest perturbations tracked per round.")
    ] = 0.05,
    seed: Annotated[int, opt("Seed of the split, the strategies and the model.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Active learning: choose, reveal, refit and score each round, for every strategy."""
    from lpm._utils.params import parse_params
    from lpm.design.loop import LoopConfig
    from lpm.runs.design import design_loop_to_dir

    config = LoopConfig(
        model=model, model_params=parse_params(param or [], option="--param"), initial=initial,
        batch=batch, rounds=rounds, budget=budget, test_fraction=test_fraction, seed=seed,
        graph=None if graph == "none" else graph, hops=hops,
        prior=tuple(p.strip() for p in prior.split(",") if p.strip()), ensemble=ensemble,
        first=first, top_fraction=top_fraction,
    )  # fmt: skip
    path = design_loop_to_dir(
        store, out, strategies=[s.strip() for s in strategies.split(",") if s.strip()],
        config=config, strength=strength, gene_info=gene_info, overwrite=overwrite,
        command=sys.argv, progress=status,
    )  # fmt: skip
    out_console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    design = typer.Typer(
        help="Which experiments to run next: one-shot selection and an active-learning loop.",
        no_args_is_help=True,
    )
    design.command("select")(select)
    design.command("loop")(loop)
    app.add_typer(design, name="design")

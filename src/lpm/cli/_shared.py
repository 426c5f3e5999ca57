"""What every command module shares: the consoles, progress messages, and option types that
several commands take the same way."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True, highlight=False)


def status(message: str) -> None:
    """A progress line on stderr (stdout holds only results)."""
    console.log(message)


@contextlib.contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[str], None]]:
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
        yield lambda message: bar.update(task, advance=1, description=f"{label}: {message}")


def opt(help_text: str) -> typer.models.OptionInfo:
    return typer.Option(help=help_text)


Overwrite = Annotated[
    bool, opt("Replace the output if it exists (written beside it, then swapped in).")
]
Seed = Annotated[int, opt("Random seed; the same seed gives the same numbers.")]
Stores = Annotated[list[Path], opt("Store(s); several are joined.")]
Params = Annotated[list[str] | None, opt("Model parameter KEY=VALUE (repeatable).")]
ModelParams = Annotated[list[str] | None, opt("Model parameter MODEL.KEY=VALUE (repeatable).")]
Truth = Annotated[Path | None, opt("Simulation truth folder: score against the known truth.")]
GeneInfo = Annotated[Path | None, opt("Gene-info table harmonising gene symbols (aliases).")]
Context = Annotated[str | None, opt("Only this context (default: every context).")]
OutFolder = Annotated[Path, opt("Output folder, written whole or not at all.")]
OutFile = Annotated[Path, opt("Output file (.parquet, .csv), written whole or not at all.")]

_FEATURES = (
    "Featurised LPM: comma-separated sources, each a table file (symbol + numbers) or a keyword "
)
PerturbationFeatures = Annotated[
    str | None,
    opt(_FEATURES + "(go, regulons: genes; morgan: compounds); predicts perturbations never seen."),
]
ContextFeatures = Annotated[
    str | None,
    opt(
        "Featurised LPM: context feature table(s) (`lpm features contexts`); predicts a new context."
    ),
]
ReadoutFeatures = Annotated[str | None, opt(_FEATURES + "(go, regulons), for readouts.")]
AnchorControls = Annotated[
    int | None, opt("LPM: control profiles added to every batch, trained to show no effect.")
]


def features(
    perturbation: str | None, context: str | None, readout: str | None, anchor: int | None
) -> dict[str, object]:
    """The featurised-LPM options by parameter name (None: not given)."""
    return {
        "perturbation_features": perturbation,
        "context_features": context,
        "readout_features": readout,
        "anchor_controls": anchor,
    }

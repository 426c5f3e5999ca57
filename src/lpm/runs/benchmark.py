"""``lpm benchmark`` as a library call: check the output, run the declared benchmark, write its
tables, report and figure into one folder, whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from lpm._utils.atomic import atomic_dir, check_output
from lpm.data.store import read_stores
from lpm.errors import LpmInputError
from lpm.evaluation.benchmark import (
    VARIANT_SEPARATOR,
    BenchmarkResult,
    BenchmarkSpec,
    run_benchmark,
    summarise,
)
from lpm.models.registry import get_model_class
from lpm.pl.benchmark import plot_benchmark_panel
from lpm.pl.save import save_png
from lpm.reports.benchmark import COMPARISONS, FIGURE, NOT_APPLICABLE, benchmark_markdown

#: The folder of a benchmark's kept checkpoints (one per Lightning-trained fit).
CHECKPOINTS = "checkpoints"


def with_features(
    models: Sequence[str],
    model_params: Mapping[str, Mapping[str, Any]],
    features: Mapping[str, Any] | None,
) -> dict[str, dict[str, Any]]:
    """Parameters per model with the featurised-LPM options (None = not given) added to every
    model of ``models`` that takes them; options that no model takes are refused."""
    out = {k: dict(v) for k, v in model_params.items()}
    given = {k: v for k, v in (features or {}).items() if v is not None}
    if not given:
        return out
    bases = {m.partition(VARIANT_SEPARATOR)[0] for m in models}
    takers = [b for b in sorted(bases) if set(given) <= set(get_model_class(b).param_names())]
    if not takers:
        raise LpmInputError(
            None, "no model of --models takes the feature options (use lpm or lpm_fast)"
        )
    for base in takers:
        out.setdefault(base, {}).update(given)
    return out


def benchmark_to_dir(
    stores: Sequence[str | Path],
    *,
    split: str,
    models: Sequence[str],
    seeds: Sequence[int],
    out: str | Path,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    split_params: Mapping[str, Any] | None = None,
    title: str | None = None,
    n_boot: int = 1000,
    command: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    extra_stores: Sequence[str | Path] = (),
    overwrite: bool = False,
    features: Mapping[str, Any] | None = None,
    checkpoints: bool = True,
) -> Path:
    """Run a benchmark and write its tables, Markdown report and figure into ``out``.

    ``out`` is checked before any work: an existing one is refused unless ``overwrite`` (then
    the new folder replaces it whole), and a file is never turned into a folder. The run is
    built in a folder beside ``out`` and swapped in at the end, so a failed run leaves nothing.
    ``checkpoints``: each Lightning-trained fit keeps the weights it ends with (its best epoch's)
    as one file, ``out/checkpoints/seed<s>/<model>/best.ckpt``; False: none is written.
    Nothing is written to the temporary folder. Models that are not applicable to the data
    are listed in ``not_applicable.csv`` and the report.
    """
    spec = BenchmarkSpec(
        split=split,
        models=tuple(models),
        seeds=tuple(seeds),
        model_params=with_features(models, model_params or {}, features),
        split_params=dict(split_params or {}),
        n_boot=n_boot,
        extra_stores=tuple(str(s) for s in extra_stores),
    )
    out = check_output(out, kind="folder", overwrite=overwrite)
    rows = read_stores(stores)
    extra = read_stores(extra_stores) if extra_stores else None
    with atomic_dir(out, overwrite=overwrite) as tmp:
        result = run_benchmark(
            rows, spec, progress=progress, extra_train=extra,
            checkpoint_dir=tmp / CHECKPOINTS if checkpoints else None,
        )  # fmt: skip
        summary = summarise(result)
        write_tables(result, tmp, command=command, summary=summary)
        markdown = benchmark_markdown(
            tmp,
            title=title or f"{split} on {', '.join(str(s) for s in stores)}",
            stores=[str(s) for s in stores],
        )
        (tmp / "results.md").write_text(markdown)
        panel = plot_benchmark_panel(summary, not_applicable=result.not_applicable)
        save_png(panel, tmp / FIGURE, dpi=110)
    return out / "results.md"


def write_tables(
    result: BenchmarkResult,
    folder: Path,
    *,
    command: Sequence[str] | None = None,
    summary: pl.DataFrame,
) -> Path:
    """The raw tables and the resolved spec into ``folder`` (a fresh one, e.g. a run's temporary
    folder); the report (Markdown, figure) is made from them by :mod:`lpm.reports`. ``summary``
    is :func:`lpm.evaluation.benchmark.summarise` of ``result`` (``results.csv``); the paired
    comparisons with the best baseline go to ``comparisons.csv`` and the models that were not
    applicable to the data (seed, model, stage, reason) to ``not_applicable.csv``."""
    result.scores.write_csv(folder / "scores_per_seed.csv")
    summary.write_csv(folder / "results.csv")
    result.coverage.write_csv(folder / "coverage.csv")
    result.timings.write_csv(folder / "timings.csv")
    result.comparisons.write_csv(folder / COMPARISONS)
    result.not_applicable.write_csv(folder / NOT_APPLICABLE)
    if result.per_context.height:
        result.per_context.write_csv(folder / "per_context.csv")
    kept = folder / CHECKPOINTS
    run = {
        "spec": json.loads(result.spec.to_json()),
        "command": list(command) if command else None,
        "checkpoints": CHECKPOINTS if kept.is_dir() else None,
    }
    (folder / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    return folder


def not_applicable_notes(folder: Path) -> list[str]:
    """One line per model of the benchmark in ``folder`` that was not applicable to the data."""
    path = folder / NOT_APPLICABLE
    if not path.is_file():
        return []
    table = pl.read_csv(path)
    if table.height == 0:
        return []
    per = table.group_by("model", maintain_order=True).agg(
        pl.col("seed"), pl.col("stage").first(), pl.col("reason").first()
    )
    return [
        f"not applicable: {model} ({stage}, seeds {', '.join(map(str, seeds))}): {reason}"
        for model, seeds, stage, reason in per.iter_rows()
    ]

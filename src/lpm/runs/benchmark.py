"""Evaluate and benchmark as the CLI does it, writing outputs atomically."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lpm._utils.atomic import atomic_dir
from lpm.data.store import read_stores
from lpm.errors import LpmInputError
from lpm.evaluation.benchmark import BenchmarkSpec, run_benchmark, save_benchmark


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
) -> Path:
    """Run a benchmark and write its tables, Markdown report and figure into ``out`` (atomically)."""
    from lpm.reports.benchmark import write_benchmark_report

    if not models:
        raise LpmInputError(None, "no models given (--models)")
    spec = BenchmarkSpec(
        split=split,
        models=tuple(models),
        seeds=tuple(seeds),
        model_params={k: dict(v) for k, v in (model_params or {}).items()},
        split_params=dict(split_params or {}),
        n_boot=n_boot,
        extra_stores=tuple(str(s) for s in extra_stores),
    )
    rows = read_stores(stores)
    extra = read_stores(extra_stores) if extra_stores else None
    result = run_benchmark(rows, spec, progress=progress, extra_train=extra)
    out = Path(out)
    with atomic_dir(out, overwrite=True) as tmp:
        save_benchmark(result, tmp, command=command)
        write_benchmark_report(
            tmp,
            title=title or f"{split} on {', '.join(str(s) for s in stores)}",
            stores=[str(s) for s in stores],
        )
    return out / "results.md"

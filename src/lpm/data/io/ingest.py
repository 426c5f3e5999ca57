"""``lpm ingest``: read real files in the format they come in and write one PRC store.

Each source format has one reader named after it (``read_gct``, ``read_h5ad_pseudobulk``, ...)
that returns an :class:`IngestResult`; this module detects the format and joins the results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl

from lpm._utils.atomic import check_output
from lpm.data.hashing import file_sha256
from lpm.data.io.base import IngestOptions, IngestResult, Reader
from lpm.data.store import PerturbationStore, open_store, write_store
from lpm.errors import LpmInputError


def file_digest(path: Path) -> str:
    """The source's content hash, recorded in the store's provenance."""
    return f"sha256:{file_sha256(path)}"


def detect_format(path: Path) -> str:
    """The source format, from the file name (and the folder layout of a store)."""
    path = Path(path)
    if path.is_dir():
        if (path / "store.json").is_file():
            return "store"
        raise LpmInputError(path, "is a folder but not an lpm store; pass the data files inside it")
    if not path.is_file():
        raise LpmInputError(path, "no such file")
    name = path.name.lower()
    for suffix, fmt in (
        (".gctx", "gctx"),
        (".gct", "gct"),
        (".gct.gz", "gct"),
        (".h5ad", "h5ad"),
        (".npz", "npz"),
        (".parquet", "table"),
        (".csv", "table"),
        (".csv.gz", "table"),
        (".tsv", "table"),
        (".tsv.gz", "table"),
        (".txt", "table"),
        (".txt.gz", "table"),
    ):
        if name.endswith(suffix):
            return fmt
    raise LpmInputError(
        path, "unknown file format (expected .gct, .gctx, .h5ad, .npz, .csv, .tsv, .parquet)"
    )


def _readers() -> dict[str, Reader]:
    # imported here so `import lpm` stays light; a fixed list, no crawling
    from lpm.data.io.h5ad import read_h5ad_pseudobulk
    from lpm.data.io.lincs import read_gct, read_gctx
    from lpm.data.io.npz import read_effect_matrix_npz
    from lpm.data.io.pairwise import read_pairwise_matrix
    from lpm.data.io.ranked import read_ranked_lists
    from lpm.data.io.tables import read_table

    return {
        "gct": read_gct,
        "gctx": read_gctx,
        "h5ad": read_h5ad_pseudobulk,
        "npz": read_effect_matrix_npz,
        "table": read_table,
        "pairwise": read_pairwise_matrix,
        "ranked": read_ranked_lists,
    }


def _ranked_only(path: Path, options: IngestOptions) -> None:
    """Options of ranked lists are an error elsewhere, not silently ignored."""
    given = [
        flag
        for flag, value in (
            ("--top-k", options.top_k),
            ("--panel-min-lists", options.panel_min_lists),
            ("--duplicate-genes", options.duplicate_genes),
        )
        if value is not None
    ]
    if given and options.layout != "ranked":
        raise LpmInputError(path, f"{', '.join(given)} apply only to --layout ranked")


def read_source(path: Path, options: IngestOptions) -> IngestResult:
    """Read one source file into long rows, with its provenance recorded."""
    fmt = detect_format(path)
    if fmt == "store":
        store = open_store(path)
        return IngestResult(
            store.read(), store.controls(), {"path": str(path), "format": "store"}, store.meta.notes
        )
    if options.layout in ("pairwise", "ranked"):
        if fmt != "table":
            raise LpmInputError(path, f"--layout {options.layout} needs a CSV/TSV/Parquet table")
        fmt = options.layout
    elif options.layout not in (None, "table"):
        raise LpmInputError(
            path, f"unknown --layout {options.layout!r} (expected table, pairwise or ranked)"
        )
    _ranked_only(path, options)
    result = _readers()[fmt](Path(path), options)
    result.source = {"path": str(path), "format": fmt, "digest": file_digest(path), **result.source}
    if options.gene_info is not None:
        from lpm.data.genes import harmonise_frame

        result.measurements, result.notes["genes"] = harmonise_frame(
            result.measurements, options.gene_info, source=path
        )
        if result.controls is not None:
            result.controls, _ = harmonise_frame(result.controls, options.gene_info, source=path)
    return result


def ingest(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    options: IngestOptions | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PerturbationStore:
    """Read every source and write them as one store (several sources make a joint store)."""
    options = options or IngestOptions()
    if not sources:
        raise LpmInputError(None, "no source files given")
    check_output(out, kind="folder", overwrite=overwrite)  # before reading, not after
    results = []
    for src in sources:
        if progress:
            progress(str(src))
        results.append(read_source(Path(src), options))
    measurements = pl.concat([r.measurements for r in results], how="diagonal_relaxed")
    ctrl = [r.controls for r in results if r.controls is not None]
    controls = pl.concat(ctrl, how="diagonal_relaxed") if ctrl else None
    notes: dict[str, Any] = {
        r.source.get("path", f"source{i}"): r.notes for i, r in enumerate(results)
    }
    # the resolved options, so the store can be rebuilt with the same command
    notes["ingest_options"] = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in asdict(options).items()
        if v is not None
    }
    label = str(sources[0]) if len(sources) == 1 else f"{len(sources)} sources"
    return write_store(
        measurements,
        out,
        controls=controls,
        sources=[r.source for r in results],
        notes=notes,
        overwrite=overwrite,
        source=label,
    )


__all__ = ["IngestOptions", "IngestResult", "detect_format", "ingest", "read_source"]

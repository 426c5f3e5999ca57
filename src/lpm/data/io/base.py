"""What every reader takes and gives: options for sources that do not describe themselves, and the rows it read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl


@dataclass(frozen=True)
class IngestOptions:
    """How to read a source whose layout is not self-describing; every field has a CLI option.

    Column options name the source's columns; ``None`` means the reader's documented default.
    """

    dataset: str | None = None
    cell_line: str | None = None
    perturbation_type: str | None = None
    readout_type: str | None = None
    context_column: str | None = None
    perturbation_column: str | None = None
    readout_column: str | None = None
    value_column: str | None = None
    control_label: str | None = None
    gene_info: Path | None = None
    lincs_level: int | None = None
    layout: str | None = None
    readout_name: str | None = None
    # ranked gene lists (--layout ranked, lpm.data.io.ranked)
    top_k: int | None = None
    panel_min_lists: int | None = None
    duplicate_genes: str | None = None


@dataclass
class IngestResult:
    """What a reader produces: long measurement rows, optional control profiles, provenance."""

    measurements: pl.DataFrame
    controls: pl.DataFrame | None = None
    source: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


Reader = Callable[[Path, IngestOptions], IngestResult]

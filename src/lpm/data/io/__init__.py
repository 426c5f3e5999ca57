"""Readers of real files as they come (h5ad, GCT/GCTX, NPZ, CSV/TSV/Parquet) and the ingest
dispatcher that turns them into one store."""

from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.ingest import detect_format, ingest

__all__ = ["IngestOptions", "IngestResult", "detect_format", "ingest"]

"""Feature caches: a file named by a hash of everything that decides its content."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl


def cache_file(cache_dir: str | Path, stem: str, params: dict[str, Any]) -> Path:
    """``cache_dir/<stem>_<key>.parquet``, the key a sha256 of ``params`` as sorted JSON."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir) / f"{stem}_{key}.parquet"


def read_cached(path: Path) -> pl.DataFrame | None:
    """The cached table, or None when absent or unreadable (then recomputed and overwritten)."""
    if not path.is_file():
        return None
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError):
        return None

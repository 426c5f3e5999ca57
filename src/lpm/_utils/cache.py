"""Feature caches: a file named by a hash of everything that decides its content."""

from __future__ import annotations

import hashlib
import json
import os
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


#: ``(absolute path, size, mtime_ns)`` -> :func:`file_key` of a file this process has hashed.
_FILE_KEYS: dict[tuple[str, int, int], str] = {}


def file_key(path: str | Path) -> str:
    """``<size>:<sha256>`` of a file's bytes, for a cache key that follows its content.

    Hashed once per process while the file's size and modification time stay the same, so a
    cache hit costs one ``stat``.
    """
    path = Path(path)
    stat = path.stat()
    memo = (os.fspath(path.absolute()), stat.st_size, stat.st_mtime_ns)
    key = _FILE_KEYS.get(memo)
    if key is None:
        with path.open("rb") as fh:
            key = f"{stat.st_size}:{hashlib.file_digest(fh, 'sha256').hexdigest()}"
        _FILE_KEYS[memo] = key
    return key

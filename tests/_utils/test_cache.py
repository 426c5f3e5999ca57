"""Feature caches: a file named by everything that decides it; an unreadable one is recomputed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lpm._utils.cache import cache_file, file_key, read_cached


def test_the_name_changes_with_any_parameter_and_not_with_their_order(tmp_path: Path) -> None:
    a = cache_file(tmp_path, "go", {"k": 20, "seed": 0})
    assert a == cache_file(tmp_path, "go", {"seed": 0, "k": 20})
    assert a != cache_file(tmp_path, "go", {"k": 21, "seed": 0})
    assert a.name.startswith("go_") and a.suffix == ".parquet"


def test_absent_or_corrupt_caches_read_as_none(tmp_path: Path) -> None:
    path = cache_file(tmp_path, "x", {})
    assert read_cached(path) is None
    path.write_bytes(b"not parquet")
    assert read_cached(path) is None
    pl.DataFrame({"a": [1]}).write_parquet(path)
    cached = read_cached(path)
    assert cached is not None and cached["a"].to_list() == [1]


def test_a_file_key_is_its_size_and_hash_computed_once_while_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "go.tsv"
    path.write_bytes(b"first")
    calls: list[object] = []
    real = hashlib.file_digest

    def counting(fh: Any, digest: str) -> Any:
        calls.append(fh)
        return real(fh, digest)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    key = file_key(path)
    assert key == f"5:{hashlib.sha256(b'first').hexdigest()}"
    assert file_key(path) == key and len(calls) == 1  # remembered in this process
    path.write_bytes(b"other")
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))
    assert file_key(path) == f"5:{hashlib.sha256(b'other').hexdigest()}" and len(calls) == 2

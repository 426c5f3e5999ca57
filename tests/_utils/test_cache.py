"""Feature caches: a file named by everything that decides it; an unreadable one is recomputed."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lpm._utils.cache import cache_file, read_cached


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

"""The store: round trips, streaming by row group, refusing bad tables, and refusing data files
changed after the store was written."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

import lpm.data.hashing as hashing
from lpm.data.hashing import file_sha256
from lpm.data.store import merge_stores, open_store, write_store
from lpm.errors import LpmInputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _only_inputs_left(folder: Path, expected: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == expected


def test_round_trip_is_sorted_and_hashed(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    store = write_store(toy_rows.sample(fraction=1.0, shuffle=True, seed=1), tmp_path / "s")
    again = write_store(toy_rows, tmp_path / "t")
    assert store.meta.content_hash == again.meta.content_hash
    back = store.read()
    assert back.height == toy_rows.height
    assert back.select("context", "perturbation", "readout").is_duplicated().sum() == 0
    assert store.contexts == ["toy/A", "toy/B", "toy/C"]


def test_streams_in_row_groups(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    store = write_store(toy_rows, tmp_path / "s", row_group_size=50)
    batches = list(store.iter_batches(columns=["value"]))
    assert len(batches) == store.n_row_groups == math.ceil(toy_rows.height / 50)
    assert sum(b.num_rows for b in batches) == toy_rows.height


def test_merge_keeps_contexts_apart(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    a = write_store(toy_rows, tmp_path / "a")
    b = write_store(
        toy_rows.with_columns(pl.col("context").str.replace("toy/", "other/")), tmp_path / "b"
    )
    joint = merge_stores([a, b], tmp_path / "joint")
    assert joint.n_rows == 2 * toy_rows.height
    assert len(joint.contexts) == 6


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop("readout"), "missing column(s) readout"),
        (lambda df: df.rename({"value": "val"}), "missing column(s) value"),
        (
            lambda df: df.with_columns(
                pl.when(pl.int_range(pl.len()) == 3)
                .then(float("nan"))
                .otherwise(pl.col("value"))
                .alias("value")
            ),
            "NaN/inf",
        ),
        (
            lambda df: df.with_columns(
                pl.when(pl.int_range(pl.len()) == 0)
                .then(float("inf"))
                .otherwise(pl.col("value"))
                .alias("value")
            ),
            "NaN/inf",
        ),
        (lambda df: pl.concat([df, df.head(2)]), "duplicate (context, perturbation, readout) key"),
        (
            lambda df: df.with_columns(pl.lit("MAPK1").alias("perturbation")),
            "malformed perturbation symbol",
        ),
        (lambda df: df.with_columns(pl.lit("weird").alias("readout_type")), "unknown type"),
        (lambda df: df.with_columns(pl.lit("x").alias("extra")), "unexpected column(s) extra"),
    ],
)
def test_bad_tables_give_one_line_errors_and_write_nothing(
    toy_rows: pl.DataFrame, tmp_path: Path, mutate, message: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LpmInputError) as err:
        write_store(mutate(toy_rows), tmp_path / "s", source="in.csv")
    text = str(err.value)
    assert message in text
    assert text.startswith("in.csv: ")
    assert "\n" not in text
    _only_inputs_left(tmp_path, set())


def test_existing_store_is_not_overwritten_silently(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    write_store(toy_rows, tmp_path / "s")
    with pytest.raises(LpmInputError, match="already exists"):
        write_store(toy_rows, tmp_path / "s")
    write_store(toy_rows.head(10), tmp_path / "s", overwrite=True)
    assert open_store(tmp_path / "s").n_rows == 10
    _only_inputs_left(tmp_path, {"s"})


def test_corrupt_store_file_is_named(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    store = write_store(toy_rows, tmp_path / "s")
    (store.path / "measurements.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(LpmInputError, match=r"measurements.parquet: corrupt Parquet file"):
        open_store(tmp_path / "s")
    with pytest.raises(LpmInputError, match="not an lpm store"):
        open_store(tmp_path)


# ---- the content hash is checked whenever a store is opened ---------------------------------
def _edit_values(path: Path) -> None:
    """Rewrite measurements.parquet with one value changed, as an editor would."""
    rows = pl.read_parquet(path)
    rows = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.col("value") + 1).otherwise(pl.col("value"))
    )
    rows.write_parquet(path)


def _attributes_supported(folder: Path) -> bool:
    probe = folder / ".xattr_probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.lpm.probe", b"1")
    except (OSError, AttributeError):
        return False
    finally:
        probe.unlink()
    return True


def test_store_records_each_data_file_s_hash_and_size(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    controls = toy_rows.group_by("context", "readout").agg(pl.col("value").mean())
    store = write_store(toy_rows, tmp_path / "s", controls=controls)
    files = json.loads((store.path / "store.json").read_text())["files"]
    assert set(files) == {"measurements.parquet", "controls.parquet"}
    for name, rec in files.items():
        path = store.path / name
        assert rec == {"sha256": file_sha256(path), "size": path.stat().st_size}
    assert store.meta.content_hash == f"sha256:{files['measurements.parquet']['sha256']}"


def test_an_edited_value_is_refused_on_open(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    store = write_store(toy_rows, tmp_path / "s")
    _edit_values(store.path / "measurements.parquet")
    with pytest.raises(LpmInputError) as err:
        open_store(store.path)
    assert str(err.value) == (
        f"{store.path}: measurements.parquet was changed after the store was written "
        "(content hash differs); restore it or write the store again (lpm ingest)"
    )


def test_a_same_size_edit_in_place_is_refused(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    store = write_store(toy_rows, tmp_path / "s")
    path = store.path / "measurements.parquet"
    before = path.stat()
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    with path.open("r+b") as fh:  # in place: the remembered hash stays on the file
        fh.write(bytes(raw))
    later = before.st_mtime_ns + 10**9  # a later write (a coarse clock may not show it in a test)
    os.utime(path, ns=(later, later))
    assert path.stat().st_size == before.st_size
    with pytest.raises(LpmInputError, match=r"measurements\.parquet was changed"):
        open_store(store.path)


def test_a_replaced_file_is_refused_and_the_original_restored_opens(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    store = write_store(toy_rows, tmp_path / "s")
    other = write_store(toy_rows.head(100), tmp_path / "other")
    kept = tmp_path / "kept.parquet"
    shutil.copy2(store.path / "measurements.parquet", kept)
    os.replace(other.path / "measurements.parquet", store.path / "measurements.parquet")
    with pytest.raises(LpmInputError, match=r"measurements\.parquet was changed"):
        open_store(store.path)
    os.replace(kept, store.path / "measurements.parquet")
    assert open_store(store.path).n_rows == toy_rows.height


def test_controls_are_checked_too(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    controls = toy_rows.group_by("context", "readout").agg(pl.col("value").mean())
    with_controls = write_store(toy_rows, tmp_path / "c", controls=controls)
    (with_controls.path / "controls.parquet").unlink()
    with pytest.raises(LpmInputError, match=r"controls\.parquet is missing"):
        open_store(with_controls.path)
    plain = write_store(toy_rows, tmp_path / "p")
    controls.write_parquet(plain.path / "controls.parquet")
    with pytest.raises(LpmInputError, match=r"controls\.parquet was not written with the store"):
        open_store(plain.path)


def test_same_content_gives_the_same_store_bytes(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    a = write_store(toy_rows, tmp_path / "a")
    b = write_store(toy_rows, tmp_path / "b")
    for name in ("store.json", "measurements.parquet"):
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes()


def test_a_copied_store_is_verified_by_hash_and_then_remembered(
    toy_rows: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = write_store(toy_rows, tmp_path / "s")
    copy = Path(shutil.copytree(store.path, tmp_path / "copy", copy_function=shutil.copyfile))
    assert open_store(copy).n_rows == toy_rows.height  # hashed: no remembered stamp on a copy
    if _attributes_supported(tmp_path):
        monkeypatch.setattr(hashing, "_sha256", _no_hash)
        assert open_store(copy).n_rows == toy_rows.height


def _no_hash(fh: object) -> str:
    raise AssertionError("hashed a file whose stamp was unchanged")


def test_an_unchanged_store_opens_without_hashing(
    toy_rows: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _attributes_supported(tmp_path):
        pytest.skip("this filesystem keeps no user attributes: each process hashes once")
    write_store(toy_rows, tmp_path / "s")
    monkeypatch.setattr(hashing, "_sha256", _no_hash)
    assert open_store(tmp_path / "s").n_rows == toy_rows.height


def test_without_attributes_a_store_is_hashed_once_per_process(
    toy_rows: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*args: object) -> None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", unsupported)
    monkeypatch.setattr(os, "getxattr", unsupported)
    calls: list[object] = []
    real = hashing._sha256

    def counting(fh: object) -> str:
        calls.append(fh)
        return real(fh)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing, "_sha256", counting)
    store = write_store(toy_rows, tmp_path / "s")  # hashed once, in the temporary folder
    assert len(calls) == 1
    for _ in range(3):
        assert open_store(store.path).n_rows == toy_rows.height
    assert len(calls) == 1  # the same unchanged file: not hashed again
    path = store.path / "measurements.parquet"
    _edit_values(path)
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))
    with pytest.raises(LpmInputError, match=r"measurements\.parquet was changed"):
        open_store(store.path)


def test_a_store_without_file_records_is_verified_by_its_hash(tmp_path: Path) -> None:
    legacy = Path(shutil.copytree(FIXTURES / "store_v0.1.0", tmp_path / "legacy"))
    assert "files" not in json.loads((legacy / "store.json").read_text())
    assert open_store(legacy).n_rows == 288
    _edit_values(legacy / "measurements.parquet")
    with pytest.raises(LpmInputError, match=r"measurements\.parquet was changed"):
        open_store(legacy)


def test_a_record_of_another_file_is_corrupt_metadata(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    store = write_store(toy_rows, tmp_path / "s")
    meta = json.loads((store.path / "store.json").read_text())
    meta["files"]["../outside.txt"] = {"sha256": "0" * 64, "size": 1}
    (store.path / "store.json").write_text(json.dumps(meta))
    with pytest.raises(LpmInputError, match=r"corrupt record of \.\./outside\.txt"):
        open_store(store.path)

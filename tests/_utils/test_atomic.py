"""The output policy every command shares: refuse what exists, swap whole, never a file for a
folder, one winner among concurrent writers, an unwritable place refused before the work."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest

from lpm._utils.atomic import atomic_dir, atomic_file, building_dir, check_output
from lpm.errors import LpmInputError


def _write_dir(target: Path, text: str, *, overwrite: bool) -> None:
    with atomic_dir(target, overwrite=overwrite) as tmp:
        (tmp / "a.txt").write_text(text)


def test_existing_folder_is_refused_and_kept_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(LpmInputError, match=r"already exists.*--overwrite"):
        _write_dir(out, "new", overwrite=False)
    assert (out / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left beside it


def test_overwrite_swaps_the_whole_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write_dir(out, "old", overwrite=False)
    (out / "stale.txt").write_text("from the old run")
    _write_dir(out, "new", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    assert (out / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_file_never_becomes_a_folder_nor_a_folder_a_file(tmp_path: Path) -> None:
    f = tmp_path / "results"
    f.write_text("a user's file")
    with pytest.raises(LpmInputError, match="is a file; an output folder cannot replace it"):
        _write_dir(f, "x", overwrite=True)
    assert f.read_text() == "a user's file"
    d = tmp_path / "pred.parquet"
    d.mkdir()
    with pytest.raises(LpmInputError, match="is a folder; an output file cannot replace it"):
        with atomic_file(d, overwrite=True) as tmp:
            tmp.write_text("x")
    assert d.is_dir()


def test_existing_file_is_refused_without_overwrite(tmp_path: Path) -> None:
    f = tmp_path / "pred.csv"
    f.write_text("old")
    with pytest.raises(LpmInputError, match="already exists"):
        with atomic_file(f, overwrite=False) as tmp:
            tmp.write_text("new")
    assert f.read_text() == "old"
    with atomic_file(f, overwrite=True) as tmp:
        tmp.write_text("new")
    assert f.read_text() == "new"


def test_a_failed_block_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "f.txt", overwrite=False) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_place_is_refused_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(LpmInputError, match="cannot be written"):
        check_output(blocker / "out", kind="folder", overwrite=False)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(LpmInputError, match="no permission"):
            check_output(ro / "out", kind="folder", overwrite=False)


def _racer(target: str, text: str, queue: mp.Queue) -> None:
    try:
        with atomic_dir(Path(target), overwrite=False) as tmp:
            (tmp / "a.txt").write_text(text)
        queue.put(("ok", text))
    except LpmInputError as exc:
        queue.put(("refused", str(exc)))


def test_two_concurrent_writers_cannot_both_succeed(tmp_path: Path) -> None:
    target = tmp_path / "out"
    queue: mp.Queue = mp.get_context("fork").Queue()
    procs = [
        mp.get_context("fork").Process(target=_racer, args=(str(target), f"run{i}", queue))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = [queue.get(timeout=5) for _ in procs]
    winners = [text for status, text in results if status == "ok"]
    assert len(winners) == 1
    assert (target / "a.txt").read_text() == winners[0]
    assert all("already exists" in t or "another lpm run" in t for s, t in results if s != "ok")


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / ".out.lock").write_text("999999999")  # no such process
    _write_dir(tmp_path / "out", "x", overwrite=False)
    assert (tmp_path / "out" / "a.txt").read_text() == "x"
    assert not (tmp_path / ".out.lock").exists()


def test_a_lock_naming_no_process_is_held_not_stale(tmp_path: Path) -> None:
    """A lock without an owner is one being written (or not lpm's): refused, never taken over."""
    lock = tmp_path / ".out.lock"
    lock.write_text("")
    with pytest.raises(
        LpmInputError, match=r"another lpm run is writing it \(lock .*\.out\.lock\)"
    ):
        _write_dir(tmp_path / "out", "x", overwrite=False)
    assert lock.read_text() == "" and not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock"]  # no temporary left


def _builder(target: str, entered: mp.Event, release: mp.Event) -> None:
    with building_dir(Path(target), overwrite=True) as folder:
        (folder / "a.txt").write_text("first")
        entered.set()
        release.wait(30)


def test_a_folder_being_built_is_locked_for_the_whole_build(tmp_path: Path) -> None:
    """A second writer is refused while the first builds, and the first's folder is left whole."""
    target = tmp_path / "out"
    ctx = mp.get_context("fork")
    entered, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_builder, args=(str(target), entered, release))
    proc.start()
    try:
        assert entered.wait(30)
        with pytest.raises(LpmInputError, match=r"another lpm run \(pid \d+\) is writing it"):
            with building_dir(target, overwrite=True):
                raise AssertionError("refused before the block runs")
        assert (target / "a.txt").read_text() == "first"
    finally:
        release.set()
        proc.join(30)
    assert proc.exitcode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

"""Outputs appear whole or not at all, and never replace what a user has without being asked.

One policy for every file and folder lpm writes:

- an existing output is refused unless ``overwrite``; with it, the new output is written beside
  the old one and swapped in by renames, so a reader sees the old or the new, never a mixture;
- a file never becomes a folder and a folder never becomes a file, ``overwrite`` or not;
- two lpm processes writing one output cannot both succeed: the swap happens under a lock file
  beside the target (``.NAME.lock``, created exclusively with its holder's pid in it; a lock
  whose process is gone is stale and taken over), and the second finds the first's output in
  place;
- an output that records its own paths is built at its final name (:func:`building_dir`),
  under the lock for the whole build, the old one put back if the build fails;
- :func:`check_output` says all this before a run starts its work, including a parent folder
  that cannot be written, so a long run never fails at its last step for a reason known at its
  first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from lpm.errors import LpmInputError

Kind = Literal["file", "folder"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_output(target: str | Path, *, kind: Kind, overwrite: bool) -> Path:
    """Refuse, before any work, an output that the run could not write at its end."""
    target = Path(target)
    if target.exists() or target.is_symlink():
        if kind == "folder" and not target.is_dir():
            raise LpmInputError(target, "is a file; an output folder cannot replace it")
        if kind == "file" and target.is_dir():
            raise LpmInputError(target, "is a folder; an output file cannot replace it")
        if not overwrite:
            raise LpmInputError(target, "already exists (pass --overwrite to replace it)")
    parent = _first_existing(target.parent)
    if not parent.is_dir():
        raise LpmInputError(target, f"cannot be written: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LpmInputError(target, f"cannot be written: no permission to write in {parent}")
    return target


@contextlib.contextmanager
def _lock(target: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``target`` for the block; another live holder is refused.

    The lock is created with its holder's pid already in it (a hard link of a written file), so
    no reader ever sees a lock without its owner; a lock naming no process is held (by something
    that is not this lpm) and refused too. Not re-entrant: one block per target at a time.
    """
    lock = target.parent / f".{target.name}.lock"
    for _ in range(3):
        if _create_lock(lock, target):
            try:
                yield
            finally:
                lock.unlink(missing_ok=True)
            return
        seen = _lock_owner(lock)
        if seen is None:
            continue  # released meanwhile: try again
        owner, inode = seen
        if not owner:
            raise LpmInputError(
                target, f"another lpm run is writing it (lock {lock}); wait or choose another"
            )
        if owner.isdigit() and _alive(int(owner)):
            raise LpmInputError(
                target, f"another lpm run (pid {owner}) is writing it; wait or choose another"
            )
        _remove_stale(lock, owner, inode)  # its process is gone
    raise LpmInputError(target, f"cannot take the lock {lock}")


def _create_lock(lock: Path, target: Path) -> bool:
    """Create ``lock`` holding this process's pid, whole or not at all; False if it exists."""
    fd, name = tempfile.mkstemp(prefix=f"{lock.name}.", suffix=".new", dir=lock.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        os.chmod(name, 0o644 & ~_umask())
        os.link(name, lock)
    except FileExistsError:
        return False
    except OSError as exc:
        raise LpmInputError(target, f"cannot take the lock {lock}: {exc.strerror or exc}") from None
    finally:
        os.unlink(name)
    return True


def _lock_owner(lock: Path) -> tuple[str, int] | None:
    """The pid text in ``lock`` and its inode; None if it is gone, "" if it cannot be read."""
    try:
        with open(lock) as fh:
            return fh.read().strip(), os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return None
    except OSError:
        return "", -1


def _remove_stale(lock: Path, owner: str, inode: int) -> None:
    """Remove the stale ``lock`` seen holding ``owner``, and only it: a lock another process
    took in the meantime (a different file) is put back."""
    aside = lock.with_name(f"{lock.name}.{os.getpid()}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return  # another process removed it first
    try:
        with open(aside) as fh:
            same = fh.read().strip() == owner and os.fstat(fh.fileno()).st_ino == inode
        if not same:
            with contextlib.suppress(FileExistsError):
                os.link(aside, lock)
    finally:
        os.unlink(aside)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(tmp: Path, target: Path, *, kind: Kind, overwrite: bool) -> None:
    check_output(target, kind=kind, overwrite=overwrite)  # again, now under the lock
    if not (target.exists() or target.is_symlink()):
        os.replace(tmp, target)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, trash / "old")
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(trash / "old", target)  # put the old output back
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LpmInputError(target, f"cannot be written: {exc.strerror or exc}") from None


@contextlib.contextmanager
def atomic_dir(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target`` that becomes ``target`` if the block succeeds."""
    target = Path(target)
    check_output(target, kind="folder", overwrite=overwrite)
    _parent(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; results should look like any new folder
    try:
        yield tmp
        with _lock(target):
            _swap_in(tmp, target, kind="folder", overwrite=overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def building_dir(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build the folder ``target`` where it will stay, whole or not at all.

    For outputs that record their own paths (stores, truth, model folders inside them), which
    cannot be built under a temporary name and renamed as :func:`atomic_dir` does. The lock is
    held for the whole block, so a second lpm process is refused rather than building beside
    it. An existing ``target`` is refused without ``overwrite`` (before any work); with it, it is
    set aside while the new one is built (the name holds the new folder meanwhile), removed if
    the block succeeds and put back if it fails. A failed block removes the folder it created,
    and never one it did not.
    """
    target = check_output(Path(target), kind="folder", overwrite=overwrite)
    _parent(target)
    with _lock(target):
        check_output(target, kind="folder", overwrite=overwrite)  # again, now under the lock
        old = None
        if target.exists() or target.is_symlink():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.replace(target, old / "old")
        created = False
        try:
            try:
                target.mkdir()
            except FileExistsError:  # made by something outside lpm since the check
                raise LpmInputError(
                    target, "appeared while lpm was starting; not replaced"
                ) from None
            created = True
            yield target
        except BaseException:
            if created:
                shutil.rmtree(target, ignore_errors=True)
            if old is not None:
                os.replace(old / "old", target)  # put the old output back
                old.rmdir()
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary file path that is renamed onto ``target`` if the block succeeds.

    ``overwrite`` is the caller's decision every time: a user's output passes the user's flag,
    a cache or a file inside a fresh output folder passes ``True``.
    """
    target = Path(target)
    check_output(target, kind="file", overwrite=overwrite)
    _parent(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_umask())
    try:
        yield tmp
        with _lock(target):
            check_output(target, kind="file", overwrite=overwrite)
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str, *, overwrite: bool = True) -> Path:
    """Write a text file whole or not at all."""
    with atomic_file(Path(target), overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return Path(target)

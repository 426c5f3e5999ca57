"""File hashes remembered on the file with the stamp they were computed at."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import lpm.data.hashing as hashing
from lpm.data.hashing import ATTRIBUTE, file_sha256, stamped_sha256


def _supported(path: Path) -> bool:
    try:
        os.setxattr(path, "user.lpm.probe", b"1")
    except (OSError, AttributeError):
        return False
    return True


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * (3 << 20))  # several read blocks
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_hash_is_remembered_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"first")
    if not _supported(path):
        pytest.skip("no user extended attributes on this filesystem")
    assert stamped_sha256(path) == hashlib.sha256(b"first").hexdigest()
    sha, size, mtime = os.getxattr(path, ATTRIBUTE).decode().split()
    assert (int(size), int(mtime)) == (path.stat().st_size, path.stat().st_mtime_ns)
    calls: list[object] = []
    real = hashing._sha256

    def counting(fh: object) -> str:
        calls.append(fh)
        return real(fh)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing, "_sha256", counting)
    assert stamped_sha256(path) == sha and calls == []  # remembered: not hashed again
    path.write_bytes(b"other")
    later = int(mtime) + 10**9
    os.utime(path, ns=(later, later))
    assert stamped_sha256(path) == hashlib.sha256(b"other").hexdigest() and len(calls) == 1


def test_without_attributes_a_process_hashes_an_unchanged_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"data")

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
    assert stamped_sha256(path) == stamped_sha256(path) == hashlib.sha256(b"data").hexdigest()
    assert len(calls) == 1  # remembered in this process
    path.write_bytes(b"diff")
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))
    assert stamped_sha256(path) == hashlib.sha256(b"diff").hexdigest() and len(calls) == 2

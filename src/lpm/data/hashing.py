"""Content hashes of data files, and a stamp that says when one must be recomputed.

A store records each data file's SHA-256 and size in ``store.json``. Hashing a large file on
every open would be slow, so the hash is also remembered on the file itself, in an extended
attribute (``user.lpm.sha256``) beside the size and modification time (in nanoseconds) the file
had when it was hashed. Opening a store reads that attribute and one ``stat``: while the stamp
matches, the remembered hash stands; a file edited, replaced or copied without its attributes is
hashed again (and remembered again). The stamp stays off ``store.json`` so that the same inputs
and seed give the same bytes, times included. Within one process the hash is also remembered
in memory, keyed by the file's device, inode, size and modification time, so a store opened
many times in one command (or opened right after it was written) is hashed at most once even
where a filesystem keeps no user attributes (NFS, overlay, a read-only file); there each new
process hashes the file once: slower, never wrong.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

_BLOCK = 1 << 20
#: The extended attribute holding ``"<sha256> <size> <mtime_ns>"``.
ATTRIBUTE = "user.lpm.sha256"


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    with Path(path).open("rb") as fh:
        return _sha256(fh)


def _sha256(fh: BinaryIO) -> str:
    h = hashlib.sha256()
    fh.seek(0)
    for block in iter(lambda: fh.read(_BLOCK), b""):
        h.update(block)
    return h.hexdigest()


#: ``(device, inode, size, mtime_ns)``: which file, and the stamp it had when hashed.
_Key = tuple[int, int, int, int]
#: Hashes this process computed or read from a stamp, by the key of the file they belong to.
_MEMO: dict[_Key, str] = {}


def _key(fd: int) -> _Key:
    stat = os.fstat(fd)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _remembered(fd: int, key: _Key) -> str | None:
    """The hash remembered on the open file, if its size and modification time are unchanged."""
    try:
        sha, size, mtime = os.getxattr(fd, ATTRIBUTE).decode().split()
        stamp = (int(size), int(mtime))
    except (OSError, AttributeError, ValueError, UnicodeDecodeError):
        return None  # none remembered, or attributes unsupported here
    return sha if stamp == key[2:] else None


def _remember(fd: int, sha: str, key: _Key) -> None:
    """Remember ``sha`` in this process and on the open file (the same inode that was hashed)
    with its stamp; a filesystem without user attributes (or a read-only file) only means
    hashing again in the next process."""
    if _key(fd) != key:
        return  # written to while it was hashed: nothing worth remembering
    _MEMO[key] = sha
    try:
        os.setxattr(fd, ATTRIBUTE, f"{sha} {key[2]} {key[3]}".encode())
    except (OSError, AttributeError):
        pass


def stamped_sha256(path: str | Path) -> str:
    """A file's SHA-256: the one remembered (in this process, else on the file) while its
    stamp is unchanged (one ``stat``, at most one attribute read), otherwise computed and
    remembered."""
    with Path(path).open("rb") as fh:
        fd = fh.fileno()
        key = _key(fd)
        sha = _MEMO.get(key)
        if sha is None:
            sha = _remembered(fd, key)
            if sha is None:
                sha = _sha256(fh)
                _remember(fd, sha, key)
            else:
                _MEMO[key] = sha
        return sha

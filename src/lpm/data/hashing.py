"""Content hashes of data files, and the cheap stamp that says when one must be recomputed.

A store records, for each data file, its SHA-256 beside its size and modification time (in
nanoseconds). Opening the store compares one ``stat`` per file with the stamp; only a file whose
stamp differs (edited, replaced, or copied without its times) is hashed again, and a differing
hash is refused. Stores written before stamps existed are verified by their hash alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lpm.errors import LpmInputError

_BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class FileStamp:
    """What a store records of one data file."""

    sha256: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | Path) -> FileStamp:
        """The file's hash and stamp as it is now."""
        stat = Path(path).stat()
        return cls(sha256=file_sha256(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns)

    @classmethod
    def from_json(cls, raw: Any, where: str | Path) -> FileStamp:
        try:
            return cls(
                sha256=str(raw["sha256"]), size=int(raw["size"]), mtime_ns=int(raw["mtime_ns"])
            )
        except (KeyError, TypeError, ValueError):
            raise LpmInputError(where, f"corrupt file record {raw!r} in store metadata") from None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def unchanged(self, path: Path) -> bool:
        """Whether ``path`` still has the recorded size and modification time (one ``stat``)."""
        stat = path.stat()
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns

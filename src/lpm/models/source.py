"""Chunks of long rows for training: the row groups of one or more stores, or slices of a table.

A streaming fit never holds every row at once: it reads one chunk at a time (a store's row
group, or a slice of an in-memory table). A store gives up a seeded share of its rows for early
stopping by a stable hash of each row's key (:class:`RowHoldout`), the same rows in every pass
and every process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from lpm.data import schema as S
from lpm.data.members import has_member_values
from lpm.data.store import PerturbationStore

CHUNK_ROWS = 262_144
_STRING_COLUMNS = (S.CONTEXT, S.PERTURBATION, S.READOUT, S.READOUT_TYPE)
#: What names a row's profile for the row holdout's hash.
_PROFILE_KEYS = (S.CONTEXT, S.PERTURBATION, S.DOSE, S.TIME, *S.MEMBER_COLUMNS)
#: The columns a fit reads of each chunk.
NEEDED_COLUMNS = (
    *S.KEY_COLUMNS, S.VALUE, S.DOSE, S.TIME, S.READOUT_TYPE, S.MEMBER_DOSE, S.MEMBER_TIME
)  # fmt: skip


def _key_hashes(values: pl.Series, seed: int) -> np.ndarray:
    """A stable 32-bit hash per value (hashed once per distinct value, not per row)."""
    text = values.cast(pl.String).fill_null("")
    table = {
        k: int.from_bytes(hashlib.blake2b(f"{seed}\x1e{k}".encode(), digest_size=4).digest(), "big")
        for k in text.unique().to_list()
    }
    return text.replace_strict(table, return_dtype=pl.UInt64).to_numpy()


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: every input bit moves every output bit (uint64 wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class RowHoldout:
    """A seeded share of a store's values (rows), chosen by a stable hash of each row's key.

    Streaming a store leaves no table to sample from; hashing (context, perturbation, dose,
    time, per-member doses/times, readout) decides every row alike in whichever row group it
    lies, identically in every process and every epoch. Rows, not whole profiles: a perturbation measured in one
    context only would otherwise leave training whole, and the model could not score it.
    """

    seed: int
    fraction: float
    held: bool  # True: the held-out rows; False: all the others

    def mask(self, table: pa.Table) -> np.ndarray:
        keys = [c for c in _PROFILE_KEYS if c in table.column_names]
        df = pl.from_arrow(table.select([*keys, S.READOUT]))
        assert isinstance(df, pl.DataFrame)
        text = [
            pl.col(c).list.eval(pl.element().cast(pl.String)).list.join("+")
            if c in S.MEMBER_COLUMNS
            else pl.col(c).cast(pl.String)
            for c in keys
        ]
        profile = df.select(
            pl.concat_str([t.fill_null("") for t in text], separator="\x1f").alias("key")
        )["key"]
        x = (_key_hashes(profile, self.seed) << np.uint64(32)) | _key_hashes(
            df[S.READOUT], self.seed
        )
        held = (_mix(x) >> np.uint64(32)) < np.uint64(round(self.fraction * 2**32))
        return held if self.held else ~held


class RowSource:
    """Chunks of long rows: the row groups of one or more stores, or slices of a table."""

    def __init__(
        self,
        *,
        frame: pl.DataFrame | None = None,
        stores: list[PerturbationStore] | None = None,
        chunk_rows: int = CHUNK_ROWS,
        holdout: RowHoldout | None = None,
    ) -> None:
        if (frame is None) == (stores is None):
            raise ValueError("give exactly one of frame or stores")
        if holdout is not None and frame is not None:
            raise ValueError("a row holdout applies to stores only (split a table instead)")
        self.frame = frame
        self.stores = stores or []
        self.chunk_rows = chunk_rows
        self.holdout = holdout
        self._index = [(s, g) for s in self.stores for g in range(s.n_row_groups)]

    def split_holdout(self, *, seed: int, fraction: float) -> tuple[RowSource, RowSource]:
        """(training, validation) views of the same stores: a seeded share of rows held out."""
        return (
            RowSource(stores=self.stores, holdout=RowHoldout(seed, fraction, held=False)),
            RowSource(stores=self.stores, holdout=RowHoldout(seed, fraction, held=True)),
        )

    @property
    def n_chunks(self) -> int:
        if self.frame is None:
            return len(self._index)
        return max(1, -(-self.frame.height // self.chunk_rows))

    @property
    def n_rows(self) -> int:
        """Rows of the table or stores (before any row holdout)."""
        return self.frame.height if self.frame is not None else sum(s.n_rows for s in self.stores)

    @property
    def in_memory(self) -> bool:
        """Whether the rows are an in-memory table (so coded chunks may be kept)."""
        return self.frame is not None

    def chunk(self, i: int) -> pl.DataFrame:
        """Chunk ``i`` as a polars frame with string symbol columns."""
        if self.frame is not None:
            return self.frame.slice(i * self.chunk_rows, self.chunk_rows)
        df = pl.from_arrow(self.arrow_chunk(i))
        assert isinstance(df, pl.DataFrame)
        return df.with_columns(
            pl.col(c).cast(pl.String) for c in _STRING_COLUMNS if c in df.columns
        )

    def arrow_chunk(self, i: int, columns: tuple[str, ...] = NEEDED_COLUMNS) -> pa.Table:
        """Chunk ``i`` as Arrow (a store's symbol columns stay dictionary-encoded: no strings)."""
        if self.frame is not None:
            part = self.frame.slice(i * self.chunk_rows, self.chunk_rows)
            return part.select([c for c in columns if c in part.columns]).to_arrow()
        store, group = self._index[i]
        cols = [c for c in columns if c in store.columns]
        if self.holdout is None:
            return store._file.read_row_group(group, columns=cols)
        keys = [c for c in (*_PROFILE_KEYS, S.READOUT) if c in store.columns]
        table = store._file.read_row_group(group, columns=list(dict.fromkeys([*cols, *keys])))
        return table.filter(pa.array(self.holdout.mask(table))).select(cols)

    def has_member_values(self) -> bool:
        """Whether any row gives a dose or time per member (a store has those columns only then)."""
        if self.frame is not None:
            return has_member_values(self.frame)
        return any(c in s.columns for s in self.stores for c in S.MEMBER_COLUMNS)

    def __iter__(self) -> Iterator[pl.DataFrame]:
        for i in range(self.n_chunks):
            yield self.chunk(i)

    def fingerprint(self) -> dict[str, Any]:
        """What identifies these rows (a checkpoint folder is resumed only for the same rows)."""
        if self.frame is not None:
            return {"rows": self.frame.height, "hash": int(self.frame.hash_rows(seed=0).sum())}
        holdout = self.holdout
        return {
            "stores": [s.meta.content_hash for s in self.stores],
            "holdout": None if holdout is None else [holdout.seed, holdout.fraction, holdout.held],
        }

"""Data for the LPM: symbol vocabularies, integer coding, and streaming datasets.

Rows are read chunk by chunk (a store's row groups, or slices of an in-memory table), coded to
integers and shuffled within the chunk, so training never holds the whole table in memory.
Exact mode yields batches of rows; fast mode yields batches of whole profiles (conditions), each
scored against every readout in one matrix product, with unmeasured readouts masked out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch
from torch.utils.data import IterableDataset

from lpm.data import schema as S
from lpm.data.store import PerturbationStore
from lpm.data.symbols import COMBINATION_SEPARATOR
from lpm.errors import LpmInputError, UnknownSymbolError

CHUNK_ROWS = 262_144
_STRING_COLUMNS = (S.CONTEXT, S.PERTURBATION, S.READOUT, S.READOUT_TYPE)
_NEEDED = (*S.KEY_COLUMNS, S.VALUE, S.DOSE, S.TIME, S.READOUT_TYPE)


class RowSource:
    """Chunks of long rows: the row groups of one or more stores, or slices of a table."""

    def __init__(
        self,
        *,
        frame: pl.DataFrame | None = None,
        stores: list[PerturbationStore] | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        if (frame is None) == (stores is None):
            raise ValueError("give exactly one of frame or stores")
        self.frame = frame
        self.stores = stores or []
        self.chunk_rows = chunk_rows
        self._index = [(s, g) for s in self.stores for g in range(s.n_row_groups)]

    @property
    def n_chunks(self) -> int:
        if self.frame is None:
            return len(self._index)
        return max(1, -(-self.frame.height // self.chunk_rows))

    @property
    def n_rows(self) -> int:
        return self.frame.height if self.frame is not None else sum(s.n_rows for s in self.stores)

    def chunk(self, i: int) -> pl.DataFrame:
        if self.frame is not None:
            return self.frame.slice(i * self.chunk_rows, self.chunk_rows)
        store, group = self._index[i]
        cols = [c for c in _NEEDED if c in store.columns]
        df = pl.from_arrow(store._file.read_row_group(group, columns=cols))
        assert isinstance(df, pl.DataFrame)
        return df.with_columns(
            pl.col(c).cast(pl.String) for c in _STRING_COLUMNS if c in df.columns
        )

    def __iter__(self) -> Iterator[pl.DataFrame]:
        for i in range(self.n_chunks):
            yield self.chunk(i)


@dataclass
class Vocab:
    """Symbols the model knows; a perturbation is the mean or sum of its members' embeddings."""

    contexts: list[str]
    readouts: list[str]
    members: list[str]
    perturbations: list[str]

    def __post_init__(self) -> None:
        self.context_index = {s: i for i, s in enumerate(self.contexts)}
        self.readout_index = {s: i for i, s in enumerate(self.readouts)}
        self.perturbation_index = {s: i for i, s in enumerate(self.perturbations)}
        member_index = {s: i for i, s in enumerate(self.members)}
        parts = [_members(p) for p in self.perturbations]
        width = max((len(p) for p in parts), default=1)
        self.member_matrix = np.full((len(parts), width), -1, dtype=np.int64)
        for i, p in enumerate(parts):
            self.member_matrix[i, : len(p)] = [member_index[m] for m in p]

    @classmethod
    def build(cls, source: RowSource) -> Vocab:
        """One streaming pass collecting every symbol."""
        ctx: set[str] = set()
        read: set[str] = set()
        pert: set[str] = set()
        for chunk in source:
            ctx.update(chunk[S.CONTEXT].unique().to_list())
            read.update(chunk[S.READOUT].unique().to_list())
            pert.update(chunk[S.PERTURBATION].unique().to_list())
        if not pert:
            raise LpmInputError(None, "no training rows")
        members = sorted({m for p in pert for m in _members(p)})
        return cls(sorted(ctx), sorted(read), members, sorted(pert))

    def to_tables(self) -> dict[str, pl.DataFrame]:
        return {
            "vocab_contexts": pl.DataFrame({"symbol": self.contexts}),
            "vocab_readouts": pl.DataFrame({"symbol": self.readouts}),
            "vocab_members": pl.DataFrame({"symbol": self.members}),
            "vocab_perturbations": pl.DataFrame({"symbol": self.perturbations}),
        }

    @classmethod
    def from_tables(cls, tables: dict[str, pl.DataFrame]) -> Vocab:
        return cls(
            *(
                tables[f"vocab_{k}"]["symbol"].to_list()
                for k in ("contexts", "readouts", "members", "perturbations")
            )
        )

    def unknown(self, rows: pl.DataFrame) -> UnknownSymbolError | None:
        """The first kind of symbol in ``rows`` the model never saw, as an error to raise."""
        for col, index in (
            (S.PERTURBATION, self.perturbation_index),
            (S.CONTEXT, self.context_index),
            (S.READOUT, self.readout_index),
        ):
            unseen = [s for s in rows[col].unique().to_list() if s not in index]
            if col == S.PERTURBATION:
                known_members = set(self.members)
                unseen = [s for s in unseen if not all(m in known_members for m in _members(s))]
            if unseen:
                return UnknownSymbolError(col, unseen)
        return None


def _members(symbol: str) -> list[str]:
    return [symbol] if symbol == S.CONTROL else symbol.split(COMBINATION_SEPARATOR)


@dataclass
class Coded:
    """One chunk as integer codes and features, aligned row by row."""

    context: np.ndarray
    members: np.ndarray  # rows × max members, -1 padded
    readout: np.ndarray
    value: np.ndarray
    binary: np.ndarray
    dose: np.ndarray  # rows × 2: log10 dose (µM) and a has-dose flag
    condition: np.ndarray  # condition id within the chunk

    def __len__(self) -> int:
        return len(self.value)

    def take(self, idx: np.ndarray) -> Coded:
        return Coded(
            *(
                getattr(self, f)[idx]
                for f in ("context", "members", "readout", "value", "binary", "dose", "condition")
            )
        )


def code_rows(rows: pl.DataFrame, vocab: Vocab) -> Coded:
    """Integer codes for rows whose symbols are all known (check with ``Vocab.unknown`` first).

    A combination never seen as a whole is coded from its members (mean/sum in the network).
    """
    ctx = rows[S.CONTEXT].replace_strict(vocab.context_index, return_dtype=pl.Int64).to_numpy()
    read = rows[S.READOUT].replace_strict(vocab.readout_index, return_dtype=pl.Int64).to_numpy()
    perts = rows[S.PERTURBATION]
    uniq = perts.unique().to_list()
    member_index = {s: i for i, s in enumerate(vocab.members)}
    width = vocab.member_matrix.shape[1]
    table = {}
    for p in uniq:
        j = vocab.perturbation_index.get(p)
        if j is not None:
            table[p] = vocab.member_matrix[j]
        else:
            ids = [member_index[m] for m in _members(p)]
            table[p] = np.array((ids + [-1] * width)[: max(width, len(ids))], dtype=np.int64)
    width = max(len(v) for v in table.values())
    codes = {p: np.pad(v, (0, width - len(v)), constant_values=-1) for p, v in table.items()}
    order = {p: i for i, p in enumerate(uniq)}
    stacked = np.stack([codes[p] for p in uniq])
    members = stacked[perts.replace_strict(order, return_dtype=pl.Int64).to_numpy()]
    value = (
        rows[S.VALUE].cast(pl.Float32).fill_null(np.nan).to_numpy()
        if S.VALUE in rows.columns
        else np.zeros(rows.height, np.float32)
    )
    binary = (
        (rows[S.READOUT_TYPE] == S.BINARY).fill_null(False).to_numpy()
        if S.READOUT_TYPE in rows.columns
        else np.zeros(rows.height, bool)
    )
    if S.DOSE in rows.columns:
        d = rows[S.DOSE].cast(pl.Float64).to_numpy()
        has = np.isfinite(d) & (d > 0)
        logd = np.where(has, np.log10(np.where(has, d, 1.0)), 0.0)
    else:
        has = np.zeros(rows.height, bool)
        logd = np.zeros(rows.height)
    keys = [c for c in (S.CONTEXT, S.PERTURBATION, S.DOSE, S.TIME) if c in rows.columns]
    cond = rows.select(pl.struct(keys).rank("dense") - 1).to_series().to_numpy().astype(np.int64)
    return Coded(
        context=ctx.astype(np.int64),
        members=members,
        readout=read.astype(np.int64),
        value=value.astype(np.float32),
        binary=binary.astype(bool),
        dose=np.stack([logd, has.astype(np.float64)], axis=1).astype(np.float32),
        condition=cond,
    )


def _tensors(c: Coded) -> dict[str, torch.Tensor]:
    return {
        "context": torch.from_numpy(c.context),
        "members": torch.from_numpy(c.members),
        "readout": torch.from_numpy(c.readout),
        "value": torch.from_numpy(c.value),
        "binary": torch.from_numpy(c.binary),
        "dose": torch.from_numpy(c.dose),
    }


def row_batches(c: Coded, batch_values: int) -> Iterator[dict[str, torch.Tensor]]:
    """Exact mode: consecutive batches of rows."""
    for start in range(0, len(c), batch_values):
        yield _tensors(c.take(np.arange(start, min(start + batch_values, len(c)))))


def profile_batches(
    c: Coded, profiles_per_batch: int, order: np.ndarray | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Fast mode: batches of whole profiles (a fixed count, so data-parallel ranks stay in step).

    Each batch carries one (context, perturbation, dose) input per profile and, per measured
    value, the profile it belongs to (``row_profile``) and its readout.
    """
    by_cond = np.argsort(c.condition, kind="stable")
    cond_sorted = c.condition[by_cond]
    starts = np.flatnonzero(np.r_[True, cond_sorted[1:] != cond_sorted[:-1]])
    ends = np.r_[starts[1:], len(cond_sorted)]
    profiles = np.arange(len(starts)) if order is None else order
    for b in range(0, len(profiles), profiles_per_batch):
        yield _profile_batch(
            c, by_cond, starts, ends, [int(p) for p in profiles[b : b + profiles_per_batch]]
        )


def profiles_per_batch(c: Coded, batch_values: int) -> int:
    """How many profiles make about ``batch_values`` measured values in this chunk."""
    n_prof = int(c.condition.max()) + 1 if len(c) else 1
    return max(1, round(batch_values / max(len(c) / n_prof, 1.0)))


def _profile_batch(
    c: Coded, by_cond: np.ndarray, starts: np.ndarray, ends: np.ndarray, profiles: list[int]
) -> dict[str, torch.Tensor]:
    rows = np.concatenate([by_cond[starts[p] : ends[p]] for p in profiles])
    counts = np.array([ends[p] - starts[p] for p in profiles])
    first = by_cond[starts[np.array(profiles)]]
    out = _tensors(c.take(rows))
    out["row_index"] = torch.from_numpy(rows)
    out["row_profile"] = torch.from_numpy(np.repeat(np.arange(len(profiles)), counts))
    out["profile_context"] = torch.from_numpy(c.context[first])
    out["profile_members"] = torch.from_numpy(c.members[first])
    out["profile_dose"] = torch.from_numpy(c.dose[first])
    return out


class StreamingRows(IterableDataset[dict[str, torch.Tensor]]):
    """Shuffled batches, chunk by chunk; each process of a data-parallel run takes an equal slice.

    The shuffle depends only on (seed, epoch, chunk), so a resumed run sees the same batches.
    """

    def __init__(
        self,
        source: RowSource,
        vocab: Vocab,
        *,
        fast: bool,
        batch_values: int,
        seed: int,
        shuffle: bool = True,
    ) -> None:
        self.source = source
        self.vocab = vocab
        self.fast = fast
        self.batch_values = batch_values
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.rank = 0
        self.world_size = 1

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        chunks = (
            rng.permutation(self.source.n_chunks)
            if self.shuffle
            else np.arange(self.source.n_chunks)
        )
        for i in chunks:
            coded = code_rows(self.source.chunk(int(i)), self.vocab)
            ok = np.isfinite(coded.value)
            coded = coded.take(np.flatnonzero(ok))
            chunk_rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            if self.fast:
                n_prof = int(coded.condition.max()) + 1 if len(coded) else 0
                order = chunk_rng.permutation(n_prof) if self.shuffle else np.arange(n_prof)
                share = len(order) // self.world_size
                mine = order[self.rank * share : (self.rank + 1) * share]
                yield from profile_batches(
                    coded, profiles_per_batch(coded, self.batch_values), mine
                )
            else:
                perm = chunk_rng.permutation(len(coded)) if self.shuffle else np.arange(len(coded))
                share = len(perm) // self.world_size
                yield from row_batches(
                    coded.take(perm[self.rank * share : (self.rank + 1) * share]), self.batch_values
                )


def describe_batch(batch: dict[str, Any]) -> int:
    """Number of measured values in a batch (what throughput counts)."""
    return int(batch["value"].shape[0])

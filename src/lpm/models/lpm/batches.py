"""Training batches for the LPM, streamed chunk by chunk and shuffled within the chunk.

Exact mode yields batches of rows; fast mode yields batches of whole profiles (conditions),
each scored against its measured readouts, with one hidden vector per profile. Chunks of an
in-memory table are coded once and kept; chunks of a store are re-read every epoch (streaming),
the next one in a background thread while the current one trains. A chunk becomes tensors once
per epoch and batches are views into them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch
from torch.utils.data import IterableDataset

from lpm.models.lpm.rows import Coded, code_table, dense_rank
from lpm.models.lpm.vocab import Vocab
from lpm.models.source import RowSource


def _row_tensors(c: Coded, idx: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Per-row tensors of a whole chunk (in ``idx`` order), to be sliced into batches."""

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a if idx is None else a[idx]))

    return {
        "context": _long(c.context, idx),
        "perturbation": _long(c.perturbation, idx),
        "readout": _long(c.readout, idx),
        "value": t(c.value),
        "binary": t(c.binary),
        "dose": t(c.dose),
    }


def _long(codes: np.ndarray, idx: np.ndarray | None = None) -> torch.Tensor:
    """Codes (at ``idx``) as an int64 tensor, the index type every torch op takes."""
    out = np.empty(len(codes) if idx is None else len(idx), dtype=np.int64)
    out[:] = codes if idx is None else codes[idx]
    return torch.from_numpy(out)


def _tables(c: Coded) -> dict[str, torch.Tensor]:
    """The chunk's shared perturbation tables (member ids, and member doses where modelled)."""
    return {k: torch.from_numpy(v) for k, v in c.tables().items()}


def _slices(
    rows: dict[str, torch.Tensor], tables: dict[str, torch.Tensor], batch_values: int
) -> Iterator[dict[str, torch.Tensor]]:
    n = len(rows["value"])
    for start in range(0, n, batch_values):
        batch = {k: v[start : start + batch_values] for k, v in rows.items()}
        batch.update(tables)
        yield batch


def row_batches(c: Coded, batch_values: int) -> Iterator[dict[str, torch.Tensor]]:
    """Exact mode: consecutive batches of rows."""
    yield from _slices(_row_tensors(c), _tables(c), batch_values)


@dataclass
class _Profiles:
    """A chunk's rows grouped by condition: ``rows[starts[p]:starts[p] + counts[p]]`` is profile p."""

    rows: np.ndarray
    starts: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, c: Coded) -> _Profiles:
        rows = np.argsort(c.condition, kind="stable")
        counts = np.bincount(c.condition, minlength=int(c.condition.max()) + 1 if len(c) else 0)
        starts = np.cumsum(counts) - counts
        return cls(rows, starts, counts)

    def __len__(self) -> int:
        return len(self.counts)


def _profile_slices(
    c: Coded, groups: _Profiles, order: np.ndarray, per_batch: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of ``per_batch`` whole profiles, in ``order``; tensors made once, then sliced."""
    order = np.asarray(order, dtype=np.int64)
    lengths = groups.counts[order]
    ends = np.cumsum(lengths)
    begins = ends - lengths
    total = int(ends[-1]) if len(ends) else 0
    # rows of the profiles in order, without a sort: each profile's run of grouped rows
    pos = np.arange(total) - np.repeat(begins - groups.starts[order], lengths)
    rows = groups.rows[pos]
    first = groups.rows[groups.starts[order]]
    profile_of_row = np.repeat(np.arange(len(order)) % per_batch, lengths)
    bounds = np.r_[0, ends][np.minimum(np.arange(0, len(order) + per_batch, per_batch), len(order))]
    t = {
        "readout": _long(c.readout, rows),
        "value": torch.from_numpy(c.value[rows]),
        "binary": torch.from_numpy(c.binary[rows]),
        "row_profile": torch.from_numpy(profile_of_row),
        "row_index": torch.from_numpy(rows),
    }
    p = {
        "profile_context": _long(c.context, first),
        "profile_perturbation": _long(c.perturbation, first),
        "profile_dose": torch.from_numpy(c.dose[first]),
    }
    tables = _tables(c)
    for b in range(-(-len(order) // per_batch)):
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        batch = {k: v[lo:hi] for k, v in t.items()}
        batch.update({k: v[b * per_batch : (b + 1) * per_batch] for k, v in p.items()})
        batch.update(tables)
        yield batch


def profile_batches(
    c: Coded, profiles_per_batch: int, order: np.ndarray | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Fast mode: batches of whole profiles (a fixed count, so data-parallel ranks stay in step).

    Each batch carries one (context, perturbation, dose) input per profile and, per measured
    value, the profile it belongs to (``row_profile``), its readout and its row (``row_index``).
    """
    groups = _Profiles.of(c)
    yield from _profile_slices(
        c, groups, np.arange(len(groups)) if order is None else order, profiles_per_batch
    )


def profiles_per_batch(c: Coded, batch_values: int) -> int:
    """How many profiles make about ``batch_values`` measured values in this chunk."""
    n_prof = int(c.condition.max()) + 1 if len(c) else 1
    return max(1, round(batch_values / max(len(c) / n_prof, 1.0)))


@dataclass
class _Chunk:
    coded: Coded
    groups: _Profiles | None  # fast mode only


#: Fast mode: a small data set (few profiles, by this chunk's count times the chunks) is cut
#: into at least this many batches per epoch, so the optimiser still takes steps.
MIN_BATCHES_PER_EPOCH = 32


class StreamingRows(IterableDataset[dict[str, torch.Tensor]]):
    """Shuffled batches, chunk by chunk; each process of a data-parallel run takes an equal slice.

    Exact mode: batches of ``batch_values`` rows. Fast mode: batches of ``batch_profiles``
    whole profiles (one MLP pass each), or of about ``batch_values`` values when that is not
    given. The shuffle depends only on (seed, epoch, chunk), so a resumed
    run sees the same batches. Chunks of an in-memory table are coded once and kept; a store's
    are read again each epoch. The next chunk's batches are prepared in a background thread
    while the current chunk trains.
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
        batch_profiles: int | None = None,
        member_conditions: bool = False,
    ) -> None:
        self.source = source
        self.member_conditions = member_conditions
        self.vocab = vocab
        self.fast = fast
        self.batch_values = batch_values
        self.seed = seed
        self.shuffle = shuffle
        self.batch_profiles = batch_profiles
        self.epoch = 0
        self.rank = 0
        self.world_size = 1
        self._cache: dict[int, _Chunk] = {}

    def _load(self, i: int) -> _Chunk:
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        coded = code_table(
            self.source.arrow_chunk(i),
            self.vocab,
            conditions=self.fast,
            member_conditions=self.member_conditions,
        )
        ok = np.isfinite(coded.value)
        if not ok.all():
            coded = coded.take(np.flatnonzero(ok))
            if self.fast:  # a condition whose values were all missing is gone: renumber
                coded.condition = dense_rank(coded.condition).astype(np.int32)
        chunk = _Chunk(coded, _Profiles.of(coded) if self.fast else None)
        if self.source.in_memory:
            self._cache[i] = chunk
        return chunk

    def _batches(self, i: int, epoch: int, rank: int, world_size: int) -> list[dict[str, Any]]:
        """All of this process's batches of chunk ``i`` in epoch ``epoch`` (views of tensors)."""
        chunk = self._load(i)
        coded = chunk.coded
        rng = np.random.default_rng([self.seed, epoch, i]) if self.shuffle else None
        if self.fast:
            assert chunk.groups is not None
            groups = chunk.groups
            order = rng.permutation(len(groups)) if rng is not None else np.arange(len(groups))
            share = len(order) // world_size
            per_batch = (
                min(
                    self.batch_profiles,
                    max(1, len(groups) * self.source.n_chunks // MIN_BATCHES_PER_EPOCH),
                )
                if self.batch_profiles
                else profiles_per_batch(coded, self.batch_values)
            )
            mine = order[rank * share : (rank + 1) * share]
            return list(_profile_slices(coded, groups, mine, per_batch))
        perm = rng.permutation(len(coded)) if rng is not None else np.arange(len(coded))
        share = len(perm) // world_size
        mine = perm[rank * share : (rank + 1) * share]
        return list(_slices(_row_tensors(coded, mine), _tables(coded), self.batch_values))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        epoch, rank, world_size = self.epoch, self.rank, self.world_size
        n = self.source.n_chunks
        rng = np.random.default_rng([self.seed, epoch])
        chunks = [int(i) for i in (rng.permutation(n) if self.shuffle else np.arange(n))]
        if not chunks:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lpm-data") as pool:
            ahead: Future[list[dict[str, Any]]] = pool.submit(
                self._batches, chunks[0], epoch, rank, world_size
            )
            for k in range(len(chunks)):
                batches = ahead.result()
                if k + 1 < len(chunks):
                    ahead = pool.submit(self._batches, chunks[k + 1], epoch, rank, world_size)
                yield from batches


def known_rows(
    val: RowSource,
    vocab: Vocab,
    *,
    fast: bool,
    batch_values: int,
    seed: int,
    member_conditions: bool = False,
) -> StreamingRows | None:
    """Validation rows the model can score (symbols seen in training), in a fixed order."""
    frames = []
    for chunk in val:
        keep = chunk.filter(vocab.seen())
        if keep.height:
            frames.append(keep)
    if not frames:
        return None
    return StreamingRows(
        # stores of a joint run differ in columns (dose, time): missing ones become null
        RowSource(frame=pl.concat(frames, how="diagonal_relaxed")),
        vocab,
        fast=fast,
        batch_values=batch_values,
        seed=seed,
        shuffle=False,
        member_conditions=member_conditions,
    )

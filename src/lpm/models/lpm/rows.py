"""Data for the LPM: symbol vocabularies, integer coding, and streaming datasets.

Rows are read chunk by chunk (a store's row groups, or slices of an in-memory table), coded to
integers and shuffled within the chunk, so training never holds the whole table in memory.
Exact mode yields batches of rows; fast mode yields batches of whole profiles (conditions), each
scored against its measured readouts, with one hidden vector per profile.

Coding is vectorised: a symbol column is dictionary-encoded (a store's row groups already are,
on disk) and its small dictionary is mapped to vocabulary indices with one lookup array, so no
per-row string work is done. Chunks of an in-memory table are coded once and kept; chunks of a
store are re-read every epoch (streaming), the next one in a background thread while the
current one trains. A chunk becomes tensors once per epoch and batches are views into them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import IterableDataset

from lpm.data import schema as S
from lpm.data.store import PerturbationStore
from lpm.data.symbols import COMBINATION_SEPARATOR
from lpm.errors import LpmInputError, UnknownSymbolError

CHUNK_ROWS = 262_144
_STRING_COLUMNS = (S.CONTEXT, S.PERTURBATION, S.READOUT, S.READOUT_TYPE)
_NEEDED = (*S.KEY_COLUMNS, S.VALUE, S.DOSE, S.TIME, S.READOUT_TYPE)


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
    time, readout) decides every row alike in whichever row group it lies, identically in
    every process and every epoch. Rows, not whole profiles: a perturbation measured in one
    context only would otherwise leave training whole, and the model could not score it.
    """

    seed: int
    fraction: float
    held: bool  # True: the held-out rows; False: all the others

    def mask(self, table: pa.Table) -> np.ndarray:
        keys = [c for c in (S.CONTEXT, S.PERTURBATION, S.DOSE, S.TIME) if c in table.column_names]
        df = pl.from_arrow(table.select([*keys, S.READOUT]))
        assert isinstance(df, pl.DataFrame)
        profile = df.select(
            pl.concat_str(
                [pl.col(c).cast(pl.String).fill_null("") for c in keys], separator="\x1f"
            ).alias("key")
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

    def arrow_chunk(self, i: int, columns: tuple[str, ...] = _NEEDED) -> pa.Table:
        """Chunk ``i`` as Arrow (a store's symbol columns stay dictionary-encoded: no strings)."""
        if self.frame is not None:
            part = self.frame.slice(i * self.chunk_rows, self.chunk_rows)
            return part.select([c for c in columns if c in part.columns]).to_arrow()
        store, group = self._index[i]
        cols = [c for c in columns if c in store.columns]
        if self.holdout is None:
            return store._file.read_row_group(group, columns=cols)
        keys = [
            c for c in (S.CONTEXT, S.PERTURBATION, S.DOSE, S.TIME, S.READOUT) if c in store.columns
        ]
        table = store._file.read_row_group(group, columns=list(dict.fromkeys([*cols, *keys])))
        return table.filter(pa.array(self.holdout.mask(table))).select(cols)

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
        self.member_index = {s: i for i, s in enumerate(self.members)}
        parts = [_members(p) for p in self.perturbations]
        width = max((len(p) for p in parts), default=1)
        self.member_matrix = np.full((len(parts), width), -1, dtype=np.int64)
        for i, p in enumerate(parts):
            self.member_matrix[i, : len(p)] = [self.member_index[m] for m in p]

    @classmethod
    def build(cls, source: RowSource) -> Vocab:
        """One streaming pass collecting every symbol (a store's dictionaries, not its rows)."""
        found: dict[str, set[str]] = {c: set() for c in S.KEY_COLUMNS}
        for i in range(source.n_chunks):
            if source.frame is not None:
                part = source.frame.slice(i * source.chunk_rows, source.chunk_rows)
                for col, seen in found.items():
                    seen.update(part[col].drop_nulls().unique().to_list())
            else:
                table = source.arrow_chunk(i, S.KEY_COLUMNS)
                for col, seen in found.items():
                    seen.update(_unique_symbols(table.column(col)))
        if not found[S.PERTURBATION]:
            raise LpmInputError(None, "no training rows")
        pert = found[S.PERTURBATION]
        members = sorted({m for p in pert for m in _members(p)})
        return cls(sorted(found[S.CONTEXT]), sorted(found[S.READOUT]), members, sorted(pert))

    def with_control(self) -> Vocab:
        """The same symbols plus the control (a store without control rows, anchored on it)."""
        return Vocab(
            self.contexts,
            self.readouts,
            sorted({*self.members, S.CONTROL}),
            sorted({*self.perturbations, S.CONTROL}),
        )

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
                unseen = [s for s in unseen if not self.known_members(s)]
            if unseen:
                return UnknownSymbolError(col, unseen)
        return None

    def known_members(self, symbol: str | None) -> bool:
        """Whether every member of a (combination) perturbation is known."""
        return symbol is not None and all(m in self.member_index for m in _members(symbol))


def _members(symbol: str) -> list[str]:
    return [symbol] if symbol == S.CONTROL else symbol.split(COMBINATION_SEPARATOR)


# ---- coding -------------------------------------------------------------------------------------
def _dictionary_chunks(col: pa.ChunkedArray) -> Iterator[tuple[list[Any], np.ndarray, np.ndarray]]:
    """Per Arrow chunk: its dictionary words, each row's position in them, and a validity mask."""
    for arr in col.chunks:
        if not pa.types.is_dictionary(arr.type):
            if pa.types.is_string_view(arr.type):
                arr = arr.cast(pa.large_string())
            arr = pc.dictionary_encode(arr)
        idx = arr.indices
        if idx.null_count == 0:
            valid = np.ones(len(arr), bool)
        else:
            valid = np.asarray(idx.is_valid().to_numpy(zero_copy_only=False))
            idx = idx.fill_null(0)
        pos = np.asarray(idx.to_numpy(zero_copy_only=False))
        yield arr.dictionary.to_pylist(), pos, valid


def _unique_symbols(col: pa.ChunkedArray) -> set[str]:
    """The distinct non-null symbols of a column (only the dictionary entries rows use)."""
    out: set[str] = set()
    for words, pos, valid in _dictionary_chunks(col):
        used = np.flatnonzero(np.bincount(pos[valid], minlength=len(words)))
        out.update(words[j] for j in used)
    return out


def _lookup(col: pa.ChunkedArray, index: dict[str, int], name: str) -> np.ndarray:
    """Vocabulary index of every row of a symbol column; unknown (or empty) symbols raise."""
    out = []
    for words, pos, valid in _dictionary_chunks(col):
        out.append(_codes(words, pos, valid, index, name))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _codes(
    words: list[Any], pos: np.ndarray, valid: np.ndarray, index: dict[str, int], name: str
) -> np.ndarray:
    """Map dictionary positions to vocabulary indices through one small lookup array."""
    lut = np.fromiter((index.get(w, -1) for w in words), dtype=np.int64, count=len(words))
    codes = lut[pos] if len(lut) else np.full(len(pos), -1, np.int64)
    codes[~valid] = -1
    bad = codes < 0
    if bad.any():
        if not valid.all():
            raise LpmInputError(None, f"column {name!r} has empty value(s)")
        raise UnknownSymbolError(name, [str(words[j]) for j in np.unique(pos[bad])])
    return codes


def _perturbation_codes(col: pa.ChunkedArray, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's perturbation into a member table (vocabulary first, then unseen
    combinations of known members, coded from their members)."""
    index = dict(vocab.perturbation_index)
    extra: list[list[int]] = []
    out = []
    for words, pos, valid in _dictionary_chunks(col):
        for w in words:
            if w not in index and vocab.known_members(w):
                index[w] = len(vocab.perturbations) + len(extra)
                extra.append([vocab.member_index[m] for m in _members(w)])
        out.append(_codes(words, pos, valid, index, S.PERTURBATION))
    table = vocab.member_matrix
    if extra:
        width = max(table.shape[1], max(len(e) for e in extra))
        table = np.full((len(vocab.perturbations) + len(extra), width), -1, dtype=np.int64)
        table[: len(vocab.perturbations), : vocab.member_matrix.shape[1]] = vocab.member_matrix
        for j, ids in enumerate(extra):
            table[len(vocab.perturbations) + j, : len(ids)] = ids
    return (np.concatenate(out) if out else np.zeros(0, np.int64)), table


def _float_column(table: pa.Table, name: str) -> np.ndarray | None:
    if name not in table.column_names:
        return None
    return np.asarray(table.column(name).to_numpy(), dtype=np.float64)


def _levels(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense codes of a float column (NaN/null is one level of its own), and the level count."""
    codes = _dense_rank(np.where(np.isnan(x), np.inf, x))
    return codes, int(codes.max()) + 1 if len(codes) else 1


def _dense_rank(x: np.ndarray) -> np.ndarray:
    """0, 1, ... in the order of the distinct values of ``x``."""
    if len(x) == 0:
        return np.zeros(0, np.int64)
    return pl.Series(x).rank("dense").to_numpy().astype(np.int64) - 1


@dataclass
class Coded:
    """One chunk as integer codes and features, aligned row by row.

    A row's perturbation is an index into ``perturbation_members`` (member ids, -1 padded),
    which is shared by all rows; ``members`` gives the per-row view.
    """

    context: np.ndarray
    perturbation: np.ndarray
    readout: np.ndarray
    value: np.ndarray
    binary: np.ndarray
    dose: np.ndarray  # rows × 4: log10 dose (µM), has dose, log10 time (h), has time
    condition: np.ndarray  # condition id within the chunk
    perturbation_members: np.ndarray  # perturbation index → member ids (not per row)

    def __len__(self) -> int:
        return len(self.value)

    @property
    def members(self) -> np.ndarray:
        """Rows × max members, -1 padded."""
        return self.perturbation_members[self.perturbation]

    def take(self, idx: np.ndarray) -> Coded:
        rows = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name in _ROW_FIELDS}
        return Coded(**rows, perturbation_members=self.perturbation_members)


_ROW_FIELDS = ("context", "perturbation", "readout", "value", "binary", "dose", "condition")


def code_table(table: pa.Table, vocab: Vocab, *, conditions: bool = True) -> Coded:
    """Integer codes for Arrow rows (symbols dictionary-encoded or plain strings).

    Unknown contexts, readouts or perturbations (unless every member is known) raise; a
    combination never seen as a whole is coded from its members (mean/sum in the network).
    Without ``conditions`` every row gets condition 0 (exact mode does not group rows).
    """
    n = table.num_rows
    ctx = _lookup(table.column(S.CONTEXT), vocab.context_index, S.CONTEXT)
    read = _lookup(table.column(S.READOUT), vocab.readout_index, S.READOUT)
    pert, members = _perturbation_codes(table.column(S.PERTURBATION), vocab)
    value = _float_column(table, S.VALUE)
    value32 = value.astype(np.float32) if value is not None else np.zeros(n, np.float32)
    binary = np.zeros(n, bool)
    if S.READOUT_TYPE in table.column_names:
        parts = []
        for words, pos, valid in _dictionary_chunks(table.column(S.READOUT_TYPE)):
            is_binary = np.array([w == S.BINARY for w in words] or [False])
            parts.append(is_binary[pos] & valid)
        binary = np.concatenate(parts) if parts else binary
    dose = _float_column(table, S.DOSE)
    dose_features = np.zeros((n, 4), np.float32)
    for j, x in enumerate((dose, _float_column(table, S.TIME))):
        if x is not None:
            has = np.isfinite(x) & (x > 0)
            dose_features[:, 2 * j] = np.log10(np.where(has, x, 1.0))
            dose_features[:, 2 * j + 1] = has
    cond = np.zeros(n, np.int32)
    if conditions:
        # condition = (context, perturbation, dose, time): one integer key, then dense ranks
        key = ctx * len(members) + pert
        for name in (S.DOSE, S.TIME):
            x = dose if name == S.DOSE else _float_column(table, name)
            if x is not None and not np.isnan(x).all():
                codes, levels = _levels(x)
                key = key * levels + codes
        cond = _dense_rank(key).astype(np.int32)
    # int32 codes: half the memory of a kept chunk (tensors are made int64 per batch source)
    return Coded(
        context=ctx.astype(np.int32),
        perturbation=pert.astype(np.int32),
        readout=read.astype(np.int32),
        value=value32,
        binary=binary,
        dose=dose_features,
        condition=cond,
        perturbation_members=members,
    )


def code_rows(rows: pl.DataFrame, vocab: Vocab) -> Coded:
    """Integer codes for rows whose symbols are all known (check with ``Vocab.unknown`` first).

    A combination never seen as a whole is coded from its members (mean/sum in the network).
    """
    cols = [c for c in _NEEDED if c in rows.columns]
    return code_table(rows.select(cols).to_arrow(), vocab)


# ---- batches ------------------------------------------------------------------------------------
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


def _slices(
    rows: dict[str, torch.Tensor], members: torch.Tensor, batch_values: int
) -> Iterator[dict[str, torch.Tensor]]:
    n = len(rows["value"])
    for start in range(0, n, batch_values):
        batch = {k: v[start : start + batch_values] for k, v in rows.items()}
        batch["perturbation_members"] = members
        yield batch


def row_batches(c: Coded, batch_values: int) -> Iterator[dict[str, torch.Tensor]]:
    """Exact mode: consecutive batches of rows."""
    yield from _slices(_row_tensors(c), torch.from_numpy(c.perturbation_members), batch_values)


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
    members = torch.from_numpy(c.perturbation_members)
    for b in range(-(-len(order) // per_batch)):
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        batch = {k: v[lo:hi] for k, v in t.items()}
        batch.update({k: v[b * per_batch : (b + 1) * per_batch] for k, v in p.items()})
        batch["perturbation_members"] = members
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
    ) -> None:
        self.source = source
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
        coded = code_table(self.source.arrow_chunk(i), self.vocab, conditions=self.fast)
        ok = np.isfinite(coded.value)
        if not ok.all():
            coded = coded.take(np.flatnonzero(ok))
            if self.fast:  # a condition whose values were all missing is gone: renumber
                coded.condition = _dense_rank(coded.condition).astype(np.int32)
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
        members = torch.from_numpy(coded.perturbation_members)
        return list(_slices(_row_tensors(coded, mine), members, self.batch_values))

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


def describe_batch(batch: dict[str, Any]) -> int:
    """Number of measured values in a batch (what throughput counts)."""
    return int(batch["value"].shape[0])

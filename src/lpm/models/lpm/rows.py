"""Rows as integer codes for the LPM: each symbol its vocabulary index, dose and time as
features, each row's condition (profile) within its chunk.

Coding is vectorised: a symbol column's small dictionary is mapped to vocabulary indices with
one lookup array, so no per-row string work is done. A combination never seen as a whole is
coded from its members (the network takes their mean or sum). A model of doses given per
member (``member_conditions``) also gives each member its own dose and time features (its own
where given, else the row's): each distinct (perturbation, member features) is one more entry
of the perturbation table, with those features beside its member ids.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from lpm.data import schema as S
from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.lpm.vocab import Vocab, dictionary_chunks, member_symbols
from lpm.models.source import NEEDED_COLUMNS


def _lookup(col: pa.ChunkedArray, index: dict[str, int], name: str) -> np.ndarray:
    """Vocabulary index of every row of a symbol column; unknown (or empty) symbols raise."""
    out = []
    for words, pos, valid in dictionary_chunks(col):
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
    for words, pos, valid in dictionary_chunks(col):
        for w in words:
            if w not in index and vocab.known_members(w):
                index[w] = len(vocab.perturbations) + len(extra)
                extra.append([vocab.member_index[m] for m in member_symbols(w)])
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
    codes = dense_rank(np.where(np.isnan(x), np.inf, x))
    return codes, int(codes.max()) + 1 if len(codes) else 1


def dense_rank(x: np.ndarray) -> np.ndarray:
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
    #: perturbation index → member × the 4 dose features (models of member doses only)
    perturbation_conditions: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.value)

    @property
    def members(self) -> np.ndarray:
        """Rows × max members, -1 padded."""
        return self.perturbation_members[self.perturbation]

    def take(self, idx: np.ndarray) -> Coded:
        rows = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name in _ROW_FIELDS}
        return Coded(
            **rows,
            perturbation_members=self.perturbation_members,
            perturbation_conditions=self.perturbation_conditions,
        )

    def tables(self) -> dict[str, np.ndarray]:
        """The shared perturbation tables a batch carries beside its rows."""
        out = {"perturbation_members": self.perturbation_members}
        if self.perturbation_conditions is not None:
            out["perturbation_conditions"] = self.perturbation_conditions
        return out


_ROW_FIELDS = ("context", "perturbation", "readout", "value", "binary", "dose", "condition")


def code_table(
    table: pa.Table, vocab: Vocab, *, conditions: bool = True, member_conditions: bool = False
) -> Coded:
    """Integer codes for Arrow rows (symbols dictionary-encoded or plain strings).

    Unknown contexts, readouts or perturbations (unless every member is known) raise; a
    combination never seen as a whole is coded from its members (mean/sum in the network).
    Without ``conditions`` every row gets condition 0 (exact mode does not group rows). With
    ``member_conditions`` each member gets its own dose features; without, rows that give
    doses per member are refused.
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
        for words, pos, valid in dictionary_chunks(table.column(S.READOUT_TYPE)):
            is_binary = np.array([w == S.BINARY for w in words] or [False])
            parts.append(is_binary[pos] & valid)
        binary = np.concatenate(parts) if parts else binary
    dose = _float_column(table, S.DOSE)
    dose_features = np.zeros((n, 4), np.float32)
    for j, x in enumerate((dose, _float_column(table, S.TIME))):
        if x is not None:
            dose_features[:, 2 * j : 2 * j + 2] = _features(x)
    cond_table = None
    if member_conditions:
        pert, members, cond_table = _member_variants(table, pert, members, dose_features)
    else:
        _refuse_member_values(table)
    cond = np.zeros(n, np.int32)
    if conditions:
        # condition = (context, perturbation, dose, time): one integer key, then dense ranks
        key = ctx * len(members) + pert
        for name in (S.DOSE, S.TIME):
            x = dose if name == S.DOSE else _float_column(table, name)
            if x is not None and not np.isnan(x).all():
                codes, levels = _levels(x)
                key = key * levels + codes
        cond = dense_rank(key).astype(np.int32)
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
        perturbation_conditions=cond_table,
    )


def code_rows(rows: pl.DataFrame, vocab: Vocab, *, member_conditions: bool = False) -> Coded:
    """Integer codes for rows whose symbols are all known (check with ``Vocab.unknown`` first).

    A combination never seen as a whole is coded from its members (mean/sum in the network).
    """
    cols = [c for c in NEEDED_COLUMNS if c in rows.columns]
    return code_table(rows.select(cols).to_arrow(), vocab, member_conditions=member_conditions)


def _features(x: np.ndarray) -> np.ndarray:
    """``[log10 x, has x]`` per value (no value, or one ≤ 0: ``[0, 0]``)."""
    has = np.isfinite(x) & (x > 0)
    return np.stack([np.log10(np.where(has, x, 1.0)), has], axis=-1).astype(np.float32)


def _member_values(table: pa.Table, name: str, width: int) -> np.ndarray | None:
    """Rows × ``width`` of a per-member column (NaN where not given), None without it."""
    if name not in table.column_names:
        return None
    lists = pl.Series(table.column(name).combine_chunks()).cast(pl.List(pl.Float64))
    out = np.full((len(lists), width), np.nan)
    for j in range(width):
        out[:, j] = lists.list.get(j, null_on_oob=True).fill_null(np.nan).to_numpy()
    return out


def _member_variants(
    table: pa.Table, pert: np.ndarray, members: np.ndarray, row_features: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's perturbation re-coded as (perturbation, its members' dose features).

    A member's dose (time) is its own where the row gives one per member, else the row's
    (:func:`lpm.data.members.explode_members`). Rows whose members have no dose or time keep
    their perturbation (zero features); the others point to a new table entry per distinct
    (perturbation, features), holding the same member ids and those features.
    """
    n, width = len(pert), members.shape[1]
    feats = np.zeros((n, width, 4), np.float32)
    present = members[pert] >= 0
    for k, name in enumerate(S.MEMBER_COLUMNS):
        own = _member_values(table, name, width)
        row = np.repeat(row_features[:, None, 2 * k : 2 * k + 2], width, axis=1)
        if own is not None:
            given = ~np.isnan(own[:, :1])  # a row gives all its members' values or none
            row = np.where(given[:, :, None], _features(own), row)
        feats[:, :, 2 * k : 2 * k + 2] = np.where(present[:, :, None], row, 0.0)
    dosed = np.flatnonzero(feats.reshape(n, -1).any(axis=1))
    cond_table = np.zeros((len(members), width, 4), np.float32)
    if len(dosed) == 0:
        return pert, members, cond_table
    key = np.concatenate(
        [pert[dosed, None].astype(np.float64), feats[dosed].reshape(len(dosed), -1)], 1
    )
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    base = uniq[:, 0].astype(np.int64)
    new_pert = pert.copy()
    new_pert[dosed] = len(members) + inverse.reshape(-1)
    members = np.concatenate([members, members[base]])
    cond_table = np.concatenate([cond_table, uniq[:, 1:].reshape(-1, width, 4).astype(np.float32)])
    return new_pert, members, cond_table


def _refuse_member_values(table: pa.Table) -> None:
    """A model of pooled member doses cannot read doses given per member (one line)."""
    for name in S.MEMBER_COLUMNS:
        if name in table.column_names and table.column(name).null_count < table.num_rows:
            raise LpmInputError(
                None,
                f"rows give doses/times per member ({name!r}), but the model was trained "
                "without them: train it on rows that have them",
            )

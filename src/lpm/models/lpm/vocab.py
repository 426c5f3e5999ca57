"""The symbols an LPM knows (contexts, readouts, perturbations and their members), read from
rows without per-row string work: a symbol column is dictionary-encoded (a store's row groups
already are, on disk), so only its small dictionary is looked at."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from lpm.data import schema as S
from lpm.data.symbols import COMBINATION_SEPARATOR
from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.source import RowSource


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
        parts = [member_symbols(p) for p in self.perturbations]
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
                part = source.chunk(i)
                for col, seen in found.items():
                    seen.update(part[col].drop_nulls().unique().to_list())
            else:
                table = source.arrow_chunk(i, S.KEY_COLUMNS)
                for col, seen in found.items():
                    seen.update(unique_symbols(table.column(col)))
        if not found[S.PERTURBATION]:
            raise LpmInputError(None, "no training rows")
        pert = found[S.PERTURBATION]
        members = sorted({m for p in pert for m in member_symbols(p)})
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
        return symbol is not None and all(m in self.member_index for m in member_symbols(symbol))

    def supported(self, rows: pl.DataFrame) -> np.ndarray:
        """Which rows a model of these symbols can predict: a known context and readout, and a
        known perturbation or a combination of known members."""
        ctx = rows[S.CONTEXT].is_in(self.contexts).to_numpy()
        read = rows[S.READOUT].is_in(self.readouts).to_numpy()
        uniq = rows[S.PERTURBATION].unique().to_list()
        known = [p for p in uniq if p in self.perturbation_index or self.known_members(p)]
        return ctx & read & rows[S.PERTURBATION].is_in(known).to_numpy()

    def known(self) -> dict[str, set[str]]:
        """The symbols, by column (what an unknown-symbol error names the others against)."""
        return {
            S.CONTEXT: set(self.contexts),
            S.READOUT: set(self.readouts),
            S.PERTURBATION: set(self.perturbations),
        }

    def seen(self) -> pl.Expr:
        """Rows whose context, readout and perturbation are all among the symbols (e.g. the
        validation rows a model can score), as a filter."""
        return (
            pl.col(S.CONTEXT).is_in(self.contexts)
            & pl.col(S.READOUT).is_in(self.readouts)
            & pl.col(S.PERTURBATION).is_in(self.perturbations)
        )


def member_symbols(symbol: str) -> list[str]:
    return [symbol] if symbol == S.CONTROL else symbol.split(COMBINATION_SEPARATOR)


def dictionary_chunks(col: pa.ChunkedArray) -> Iterator[tuple[list[Any], np.ndarray, np.ndarray]]:
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


def unique_symbols(col: pa.ChunkedArray) -> set[str]:
    """The distinct non-null symbols of a column (only the dictionary entries rows use)."""
    out: set[str] = set()
    for words, pos, valid in dictionary_chunks(col):
        used = np.flatnonzero(np.bincount(pos[valid], minlength=len(words)))
        out.update(words[j] for j in used)
    return out

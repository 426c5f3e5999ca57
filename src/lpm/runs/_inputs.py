"""The rows a run reads: a long table as given, or a store (open or by its folder) read whole.

One way for every discovery run (and the CLI's stores) to turn its ``data`` into rows, and one
way to make a task's error about "its input" name the store it came from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

import polars as pl

from lpm.errors import LpmInputError

if TYPE_CHECKING:
    from lpm.data.store import PerturbationStore

#: What a run's ``data`` may be.
Data: TypeAlias = "pl.DataFrame | PerturbationStore | str | Path"
#: The names tasks give the table they were handed, in their errors' source.
TASK_INPUT: Final = frozenset({"frame", "data"})


def read_rows(
    data: Data, *, columns: Sequence[str] | None = None
) -> tuple[pl.DataFrame, Path | None]:
    """The rows of ``data`` and the folder of the store they came from (None for a table).

    A table is used as it is; of a store only ``columns`` (those it has) are read, if given.
    """
    if isinstance(data, pl.DataFrame):
        return data, None
    if isinstance(data, str | Path):
        from lpm.data.store import open_store

        data = open_store(data)
    cols = [c for c in columns if c in data.columns] if columns is not None else None
    return data.read(columns=cols), data.path


def stores_data(paths: Sequence[Path]) -> pl.DataFrame | Path:
    """Stores given on the command line as a run's ``data``: one as its folder (read by the run,
    whose errors then name it), several joined into one table."""
    from lpm.data.store import read_stores

    return paths[0] if len(paths) == 1 else read_stores(paths)


@contextlib.contextmanager
def naming(store: Path | None) -> Iterator[None]:
    """A task's error about its input table names ``store`` instead (when the rows came from one)."""
    try:
        yield
    except LpmInputError as err:
        if store is not None and err.source in TASK_INPUT:
            raise LpmInputError(store, err.problem) from None
        raise


__all__ = ["TASK_INPUT", "Data", "naming", "read_rows", "stores_data"]

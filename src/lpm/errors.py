"""Errors that reach the user as one line: what went wrong and where."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class LpmError(Exception):
    """Base of every error lpm raises on purpose; the CLI prints it as one line."""


class LpmInputError(LpmError, ValueError):
    """Bad input: the message names the file (or column) and the problem."""

    def __init__(self, source: str | Path | None, problem: str) -> None:
        self.source = str(source) if source is not None else None
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)


class UnknownSymbolError(LpmError, KeyError):
    """A symbol the model never saw; never silently mapped to control."""

    def __init__(self, kind: str, symbols: Iterable[str], *, limit: int = 10) -> None:
        items = sorted(set(symbols))
        self.kind = kind
        self.symbols = items
        shown = ", ".join(items[:limit]) + (
            f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
        )
        super().__init__(f"{len(items)} unknown {kind}(s) never seen in training: {shown}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Interrupted(LpmError):
    """A run stopped by the user (Ctrl-C); the message says what was kept. The CLI exits 130."""


def first_line(exc: BaseException, *, limit: int = 300) -> str:
    """The first line of another library's error message (its type where it has none), cut to
    ``limit`` characters: what a one-line error repeats of what the reader was told."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]

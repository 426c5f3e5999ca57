"""Perturbation symbols say what they are: ``TYPE:TARGET``, combinations joined by ``+``.

Examples: ``CRISPRi:MAPK1``, ``CRISPRa:KLF1+CRISPRa:MAP2K6``, ``compound:trametinib``, ``control``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lpm.data.schema import CONTROL
from lpm.errors import LpmInputError

PERTURBATION_TYPES: Final = ("CRISPRi", "CRISPRa", "CRISPRko", "shRNA", "compound", "ORF")
GENETIC_TYPES: Final = frozenset({"CRISPRi", "CRISPRa", "CRISPRko", "shRNA", "ORF"})
COMBINATION_SEPARATOR: Final = "+"
TYPE_SEPARATOR: Final = ":"


@dataclass(frozen=True, order=True)
class Member:
    """One agent of a perturbation: its modality and what it targets (a gene or a compound)."""

    kind: str
    target: str

    def __str__(self) -> str:
        return f"{self.kind}{TYPE_SEPARATOR}{self.target}"


def make_symbol(kind: str, target: str) -> str:
    """Build a single perturbation symbol, checking the modality is one lpm knows."""
    if kind not in PERTURBATION_TYPES:
        raise LpmInputError(
            None,
            f"unknown perturbation type {kind!r}; expected one of {', '.join(PERTURBATION_TYPES)}",
        )
    target = target.strip()
    if not target or COMBINATION_SEPARATOR in target or TYPE_SEPARATOR in target:
        raise LpmInputError(None, f"invalid perturbation target {target!r} for type {kind}")
    return f"{kind}{TYPE_SEPARATOR}{target}"


def combine(symbols: list[str]) -> str:
    """A combination symbol with members in a canonical (sorted) order, so A+B == B+A."""
    members = sorted({m for s in symbols for m in s.split(COMBINATION_SEPARATOR)})
    return COMBINATION_SEPARATOR.join(members)


def parse(symbol: str) -> tuple[Member, ...]:
    """The members of a perturbation symbol; the control has none."""
    if symbol == CONTROL:
        return ()
    members = []
    for part in symbol.split(COMBINATION_SEPARATOR):
        kind, sep, target = part.partition(TYPE_SEPARATOR)
        if not sep or kind not in PERTURBATION_TYPES or not target:
            raise LpmInputError(
                None,
                f"malformed perturbation symbol {symbol!r} (expected TYPE:TARGET[+TYPE:TARGET], e.g. CRISPRi:MAPK1)",
            )
        members.append(Member(kind, target))
    return tuple(members)


def members(symbol: str) -> list[str]:
    """Single-agent symbols making up a perturbation (one element for a single)."""
    return [] if symbol == CONTROL else symbol.split(COMBINATION_SEPARATOR)


def is_combination(symbol: str) -> bool:
    return COMBINATION_SEPARATOR in symbol


def perturbation_type(symbol: str) -> str:
    """``control``, a single modality, or ``combination`` for several agents."""
    if symbol == CONTROL:
        return CONTROL
    if is_combination(symbol):
        return "combination"
    return symbol.partition(TYPE_SEPARATOR)[0]


def genetic_targets(symbol: str) -> list[tuple[str, str]] | None:
    """(type, gene) of each member of a genetic perturbation; None if any member is not genetic."""
    out = []
    for member in members(symbol):
        kind, sep, target = member.partition(TYPE_SEPARATOR)
        if not sep or kind not in GENETIC_TYPES:
            return None
        out.append((kind, target))
    return out

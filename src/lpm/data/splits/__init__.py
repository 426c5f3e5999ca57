"""Seeded train/val/test splits of the long table, one kind per generalisation question.

:func:`make_split` looks a kind up by name (:mod:`lpm.data.splits.registry`); the built-in
kinds are in :mod:`lpm.data.splits.kinds`, the contract in :mod:`lpm.data.splits.base`.
"""

from lpm.data.splits.base import GROUP, HoldOut, Split, SplitKind, describe_split
from lpm.data.splits.registry import (
    SPLIT_KINDS,
    describe_split_kind,
    get_split_kind,
    list_split_kinds,
    make_split,
    register_split_kind,
)

__all__ = [
    "GROUP",
    "SPLIT_KINDS",
    "HoldOut",
    "Split",
    "SplitKind",
    "describe_split",
    "describe_split_kind",
    "get_split_kind",
    "list_split_kinds",
    "make_split",
    "register_split_kind",
]

"""Data in and out: the PRC store, ingest of real formats, the simulator, splits."""

from lpm.data.io.base import IngestOptions
from lpm.data.io.ingest import ingest
from lpm.data.splits import (
    SPLIT_KINDS,
    Split,
    describe_split,
    describe_split_kind,
    get_split_kind,
    list_split_kinds,
    make_split,
    register_split_kind,
)
from lpm.data.store import PerturbationStore, merge_stores, open_store, write_store

__all__ = [
    "SPLIT_KINDS",
    "IngestOptions",
    "PerturbationStore",
    "Split",
    "describe_split",
    "describe_split_kind",
    "get_split_kind",
    "ingest",
    "list_split_kinds",
    "make_split",
    "merge_stores",
    "open_store",
    "register_split_kind",
    "write_store",
]

"""Data in and out: the PRC store, ingest of real formats, the simulator, splits."""

from lpm.data.io.base import IngestOptions
from lpm.data.io.ingest import ingest
from lpm.data.splits import SPLIT_KINDS, Split, describe_split, make_split
from lpm.data.store import PerturbationStore, merge_stores, open_store, write_store

__all__ = [
    "SPLIT_KINDS",
    "IngestOptions",
    "PerturbationStore",
    "Split",
    "describe_split",
    "ingest",
    "make_split",
    "merge_stores",
    "open_store",
    "write_store",
]

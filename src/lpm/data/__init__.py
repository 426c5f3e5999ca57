"""Data: the store (one long table ``context, perturbation, readout, value``), splits by name,
profiles, AnnData conversion; readers of real formats in :mod:`lpm.data.io`."""

from lpm.data.convert import from_anndata, to_anndata
from lpm.data.io.base import IngestOptions
from lpm.data.io.ingest import ingest
from lpm.data.profiles import mean_values, profile_matrix, profiles
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
from lpm.data.store import PerturbationStore, merge_stores, open_store, read_stores, write_store

__all__ = [
    "SPLIT_KINDS",
    "IngestOptions",
    "PerturbationStore",
    "Split",
    "describe_split",
    "describe_split_kind",
    "from_anndata",
    "get_split_kind",
    "ingest",
    "list_split_kinds",
    "make_split",
    "mean_values",
    "merge_stores",
    "open_store",
    "profile_matrix",
    "profiles",
    "read_stores",
    "register_split_kind",
    "to_anndata",
    "write_store",
]

"""Modules that 0.2.0 moved: importing one by its old name says where it went, instead of a bare
``No module named``."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Final

#: Old public module → where its contents live now.
MOVED: Final = {
    "lpm.data.ingest": "lpm.data.io (ingest, IngestOptions)",
    "lpm.data.simulate": "lpm.sim (simulate)",
    "lpm.data.gene_graph": "lpm.priors.gene_graph",
    "lpm.data.gene_features": "lpm.priors.go",
    "lpm.data.regulon_features": "lpm.priors.regulons",
    "lpm.data.compound_features": "lpm.priors.compound_features",
    "lpm.data.context_features": "lpm.priors.context_features",
    "lpm.data.priors": "lpm.priors.go_embedding",
    "lpm.models.workflow": "lpm.runs.train and lpm.runs.predict",
    "lpm.evaluation.workflow": "lpm.runs.benchmark and lpm.runs.evaluate",
    "lpm.design.workflow": "lpm.runs.design",
    "lpm.design.outputs": "lpm.runs.design",
    "lpm.design.models": "lpm.design.manager",
    "lpm.tasks.references": "lpm.priors (compounds, networks)",
    "lpm.reports.benchmark_report": "lpm.reports.benchmark",
}


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Consulted last: only a name no other finder knows reaches it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in MOVED:
            raise ModuleNotFoundError(
                f"{fullname} moved in lpm 0.2.0: use {MOVED[fullname]} (see CHANGELOG.md)",
                name=fullname,
            )
        return None


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())

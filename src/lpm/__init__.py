"""lpm: one model over Perturbation, Readout and Context.

Namespaces, in scanpy's spirit (each loads on first use, so ``import lpm`` stays light):

- ``lpm.io``: read real files into a store (``lpm.io.ingest``);
- ``lpm.data``: the store, splits, profiles, AnnData conversion;
- ``lpm.models``: every model by name (``get_model``, ``load_model``), one contract;
- ``lpm.evaluation``: the evaluation panel and benchmarks;
- ``lpm.tl``: discovery tasks (mechanisms, gene networks, explanations, embeddings, interactions);
- ``lpm.design``: which experiments to run next;
- ``lpm.pl``: figures from result tables;
- ``lpm.sim``: a simulated world with known ground truth; ``lpm.priors``: prior knowledge.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from lpm._utils.moved import install as _install_moved
from lpm.errors import LpmError, LpmInputError, UnknownSymbolError

__version__ = "0.2.0"

#: Public namespaces and the package behind each (loaded lazily by ``__getattr__``).
_NAMESPACES = {
    "io": "lpm.data.io",
    "data": "lpm.data",
    "models": "lpm.models",
    "evaluation": "lpm.evaluation",
    "tl": "lpm.tasks",
    "design": "lpm.design",
    "pl": "lpm.pl",
    "sim": "lpm.sim",
    "priors": "lpm.priors",
}

_install_moved()  # an old module path says where it went

__all__ = ["LpmError", "LpmInputError", "UnknownSymbolError", "__version__", *_NAMESPACES]


def __getattr__(name: str) -> ModuleType:
    if name in _NAMESPACES:
        module = importlib.import_module(_NAMESPACES[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'lpm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

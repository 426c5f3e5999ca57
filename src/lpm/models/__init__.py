"""Models by name: one contract (fit/predict/save), baselines and the registry."""

from lpm.models.base import NotFittedError, PerturbationModel
from lpm.models.registry import (
    BASELINES,
    describe_model,
    get_model,
    list_models,
    load_model,
    make_model,
    register_model,
)

__all__ = [
    "BASELINES",
    "NotFittedError",
    "PerturbationModel",
    "describe_model",
    "get_model",
    "list_models",
    "load_model",
    "make_model",
    "register_model",
]

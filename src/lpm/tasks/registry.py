"""Discovery tasks by name: the same ``run(data, model=...)`` → tidy table for each of them.

A task is a class with its parameters in ``__init__`` and one entry method, so a benchmark or
a notebook swaps tasks by name as it swaps models (:func:`get_task`, :func:`list_tasks`). The
``run_*`` functions of :mod:`lpm.tasks.moa`, :mod:`lpm.tasks.grn` and :mod:`lpm.tasks.explain`
add scoring, files and figures on top (the ``lpm moa|grn|explain`` commands).

Example
-------
>>> sorted(list_tasks())
['explain', 'grn', 'moa']
>>> get_task("grn", method="knockdown")
GeneNetworkTask(method='knockdown', context=None, min_abs_z=None)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from lpm.errors import LpmInputError

if TYPE_CHECKING:
    from lpm.models.base import PerturbationModel


class DiscoveryTask(ABC):
    """One discovery: parameters in ``__init__``, ``run`` gives a tidy table."""

    name: ClassVar[str]

    def needs_model(self) -> bool:
        """Whether ``run`` needs a fitted model (otherwise it may use one)."""
        return False

    def get_params(self) -> dict[str, Any]:
        return dict(vars(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def run(
        self, data: pl.DataFrame, *, model: PerturbationModel | str | Path | None = None
    ) -> pl.DataFrame:
        """The task's table for ``data`` (a long table) and ``model`` (a fitted model or folder)."""
        if not isinstance(data, pl.DataFrame):
            raise LpmInputError(None, f"{self.name}: data must be a long table (polars DataFrame)")
        if self.needs_model() and model is None:
            raise LpmInputError(None, f"task {self.name!r} ({self._needs()}) needs a fitted model")
        return self._run(data, model)

    def _needs(self) -> str:
        return "as configured"

    @abstractmethod
    def _run(
        self, data: pl.DataFrame, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame: ...


class MechanismTask(DiscoveryTask):
    """Every compound's candidates ranked (:func:`lpm.tasks.moa.rank_moa`); without a model only
    the measured-profile baseline."""

    name = "moa"

    def __init__(self, *, context: str | None = None, dose: str = "max", min_overlap: int = 20):
        self.context = context
        self.dose = dose
        self.min_overlap = min_overlap

    def _run(
        self, data: pl.DataFrame, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame:
        from lpm.tasks.moa import rank_moa

        return rank_moa(
            data, model=model, context=self.context, dose=self.dose, min_overlap=self.min_overlap
        )


class GeneNetworkTask(DiscoveryTask):
    """Gene→gene edges by one method (:mod:`lpm.tasks.grn`): ``knockdown`` (no model),
    ``embedding`` or ``imputed``."""

    name = "grn"

    def __init__(
        self,
        *,
        method: str = "knockdown",
        context: str | None = None,
        min_abs_z: float | None = None,
    ):
        from lpm.tasks.grn import METHODS

        if method not in METHODS:
            raise LpmInputError(
                "method", f"unknown method {method!r}; expected one of {', '.join(METHODS)}"
            )
        self.method = method
        self.context = context
        self.min_abs_z = min_abs_z

    def needs_model(self) -> bool:
        return self.method != "knockdown"

    def _needs(self) -> str:
        return f"method {self.method}"

    def _run(
        self, data: pl.DataFrame, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame:
        from lpm.tasks import grn

        if self.method == "knockdown":
            return grn.knockdown_edges(data, context=self.context, min_abs_z=self.min_abs_z)
        assert model is not None
        if self.method == "embedding":
            return grn.embedding_edges(model)
        context = self.context or grn.widest_context(data)
        return grn.imputed_edges(model, data, context=context, min_abs_z=self.min_abs_z)


class InputImportanceTask(DiscoveryTask):
    """Each input's error increase when swapped for its neutral value, per row
    (:func:`lpm.tasks.explain.posthoc_importance`); attention weights for ``lpm_ame``."""

    name = "explain"

    def needs_model(self) -> bool:
        return True

    def __init__(self, *, perturbation_neutral: str = "mean"):
        self.perturbation_neutral = perturbation_neutral

    def _run(
        self, data: pl.DataFrame, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame:
        from lpm.models.registry import load_model
        from lpm.tasks.explain import posthoc_importance

        fitted = load_model(model) if isinstance(model, str | Path) else model
        assert fitted is not None
        return posthoc_importance(fitted, data, perturbation_neutral=self.perturbation_neutral)


_TASKS: dict[str, type[DiscoveryTask]] = {
    t.name: t for t in (MechanismTask, GeneNetworkTask, InputImportanceTask)
}


def list_tasks() -> list[str]:
    """Names of the discovery tasks."""
    return list(_TASKS)


def get_task(name: str, **params: Any) -> DiscoveryTask:
    """A task by name with its parameters; an unknown name or parameter is an error naming the
    valid ones."""
    if name not in _TASKS:
        raise LpmInputError(None, f"unknown task {name!r}; known: {', '.join(_TASKS)}")
    cls = _TASKS[name]
    import inspect

    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    bad = sorted(set(params) - set(valid))
    if bad:
        raise LpmInputError(
            None, f"task {name!r} has no parameter(s) {', '.join(bad)}; valid: {', '.join(valid)}"
        )
    return cls(**params)


__all__ = [
    "DiscoveryTask",
    "GeneNetworkTask",
    "InputImportanceTask",
    "MechanismTask",
    "get_task",
    "list_tasks",
]

"""The contract of a discovery task: parameters in ``__init__``, one ``run`` giving a tidy table.

A task computes; it never reads a store, writes a file or draws. ``lpm.runs`` reads the inputs,
calls :meth:`DiscoveryTask.run`, draws with ``lpm.pl`` and writes the output folder.
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
    """One discovery: parameters in ``__init__`` (stored as given), ``run`` gives a tidy table."""

    name: ClassVar[str]

    def needs_model(self) -> bool:
        """Whether ``run`` needs a fitted model (otherwise it may use one)."""
        return False

    def needs_data(self) -> bool:
        """Whether ``run`` needs a long table (an embedding needs only the model)."""
        return True

    def get_params(self) -> dict[str, Any]:
        return dict(vars(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def run(
        self,
        data: pl.DataFrame | None = None,
        *,
        model: PerturbationModel | str | Path | None = None,
    ) -> pl.DataFrame:
        """The task's table for ``data`` (a long table) and ``model`` (a fitted model or folder)."""
        if data is None and self.needs_data():
            raise LpmInputError(None, f"task {self.name!r} needs data (a long table)")
        if data is not None and not isinstance(data, pl.DataFrame):
            raise LpmInputError(None, f"{self.name}: data must be a long table (polars DataFrame)")
        if self.needs_model() and model is None:
            raise LpmInputError(None, f"task {self.name!r} ({self._needs()}) needs a fitted model")
        return self._run(data, model)

    def _needs(self) -> str:
        return "as configured"

    @abstractmethod
    def _run(
        self, data: pl.DataFrame | None, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame: ...


def fitted_model(model: PerturbationModel | str | Path) -> PerturbationModel:
    """``model`` itself, or the model saved in that folder."""
    if isinstance(model, str | Path):
        from lpm.models.registry import load_model

        return load_model(model)
    return model


__all__ = ["DiscoveryTask", "fitted_model"]

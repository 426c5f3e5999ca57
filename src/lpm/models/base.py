"""The contract every model follows (scikit-learn's): params in ``__init__``, ``fit`` returns self,
learned state ends in ``_``, ``predict`` before ``fit`` is an error, saving needs no pickle."""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from lpm import __version__
from lpm._utils.atomic import atomic_dir
from lpm.data import schema as S
from lpm.errors import LpmError, LpmInputError, UnknownSymbolError

CONFIG_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
TABLES_DIR = "tables"


class NotFittedError(LpmError, RuntimeError):
    """``predict`` (or ``save``) called on a model that was never fitted."""


class PerturbationModel(ABC):
    """Predicts the value of (context, perturbation, readout[, dose, time]) rows.

    Subclasses declare their hyper-parameters as keyword arguments of ``__init__`` and store
    them unchanged under the same names; learned state lives in attributes ending in ``_``.
    """

    #: Registry name, set by the registry when the class is looked up.
    name: ClassVar[str] = ""
    #: Parameters without a usable default: the model cannot run until the user gives them
    #: (``precomputed`` needs the file of another tool's predictions). Runs over "every model"
    #: (the demo, ``lpm benchmark --models all``) leave such models out by this flag.
    needs_inputs: ClassVar[tuple[str, ...]] = ()

    # ---- parameters -------------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name for p in sig.parameters.values() if p.name != "self" and p.kind is p.KEYWORD_ONLY
        ]

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---- learning ---------------------------------------------------------------------------
    @abstractmethod
    def fit(self, train: pl.DataFrame, val: pl.DataFrame | None = None) -> Self:
        """Learn from long training rows; returns ``self``."""

    @abstractmethod
    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        """Boolean mask of rows this fitted model can predict."""

    @abstractmethod
    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        """Predictions for rows that are all supported."""

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet: call fit() (or load a saved model) before predict()"
            )

    def supported(self, rows: pl.DataFrame) -> np.ndarray:
        """Which rows the model can predict; the others name symbols it never saw."""
        self._check_fitted()
        _check_rows(rows)
        return np.asarray(self._supported(rows), dtype=bool)

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        """Predicted values aligned with ``rows``; unknown symbols raise, never default to control."""
        self._check_fitted()
        _check_rows(rows)
        ok = np.asarray(self._supported(rows), dtype=bool)
        if not ok.all():
            raise unknown_symbols_error(self, rows.filter(pl.Series(~ok)))
        return np.asarray(self._predict(rows), dtype=np.float32)

    def _known(self) -> dict[str, set[str]]:
        """Symbols seen in training, by column; used to name what is unknown."""
        return {}

    # ---- persistence ------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        """Learned state as (arrays, tables, small JSON values)."""
        raise NotImplementedError

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a folder: ``model.json`` (name, params, version), arrays (npz) and tables (Parquet)."""
        self._check_fitted()
        arrays, tables, extra = self._get_state()
        with atomic_dir(Path(path), overwrite=overwrite) as tmp:
            config = {
                "model": self.name,
                "params": self.get_params(),
                "lpm_version": __version__,
                "state": extra,
            }
            (tmp / CONFIG_FILE).write_text(
                json.dumps(config, indent=2, sort_keys=True, default=_json_default) + "\n"
            )
            np.savez(tmp / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
            (tmp / TABLES_DIR).mkdir()
            for key, table in tables.items():
                table.write_parquet(tmp / TABLES_DIR / f"{key}.parquet")
        return Path(path)

    @classmethod
    def _from_saved(cls, path: Path, config: dict[str, Any]) -> Self:
        model = cls(**config["params"])
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        tables = {p.stem: pl.read_parquet(p) for p in sorted((path / TABLES_DIR).glob("*.parquet"))}
        model._set_state(arrays, tables, config.get("state", {}))
        return model


class LookupModel(PerturbationModel):
    """A model that looks values up in what it stored: a row is supported exactly when a value
    is found, so an unknown row can never come back as a default."""

    @abstractmethod
    def _values(self, rows: pl.DataFrame) -> np.ndarray:
        """The stored value of each row, NaN where there is none."""

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        return ~np.isnan(self._values(rows))

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        return self._values(rows)


def _json_default(obj: object) -> object:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in a model config")


def _check_rows(rows: pl.DataFrame) -> None:
    missing = [c for c in S.KEY_COLUMNS if c not in rows.columns]
    if missing:
        raise LpmInputError(None, f"rows to predict miss column(s) {', '.join(missing)}")


def unknown_symbols_error(model: PerturbationModel, bad_rows: pl.DataFrame) -> UnknownSymbolError:
    """Name the symbols that make rows unpredictable, most specific column first."""
    known = model._known()
    for col in (S.PERTURBATION, S.CONTEXT, S.READOUT):
        if col in known:
            unknown = set(bad_rows[col].unique().to_list()) - known[col]
            if unknown:
                return UnknownSymbolError(col, unknown)
    pairs = bad_rows.select(S.CONTEXT, S.PERTURBATION).unique().head(10)
    shown = [f"{c}|{p}" for c, p in pairs.iter_rows()]
    return UnknownSymbolError(
        f"{model.name or type(model).__name__} input combination (context|perturbation)", shown
    )

"""The contract every model follows (scikit-learn's): params in ``__init__``, ``fit`` returns self,
learned state ends in ``_``, ``predict`` before ``fit`` is an error, saving needs no pickle.

What a model can do beyond fit and predict is declared on its class, never probed with
``hasattr``; asking a model for what it does not declare is a one-line error:

``needs_inputs``
    Parameters without a usable default (``precomputed`` needs a file of predictions).
``streams``
    :meth:`PerturbationModel.fit_source` trains from streamed stores (row groups), not a table.
``gives_spread``
    :meth:`PerturbationModel.predict_with_spread` gives a spread beside each prediction.
``flags_fallback``
    :meth:`PerturbationModel.fallback` marks rows predicted by a simpler rule.
``uses_trainer``
    Trained by the Lightning engine (:mod:`lpm.models.training`): ``fit`` takes ``trainer=``
    options (devices, accelerator, checkpoints), which are not model parameters.
``resumes``
    Writes checkpoints to the trainer options' ``checkpoint_dir`` and resumes from them.
``data_parallel``
    Trains on several devices (``devices``, ``strategy``, GPUs); other models that use the
    trainer train in one CPU process.
``member_conditions``
    Takes doses and times given per member of a combination (``member_dose``,
    ``member_time``) as part of a row's condition; a model that does not refuses rows that
    carry them (in ``fit`` and ``predict``), rather than mix A@1+B@2 with A@1+B@4.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, cast

import numpy as np
import polars as pl

from lpm import __version__
from lpm._utils.atomic import atomic_dir
from lpm.data import schema as S
from lpm.data.members import has_member_values
from lpm.errors import LpmError, LpmInputError, UnknownSymbolError, first_line
from lpm.models.params import Rule, check_params, param_types

if TYPE_CHECKING:
    from lpm.models.source import RowSource
    from lpm.models.training import TrainerOptions

T = TypeVar("T")

CONFIG_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
TABLES_DIR = "tables"

#: The capabilities a model class may declare (see the module docstring).
CAPABILITIES = (
    "streams",
    "gives_spread",
    "flags_fallback",
    "uses_trainer",
    "resumes",
    "data_parallel",
    "embeds_perturbations",
    "member_conditions",
)


class NotFittedError(LpmError, RuntimeError):
    """``predict`` (or ``save``) called on a model that was never fitted."""


class _ModelType(ABCMeta):
    """Checks a new model's parameters once its ``__init__`` has stored them."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        model = super().__call__(*args, **kwargs)
        model.check_params()
        return model


class PerturbationModel(metaclass=_ModelType):
    """Predicts the value of (context, perturbation, readout[, dose, time]) rows.

    Subclasses declare their hyper-parameters as annotated keyword arguments of ``__init__``,
    store them unchanged under the same names, and give ranges in ``param_rules``; learned
    state lives in attributes ending in ``_``. They implement ``_fit`` (and the hooks of the
    capabilities they declare); ``fit`` and the other public methods live here.
    """

    #: Registry name, set by the registry when the class is looked up.
    name: ClassVar[str] = ""
    #: Parameters without a usable default: the model cannot run until the user gives them
    #: (``precomputed`` needs the file of another tool's predictions). Runs over "every model"
    #: (the demo, ``lpm benchmark --models all``) leave such models out by this flag.
    needs_inputs: ClassVar[tuple[str, ...]] = ()
    streams: ClassVar[bool] = False
    gives_spread: ClassVar[bool] = False
    flags_fallback: ClassVar[bool] = False
    uses_trainer: ClassVar[bool] = False
    resumes: ClassVar[bool] = False
    data_parallel: ClassVar[bool] = False
    member_conditions: ClassVar[bool] = False
    #: A learned vector per perturbation, ``perturbation_embedding`` (the design loop's coreset
    #: and kernel strategies use it in place of predicted profiles).
    embeds_perturbations: ClassVar[bool] = False
    #: The architecture whose internals discovery reads: ``"lpm"`` (embedding tables of
    #: perturbations, contexts and readouts, and the coded inputs that input swaps neutralise:
    #: ``lpm embed``, ``lpm explain``), ``"ame"`` (an attention gate: ``lpm explain``), or ``""``.
    family: ClassVar[str] = ""
    #: Allowed ranges of numeric parameters (types come from ``__init__``'s annotations).
    param_rules: ClassVar[Mapping[str, Rule]] = {}
    #: Parameters most likely to blame when fitting runs out of memory (sizes of the network
    #: and of its batches).
    memory_params: ClassVar[tuple[str, ...]] = ()
    #: Parameters earlier versions saved that are no longer parameters: dropped when a saved
    #: model loads; the value says where the setting went.
    retired_params: ClassVar[Mapping[str, str]] = {}

    # ---- parameters -------------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        """``__init__``'s keyword-only parameters, in order (read once per class)."""
        return list(param_types(cls))

    @classmethod
    def takes_seed(cls) -> bool:
        """Whether the model has a ``seed`` parameter (runs give it theirs unless one is set)."""
        return "seed" in cls.param_names()

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        """What the model can do beyond fit and predict (the class's declarations)."""
        out: dict[str, Any] = {c: bool(getattr(cls, c)) for c in CAPABILITIES}
        out["needs_inputs"] = list(cls.needs_inputs)
        out["family"] = cls.family
        return out

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.param_names()}

    def check_params(self) -> None:
        """Refuse a parameter of the wrong type or out of range, in one line naming it."""
        check_params(type(self), self.get_params(), self.param_rules)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def label(self) -> str:
        return self.name or type(self).__name__

    # ---- learning ---------------------------------------------------------------------------
    def fit(
        self,
        train: pl.DataFrame,
        val: pl.DataFrame | None = None,
        *,
        trainer: TrainerOptions | None = None,
    ) -> Self:
        """Learn from long training rows (early stopping on ``val`` where the model does);
        returns ``self``. ``trainer``: hardware and run options, for models that declare
        ``uses_trainer``."""
        options = self.check_trainer(trainer) if trainer is not None else None
        self.check_params()
        for rows in (train, val):
            if rows is not None:
                self._check_members(rows)
        with self._memory_errors():
            self._fit(train, val, options)
        return self

    @abstractmethod
    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        """Learn from ``train``; ``trainer`` is None unless the model ``uses_trainer``."""

    def fit_source(
        self,
        train: RowSource,
        val: RowSource | None = None,
        *,
        trainer: TrainerOptions | None = None,
    ) -> Self:
        """Learn from chunked sources (a store's row groups stream): models that ``stream``."""
        if not self.streams:
            raise LpmInputError(
                None, f"model {self.label!r} does not stream from stores: fit it on a table"
            )
        options = self.check_trainer(trainer) if trainer is not None else None
        self.check_params()
        if not self.member_conditions and any(
            s is not None and s.has_member_values() for s in (train, val)
        ):
            raise self._member_refusal(list(S.MEMBER_COLUMNS), "some")
        with self._memory_errors():
            self._fit_source(train, val, options)
        return self

    def _fit_source(
        self, train: RowSource, val: RowSource | None, trainer: TrainerOptions | None
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} declares streams without _fit_source")

    def check_trainer(self, trainer: TrainerOptions) -> TrainerOptions:
        """The trainer options this model trains with; options it cannot use are refused in one
        line (any, for a model that does not ``uses_trainer``; a checkpoint folder, for one that
        does not ``resumes``; several devices or a GPU, for one not ``data_parallel``)."""
        if not self.uses_trainer:
            raise LpmInputError(
                None,
                f"model {self.label!r} is not trained by the Lightning engine: it takes no "
                "trainer options (--devices, --strategy, --accelerator, --checkpoint-dir)",
            )
        if trainer.checkpoint_dir is not None and not self.resumes:
            raise LpmInputError(
                trainer.checkpoint_dir,
                f"model {self.label!r} keeps no checkpoints (a fit is one short run): "
                "leave --checkpoint-dir out",
            )
        return trainer if self.data_parallel else trainer.single_cpu(self.label)

    @contextlib.contextmanager
    def _memory_errors(self) -> Iterator[None]:
        """Running out of memory while building or training is one line naming the sizes."""
        try:
            yield
        except (MemoryError, RuntimeError) as exc:
            if not _out_of_memory(exc):
                raise
            sizes = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.memory_params)
            hint = f"; lower {sizes}" if sizes else ""
            raise LpmInputError(
                None, f"model {self.label!r} ran out of memory{hint} ({first_line(exc, limit=200)})"
            ) from None

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
        self._check_members(rows)
        return np.asarray(self._supported(rows), dtype=bool)

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        """Predicted values aligned with ``rows``; unknown symbols raise, never default to control."""
        with self._one_call():
            self._check_predictable(rows)
            return np.asarray(self._predict(rows), dtype=np.float32)

    def predict_with_spread(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and a spread per row (e.g. over ensemble members): models that
        ``gives_spread``."""
        if not self.gives_spread:
            raise LpmInputError(None, f"model {self.label!r} gives no spread of its predictions")
        with self._one_call():
            self._check_predictable(rows)
            mean, spread = self._predict_with_spread(rows)
        return np.asarray(mean, dtype=np.float32), np.asarray(spread, dtype=np.float32)

    def _predict_with_spread(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} declares gives_spread without a hook")

    def perturbation_embedding(self, perturbations: Sequence[str]) -> np.ndarray:
        """One learned vector per perturbation (perturbations × dims): models that
        ``embeds_perturbations``."""
        if not self.embeds_perturbations:
            raise LpmInputError(None, f"model {self.label!r} has no perturbation embedding")
        self._check_fitted()
        return np.asarray(self._perturbation_embedding(perturbations), dtype=np.float64)

    def _perturbation_embedding(self, perturbations: Sequence[str]) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} declares embeds_perturbations")

    def fallback(self, rows: pl.DataFrame) -> np.ndarray:
        """Which rows were predicted by the model's simpler fallback rule: models that
        ``flags_fallback``."""
        if not self.flags_fallback:
            raise LpmInputError(None, f"model {self.label!r} has no fallback to flag")
        self._check_fitted()
        _check_rows(rows)
        self._check_members(rows)
        return np.asarray(self._fallback(rows), dtype=bool)

    def _fallback(self, rows: pl.DataFrame) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} declares flags_fallback without a hook")

    def _check_predictable(self, rows: pl.DataFrame) -> None:
        """The one check of a prediction (public methods make it, hooks never repeat it): a
        fitted model, the key columns, and every row supported (unknown symbols named)."""
        self._check_fitted()
        _check_rows(rows)
        self._check_members(rows)
        ok = np.asarray(self._supported(rows), dtype=bool)
        if not ok.all():
            raise unknown_symbols_error(self, rows.filter(pl.Series(~ok)))

    @contextlib.contextmanager
    def _one_call(self) -> Iterator[None]:
        """The scope of one public call: what its hooks share (:meth:`_shared`) ends with it."""
        self._work: dict[str, tuple[pl.DataFrame, Any]] = {}
        try:
            yield
        finally:
            self.__dict__.pop("_work", None)

    def _shared(self, key: str, rows: pl.DataFrame, compute: Callable[[pl.DataFrame], T]) -> T:
        """``compute(rows)``, computed once for the same rows however many hooks of one public
        call ask (``_supported``, then ``_predict``); outside a public call, every time."""
        work: dict[str, tuple[pl.DataFrame, Any]] | None = self.__dict__.get("_work")
        if work is None:
            return compute(rows)
        hit = work.get(key)
        if hit is None or hit[0] is not rows:
            hit = work[key] = (rows, compute(rows))
        return cast(T, hit[1])

    def _known(self) -> dict[str, set[str]]:
        """Symbols seen in training, by column; used to name what is unknown."""
        return {}

    def _check_members(self, rows: pl.DataFrame) -> None:
        """Refuse rows with per-member doses/times, unless the model declares
        ``member_conditions`` (ignoring them would mix A@1+B@2 with A@1+B@4)."""
        if self.member_conditions or not has_member_values(rows):
            return
        cols = [c for c in S.MEMBER_COLUMNS if c in rows.columns]
        n = rows.select(pl.any_horizontal(pl.col(c).is_not_null() for c in cols).sum()).item()
        raise self._member_refusal(cols, f"{n}")

    def _member_refusal(self, columns: Sequence[str], n: str) -> LpmInputError:
        return LpmInputError(
            None,
            f"model {self.label!r} does not take doses/times given per member of a combination "
            f"({', '.join(columns)} on {n} row(s)); use a model that does ('can: member "
            "conditions' in lpm models), or leave those rows out",
        )

    # ---- persistence ------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        """Learned state as (arrays, tables, small JSON values)."""
        raise NotImplementedError

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        """Restore learned state; a state that does not fit the parameters must raise."""
        raise NotImplementedError

    def save(
        self,
        path: str | Path,
        *,
        overwrite: bool = False,
        files: Mapping[str, str] | None = None,
    ) -> Path:
        """Write a folder: ``model.json`` (name, params, version), arrays (npz), tables (Parquet)
        and any further text ``files`` (name -> text), all at once or not at all."""
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
            for name, text in (files or {}).items():
                (tmp / name).write_text(text)
        return Path(path)

    @classmethod
    def _from_saved(cls, path: Path, config: dict[str, Any]) -> Self:
        """The model of a saved folder (``load_model`` checks the folder and names what is wrong)."""
        params = {k: v for k, v in config["params"].items() if k not in cls.retired_params}
        model = cls(**params)
        with open(path / ARRAYS_FILE, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        tables = {p.stem: pl.read_parquet(p) for p in sorted((path / TABLES_DIR).glob("*.parquet"))}
        model._set_state(arrays, tables, config.get("state", {}))
        return model


def _out_of_memory(exc: BaseException) -> bool:
    """A ``MemoryError``, or torch failing to allocate (CPU or GPU)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc)
    return "can't allocate memory" in text or "out of memory" in text.lower()


class LookupModel(PerturbationModel):
    """A model that looks values up in what it stored: a row is supported exactly when a value
    is found, so an unknown row can never come back as a default. A prediction looks them up
    once (its check and its values share the lookup)."""

    @abstractmethod
    def _values(self, rows: pl.DataFrame) -> np.ndarray:
        """The stored value of each row, NaN where there is none."""

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        return ~np.isnan(self._shared("values", rows, self._values))

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        return self._shared("values", rows, self._values)


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
    for col in S.KEY_COLUMNS:  # an empty symbol is not a symbol: never predicted as anything
        n = rows[col].null_count()
        if n:
            raise LpmInputError(None, f"{n} row(s) to predict have no {col} (empty {col!r} column)")


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

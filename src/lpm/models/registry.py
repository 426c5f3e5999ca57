"""Models by name: an explicit table of built-ins (loaded lazily), user registrations, plugins.

No import side effects fill it: built-ins are listed here, plugins come from the
``lpm.models`` entry-point group, and ``register_model`` adds one class under one new name.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from lpm._utils.registry import Registry, is_subclass_of
from lpm.errors import LpmError, LpmInputError, first_line
from lpm.models.base import ARRAYS_FILE, CONFIG_FILE, TABLES_DIR, PerturbationModel
from lpm.models.params import accepted

#: Built-in models: name -> "module:Class". Baselines are models like any other.
_BUILTINS: dict[str, str] = {
    "no_change": "lpm.models.baselines:NoChange",
    "context_mean": "lpm.models.baselines:ContextMean",
    "perturbation_mean": "lpm.models.baselines:PerturbationMean",
    "additive": "lpm.models.baselines:Additive",
    "salt": "lpm.models.baselines:Salt",
    "twoway": "lpm.models.twoway:TwoWayModel",
    "peper": "lpm.models.peper:PeperModel",
    "gene_graph": "lpm.models.gene_graph:GeneGraphModel",
    "precomputed": "lpm.models.precomputed:PrecomputedModel",
    "nearest_dose": "lpm.models.nearest_dose:NearestDose",
    "linear": "lpm.models.linear:LinearModel",
    "low_rank": "lpm.models.low_rank:LowRankModel",
    "lpm": "lpm.models.lpm.model:LPMModel",
    "lpm_fast": "lpm.models.lpm.model:LPMFastModel",
    "lpm_ame": "lpm.models.ame:AttentiveMixtureModel",
}

#: Names counted as baselines when tables show each model's ratio to the best baseline.
BASELINES: tuple[str, ...] = (
    "no_change",
    "context_mean",
    "perturbation_mean",
    "additive",
    "salt",
    "twoway",
    "nearest_dose",
    "linear",
    "low_rank",
)

_MODELS: Registry[type[PerturbationModel]] = Registry(
    kind="model",
    group="lpm.models",
    builtins=_BUILTINS,
    accepts=is_subclass_of(PerturbationModel),
    expected="a PerturbationModel subclass",
)


def register_model(name: str, cls: type[PerturbationModel]) -> type[PerturbationModel]:
    """Add a model class under a new name; a name already taken is an error."""
    return _MODELS.register(name, cls)


def list_models() -> list[str]:
    """Every model name available: built-ins, registered and plugins."""
    return _MODELS.names()


def runnable_models() -> list[str]:
    """Models that run with their defaults alone: every model but those that need user inputs."""
    return [m for m in list_models() if not get_model_class(m).needs_inputs]


def expand_model_names(names: Sequence[str]) -> list[str]:
    """``all`` stands for every runnable model; other names are kept in order, once each."""
    out: list[str] = []
    for name in names:
        for m in runnable_models() if name == "all" else [name]:
            if m not in out:
                out.append(m)
    return out


def get_model_class(name: str) -> type[PerturbationModel]:
    return _MODELS.get(name)


def get_model(name: str, **params: Any) -> PerturbationModel:
    """A new, unfitted model; unknown parameters are an error that lists the valid ones."""
    cls = get_model_class(name)
    _check_param_names(cls, params)
    return cls(**params)


def _check_param_names(
    cls: type[PerturbationModel], params: Mapping[str, Any], *, retired: bool = False
) -> None:
    """Refuse parameters the model does not take, naming them (and where a retired one went)
    and the valid ones; ``retired``: parameters earlier versions saved are taken (and dropped)."""
    valid = cls.param_names()
    bad = sorted(set(params) - set(valid) - (set(cls.retired_params) if retired else set()))
    if bad:
        moved = [f"{k} is now {cls.retired_params[k]}" for k in bad if k in cls.retired_params]
        raise LpmInputError(
            None,
            f"model {cls.name!r} has no parameter(s) {', '.join(bad)}"
            + (f" ({'; '.join(moved)})" if moved else "")
            + f"; valid: {', '.join(valid) or 'none'}",
        )


def make_model(
    name: str, params: Mapping[str, Any] | None = None, *, seed: int
) -> PerturbationModel:
    """A new model whose seed is the run's ``seed``, unless ``params`` set one or the model
    takes none: the one rule for handing a run's seed to a model."""
    given = dict(params or {})
    if get_model_class(name).takes_seed():
        given.setdefault("seed", seed)
    return get_model(name, **given)


def describe_model(name: str) -> dict[str, Any]:
    """Name, first docstring line, capabilities, default parameters and what each accepts."""
    cls = get_model_class(name)
    doc = (cls.__doc__ or "").strip().splitlines()
    caps = cls.capabilities()
    return {
        "name": name,
        "summary": doc[0] if doc else "",
        "params": cls().get_params(),
        "accepts": accepted(cls, cls.param_rules),
        "baseline": name in BASELINES,
        "capabilities": caps,
        "needs_inputs": caps["needs_inputs"],
    }


def load_model(path: str | Path) -> PerturbationModel:
    """Load a model folder written by ``PerturbationModel.save``; a damaged folder is one line
    naming the file at fault (the model, its parameters, arrays or tables)."""
    path = Path(path)
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise LpmInputError(path, f"not a saved lpm model (no {CONFIG_FILE})")
    try:
        config = json.loads(cfg_path.read_text())
        name = config["model"]
        params = config["params"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise LpmInputError(cfg_path, f"corrupt model config: {first_line(exc)}") from None
    if not isinstance(name, str) or not isinstance(params, dict):
        raise LpmInputError(
            cfg_path, "corrupt model config: model must be a name, params a mapping"
        )
    try:
        cls = get_model_class(name)
    except LpmInputError:
        raise LpmInputError(
            cfg_path, f"names model {name!r}, which is not registered; {_MODELS.known()}"
        ) from None
    if not (path / ARRAYS_FILE).is_file():
        raise LpmInputError(path / ARRAYS_FILE, "missing: the model folder is incomplete")
    try:
        _check_param_names(cls, params, retired=True)
    except LpmInputError as exc:
        raise LpmInputError(cfg_path, f"{exc.problem} (edited or damaged)") from None
    try:
        return cls._from_saved(path, config)
    except LpmError as exc:
        raise LpmInputError(cfg_path, str(exc)) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise LpmInputError(
            path / ARRAYS_FILE, f"cannot be read (truncated or corrupt): {first_line(exc)}"
        ) from None
    except pl.exceptions.PolarsError as exc:
        raise LpmInputError(
            path / TABLES_DIR, f"a table cannot be read: {first_line(exc)}"
        ) from None
    except KeyError as exc:
        raise LpmInputError(
            path, f"incomplete model folder: {exc.args[0]!s} is missing (array, table or state)"
        ) from None
    except (ValueError, RuntimeError, TypeError, IndexError) as exc:
        raise LpmInputError(
            path, f"its arrays do not match {CONFIG_FILE} (damaged or edited): {first_line(exc)}"
        ) from None

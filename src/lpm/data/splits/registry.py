"""Split kinds by name: a fixed table of built-ins (loaded lazily), user registrations, plugins.

The same shape as the model registry: no import side effects fill it; built-ins are listed
here, plugins come from the ``lpm.split_kinds`` entry-point group, and
:func:`register_split_kind` adds one class under one new name.

Example
-------
>>> list_split_kinds()[:3]
['random', 'unseen_pair', 'unseen_perturbation']
>>> describe_split_kind("unseen_context")["params"]
{'test_fraction': 0.2, 'val_fraction': 0.1, 'context': None}
"""

from __future__ import annotations

import inspect
from typing import Any, Final

import polars as pl

from lpm._utils.registry import Registry, is_subclass_of
from lpm.data.splits.base import Split, SplitKind
from lpm.errors import LpmInputError

#: Built-in kinds: name -> "module:Class", in the order they are listed.
_BUILTINS: Final[dict[str, str]] = {
    "random": "lpm.data.splits.kinds:RandomRows",
    "unseen_pair": "lpm.data.splits.kinds:UnseenPair",
    "unseen_perturbation": "lpm.data.splits.kinds:UnseenPerturbation",
    "unseen_context": "lpm.data.splits.kinds:UnseenContext",
    "combination": "lpm.data.splits.kinds:Combination",
    "unseen_dose": "lpm.data.splits.kinds:UnseenDose",
}
#: The built-in kinds' names.
SPLIT_KINDS: Final = tuple(_BUILTINS)
#: Parameters every kind takes, with their defaults.
_FRACTIONS: Final = {"test_fraction": 0.2, "val_fraction": 0.1}

_KINDS: Registry[type[SplitKind]] = Registry(
    kind="split kind",
    group="lpm.split_kinds",
    builtins=_BUILTINS,
    accepts=lambda cls: is_subclass_of(SplitKind)(cls) and not inspect.isabstract(cls),
    expected="a concrete SplitKind subclass",
    ordered=True,
)


def register_split_kind(name: str, cls: type[SplitKind]) -> type[SplitKind]:
    """Add a split kind under a new name; a name already taken is an error."""
    return _KINDS.register(name, cls)


def list_split_kinds() -> list[str]:
    """Every kind's name: built-ins in their order, then registered and plugins, sorted."""
    return _KINDS.names()


def get_split_kind(name: str) -> type[SplitKind]:
    """The class of a kind by name; an unknown name is a one-line error listing the valid ones."""
    return _KINDS.get(name)


def describe_split_kind(name: str) -> dict[str, Any]:
    """Name, first docstring line and parameters (with defaults) of a kind."""
    cls = get_split_kind(name)
    doc = (cls.__doc__ or "").strip().splitlines()
    return {"name": name, "summary": doc[0] if doc else "", "params": _params(cls)}


def _params(cls: type[SplitKind]) -> dict[str, Any]:
    return {**_FRACTIONS, **cls.options}


def make_split(rows: pl.DataFrame, *, kind: str, seed: int = 0, **params: Any) -> Split:
    """Split long rows into train/val/test for one generalisation question.

    Parameters
    ----------
    rows
        Long rows with at least ``context``, ``perturbation``, ``readout`` and ``value``.
    kind
        A registered kind (:func:`list_split_kinds`; :mod:`lpm.data.splits.kinds` says what
        each built-in holds out).
    seed
        Seed of the numpy Generator; the same seed and rows give the same split.
    **params
        ``test_fraction`` and ``val_fraction`` (share of the held-out units that go to test and
        to validation; 0.2 and 0.1) and the kind's own options (:func:`describe_split_kind`),
        e.g. ``context`` for ``unseen_context``, ``holdout_singles_fraction`` for
        ``combination``. Another kind's option at its default is accepted and ignored.

    Returns
    -------
    Split
        The three row subsets and the test-group labels.

    Examples
    --------
    >>> import polars as pl
    >>> rows = pl.DataFrame({
    ...     "context": ["A", "A", "B", "B"],
    ...     "perturbation": ["CRISPRi:X", "CRISPRi:Y", "CRISPRi:X", "CRISPRi:Y"],
    ...     "readout": ["g1"] * 4,
    ...     "value": [1.0, 2.0, 3.0, 4.0],
    ... })
    >>> split = make_split(rows, kind="unseen_pair", test_fraction=0.5, val_fraction=0.0)
    >>> split.train.height, split.test.height
    (2, 2)
    """
    cls = get_split_kind(kind)
    own = _params(cls)
    for key, value in params.items():
        if key in own:
            continue
        owners = {k: _params(get_split_kind(k)) for k in list_split_kinds()}
        owner = next((k for k, p in owners.items() if key in p), None)
        if owner is None:
            valid = ", ".join(own)
            raise LpmInputError(None, f"split {kind!r} has no parameter {key!r}; valid: {valid}")
        if value != owners[owner][key]:
            raise LpmInputError(None, f"{key} only applies to kind={owner!r}, not {kind!r}")
    return cls().split(rows, seed=seed, **{k: v for k, v in params.items() if k in own})

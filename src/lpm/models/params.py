"""Model parameters checked when a model is made: the type from ``__init__``'s annotation, the
range from the class's ``param_rules``; a bad value is one line naming the parameter and what
it accepts, never an error deep inside numpy, torch or Lightning.

A model declares, it does not check::

    class LinearModel(PerturbationModel):
        param_rules = {"n_components": Range(1), "ridge": Range(0)}

        def __init__(self, *, n_components: int = 10, ridge: float = 0.1) -> None: ...

A range on a list parameter (``hidden: list[int]``) applies to each element; a :class:`Choice`
names the values a text parameter takes.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np

from lpm.errors import LpmInputError

#: Widths and sizes of a network beyond which a model cannot be meant (a typo, not a design):
#: a 65,536-wide layer already holds billions of weights.
MAX_WIDTH = 65_536


@dataclass(frozen=True)
class Range:
    """Numbers from ``low`` to ``high`` (either may be open: excluded)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def accepts(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return not (self.high is not None and (x >= self.high if self.high_open else x > self.high))

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '≥'} {_num(self.low)}"
        if self.low is None:
            return f"{'<' if self.high_open else '≤'} {_num(self.high)}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{_num(self.low)}, {_num(self.high)}{right}"


@dataclass(frozen=True)
class Choice:
    """One of a few named values (the keys of a table of presets, a mode)."""

    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", tuple(values))

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


Rule = Range | Choice


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


#: The rules models use most.
POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
COUNT = Range(1)  # a whole number of things, at least one
WIDTH = Range(1, MAX_WIDTH)  # a layer or embedding width
FRACTION = Range(0, 1, high_open=True)  # a share held out or dropped, below 1
PROBABILITY = Range(0, 1)
SEED = Range(0)


@functools.cache
def param_types(cls: type) -> dict[str, Any]:
    """``__init__``'s keyword parameters and their annotated types (resolved once per class)."""
    init = cls.__init__  # type: ignore[misc]
    hints = typing.get_type_hints(init)
    return {
        p.name: hints.get(p.name, Any)
        for p in inspect.signature(init).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    }


def check_params(cls: type, values: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Refuse the first value whose type or range is wrong, naming model, parameter and rule."""
    hints = param_types(cls)
    label = getattr(cls, "name", "") or cls.__name__
    for name, value in values.items():
        hint = hints.get(name, Any)
        if not matches(value, hint):
            raise LpmInputError(
                None,
                f"model {label!r}: parameter {name} must be {describe(hint)}, got {value!r}",
            )
        rule = rules.get(name)
        if rule is not None and not _obeys(value, rule):
            raise LpmInputError(
                None, f"model {label!r}: parameter {name} must be {rule}, got {value!r}"
            )


def accepted(cls: type, rules: Mapping[str, Rule]) -> dict[str, str]:
    """What each parameter accepts, in words (its type, and its rule where it has one)."""
    out = {}
    for name, hint in param_types(cls).items():
        rule = rules.get(name)
        out[name] = describe(hint) + (f"; {rule}" if rule is not None else "")
    return out


def _obeys(value: Any, rule: Rule) -> bool:
    """A range holds for every number of the value (each width of a list); a choice for the
    value itself (None, where the type allows it, means "the default" and is not checked)."""
    if isinstance(rule, Choice):
        return value is None or value in rule.values
    return all(rule.accepts(x) for x in _numbers(value))


def _numbers(value: Any) -> list[float]:
    if isinstance(value, list | tuple):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return [float(value)]
    return []


def _is_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)


def _is_float(x: Any) -> bool:
    return _is_int(x) or isinstance(x, float | np.floating)


def _parts(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    origin = typing.get_origin(hint)
    if origin is types.UnionType:
        origin = Union
    return origin, typing.get_args(hint)


def matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type (ints are numbers; lists and tuples alike)."""
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = _parts(hint)
    if origin is Union:
        return any(matches(value, a) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (list, tuple, Sequence):
        if not isinstance(value, list | tuple):
            return False
        item = args[0] if args else Any
        return all(matches(v, item) for v in value)
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            return False
        key, val = args if args else (Any, Any)
        return all(matches(k, key) and matches(v, val) for k, v in value.items())
    if hint is bool:
        return isinstance(value, bool | np.bool_)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return _is_float(value)
    return isinstance(value, hint) if isinstance(hint, type) else True


_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def describe(hint: Any) -> str:
    """What an annotation accepts, in words."""
    if hint is None or hint is type(None):
        return "null"
    origin, args = _parts(hint)
    if origin is Union:
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, Sequence):
        return f"a list of ({describe(args[0])})" if args else "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    if hint in _NAMES:
        return _NAMES[hint]
    return getattr(hint, "__name__", str(hint))


def wrong_value(hint: Any) -> Any:
    """A value the annotation refuses (for conformance tests over every model)."""
    for candidate in ("not-a-number", 1.5, {"a": 1}, [object()], object()):
        if not matches(candidate, hint):
            return candidate
    raise ValueError(f"every candidate matches {hint!r}")


def out_of_range(rule: Rule) -> Any:
    """A value the rule refuses (for conformance tests over every model)."""
    if isinstance(rule, Choice):
        return "not-one-of-the-choices"
    if rule.low is not None:
        return rule.low if rule.low_open else rule.low - 1
    assert rule.high is not None
    return rule.high if rule.high_open else rule.high + 1

"""Parse ``key=value`` options from the command line into typed values (JSON when it parses)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lpm.errors import LpmInputError


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(items: Sequence[str], *, option: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; a malformed item is a one-line error."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LpmInputError(None, f"{option} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def parse_model_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["linear.ridge=0.5"]`` -> ``{"linear": {"ridge": 0.5}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in parse_params(items, option="--param").items():
        model, dot, name = key.partition(".")
        if not dot:
            raise LpmInputError(None, f"--param expects MODEL.KEY=VALUE, got {key!r}")
        out.setdefault(model, {})[name] = value
    return out

"""What the values of a GCT/GCTX are, from the file's metadata or the user; never from the values.

The LINCS level decides how values become store rows: Level 3 (log expression, e.g.
quantile-normalised log2) has the mean vehicle profile of the same context and time subtracted
(``delta``); Level 4 (z-scores against the plate or the vehicle) and Level 5 (moderated z-score
signatures, already relative to control) are stored as given (``zscore``). The level is read from
the column metadata where the file says it:

* ``data_level``: ``3``/``4``/``5`` (or ``level 3``, ``L3``), ``QNORM`` (3), ``ZSPC`` (4), ``modZ`` (5);
* ``provenance_code`` (LINCS processing steps joined by ``+``): a ``MODZ`` step is Level 5; a last
  step ``QNO``/``QNORM`` is Level 3, ``ZS*`` (``ZSP``, ``ZSPC``, ``ZSVC``) Level 4.

Otherwise ``--lincs-level`` is required, or ``--readout-type`` alone for values stored as given
(PRISM's AUC). A level that statistics of the values would suggest is no evidence: log ratios
look like z-scores, so a guess stored them as z-scores without subtracting the control.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from lpm.data import schema as S
from lpm.data.io._plates import empty, text
from lpm.data.io.base import IngestOptions
from lpm.errors import LpmInputError

LEVELS: Final = (3, 4, 5)
LEVEL_FIELD: Final = "data_level"
PROVENANCE_FIELD: Final = "provenance_code"
_WORDS: Final = {"qnorm": 3, "q2norm": 3, "qno": 3, "zspc": 4, "zsp": 4, "zsvc": 4, "modz": 5}
_NUMBER = re.compile(r"(?:level|lvl|l)?\s*([345])")


@dataclass(frozen=True)
class ValueRule:
    """How a file's values become store values."""

    level: int | None
    readout_type: str
    subtract_vehicle: bool
    rule: str


def _data_level(value: str) -> int | None:
    key = value.strip().lower()
    match = _NUMBER.fullmatch(key)
    return int(match.group(1)) if match else _WORDS.get(key)


def _provenance_level(code: str) -> int | None:
    steps = [s.strip().upper() for s in code.split("+") if s.strip()]
    if not steps:
        return None
    if "MODZ" in steps:
        return 5
    if steps[-1] in ("QNO", "QNORM", "Q2NORM"):
        return 3
    return 4 if steps[-1].startswith("ZS") else None


def _from_metadata(
    meta: pd.DataFrame, used: npt.NDArray[np.bool_], path: Any
) -> tuple[int | None, str]:
    """The level the metadata states (or None) and what was found, for the message."""
    said = []
    for field, parse in ((LEVEL_FIELD, _data_level), (PROVENANCE_FIELD, _provenance_level)):
        if field not in meta.columns:
            continue
        values = text(meta[field])[used]
        values = values[~empty(values)]
        if values.empty:
            continue
        levels = {v: parse(v) for v in values.unique()}
        known = {lv for lv in levels.values() if lv is not None}
        if len(known) > 1:
            raise LpmInputError(
                path,
                f"column metadata {field!r} names several levels ({sorted(known)}) for one file",
            )
        if known and None not in levels.values():
            return known.pop(), f"{field} {values.iloc[0]!r}"
        unknown = sorted(v for v, lv in levels.items() if lv is None)
        said.append(f"{field} {unknown[0]!r} names no level lpm knows")
    return None, "; ".join(said)


def value_rule(
    meta: pd.DataFrame, used: npt.NDArray[np.bool_], options: IngestOptions, path: Any
) -> ValueRule:
    """The level from metadata or ``--lincs-level`` (they must agree), or ``--readout-type`` alone."""
    if options.readout_type is not None and options.readout_type not in S.READOUT_TYPES:
        raise LpmInputError(
            path,
            f"unknown readout type {options.readout_type!r}; expected one of {', '.join(S.READOUT_TYPES)}",
        )
    option = options.lincs_level
    if option is not None and option not in LEVELS:
        raise LpmInputError(path, f"lincs_level must be 3, 4 or 5, got {option}")
    found, said = _from_metadata(meta, used, path)
    if option is not None and found is not None and option != found:
        raise LpmInputError(
            path, f"--lincs-level {option} contradicts the file's {said} (level {found})"
        )
    level = option if option is not None else found
    if level is None:
        if options.readout_type is not None:
            return ValueRule(
                None,
                options.readout_type,
                False,
                f"values as given (--readout-type {options.readout_type})",
            )
        why = f" ({said})" if said else ""
        raise LpmInputError(
            path,
            f"cannot tell what the values are: no {LEVEL_FIELD} or {PROVENANCE_FIELD} naming a LINCS level in "
            f"the column metadata{why}, and lpm does not guess it from the values; pass --lincs-level 3 "
            "(log expression: the vehicle mean is subtracted), 4 or 5 (z-scores, stored as given), "
            "or --readout-type TYPE (values stored as given)",
        )
    source = "--lincs-level" if option is not None else f"the file's {said}"
    kind = options.readout_type or ("delta" if level == 3 else "zscore")
    if level == 3:
        how = "minus the mean vehicle profile of the same context and time"
    else:
        how = "as given (controls, where there are vehicle samples, are their mean values)"
    return ValueRule(level, kind, level == 3, f"LINCS level {level} from {source}: {how}")

"""How sources without context ids are named: the context rule and perturbation typing.

Context rule for sources without a context column: ``<dataset>/<cell line>`` with the dataset
from ``--dataset`` (else the file stem) and the cell line from ``--cell-line`` (else a known cell
line named as a token of the file name, ``k562-de.csv.gz`` -> ``K562``). Each choice is recorded
in the source's notes. Bare perturbation names are typed with ``--perturbation-type``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from lpm.data import schema as S
from lpm.data.io.base import IngestOptions
from lpm.data.symbols import COMBINATION_SEPARATOR, combine, make_symbol, parse
from lpm.errors import LpmInputError

#: Cell lines recognised in file names (``k562-de.csv.gz``); anything else needs ``--cell-line``.
KNOWN_CELL_LINES: Final = frozenset(
    {
        "K562", "RPE1", "HEPG2", "JURKAT", "A375", "A549", "MCF7", "HEK293", "HEK293T", "HELA",
        "PC3", "HT29", "HCT116", "U2OS", "A172", "T98G", "U87MG", "THP1", "HUVEC", "IPSC", "VCAP",
        "NPC", "HAP1", "MDAMB231", "SKBR3", "LNCAP", "HL60", "MOLM13", "PC9", "H1", "H9",
    }
)  # fmt: skip


def file_stem(path: Path) -> str:
    """``k562-de.csv.gz`` -> ``k562-de``."""
    return path.name.split(".")[0]


def cell_line_of(path: Path, options: IngestOptions, notes: dict[str, Any]) -> str:
    """``--cell-line``, else the one known cell line named as a token of the file name."""
    if options.cell_line:
        notes["cell_line"] = f"--cell-line {options.cell_line!r}"
        return options.cell_line
    tokens = [t for t in re.split(r"[-_.]", file_stem(path)) if t.upper() in KNOWN_CELL_LINES]
    if len({t.upper() for t in tokens}) == 1:
        notes["cell_line"] = (
            f"{tokens[0].upper()!r} from file name token {tokens[0]!r} (override with --cell-line)"
        )
        return tokens[0].upper()
    raise LpmInputError(
        path,
        "no context column and no known cell line in the file name; pass --cell-line (or --context-column)",
    )


def dataset_of(path: Path, options: IngestOptions, notes: dict[str, Any]) -> str:
    """``--dataset``, else the file stem."""
    name = options.dataset or file_stem(path)
    notes["dataset"] = (
        "--dataset" if options.dataset else f"file stem {name!r} (override with --dataset)"
    )
    return name


def typed_symbols(
    values: Sequence[str], kind: str | None, control: str, path: Path, column: str
) -> dict[str, str]:
    """Perturbation symbol for each distinct value: ``TYPE:TARGET`` kept, bare names typed."""
    out: dict[str, str] = {}
    for v in values:
        if v == control or v == S.CONTROL:
            out[v] = S.CONTROL
            continue
        try:
            out[v] = combine(list(map(str, parse(v))))
            continue
        except LpmInputError:
            pass
        if kind is None:
            raise LpmInputError(
                path,
                f"perturbation column {column!r} holds bare names (e.g. {v!r}); pass --perturbation-type (e.g. CRISPRi)",
            )
        try:
            out[v] = combine([make_symbol(kind, t) for t in v.split(COMBINATION_SEPARATOR)])
        except LpmInputError as exc:
            raise LpmInputError(path, f"column {column!r} value {v!r}: {exc.problem}") from None
    return out

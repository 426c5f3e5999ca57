"""A small drug-combination screen whose combinations give a dose per member (``1.5+6``).

Values are multiples of 1/64, so Salt's sums of singles are exact in float32 and tests can
assert them with ``==``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

DRUGS = ("drugA", "drugB", "drugC")
DOSES = (0.5, 1.5, 3.0, 6.0)
CELL_LINES = ("A549", "MCF7")
GENES = tuple(f"G{i}" for i in range(6))
#: (first, second, their doses as written); the second pair of A+B is written B+A.
COMBINATIONS = (
    ("drugA", "drugB", (1.5, 6.0)),
    ("drugB", "drugA", (3.0, 0.5)),
    ("drugA", "drugB", (6.0, 1.5)),
    ("drugA", "drugC", (1.5, 3.0)),
    ("drugC", "drugA", (6.0, 6.0)),
    ("drugB", "drugC", (0.5, 3.0)),
    ("drugB", "drugC", (6.0, 1.5)),
)


def _grid(x: np.ndarray) -> np.ndarray:
    return np.round(x * 64) / 64


def single_effects(seed: int = 0) -> dict[tuple[str, str, float], np.ndarray]:
    """(cell line, drug, dose) → the single's delta per gene: a dose response in log dose."""
    rng = np.random.default_rng(seed)
    out = {}
    for line in CELL_LINES:
        for drug in DRUGS:
            effect = rng.normal(size=len(GENES))
            for dose in DOSES:
                out[(line, drug, dose)] = _grid(effect * np.log2(1 + dose))
    return out


def combination_rows(seed: int = 0) -> list[tuple[str, str, str, float, str]]:
    """Long rows ``cell_line, perturbation, gene, value, dose`` (doses as text, ``1.5+6``)."""
    effects = single_effects(seed)
    rng = np.random.default_rng(seed + 1)
    rows = []
    for (line, drug, dose), values in effects.items():
        rows += [(line, drug, g, float(v), f"{dose:g}") for g, v in zip(GENES, values, strict=True)]
    for line in CELL_LINES:
        for first, second, (d1, d2) in COMBINATIONS:
            total = effects[(line, first, d1)] + effects[(line, second, d2)]
            values = _grid(total + 0.25 * rng.normal(size=len(GENES)))
            pert, dose = f"{first}+{second}", f"{d1:g}+{d2:g}"
            rows += [(line, pert, g, float(v), dose) for g, v in zip(GENES, values, strict=True)]
    return rows


def write_combination_csv(path: Path, seed: int = 0) -> Path:
    """The screen as a CSV file a user would have."""
    pl.DataFrame(
        combination_rows(seed),
        schema=["cell_line", "perturbation", "gene", "value", "dose"],
        orient="row",
    ).write_csv(path)
    return path

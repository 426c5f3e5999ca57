"""Small worlds the model tests share: singles and doubles of two contexts."""

from __future__ import annotations

import numpy as np
import polars as pl

READOUTS = [f"G{i:02d}" for i in range(30)]


def pairs_world(seed: int = 0, shrink: float = 0.5) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """2 contexts; 16 singles; doubles of pairs of singles = shrink × (a + b) (buffering)."""
    rng = np.random.default_rng(seed)
    singles = [f"CRISPRi:G{i:02d}" for i in range(16)]
    effect = {s: rng.normal(size=len(READOUTS)) for s in singles}
    pairs = [
        f"{singles[i]}+{singles[j]}"
        for i in range(16)
        for j in range(i + 1, 16)
        if (i + j) % 3 == 0
    ]
    for p in pairs:
        a, b = p.split("+")
        effect[p] = shrink * (effect[a] + effect[b])
    rows = [
        (c, p, r, float(v + 0.01 * rng.normal()))
        for c in ("toy/A", "toy/B")
        for p, e in effect.items()
        for r, v in zip(READOUTS, e, strict=True)
    ]
    return pl.DataFrame(
        rows, schema=["context", "perturbation", "readout", "value"], orient="row"
    ), effect


def held_out(rows: pl.DataFrame, perts: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    test = rows.filter(pl.col("perturbation").is_in(perts))
    return rows.join(test, on=["context", "perturbation", "readout"], how="anti"), test

"""The data side of an active-learning loop: which perturbations can be chosen, which are held
out for testing, which are labelled so far (PyRelationAL's data manager), and the oracle that
reveals a chosen perturbation's measured profile.

The unit of choice is a perturbation symbol: acquiring it reveals all its rows (every context
and readout the store measured). Only single genetic perturbations are candidates, since one-shot
selection and graph models place a perturbation by its target gene; every other perturbation is
listed in :attr:`DesignUniverse.excluded` with the reason, never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.symbols import genetic_targets
from lpm.errors import LpmInputError

NOT_SINGLE = "not a single genetic perturbation"
NOT_IN_GRAPH = "target gene not in the prior graph"


@dataclass(frozen=True)
class DesignUniverse:
    """Candidates (``pool``), the fixed held-out ``test`` perturbations and what was left out."""

    gene: dict[str, str]
    pool: list[str]
    test: list[str]
    excluded: dict[str, str] = field(default_factory=dict)

    def table(self) -> pl.DataFrame:
        """One row per perturbation: its gene and part (pool, test or excluded with the reason)."""
        parts = [(p, self.gene[p], "pool", "") for p in self.pool]
        parts += [(p, self.gene[p], "test", "") for p in self.test]
        parts += [(p, self.gene.get(p, ""), "excluded", why) for p, why in self.excluded.items()]
        return pl.DataFrame(
            parts, schema=["perturbation", "gene", "part", "reason"], orient="row"
        ).sort("part", "perturbation")


def design_universe(
    rows: pl.DataFrame,
    *,
    test_fraction: float,
    seed: int,
    graph_genes: Iterable[str] | None = None,
) -> DesignUniverse:
    """Split a store's single genetic perturbations into a pool and a seeded held-out test set."""
    if not 0.0 <= test_fraction < 1.0:
        raise LpmInputError(None, f"--test-fraction must be in [0, 1), got {test_fraction}")
    in_graph = set(graph_genes) if graph_genes is not None else None
    gene: dict[str, str] = {}
    excluded: dict[str, str] = {}
    for p in sorted(rows[S.PERTURBATION].cast(pl.String).unique().to_list()):
        if p == S.CONTROL:
            continue
        members = genetic_targets(p)
        if members is None or len(members) != 1:
            excluded[p] = NOT_SINGLE
            continue
        gene[p] = members[0][1]
        if in_graph is not None and gene[p] not in in_graph:
            excluded[p] = NOT_IN_GRAPH
    usable = [p for p in gene if p not in excluded]
    if len(usable) < 2:
        raise LpmInputError(
            None,
            f"only {len(usable)} single genetic perturbation(s) can be designed over "
            f"({len(excluded)} excluded: {_reasons(excluded)})",
        )
    rng = np.random.default_rng(seed)
    n_test = math.floor(test_fraction * len(usable) + 0.5)
    test_idx = set(rng.choice(len(usable), size=n_test, replace=False).tolist())
    test = [p for i, p in enumerate(usable) if i in test_idx]
    pool = [p for i, p in enumerate(usable) if i not in test_idx]
    return DesignUniverse(gene=gene, pool=pool, test=test, excluded=excluded)


def _reasons(excluded: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for why in excluded.values():
        counts[why] = counts.get(why, 0) + 1
    return ", ".join(f"{n} {why}" for why, n in sorted(counts.items())) or "none"


class LabelledPool:
    """Labelled and unlabelled perturbations of the pool, with the round each was acquired in."""

    def __init__(self, pool: Sequence[str]) -> None:
        self._pool = list(pool)
        self.round_of: dict[str, int] = {}

    @property
    def labelled(self) -> list[str]:
        return list(self.round_of)

    @property
    def unlabelled(self) -> list[str]:
        return [p for p in self._pool if p not in self.round_of]

    def label(self, perturbations: Sequence[str], round_: int) -> None:
        """Mark a batch as acquired; a repeat or a perturbation outside the pool is a bug."""
        if len(set(perturbations)) != len(perturbations):
            raise LpmInputError(None, f"round {round_}: a strategy chose a perturbation twice")
        free = set(self.unlabelled)
        bad = [p for p in perturbations if p not in free]
        if bad:
            raise LpmInputError(
                None, f"round {round_}: {bad[0]!r} is not an unlabelled pool perturbation"
            )
        for p in perturbations:
            self.round_of[p] = round_


class Oracle:
    """Reveals measured rows of chosen perturbations (in benchmarks: held-out real data)."""

    def __init__(self, rows: pl.DataFrame) -> None:
        key = pl.col(S.PERTURBATION).cast(pl.String)
        parts = rows.with_columns(key).partition_by(S.PERTURBATION, as_dict=True)
        self._rows = {str(k[0]): v for k, v in parts.items()}
        self.n_revealed = 0

    def reveal(self, perturbations: Sequence[str]) -> pl.DataFrame:
        """Measured rows of these perturbations (all contexts and readouts)."""
        missing = [p for p in perturbations if p not in self._rows]
        if missing:
            raise LpmInputError(None, f"the oracle has no measurements of {missing[0]!r}")
        self.n_revealed += len(perturbations)
        return pl.concat([self._rows[p] for p in perturbations], how="vertical_relaxed")

    def keys(self, perturbations: Sequence[str]) -> pl.DataFrame:
        """The rows to predict for these perturbations, without their values (what is asked,
        not what was measured)."""
        first = next(iter(self._rows.values()))
        cols = [
            c for c in (*S.KEY_COLUMNS, S.DOSE, S.TIME, *S.MEMBER_COLUMNS) if c in first.columns
        ]
        return pl.concat([self._rows[p].select(cols) for p in perturbations])


def perturbation_strength(rows: pl.DataFrame) -> dict[str, float]:
    """Sum of squared measured effects over readouts, averaged over contexts: the ``energy`` of
    a profile when the data carries none."""
    per_context = rows.group_by(S.CONTEXT, S.PERTURBATION).agg(
        (pl.col(S.VALUE).cast(pl.Float64) ** 2).sum().alias("energy")
    )
    mean = per_context.group_by(S.PERTURBATION).agg(pl.col("energy").mean())
    return dict(zip(mean[S.PERTURBATION].cast(pl.String), mean["energy"], strict=True))


def read_strength(path: str | Path, *, gene_info: str | Path | None = None) -> dict[str, float]:
    """Per-perturbation strength from a table (``perturbation, energy``) or a Replogle-style NPZ
    (its ``energy`` array, read as annotations); ``gene_info`` maps targets to official symbols
    as ingest did, so the names match the store's."""
    from lpm.data.io.symbol_tables import read_symbol_table

    path = Path(path)
    if path.suffix == ".npz":
        from lpm.data.io.npz import read_npz_perturbation_annotations

        table = read_npz_perturbation_annotations(path)
    else:
        table = read_symbol_table(path, "strength table", symbols=(S.PERTURBATION,))
    if gene_info is not None and S.PERTURBATION in table.columns:
        from lpm.data.genes import harmonise_frame

        table, _ = harmonise_frame(
            table.with_columns(pl.lit("_").alias(S.READOUT)), Path(gene_info), source=path
        )
        table = table.drop(S.READOUT)
    for col in (S.PERTURBATION, "energy"):
        if col not in table.columns:
            raise LpmInputError(path, f"strength table misses column {col!r}")
    values = table["energy"].cast(pl.Float64).to_numpy()
    if not np.isfinite(values).all():
        raise LpmInputError(path, "column energy contains NaN/inf")
    if table[S.PERTURBATION].is_duplicated().any():
        raise LpmInputError(path, "column perturbation has duplicate rows")
    return dict(zip(table[S.PERTURBATION].cast(pl.String), values.tolist(), strict=True))


def strongest(pool: Sequence[str], strength: dict[str, float], fraction: float) -> set[str]:
    """The ``fraction`` strongest pool perturbations (at least one); pool members without a
    strength value are an error, not a zero."""
    missing = [p for p in pool if p not in strength]
    if missing:
        raise LpmInputError(
            None,
            f"no strength (energy) value for {len(missing)} pool perturbation(s), e.g. {missing[0]!r}",
        )
    n = max(1, math.ceil(fraction * len(pool)))
    ranked = sorted(pool, key=lambda p: (-strength[p], p))
    return set(ranked[:n])

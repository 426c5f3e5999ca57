"""The loop's data side: which perturbations can be chosen, the pool, the oracle, strength."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lpm.design.pool import (
    NOT_IN_GRAPH,
    NOT_SINGLE,
    LabelledPool,
    Oracle,
    design_universe,
    perturbation_strength,
    read_strength,
    strongest,
)
from lpm.errors import LpmInputError
from tests.design.test_loop import N_GENES, READOUTS, chain_world


def test_universe_keeps_single_genetic_perturbations_and_says_why_others_are_out(
    tmp_path: Path,
) -> None:
    rows, _ = chain_world(tmp_path)
    u = design_universe(
        rows, test_fraction=0.25, seed=3, graph_genes=[f"G{i:02d}" for i in range(30)]
    )
    assert u.excluded["compound:X"] == NOT_SINGLE
    assert u.excluded["CRISPRi:G00+CRISPRi:G01"] == NOT_SINGLE
    assert sum(v == NOT_IN_GRAPH for v in u.excluded.values()) == 10
    assert len(u.test) == 8 and len(u.pool) == 22 and not set(u.test) & set(u.pool)
    again = design_universe(
        rows, test_fraction=0.25, seed=3, graph_genes=[f"G{i:02d}" for i in range(30)]
    )
    assert again.test == u.test
    assert design_universe(rows, test_fraction=0.25, seed=4).test != u.test
    parts = u.table().group_by("part").len()
    assert dict(parts.iter_rows()) == {"pool": 22, "test": 8, "excluded": 12}


def test_universe_errors(tmp_path: Path) -> None:
    rows, _ = chain_world(tmp_path)
    with pytest.raises(LpmInputError, match="test-fraction"):
        design_universe(rows, test_fraction=1.0, seed=0)
    with pytest.raises(LpmInputError, match="only 0 single genetic"):
        design_universe(rows, test_fraction=0.2, seed=0, graph_genes=["nope"])


def test_pool_and_oracle(tmp_path: Path) -> None:
    rows, _ = chain_world(tmp_path)
    pool = LabelledPool(["CRISPRi:G01", "CRISPRi:G02", "CRISPRi:G03"])
    pool.label(["CRISPRi:G02"], 0)
    assert pool.unlabelled == ["CRISPRi:G01", "CRISPRi:G03"]
    with pytest.raises(LpmInputError, match="not an unlabelled pool"):
        pool.label(["CRISPRi:G02"], 1)
    with pytest.raises(LpmInputError, match="twice"):
        pool.label(["CRISPRi:G01", "CRISPRi:G01"], 1)
    oracle = Oracle(rows)
    revealed = oracle.reveal(["CRISPRi:G01", "CRISPRi:G03"])
    assert revealed.height == 2 * len(READOUTS) and oracle.n_revealed == 2
    assert "value" not in oracle.keys(["CRISPRi:G01"]).columns
    with pytest.raises(LpmInputError, match="no measurements of 'CRISPRi:NOPE'"):
        oracle.reveal(["CRISPRi:NOPE"])


def test_strength_and_strongest(tmp_path: Path) -> None:
    rows, _ = chain_world(tmp_path)
    energy = perturbation_strength(rows)
    pool = [f"CRISPRi:G{i:02d}" for i in range(N_GENES)]
    top = strongest(pool, energy, 0.2)
    assert top == {f"CRISPRi:G{i:02d}" for i in range(0, N_GENES, 5)}
    with pytest.raises(LpmInputError, match="no strength"):
        strongest([*pool, "CRISPRi:NEW"], energy, 0.1)
    bad = tmp_path / "e.csv"
    pl.DataFrame({"perturbation": ["a", "a"], "energy": [1.0, 2.0]}).write_csv(bad)
    with pytest.raises(LpmInputError, match="duplicate"):
        read_strength(bad)
    pl.DataFrame({"perturbation": ["a"], "energy": [float("nan")]}).write_csv(bad)
    with pytest.raises(LpmInputError, match="NaN"):
        read_strength(bad)
    pl.DataFrame({"perturbation": ["a"]}).write_csv(bad)
    with pytest.raises(LpmInputError, match="energy"):
        read_strength(bad)


def test_strength_table_ids_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "energy.csv"
    path.write_text("perturbation,energy\n007,1.5\n2,0.5\n")
    assert read_strength(path) == {"007": 1.5, "2": 0.5}

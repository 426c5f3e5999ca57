"""Our interaction fits beside Norman et al.'s (``lpm.tasks.norman``): pairs matched unordered
and swapped, bad files named, the real devel pairs against their published fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.tasks.interactions import interaction_table
from lpm.tasks.norman import norman_comparison, norman_summary
from tests.conftest import shared_data
from tests.tasks.test_interactions import synthetic_rows


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return interaction_table(synthetic_rows())


def _norman_csv(path: Path, table: pl.DataFrame) -> Path:
    """Norman-like fits for our pairs, the first pair named in reverse order."""
    rows = []
    for i, r in enumerate(table.iter_rows(named=True)):
        g1, g2 = r["first"].split(":")[1], r["second"].split(":")[1]
        c1, c2, d1, d2 = r["c1"], r["c2"], r["dcor_first"], r["dcor_second"]
        name = f"{g2}_{g1}" if i == 0 else f"{g1}_{g2}"
        if i == 0:
            c1, c2, d1, d2 = c2, c1, d2, d1
        rows.append(
            {
                "name": name,
                "ts_coef_first": c1,
                "ts_coef_second": c2,
                "ts_norm": r["magnitude"],
                "ts_linear_dcor": r["fit_dcor"],
                "dcor_first": d1,
                "dcor_second": d2,
                "dcor_singles": r["dcor_singles"],
            }
        )
    pl.DataFrame(rows).write_csv(path)
    return path


def test_norman_comparison_matches_unordered_and_swaps(table: pl.DataFrame, tmp_path: Path) -> None:
    csv = _norman_csv(tmp_path / "regr_fits_final.csv", table)
    comp = norman_comparison(table, csv)
    assert comp.height == table.height
    assert np.allclose(comp["c1"].to_numpy(), comp["norman_ts_coef_first"].to_numpy())
    assert np.allclose(comp["dcor_first"].to_numpy(), comp["norman_dcor_first"].to_numpy())
    assert comp["type"].to_list() == comp["norman_type"].to_list()
    summary = norman_summary(comp)
    assert summary["n_matched"] == table.height and summary["type_agreement"] == 1.0
    assert summary["spearman"]["magnitude"] == pytest.approx(1.0)
    pl.read_csv(csv).drop("ts_norm").write_csv(tmp_path / "bad.csv")
    with pytest.raises(LpmInputError, match=r"bad\.csv: missing column\(s\) ts_norm"):
        norman_comparison(table, tmp_path / "bad.csv")
    with pytest.raises(LpmInputError, match="no such file"):
        norman_comparison(table, tmp_path / "absent.csv")


@pytest.mark.realdata
def test_real_norman_pairs_against_their_fits() -> None:
    csv = shared_data("norman19_gi") / "regr_fits_final.csv"
    if not csv.is_file():
        pytest.skip(f"real data not present: {csv}")
    store = Path(__file__).resolve().parents[2] / "benchmarks" / "stores" / "devel"
    if not store.is_dir():
        pytest.skip(f"devel store not present: {store}")
    from lpm.data.store import open_store

    rows = open_store(store).read()
    table = interaction_table(rows, context="norman19/K562")
    comp = norman_comparison(table, csv)
    assert comp.height == table.height >= 1  # every typed devel pair is one of Norman's
    assert comp["norman_ts_norm"].is_finite().all()

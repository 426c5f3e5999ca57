"""Doses given per member of a combination (``1.5+6``): ingest, the store, info, splits, AnnData."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data import schema as S
from lpm.data.convert import from_anndata, to_anndata
from lpm.data.info import format_info, store_info
from lpm.data.members import explode_members
from lpm.data.splits import make_split
from lpm.data.store import open_store, write_store
from lpm.errors import LpmInputError
from tests.conftest import error_line, lpm
from tests.member_tables import COMBINATIONS, write_combination_csv

FIXTURES = Path(__file__).parents[1] / "fixtures"
AB = "compound:drugA+compound:drugB"


def _ingest(tmp_path: Path, csv: Path, name: str = "store") -> Path:
    out = tmp_path / name
    proc = lpm("ingest", str(csv), "--out", str(out), "--perturbation-type", "compound",
               "--dataset", "screen")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def _table(tmp_path: Path, rows: list[tuple[str, str, float, str]], name: str = "t.csv") -> Path:
    """A small long table: ``perturbation, gene, value, dose`` in cell line A549."""
    path = tmp_path / name
    pl.DataFrame(
        [("A549", *r) for r in rows],
        schema=["cell_line", "perturbation", "gene", "value", "dose"],
        orient="row",
    ).write_csv(path)
    return path


def test_cli_ingests_per_member_doses_in_the_symbols_member_order(tmp_path: Path) -> None:
    store = open_store(_ingest(tmp_path, write_combination_csv(tmp_path / "screen.csv")))
    rows = store.read()
    assert S.MEMBER_DOSE in store.columns and S.MEMBER_TIME not in store.columns
    combos = rows.filter(pl.col(S.PERTURBATION).str.contains("+", literal=True))
    assert combos[S.DOSE].null_count() == combos.height  # the dose is per member on those rows
    singles = rows.filter(~pl.col(S.PERTURBATION).str.contains("+", literal=True))
    assert singles[S.MEMBER_DOSE].null_count() == singles.height
    ab = combos.filter(pl.col(S.PERTURBATION) == AB)
    # written drugB+drugA at 3+0.5: drugA (first in the symbol) at 0.5, drugB at 3
    assert sorted(map(tuple, ab[S.MEMBER_DOSE].unique().to_list())) == [
        (0.5, 3.0),
        (1.5, 6.0),
        (6.0, 1.5),
    ]
    assert combos.height == 2 * len(COMBINATIONS) * 6
    info = format_info(store_info(store))
    assert "per member dose on 84 row(s)" in info
    proc = lpm("info", str(store.path))
    assert "per member dose on 84 row(s)" in proc.stdout


def test_reordered_members_give_the_same_store(tmp_path: Path) -> None:
    single = [("drugA", "g1", 1.0, "1.5"), ("drugB", "g1", 2.0, "6")]
    first = _table(tmp_path, [*single, ("drugA+drugB", "g1", 3.0, "1.5+6")], "a.csv")
    second = _table(tmp_path, [*single, ("drugB+drugA", "g1", 3.0, "6+1.5")], "b.csv")
    a = open_store(_ingest(tmp_path, first, "a"))
    b = open_store(_ingest(tmp_path, second, "b"))
    assert a.meta.content_hash == b.meta.content_hash
    assert a.read().filter(pl.col(S.PERTURBATION) == AB)[S.MEMBER_DOSE].to_list() == [[1.5, 6.0]]


def test_a_plain_number_on_a_combination_keeps_its_meaning(tmp_path: Path) -> None:
    path = _table(tmp_path, [("drugA", "g1", 1.0, "2"), ("drugA+drugB", "g1", 3.0, "2")])
    store = open_store(_ingest(tmp_path, path))
    assert S.MEMBER_DOSE not in store.columns  # no per-member value: no such column
    assert store.read()[S.DOSE].to_list() == [2.0, 2.0]


@pytest.mark.parametrize(
    ("cell", "pert", "says"),
    [
        ("1.5+6+2", "drugA+drugB", "3 per-member values '1.5+6+2' for the combination"),
        ("1.5+x", "drugA+drugB", "a non-numeric part 'x' in '1.5+x'"),
        ("-1+2", "drugA+drugB", "a negative part '-1' in '-1+2'"),
        ("2+nan", "drugA+drugB", "a NaN/inf part 'nan' in '2+nan'"),
        ("inf+1", "drugA+drugB", "a NaN/inf part 'inf' in 'inf+1'"),
        ("1+2", "drugC", "for the single perturbation 'drugC'"),
    ],
)
def test_bad_per_member_cells_are_one_line_errors(
    tmp_path: Path, cell: str, pert: str, says: str
) -> None:
    path = _table(tmp_path, [("drugA", "g1", 1.0, "1"), (pert, "g1", 3.0, cell)])
    proc = lpm("ingest", str(path), "--out", str(tmp_path / "s"), "--perturbation-type", "compound")
    assert proc.returncode == 2
    line = error_line(proc)
    assert str(path) in line and "column 'dose'" in line and "(data row 2)" in line
    assert says in line
    assert not (tmp_path / "s").exists()


def test_a_member_named_twice_takes_no_per_member_dose(tmp_path: Path) -> None:
    path = _table(tmp_path, [("drugA+drugA", "g1", 3.0, "1+2")])
    proc = lpm("ingest", str(path), "--out", str(tmp_path / "s"), "--perturbation-type", "compound")
    assert proc.returncode == 2
    assert "'drugA+drugA' names a member twice" in error_line(proc)


def test_per_member_time_and_scientific_notation(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pl.DataFrame(
        {
            "cell_line": ["A549"] * 2,
            "perturbation": ["drugA", "drugB+drugA"],
            "gene": ["g1"] * 2,
            "value": [1.0, 2.0],
            "dose": ["1e+3", "2"],  # an exponent's + is no member separator
            "time": ["24", "6+24"],
        }
    ).write_csv(path)
    rows = open_store(_ingest(tmp_path, path)).read()
    assert rows[S.DOSE].to_list() == [1000.0, 2.0]
    assert rows[S.MEMBER_TIME].to_list() == [None, [24.0, 6.0]]
    assert rows[S.TIME].to_list() == [24.0, None]


def _rows(member_dose: list[list[float] | None], perts: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            S.CONTEXT: ["c/X"] * len(perts),
            S.PERTURBATION: perts,
            S.READOUT: ["g"] * len(perts),
            S.VALUE: [1.0] * len(perts),
            S.MEMBER_DOSE: member_dose,
        },
        schema_overrides={S.MEMBER_DOSE: pl.List(pl.Float32)},
    )


@pytest.mark.parametrize(
    ("member_dose", "perts", "says"),
    [
        ([[1.0, 2.0]], ["compound:A"], "no combination"),
        ([[1.0]], [AB], "one value per member"),
        ([[1.0, -2.0]], [AB], "NaN/inf, negative or empty"),
        ([[1.0, None]], [AB], "NaN/inf, negative or empty"),
    ],
)
def test_store_refuses_bad_member_values(
    tmp_path: Path, member_dose: list[list[float] | None], perts: list[str], says: str
) -> None:
    with pytest.raises(LpmInputError, match=says):
        write_store(_rows(member_dose, perts), tmp_path / "s")


def test_member_values_beside_a_row_dose_are_refused(tmp_path: Path) -> None:
    rows = _rows([[1.0, 2.0]], [AB]).with_columns(pl.lit(1.0).alias(S.DOSE))
    with pytest.raises(LpmInputError, match="beside a 'dose'"):
        write_store(rows, tmp_path / "s")


def test_the_same_combination_at_other_member_doses_is_no_duplicate(tmp_path: Path) -> None:
    store = write_store(_rows([[1.0, 2.0], [1.0, 4.0]], [AB, AB]), tmp_path / "s")
    assert store.n_rows == 2
    with pytest.raises(LpmInputError, match="duplicate"):
        write_store(_rows([[1.0, 2.0], [1.0, 2.0]], [AB, AB]), tmp_path / "t")


def test_a_store_without_member_values_has_no_member_columns(tmp_path: Path) -> None:
    """An old store's rows written again give the same bytes; empty member columns are dropped."""
    old = open_store(FIXTURES / "store_v0.1.0")
    rows = old.read()
    again = write_store(rows, tmp_path / "a")
    empty = rows.with_columns(pl.lit(None, pl.List(pl.Float32)).alias(S.MEMBER_DOSE))
    with_empty = write_store(empty, tmp_path / "b")
    assert S.MEMBER_DOSE not in with_empty.columns
    assert again.meta.content_hash == with_empty.meta.content_hash == old.meta.content_hash


def test_explode_members_gives_each_member_its_own_dose() -> None:
    rows = pl.DataFrame(
        {
            S.PERTURBATION: [AB, AB, "compound:drugA", S.CONTROL],
            S.DOSE: [None, 2.0, 1.0, None],
            S.TIME: [24.0, 24.0, 24.0, None],
            S.MEMBER_DOSE: [[1.5, 6.0], None, None, None],
        },
        schema_overrides={S.MEMBER_DOSE: pl.List(pl.Float32)},
    )
    out = explode_members(rows)
    assert out.select("_row", S.PERTURBATION, S.DOSE, S.TIME).rows() == [
        (0, "compound:drugA", 1.5, 24.0),
        (0, "compound:drugB", 6.0, 24.0),
        (1, "compound:drugA", 2.0, 24.0),
        (1, "compound:drugB", 2.0, 24.0),
        (2, "compound:drugA", 1.0, 24.0),
        (3, S.CONTROL, None, None),
    ]


def test_combination_split_labels_members_seen_at_their_doses(tmp_path: Path) -> None:
    single = [("drugA", "g1", 1.0, "1.5"), ("drugB", "g1", 2.0, "6")]
    path = _table(
        tmp_path,
        [*single, ("drugA+drugB", "g1", 3.0, "1.5+6"), ("drugA+drugB", "g1", 4.0, "1.5+3")],
    )
    rows = open_store(_ingest(tmp_path, path)).read()
    split = make_split(rows, kind="combination", seed=0)
    groups = split.test_groups.sort(S.MEMBER_DOSE)
    assert groups[S.MEMBER_DOSE].to_list() == [[1.5, 3.0], [1.5, 6.0]]
    # drugB was measured at 6, never at 3
    assert groups["group"].to_list() == ["seen1", "seen2"]


def test_member_doses_survive_anndata(tmp_path: Path) -> None:
    rows = open_store(_ingest(tmp_path, write_combination_csv(tmp_path / "screen.csv"))).read()
    adata = to_anndata(rows)
    assert "1.5+6.0" in set(adata.obs[S.MEMBER_DOSE].dropna().astype(str))
    adata.write_h5ad(tmp_path / "x.h5ad")
    import anndata as ad

    back = from_anndata(ad.read_h5ad(tmp_path / "x.h5ad"))
    key = [S.CONTEXT, S.PERTURBATION, S.READOUT, S.DOSE, S.MEMBER_DOSE]
    a, b = rows.sort(key, nulls_last=True), back.sort(key, nulls_last=True)
    assert a[S.MEMBER_DOSE].to_list() == b[S.MEMBER_DOSE].to_list()
    np.testing.assert_array_equal(a[S.VALUE].to_numpy(), b[S.VALUE].to_numpy())


def test_gene_harmonisation_keeps_member_doses_with_their_members(tmp_path: Path) -> None:
    import gzip

    from lpm.data.genes import harmonise_frame
    from tests.data.test_genes import HEADER, ROWS

    info = tmp_path / "gene_info.tsv.gz"
    info.write_bytes(gzip.compress(("\n".join([HEADER, *ROWS]) + "\n").encode()))
    rows = _rows([[1.0, 2.0]], ["CRISPRi:EKLF+CRISPRi:HMGB1"])  # EKLF at 1, HMGB1 at 2
    out, _ = harmonise_frame(rows, info)
    # EKLF is KLF1, which sorts after HMGB1: its dose moves with it
    assert out.select(S.PERTURBATION, S.MEMBER_DOSE).rows() == [
        ("CRISPRi:HMGB1+CRISPRi:KLF1", [2.0, 1.0])
    ]

"""GCTX matrices whose rows are cell lines (PRISM-like, written with h5py here), and the real
PRISM and 65-line L1000 files where ../shared/data is present."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pytest

from lpm.data.io.base import IngestOptions
from lpm.data.io.context_rows import read_gctx_contexts
from lpm.data.io.ingest import ingest
from lpm.data.store import open_store
from lpm.errors import LpmInputError
from tests.conftest import shared_data

LINES = [("1", "A375", "ACH-000219"), ("2", "HT29", "ACH-000552"), ("3", "MCF7", "ACH-000019")]
# id, pert_type, pert_iname, pert_id, pert_dose, smiles
COLUMNS = [
    ("P:A01", "ctl_vehicle", "DMSO", "DMSO", "", ""),
    ("P:A02", "ctl_vehicle", "DMSO", "DMSO", "", ""),
    ("P:A03", "trt_cp", "dabrafenib", "BRD-K12345678", "10.0", "CC"),
    ("P:A04", "trt_cp", "dabrafenib", "BRD-K12345678", "1.0", "CC"),
    ("P:A05", "trt_cp", "U-0126", "BRD-K18787491", "10.0", "CCO"),
    ("P:A06", "trt_cp", "U-0126", "BRD-K91701654", "10.0", "CCO"),
    ("P:A07", "trt_poscon", "bortezomib", "BRD-K88510285", "10.0", "CCN"),
    ("P:A08", "lma_x", "bo", "CMAP-001", "", ""),
]


def _matrix() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.normal(0, 1, (len(LINES), len(COLUMNS))).astype(np.float32)


def _prism_gctx(
    path: Path, matrix: np.ndarray, *, names_in_rows: bool = False, level: str | None = None
) -> Path:
    """The PRISM layout: stored samples × lines (GCTX order), cell-line rows with ids only."""
    with h5py.File(path, "w") as fh:
        fh.attrs["version"] = np.bytes_(b"GCTX1.0")
        fh.create_dataset("0/DATA/0/matrix", data=matrix.T)
        col = fh.create_group("0/META/COL")
        for k, name in enumerate(
            ("id", "pert_type", "pert_iname", "pert_id", "pert_dose", "smiles")
        ):
            col[name] = np.array([c[k] for c in COLUMNS], dtype="S")
        col["pert_dose_unit"] = np.array([b"uM" if c[4] else b"" for c in COLUMNS])
        if level:
            col["data_level"] = np.array([level.encode()] * len(COLUMNS))
        row = fh.create_group("0/META/ROW")
        row["id"] = np.array([r[0] for r in LINES], dtype="S")
        if names_in_rows:
            row["cell_iname"] = np.array([r[1] for r in LINES], dtype="S")
    return path


def _cell_table(path: Path) -> Path:
    text = "id,cell_id,cell_iname,cell_lineage\n" + "".join(
        f"{i},{a},{n},skin\n" for i, n, a in LINES
    )
    path.write_text(text)
    return path


DOSES = IngestOptions(layout="contexts", dataset="prism_t", drop_types=("lma_x",))


def test_dose_series_with_cell_table(tmp_path: Path) -> None:
    matrix = _matrix()
    gctx = _prism_gctx(tmp_path / "doses.gctx", matrix, level="modZ")
    with pytest.raises(LpmInputError, match="row metadata has no cell_iname or cell_id field"):
        read_gctx_contexts(gctx, DOSES)
    options = IngestOptions(
        **{**DOSES.__dict__, "row_metadata": _cell_table(tmp_path / "cells.csv")}
    )
    result = read_gctx_contexts(gctx, options)
    m = result.measurements
    assert set(m["context"]) == {"prism_t/A375", "prism_t/HT29", "prism_t/MCF7"}
    assert set(m["readout"]) == {"viability"} and set(m["readout_type"]) == {"zscore"}
    assert result.notes["lincs_level"] == 5  # from data_level 'modZ': as given, no subtraction
    assert result.notes["samples_dropped"] == {"lma_x": 1}
    assert m.height == 5 * len(LINES)  # 5 treated columns (poscon included) × 3 lines
    a375 = m.filter(
        pl.col("context") == "prism_t/A375", pl.col("perturbation") == "compound:dabrafenib"
    )
    assert sorted(a375["dose"].to_list()) == [1.0, 10.0]
    assert a375.filter(pl.col("dose") == 10.0)["value"].item() == pytest.approx(matrix[0, 2])
    # one name, two Broad ids: one symbol, two replicates, both ids kept in the compound table
    u0126 = m.filter(
        pl.col("context") == "prism_t/HT29", pl.col("perturbation") == "compound:U-0126"
    )
    assert sorted(u0126["replicate"].to_list()) == [0, 1]
    compounds = result.compounds
    assert compounds is not None
    ids = dict(compounds.select("perturbation", "compound_id").iter_rows())
    assert ids["compound:U-0126"] == "BRD-K18787491|BRD-K91701654"
    assert result.controls is not None
    ctrl = result.controls.filter(pl.col("context") == "prism_t/MCF7")
    assert ctrl["value"].item() == pytest.approx(matrix[2, :2].mean(), rel=1e-5)


def test_auc_matrix_values_as_given(tmp_path: Path) -> None:
    matrix = np.abs(_matrix())
    matrix[1, 2] = np.nan  # HT29 × dabrafenib 10 µM not measured
    gctx = _prism_gctx(tmp_path / "auc.gctx", matrix, names_in_rows=True)
    with pytest.raises(LpmInputError, match="cannot tell what the values are"):
        read_gctx_contexts(gctx, DOSES)
    options = IngestOptions(
        **{**DOSES.__dict__, "readout_type": "delta", "readout_name": "killing_auc"}
    )
    result = read_gctx_contexts(gctx, options)
    m = result.measurements
    assert set(m["readout"]) == {"killing_auc"} and set(m["readout_type"]) == {"delta"}
    assert result.notes["unmeasured"] == {
        "nan_cells": 1,
        "rows_dropped": 1,
        "rule": "a NaN cell of a wide matrix is a measurement not made: its row is left out",
    }
    assert m.height == 5 * len(LINES) - 1
    got = m.filter(
        pl.col("context") == "prism_t/A375", pl.col("perturbation") == "compound:bortezomib"
    )
    assert got["value"].item() == pytest.approx(matrix[0, 6])


def test_contexts_layout_through_ingest(tmp_path: Path) -> None:
    gctx = _prism_gctx(tmp_path / "doses.gctx", _matrix(), level="modZ")
    options = IngestOptions(
        **{**DOSES.__dict__, "row_metadata": _cell_table(tmp_path / "cells.csv")}
    )
    store = ingest([gctx], tmp_path / "s", options=options)
    assert store.compounds() is not None and store.compounds().height == 3
    assert store.meta.sources[0]["row_metadata"]["path"].endswith("cells.csv")
    with pytest.raises(LpmInputError, match="--row-metadata is for GCT/GCTX files only"):
        ingest([tmp_path / "cells.csv"], tmp_path / "t", options=IngestOptions(row_metadata=gctx))


def test_row_table_must_agree_with_the_file(tmp_path: Path) -> None:
    gctx = _prism_gctx(tmp_path / "auc.gctx", _matrix(), names_in_rows=True)
    table = _cell_table(tmp_path / "cells.csv")
    table.write_text(table.read_text().replace(",MCF7,", ",T47D,"))
    options = IngestOptions(
        **{**DOSES.__dict__, "readout_type": "viability", "row_metadata": table}
    )
    with pytest.raises(
        LpmInputError, match=r"field 'cell_iname' disagrees with auc\.gctx at row '3'"
    ):
        read_gctx_contexts(gctx, options)


# --------------------------------------------------------------------------- real files


def _timed_ingest(
    sources: list[Path], out: Path, options: IngestOptions
) -> tuple[pl.DataFrame, float]:
    start = time.perf_counter()
    store = ingest(sources, out, options=options)
    return store.read(), time.perf_counter() - start


def _kills_a375_more_than_the_median(rows: pl.DataFrame, compound: str, sign: float) -> None:
    """A BRAF inhibitor's effect in BRAF-V600E A375 lies beyond the median line's (sign: +1 when
    higher means more killing)."""
    d = rows.filter(pl.col("perturbation") == compound)
    a375 = d.filter(pl.col("context").str.ends_with("/A375"))["value"].mean()
    assert sign * a375 > sign * d["value"].median()


@pytest.mark.realdata
def test_real_prism_auc(tmp_path: Path) -> None:
    folder = shared_data("prism_repurposing_489lines")
    options = IngestOptions(
        layout="contexts", dataset="prism", readout_type="delta", readout_name="killing_auc"
    )
    rows, _ = _timed_ingest([folder / "PREP2_AUC_n1396x489.gctx"], tmp_path / "auc", options)
    assert rows.height == 1396 * 489 and rows["context"].n_unique() == 489
    assert rows["perturbation"].n_unique() == 1395  # U-0126 has two Broad ids: two replicates
    for compound in ("compound:vemurafenib", "compound:dabrafenib"):
        _kills_a375_more_than_the_median(rows, compound, +1.0)


@pytest.mark.realdata
def test_real_prism_dose_series(tmp_path: Path) -> None:
    folder = shared_data("prism_repurposing_489lines")
    options = IngestOptions(
        layout="contexts", readout_type="viability", drop_types=("lma_x",),
        row_metadata=folder / "PRISM_cell_meta_489.csv",
    )  # fmt: skip
    files = [
        folder / "PREP2_MODZ.ZSPC.COMBAT_n648x489.gctx",
        folder / "PASG002_MODZ.ZSPC_n383x489.gctx",
    ]
    rows, _ = _timed_ingest(files, tmp_path / "doses", options)
    assert (
        rows.height == (648 + 365) * 489
    )  # PASG002: 14 DMSO columns are controls, 4 lma_x left out
    prep = rows.filter(pl.col("dataset") == "PREP2_MODZ")
    assert prep.filter(pl.col("perturbation") == "compound:vemurafenib")["dose"].n_unique() == 8
    top = rows.filter(pl.col("dose") > 9)
    _kills_a375_more_than_the_median(
        top, "compound:vemurafenib", -1.0
    )  # z-scores: lower = fewer cells
    store = open_store(tmp_path / "doses")
    assert store.compounds() is not None and store.compounds()["smiles"].null_count() == 0


@pytest.mark.realdata
def test_real_l1000_65_lines(tmp_path: Path) -> None:
    folder = shared_data("lincs_l1000_65lines")
    path = folder / "modzs_n272x978.gctx"
    with pytest.raises(LpmInputError, match="cannot tell what the values are"):
        ingest([path], tmp_path / "no", options=IngestOptions(dataset="lincs65"))
    rows, _ = _timed_ingest(
        [path], tmp_path / "l65", IngestOptions(dataset="lincs65", lincs_level=5)
    )
    assert rows.height == 272 * 978 and rows["context"].n_unique() == 65
    assert set(rows["readout_type"]) == {"zscore"}
    assert sorted(rows["time"].drop_nulls().unique().to_list()) == [6.0, 24.0]
    assert sorted(round(d, 6) for d in rows["dose"].unique()) == [0.1, 0.5, 1.0, 3.0, 10.0]
    # vemurafenib suppresses the MAPK target DUSP6 in BRAF-V600E A375 more than in the median line
    dusp6 = rows.filter(
        pl.col("readout") == "DUSP6", pl.col("perturbation") == "compound:vemurafenib"
    )
    per_line = dusp6.group_by("context").agg(pl.col("value").mean())
    a375 = per_line.filter(pl.col("context") == "lincs65/A375")["value"].item()
    assert a375 < per_line["value"].median() - 1.0

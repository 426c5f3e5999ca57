"""The LINCS L1000 reader: levels, vehicles, wells and metadata rules on synthetic GCT/GCTX
files (from :mod:`tests.data.io.test_gct`), real files where present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.gct import parse_gct, parse_gctx
from lpm.data.io.lincs import read_gct, read_gctx
from lpm.data.store import write_store
from lpm.errors import LpmInputError
from tests.data.io.test_gct import (
    COL_FIELDS,
    GENES,
    PROBES,
    REAL,
    WELLS,
    _assert_refused,
    _gct13,
    _matrix,
    _read,
    _write,
    _write_gctx,
)

# --------------------------------------------------------------------------- reader semantics


def test_level3_delta_vs_vehicle(tmp_path: Path) -> None:
    matrix = _matrix(3)
    path = _write(tmp_path / "l3.gct", _gct13(matrix))
    result = _read(path)
    m = result.measurements
    assert result.notes["lincs_level"] == 3
    assert "from --lincs-level" in result.notes["level_rule"]
    assert set(m["readout_type"]) == {"delta"}
    assert set(m["dataset"]) == {"lincs"}
    assert set(m["context"]) == {"lincs/A375"}
    assert set(m["readout"]) == set(GENES)
    assert set(m["perturbation"]) == {
        "compound:trametinib",
        "compound:bortezomib",
    }  # trt_poscon is a compound
    assert m.height == 4 * len(GENES)  # controls (vehicle and untreated) are not rows
    assert result.notes["n_controls"] == 2 and result.notes["n_other_controls_dropped"] == 1
    vehicle = matrix[:, :2].mean(axis=1)
    row = m.filter(
        (pl.col("perturbation") == "compound:trametinib") & (pl.col("dose") == 10.0)
    ).sort("readout")
    order = np.argsort(GENES)
    np.testing.assert_allclose(row["value"].to_numpy(), (matrix[:, 2] - vehicle)[order], rtol=1e-5)
    assert set(row["time"]) == {24.0}
    ctrl = result.controls
    assert ctrl is not None
    assert ctrl.columns == ["context", "readout", "value", "n_cells"]
    assert set(ctrl["n_cells"]) == {2}
    np.testing.assert_allclose(ctrl.sort("readout")["value"].to_numpy(), vehicle[order], rtol=1e-5)
    store = write_store(m, tmp_path / "store", controls=ctrl, notes=result.notes)
    assert store.n_rows == m.height


def test_replicates_numbered_by_sample_id(tmp_path: Path) -> None:
    matrix = _matrix(3)
    result = _read(_write(tmp_path / "r.gct", _gct13(matrix)))
    reps = result.measurements.filter(
        (pl.col("dose") - 1.11).abs() < 1e-6, pl.col("readout") == "TP53"
    )
    assert sorted(reps["replicate"].to_list()) == [0, 1]
    vehicle = matrix[0, :2].mean()
    # P1:A04 (column 4) sorts before P1:A05 (column 3), so it is replicate 0
    first = reps.filter(pl.col("replicate") == 0)["value"].item()
    assert first == pytest.approx(matrix[0, 4] - vehicle, rel=1e-5)
    assert result.notes["n_replicated_wells"] == 1


def test_level4_gctx_values_as_given(tmp_path: Path) -> None:
    matrix = _matrix(4)
    result = _read(_write_gctx(tmp_path / "l4.gctx", matrix))
    assert result.notes["lincs_level"] == 4
    m = result.measurements
    assert set(m["readout_type"]) == {"zscore"}
    value = m.filter(pl.col("perturbation") == "compound:bortezomib", pl.col("readout") == "EGFR")[
        "value"
    ].item()
    assert value == pytest.approx(matrix[2, 5], rel=1e-6)
    assert m.filter(pl.col("perturbation") == "compound:bortezomib")["dose"].item(
        0
    ) == pytest.approx(0.1)
    assert result.controls is not None and set(result.controls["n_cells"]) == {2}


def test_level_option_and_dataset(tmp_path: Path) -> None:
    path = _write(tmp_path / "o.gct", _gct13())
    result = _read(path, IngestOptions(lincs_level=4, dataset="ljp"))
    assert result.notes["lincs_level"] == 4
    assert result.notes["level_rule"].startswith("LINCS level 4 from --lincs-level")
    assert set(result.measurements["context"]) == {"ljp/A375"}
    assert set(result.measurements["readout_type"]) == {"zscore"}
    with pytest.raises(LpmInputError, match="lincs_level must be 3, 4 or 5, got 6"):
        _read(path, IngestOptions(lincs_level=6))


def test_column_options(tmp_path: Path) -> None:
    lines = _gct13()
    lines[3 + COL_FIELDS.index("pert_iname")] = lines[3 + COL_FIELDS.index("pert_iname")].replace(
        "pert_iname", "my_name"
    )
    path = _write(tmp_path / "opt.gct", lines)
    with pytest.raises(LpmInputError, match="column metadata has no 'pert_iname' field"):
        _read(path)
    result = _read(path, IngestOptions(perturbation_column="my_name"))
    assert "compound:trametinib" in set(result.measurements["perturbation"])


def test_names_sanitised_and_noted(tmp_path: Path) -> None:
    wells = [(*w[:2], "drug+X:1", *w[3:]) if w[0] == "P1:A03" else w for w in WELLS]
    result = _read(_write(tmp_path / "s.gct", _gct13(wells=wells)))
    assert "compound:drug_X_1" in set(result.measurements["perturbation"])
    assert result.notes["sanitised_compound_names"] == {"drug+X:1": "drug_X_1"}


def test_sanitised_name_collision_refused(tmp_path: Path) -> None:
    wells = [(*w[:2], {"P1:A03": "a+b", "P1:A06": "a_b"}.get(w[0], w[2]), *w[3:]) for w in WELLS]
    _assert_refused(_write(tmp_path / "col.gct", _gct13(wells=wells)), "collide after replacing")


def test_row_id_fallback_noted(tmp_path: Path) -> None:
    result = _read(_write(tmp_path / "ids.gct", _gct13(genes=None)))
    assert set(result.measurements["readout"]) == set(PROBES)
    assert result.notes["readout_column"] == "id"
    assert "no pr_gene_symbol" in result.notes["readout_note"]


def test_inf_in_matrix(tmp_path: Path) -> None:
    matrix = _matrix(3)
    matrix[1, 3] = -np.inf
    _assert_refused(
        _write(tmp_path / "inf.gct", _gct13(matrix)),
        "matrix has 1 inf value(s), first at row 'p2_at', sample 'P1:A05'",
    )


def test_context_without_vehicle(tmp_path: Path) -> None:
    wells = [*WELLS, ("P1:B01", "trt_cp", "trametinib", "10.0", "24", "MCF7")]
    path = _write(tmp_path / "ctx.gct", _gct13(_matrix(3, len(wells)), wells))
    _assert_refused(path, "context lincs/MCF7 has no control (vehicle) samples to subtract")


def test_time_without_vehicle(tmp_path: Path) -> None:
    wells = [*WELLS, ("P1:B01", "trt_cp", "trametinib", "10.0", "6", "A375")]
    path = _write(tmp_path / "time.gct", _gct13(_matrix(3, len(wells)), wells))
    _assert_refused(path, "context lincs/A375 at time 6.0 h has no control (vehicle) samples")


def test_missing_readout_column_option(tmp_path: Path) -> None:
    path = _write(tmp_path / "ro.gct", _gct13())
    with pytest.raises(LpmInputError, match="row metadata has no column 'gene'"):
        _read(path, IngestOptions(readout_column="gene"))


def test_duplicate_gene_symbols(tmp_path: Path) -> None:
    path = _write(tmp_path / "dup.gct", _gct13(genes=["TP53", "MYC", "TP53", "KRAS"]))
    _assert_refused(
        path,
        "1 readout symbol(s) repeat across rows, first 'TP53' (rows p1_at, p3_at)",
        "pass --readout-column with a field unique per row (id)",
    )


def test_gct12_has_no_well_metadata(tmp_path: Path) -> None:
    lines = ["#1.2", "1\t2", "Name\tDescription\ts1\ts2", "g1\td\t8\t9"]
    _assert_refused(_write(tmp_path / "old.gct", lines), "GCT 1.2 has no column metadata")


def test_unsupported_pert_type(tmp_path: Path) -> None:
    wells = [
        ("P1:A03", "trt_sh", "TP53", "-666", "96", "A375") if w[0] == "P1:A03" else w for w in WELLS
    ]
    _assert_refused(
        _write(tmp_path / "sh.gct", _gct13(wells=wells)),
        "pert_type trt_sh (1 samples) not supported",
    )


def test_unknown_dose_unit(tmp_path: Path) -> None:
    lines = _gct13()
    lines.insert(3, "\t".join(["pert_dose_unit", "na", *("ng" for _ in WELLS)]))
    lines[1] = f"4\t{len(WELLS)}\t1\t{len(COL_FIELDS) + 1}"
    _assert_refused(
        _write(tmp_path / "unit.gct", lines), "unknown 'pert_dose_unit' value(s) ['ng']"
    )


def test_gctx_nan(tmp_path: Path) -> None:
    matrix = _matrix(4)
    matrix[0, 0] = np.inf
    _assert_refused(
        _write_gctx(tmp_path / "inf.gctx", matrix),
        "matrix has 1 inf value(s), first at row 'p1_at', sample 'P1:A01'",
    )


# --------------------------------------------------------------------------- real LINCS files


def _real(name: str) -> Path:
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"real LINCS data not found at {path} (../shared/data is absent here)")
    return path


@pytest.fixture(scope="module")
def real_results() -> tuple[IngestResult, IngestResult]:
    gct, gctx = _real("test_l1000.gct"), _real("test_l1000_highprecision.gctx")
    return read_gct(gct, IngestOptions()), read_gctx(gctx, IngestOptions())


@pytest.mark.realdata
def test_real_sample_ids_match() -> None:
    gct = parse_gct(_real("test_l1000.gct"))
    gctx = parse_gctx(_real("test_l1000_highprecision.gctx"))
    assert gct.matrix.shape == gctx.matrix.shape == (978, 377)
    assert list(gct.col_meta.index) == list(gctx.col_meta.index)
    assert list(gct.row_meta.index) == list(gctx.row_meta.index)


@pytest.mark.realdata
@pytest.mark.parametrize(("which", "level", "kind"), [(0, 3, "delta"), (1, 4, "zscore")])
def test_real_ingest(
    real_results: tuple[IngestResult, IngestResult], which: int, level: int, kind: str
) -> None:
    result = real_results[which]
    m = result.measurements
    assert result.notes["lincs_level"] == level
    # the files say their level: the last provenance step is QNO (quantile-normalised) or ZSP
    assert "from the file's provenance_code" in result.notes["level_rule"]
    assert set(m["readout_type"]) == {kind}
    assert m["readout"].n_unique() == 978
    assert set(m["context"]) == {"lincs/A375"}
    assert m["perturbation"].n_unique() == 59
    assert sorted(m["dose"].unique().to_list()) == [0.04, 0.12, 0.37, 1.11, 3.33, 10.0]
    assert set(m["time"]) == {24.0}
    assert m.height == 351 * 978
    assert np.isfinite(m["value"].to_numpy()).all()
    assert result.notes["n_controls"] == 26
    ctrl = result.controls
    assert ctrl is not None and ctrl.height == 978 and set(ctrl["n_cells"]) == {26}


@pytest.mark.realdata
def test_real_levels_agree(real_results: tuple[IngestResult, IngestResult]) -> None:
    l3, l4 = (r.measurements for r in real_results)
    joined = l3.join(l4, on=["perturbation", "readout", "dose", "time", "replicate"], suffix="_z")
    assert joined.height == l3.height
    assert np.corrcoef(joined["value"], joined["value_z"])[0, 1] > 0.8
    per_well = joined.group_by("perturbation", "dose").agg(pl.corr("value", "value_z").alias("r"))
    assert per_well["r"].min() > 0.5  # each well's L3 delta tracks its L4 z-score


@pytest.mark.realdata
def test_real_store_roundtrip(
    real_results: tuple[IngestResult, IngestResult], tmp_path: Path
) -> None:
    result = real_results[1]
    store = write_store(
        result.measurements, tmp_path / "lincs", controls=result.controls, notes=result.notes
    )
    assert store.n_rows == 351 * 978
    assert store.contexts == ["lincs/A375"]


def test_vehicle_only_context_is_not_a_control_row(tmp_path: Path) -> None:
    wells = [*WELLS, ("P1:B01", "ctl_vehicle", "DMSO", "-666", "24", "MCF7")]
    result = _read(_write(tmp_path / "v.gct", _gct13(_matrix(3, len(wells)), wells)))
    assert result.controls is not None and set(result.controls["context"]) == {"lincs/A375"}
    write_store(result.measurements, tmp_path / "store", controls=result.controls)

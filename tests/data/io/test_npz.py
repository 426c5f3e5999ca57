"""NPZ effect matrices: synthetic files for each rule and error, real files where present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data.io.base import IngestOptions
from lpm.data.io.npz import read_effect_matrix_npz, read_npz_perturbation_annotations
from lpm.data.io.tables import read_table
from lpm.data.store import write_store
from tests.conftest import shared_data as _real
from tests.data.io.test_tables import WIDE, _rejected, _write


def _npz(path: Path, **overrides: object) -> Path:
    arrays: dict[str, object] = {
        "effects": np.array([[-0.25, 0.23, 0.5], [0.1, -0.2, 0.0]]),
        "target_symbols": np.array(["", "HDDC2"]),
        "target_ids": np.array(["ENSG00000189403", "ENSG00000111906"]),
        "gene_symbols": np.array(["HBZ", "H1-2", "ENSG00000196565"]),
        "gene_ids": np.array(["ENSG00000130656", "ENSG00000187837", "ENSG00000196565"]),
        "n_cells": np.array([20, 18]),
        "energy": np.array([62.9, 71.4]),
        "noise_trace": np.array([62.5, 72.8]),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})  # type: ignore[arg-type]
    return path


def test_npz_effects(tmp_path: Path) -> None:
    path = _npz(tmp_path / "replogle_k562.npz")
    result = read_effect_matrix_npz(path, IngestOptions(dataset="replogle22"))
    m = result.measurements
    assert m.height == 6
    assert set(m["context"]) == {"replogle22/K562"}
    # an empty target symbol falls back to its id
    assert set(m["perturbation"]) == {"CRISPRi:ENSG00000189403", "CRISPRi:HDDC2"}
    assert "assumed CRISPRi" in result.notes["perturbation_type"]
    assert "energy" in result.notes["other_arrays"]
    row = m.filter((pl.col("perturbation") == "CRISPRi:HDDC2") & (pl.col("readout") == "H1-2")).row(
        0, named=True
    )
    assert row["value"] == pytest.approx(-0.2) and row["n_cells"] == 18
    write_store(m, tmp_path / "store")
    typed = read_effect_matrix_npz(
        path, IngestOptions(dataset="x", perturbation_type="CRISPRko", cell_line="rpe1")
    )
    assert set(typed.measurements["context"]) == {"x/RPE1"}
    assert all(p.startswith("CRISPRko:") for p in typed.measurements["perturbation"].unique())


def test_npz_annotations(tmp_path: Path) -> None:
    ann = read_npz_perturbation_annotations(_npz(tmp_path / "r_k562.npz"))
    assert ann.columns == ["perturbation", "target_id", "energy", "noise_trace", "n_cells"]
    assert ann["perturbation"].to_list() == ["CRISPRi:ENSG00000189403", "CRISPRi:HDDC2"]
    assert ann["energy"].to_list() == [62.9, 71.4]


def test_npz_and_wide_csv_agree(tmp_path: Path) -> None:
    npz = read_effect_matrix_npz(_npz(tmp_path / "r_k562.npz"), IngestOptions(dataset="r"))
    csv = read_table(
        _write(tmp_path / "r_k562.csv", WIDE.replace("HMGB1", "ENSG00000189403")),
        IngestOptions(dataset="r", perturbation_type="CRISPRi"),
    )
    key = ["context", "perturbation", "readout"]
    a = npz.measurements.sort(key)
    b = csv.measurements.sort(key)
    assert a.select(key).equals(b.select(key))
    np.testing.assert_allclose(a["value"].to_numpy(), b["value"].to_numpy())


def test_npz_missing_key(tmp_path: Path) -> None:
    path = _npz(tmp_path / "k562.npz", gene_symbols=None)
    _rejected(
        tmp_path,
        path,
        "NPZ misses array.*gene_symbols.*found",
        IngestOptions(),
        read_effect_matrix_npz,
    )


def test_npz_shape_mismatch(tmp_path: Path) -> None:
    path = _npz(tmp_path / "k562.npz", gene_symbols=np.array(["A", "B"]))
    _rejected(
        tmp_path,
        path,
        r"'gene_symbols' has shape \(2,\); expected \(3,\)",
        IngestOptions(),
        read_effect_matrix_npz,
    )


def test_npz_nan_cell_is_an_unmeasured_row(tmp_path: Path) -> None:
    effects = np.array([[-0.25, 0.23, 0.5], [0.1, np.nan, 0.0]])
    path = _npz(tmp_path / "k562.npz", effects=effects)
    result = read_effect_matrix_npz(path, IngestOptions())
    m = result.measurements
    assert m.height == 5
    assert m.filter(pl.col("readout") == "H1-2")["perturbation"].to_list() == [
        "CRISPRi:ENSG00000189403"
    ]
    assert result.notes["unmeasured"]["nan_cells"] == 1
    assert result.notes["unmeasured"]["rows_dropped"] == 1


def test_npz_inf_refused(tmp_path: Path) -> None:
    effects = np.array([[-0.25, 0.23, 0.5], [0.1, -np.inf, 0.0]])
    path = _npz(tmp_path / "k562.npz", effects=effects)
    _rejected(
        tmp_path,
        path,
        "'effects' has 1 inf value.*target 'HDDC2', gene 'H1-2'",
        IngestOptions(),
        read_effect_matrix_npz,
    )


def test_npz_duplicate_targets(tmp_path: Path) -> None:
    path = _npz(tmp_path / "k562.npz", target_symbols=np.array(["HDDC2", "HDDC2"]))
    _rejected(
        tmp_path,
        path,
        "'target_symbols' has 1 duplicate name.*HDDC2",
        IngestOptions(),
        read_effect_matrix_npz,
    )


def test_npz_pickled_objects(tmp_path: Path) -> None:
    path = _npz(tmp_path / "k562.npz", target_symbols=np.array(["A", None], dtype=object))
    _rejected(tmp_path, path, "cannot read NPZ", IngestOptions(), read_effect_matrix_npz)


def test_npz_corrupt(tmp_path: Path) -> None:
    data = _npz(tmp_path / "k562.npz").read_bytes()
    (tmp_path / "k562.npz").unlink()
    path = tmp_path / "cut_k562.npz"
    path.write_bytes(data[: len(data) // 2])
    _rejected(tmp_path, path, "cannot read NPZ", IngestOptions(), read_effect_matrix_npz)


def test_npz_needs_cell_line(tmp_path: Path) -> None:
    path = _npz(tmp_path / "effects.npz")
    _rejected(tmp_path, path, "pass --cell-line", IngestOptions(), read_effect_matrix_npz)


@pytest.mark.realdata
def test_real_replogle_npz_and_csv_agree() -> None:
    npz_path = _real("replogle22_k562_gw/replogle_k562.npz")
    csv_path = _real("replogle22_k562_gw/replogle_k562_gwps_2000pert_x_300genes_delta_log1p.csv.gz")
    opts = IngestOptions(dataset="replogle22", perturbation_type="CRISPRi")
    npz = read_effect_matrix_npz(npz_path, opts).measurements
    csv = read_table(csv_path, opts).measurements
    for m in (npz, csv):
        assert m.height == 2000 * 300
        assert m["perturbation"].n_unique() == 2000 and m["readout"].n_unique() == 300
        assert set(m["context"]) == {"replogle22/K562"}
        assert set(m["n_cells"]) == {20}
    # the CSV names some targets the NPZ leaves as Ensembl ids: compare by position
    a = npz.with_row_index().sort("index")["value"].to_numpy()
    b = csv.with_row_index().sort("index")["value"].to_numpy()
    np.testing.assert_allclose(a, b, atol=1e-4)
    ann = read_npz_perturbation_annotations(npz_path)
    assert ann.height == 2000 and set(ann["perturbation"]) == set(npz["perturbation"])

"""A GCT as a phospho-proteomics lab publishes it (LINCS P100-like), through the command line:
several phosphosites per gene, one cell not measured, vehicle wells typed ``ctrl_vehicle``,
log ratios with no level in the metadata, SMILES in the column metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data.io.base import IngestOptions
from lpm.data.io.lincs import read_gct
from lpm.errors import LpmInputError
from tests.conftest import error_line, lpm

SITES = ["EGFR_Y1068", "EGFR_S1166", "MAPK1_T185", "MAPK1_Y187", "AKT1_S473"]
GENES = ["EGFR", "EGFR", "MAPK1", "MAPK1", "AKT1"]
# id, pert_type, pert_iname, pert_id, canonical_smiles
SAMPLES = [
    ("A01", "ctrl_vehicle", "DMSO", "-666", "-666"),
    ("A02", "ctrl_vehicle", "DMSO", "-666", "-666"),
    ("A03", "trt_cp", "gefitinib", "BRD-K64052750",
     "COCCCN1CCOCC1.COc1cc2ncnc(Nc3ccc(F)c(Cl)c3)c2cc1O"),
    ("A04", "trt_cp", "trametinib", "BRD-K12343256",
     "CN1C(=O)C(C)=C2N(C(=O)N(C3CC3)C(=O)C2=C1Nc1ccc(I)cc1F)c1cccc(NC(C)=O)c1"),
    ("A05", "trt_cp", "lab-cpd-17", "BRD-X00000017", "CC(=O)Oc1ccccc1C(=O)O"),
]  # fmt: skip
NAN_AT = (2, 3)  # MAPK1_T185 not measured under trametinib


def _values() -> np.ndarray:
    """Log2 ratios to a reference: signed, centred near 0 (they look like z-scores, and are not)."""
    rng = np.random.default_rng(3)
    values = rng.normal(0.0, 0.8, (len(SITES), len(SAMPLES))).round(3)
    values[NAN_AT] = np.nan
    return values


def _p100_gct(path: Path, values: np.ndarray | None = None) -> Path:
    values = _values() if values is None else values
    fields = ("pert_type", "pert_iname", "pert_id", "canonical_smiles")
    lines = ["#1.3", f"{len(SITES)}\t{len(SAMPLES)}\t2\t{len(fields) + 1}"]
    lines.append(
        "\t".join(["id", "pr_gene_symbol", "pr_p100_phosphosite", *(s[0] for s in SAMPLES)])
    )
    lines.append("\t".join(["cell_id", "na", "na", *("MCF7" for _ in SAMPLES)]))
    for k, name in enumerate(fields, start=1):
        lines.append("\t".join([name, "na", "na", *(s[k] for s in SAMPLES)]))
    for i, site in enumerate(SITES):
        cells = ["NaN" if np.isnan(v) else f"{v:g}" for v in values[i]]
        lines.append("\t".join([f"p{i}", GENES[i], site, *cells]))
    path.write_text("\n".join(lines) + "\n")
    return path


ALL = ["--dataset", "p100", "--readout-column", "pr_p100_phosphosite"]


def test_published_p100_gct_ingests_as_specified(tmp_path: Path) -> None:
    gct, store = _p100_gct(tmp_path / "p100.gct"), tmp_path / "store"
    # several phosphosites per gene: the error names the fields that are unique per row
    proc = lpm("ingest", str(gct), "--out", str(store), "--dataset", "p100")
    assert proc.returncode == 2
    line = error_line(proc)
    assert "2 readout symbol(s) repeat across rows, first 'EGFR' (rows p0, p1)" in line
    assert "(id, pr_p100_phosphosite)" in line
    # no level in the metadata and none given: refused, saying why, never guessed from the values
    proc = lpm("ingest", str(gct), "--out", str(store), *ALL, "--control-label", "ctrl_vehicle")
    assert proc.returncode == 2
    assert "cannot tell what the values are" in error_line(proc)
    assert "does not guess it from the values; pass --lincs-level" in error_line(proc)
    assert not store.exists()
    # the vehicle type is not LINCS's ctl_vehicle: refused unless --control-label names it
    proc = lpm("ingest", str(gct), "--out", str(store), *ALL, "--lincs-level", "3")
    assert (
        proc.returncode == 2
        and "pert_type ctrl_vehicle (2 samples) not supported" in error_line(proc)
    )
    proc = lpm("ingest", str(gct), "--out", str(store), *ALL, "--lincs-level", "3",
               "--control-label", "ctrl_vehicle")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "unmeasured: 1 NaN cell(s), 1 row(s) left out" in proc.stdout  # printed by ingest

    rows = pl.read_parquet(store / "measurements.parquet").with_columns(
        pl.col(pl.Categorical).cast(pl.String)
    )
    assert rows.height == 3 * len(SITES) - 1  # 3 treated samples × 5 sites, less the NaN cell
    assert set(rows["readout"]) == set(SITES) and set(rows["readout_type"]) == {"delta"}
    assert set(rows["context"]) == {"p100/MCF7"}
    values = _values()
    vehicle = values[:, :2].mean(axis=1)  # ctrl_vehicle wells are the baseline, subtracted
    got = rows.filter(pl.col("perturbation") == "compound:gefitinib").sort("readout")
    order = np.argsort(SITES)
    np.testing.assert_allclose(got["value"].to_numpy(), (values[:, 2] - vehicle)[order], rtol=1e-5)
    assert (
        rows.filter(
            pl.col("perturbation") == "compound:trametinib", pl.col("readout") == "MAPK1_T185"
        ).height
        == 0
    )

    meta = json.loads((store / "store.json").read_text())
    notes = meta["notes"][str(gct)]
    assert notes["unmeasured"]["nan_cells"] == 1 and notes["unmeasured"]["rows_dropped"] == 1
    assert notes["lincs_level"] == 3 and notes["n_controls"] == 2
    assert "compounds.parquet" in meta["files"]
    compounds = pl.read_parquet(store / "compounds.parquet")
    assert compounds.height == 3 and compounds["smiles"].null_count() == 0
    assert (
        compounds.filter(pl.col("perturbation") == "compound:lab-cpd-17")["compound_id"].item()
        == "BRD-X00000017"
    )

    info = lpm("info", str(store))
    assert info.returncode == 0
    assert "p100.gct: unmeasured: 1 NaN cell(s), 1 row(s) left out" in info.stdout
    assert "compound table: 3 compounds, 3 with a SMILES from the source" in info.stdout

    # the file's SMILES come first: no compound folder is read (this one is empty)
    empty_folder = tmp_path / "no_structures"
    empty_folder.mkdir()
    out = tmp_path / "fp.parquet"
    proc = lpm("features", "compounds", "--store", str(store), "--out", str(out),
               "--compounds", str(empty_folder))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "3 with the SMILES of the store's source files, 0 found by name" in proc.stdout
    fps = pl.read_parquet(out)
    assert sorted(fps["symbol"]) == [
        "compound:gefitinib",
        "compound:lab-cpd-17",
        "compound:trametinib",
    ]
    assert fps.drop("symbol").sum_horizontal().min() > 5  # real fingerprints, bits set


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_inf_is_refused_with_exit_2(tmp_path: Path, bad: float) -> None:
    values = _values()
    values[0, 4] = bad
    gct = _p100_gct(tmp_path / "inf.gct", values)
    proc = lpm("ingest", str(gct), "--out", str(tmp_path / "s"), *ALL, "--lincs-level", "3",
               "--control-label", "ctrl_vehicle")  # fmt: skip
    assert proc.returncode == 2
    assert "matrix has 1 inf value(s), first at row 'p0', sample 'A05'" in error_line(proc)
    assert not (tmp_path / "s").exists()


def test_control_label_matches_the_name_column(tmp_path: Path) -> None:
    gct = _p100_gct(tmp_path / "p100.gct")
    options = IngestOptions(
        readout_column="pr_p100_phosphosite", lincs_level=4, control_label="DMSO"
    )
    result = read_gct(gct, options)
    assert result.notes["n_controls"] == 2 and result.notes["readout_type"] == "zscore"
    with pytest.raises(LpmInputError, match="--control-label 'vehicle' names no sample"):
        read_gct(
            gct,
            IngestOptions(
                readout_column="pr_p100_phosphosite", lincs_level=4, control_label="vehicle"
            ),
        )


def _with_level(path: Path, field: str, value: str) -> Path:
    lines = _p100_gct(path).read_text().splitlines()
    n_rows, n_cols, n_rmeta, n_cmeta = lines[1].split("\t")
    lines[1] = f"{n_rows}\t{n_cols}\t{n_rmeta}\t{int(n_cmeta) + 1}"
    lines.insert(3, "\t".join([field, "na", "na", *(value for _ in SAMPLES)]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("field", "value", "level", "kind"),
    [
        ("data_level", "modZ", 5, "zscore"),
        ("data_level", "Level 3", 3, "delta"),
        ("provenance_code", "KMV+F2D+INO+QNO", 3, "delta"),
        ("provenance_code", "KMV+F2D+INO+QNO+ZSPC", 4, "zscore"),
    ],
)
def test_level_from_the_metadata(
    tmp_path: Path, field: str, value: str, level: int, kind: str
) -> None:
    gct = _with_level(tmp_path / "lv.gct", field, value)
    options = IngestOptions(readout_column="pr_p100_phosphosite", control_label="ctrl_vehicle")
    result = read_gct(gct, options)
    assert result.notes["lincs_level"] == level and result.notes["readout_type"] == kind
    assert f"from the file's {field} {value!r}" in result.notes["level_rule"]
    other = 4 if level != 4 else 3
    with pytest.raises(
        LpmInputError, match=f"--lincs-level {other} contradicts the file's {field}"
    ):
        read_gct(
            gct,
            IngestOptions(
                readout_column="pr_p100_phosphosite",
                control_label="ctrl_vehicle",
                lincs_level=other,
            ),
        )


def test_unknown_level_word_is_named(tmp_path: Path) -> None:
    gct = _with_level(tmp_path / "lv.gct", "provenance_code", "PR1+L2X+SF8")  # P100 log ratios
    options = IngestOptions(readout_column="pr_p100_phosphosite", control_label="ctrl_vehicle")
    with pytest.raises(
        LpmInputError, match="provenance_code 'PR1\\+L2X\\+SF8' names no level lpm knows"
    ):
        read_gct(gct, options)

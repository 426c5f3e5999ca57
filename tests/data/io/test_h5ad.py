"""Single-cell h5ad -> pseudobulk deltas: synthetic files for each rule and error, real file where present."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.sparse as sp

import lpm.data.io.h5ad as h5mod
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.h5ad import read_h5ad_pseudobulk
from lpm.data.store import open_store, write_store
from lpm.errors import LpmInputError
from tests.conftest import shared_data as _real

GENES = ["G1", "G2", "G3", "G4"]
# (dataset, cell_type, perturbation_type, perturbation, n_cells)
DESIGN = [
    ("dsA", "k562", "CRISPRa", "control", 4),
    ("dsA", "k562", "CRISPRa", "KLF1", 3),
    ("dsA", "k562", "CRISPRa", "KLF1+MAP2K6", 2),
    ("dsA", "k562", "CRISPRa", "MAP2K6+KLF1", 1),
    ("dsB", "A172", "CRISPRi", "control", 3),
    ("dsB", "A172", "CRISPRi", "MAPK1", 5),
]


def _obs(design: list[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    rows = [(d, c, t, p, "1+1" if "+" in p else "1") for d, c, t, p, n in design for _ in range(n)]
    obs = pd.DataFrame(
        rows, columns=["dataset", "cell_type", "perturbation_type", "perturbation", "dose"]
    )
    obs.index = [f"cell{i}" for i in range(len(obs))]
    return obs.astype("category")


def _x(n_cells: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(2.0, size=(n_cells, len(GENES))).astype(float)
    return np.log1p(counts * 1.7)


def _write(
    path: Path,
    *,
    design: list[tuple[str, str, str, str, int]] = DESIGN,
    x: np.ndarray | None = None,
    dense: bool = False,
    drop: tuple[str, ...] = (),
    obs: pd.DataFrame | None = None,
) -> tuple[Path, pd.DataFrame, np.ndarray]:
    obs = _obs(design) if obs is None else obs
    x = _x(len(obs)) if x is None else x
    adata = ad.AnnData(
        X=x if dense else sp.csr_matrix(x),
        obs=obs.drop(columns=list(drop)),
        var=pd.DataFrame(index=pd.Index(GENES[: x.shape[1]], dtype=str)),
    )
    adata.write_h5ad(path)
    return path, obs, x


def _rejected(
    tmp_path: Path, path: Path, match: str, options: IngestOptions | None = None
) -> LpmInputError:
    """The reader (or the store write after it) refuses with one line naming the file; nothing is written."""
    before = set(tmp_path.iterdir())
    with pytest.raises(LpmInputError, match=match) as err:
        result = read_h5ad_pseudobulk(path, options or IngestOptions())
        write_store(result.measurements, tmp_path / "store", controls=result.controls)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)
    assert set(tmp_path.iterdir()) == before
    return err.value


def _expected_means(obs: pd.DataFrame, x: np.ndarray, cells: pd.Series) -> np.ndarray:
    return x[cells.to_numpy()].mean(axis=0)


def test_pseudobulk_deltas_controls_and_symbols(tmp_path: Path) -> None:
    path, obs, x = _write(tmp_path / "toy.h5ad")
    result = read_h5ad_pseudobulk(path, IngestOptions())
    m = result.measurements
    assert set(m["context"]) == {"dsA/K562", "dsB/A172"}
    assert set(m["perturbation"]) == {
        "CRISPRa:KLF1",
        "CRISPRa:KLF1+CRISPRa:MAP2K6",
        "CRISPRi:MAPK1",
    }
    assert m.height == 3 * len(GENES)
    assert set(m["readout_type"]) == {"delta"}
    # 'KLF1+MAP2K6' and 'MAP2K6+KLF1' are one perturbation: their cells are pooled
    double = m.filter(pl.col("perturbation") == "CRISPRa:KLF1+CRISPRa:MAP2K6")
    assert set(double["n_cells"]) == {3}
    assert result.notes["pooled_conditions"] >= 1
    ctrl_a = (obs["dataset"] == "dsA") & (obs["perturbation"] == "control")
    pair = obs["perturbation"].isin(["KLF1+MAP2K6", "MAP2K6+KLF1"])
    want = _expected_means(obs, x, pair) - _expected_means(obs, x, ctrl_a)
    got = double.sort("readout")["value"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    single = m.filter(pl.col("perturbation") == "CRISPRi:MAPK1")
    assert set(single["n_cells"]) == {5} and set(single["dataset"]) == {"dsB"}
    # controls: each context's control mean, with its cell count
    c = result.controls
    assert c is not None and c.height == 2 * len(GENES)
    got_ctrl = c.filter(pl.col("context") == "dsA/K562").sort("readout")["value"].to_numpy()
    np.testing.assert_allclose(got_ctrl, _expected_means(obs, x, ctrl_a), rtol=1e-6)
    assert set(c.filter(pl.col("context") == "dsB/A172")["n_cells"]) == {3}
    assert "guides" in result.notes["dose"]
    store = write_store(m, tmp_path / "store", controls=c)
    assert open_store(store.path).contexts == ["dsA/K562", "dsB/A172"]


def test_chunked_and_dense_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, x = _write(tmp_path / "sparse.h5ad")
    dense, _, _ = _write(tmp_path / "dense.h5ad", x=x, dense=True)
    whole = read_h5ad_pseudobulk(path, IngestOptions()).measurements
    monkeypatch.setattr(h5mod, "CHUNK_CELLS", 5)
    chunked = read_h5ad_pseudobulk(path, IngestOptions()).measurements
    from_dense = read_h5ad_pseudobulk(dense, IngestOptions()).measurements
    assert chunked.equals(whole)
    np.testing.assert_allclose(from_dense["value"].to_numpy(), whole["value"].to_numpy(), atol=1e-6)


def test_column_options_and_fallbacks(tmp_path: Path) -> None:
    obs = _obs(DESIGN[:2]).rename(columns={"perturbation": "guide_target"})
    path, _, _ = _write(
        tmp_path / "opts.h5ad", obs=obs, drop=("dataset", "cell_type", "perturbation_type")
    )
    options = IngestOptions(
        perturbation_column="guide_target",
        cell_line="hepg2",
        perturbation_type="CRISPRko",
        dataset="mine",
    )
    result = read_h5ad_pseudobulk(path, options)
    assert set(result.measurements["context"]) == {"mine/HEPG2"}
    assert set(result.measurements["perturbation"]) == {"CRISPRko:KLF1"}
    # without --dataset the file stem names the dataset
    stem = read_h5ad_pseudobulk(
        path,
        IngestOptions(
            perturbation_column="guide_target", cell_line="x", perturbation_type="CRISPRi"
        ),
    )
    assert set(stem.measurements["context"]) == {"opts/X"}


def test_custom_control_label_and_ctrl_members(tmp_path: Path) -> None:
    design = [
        ("d", "c", "CRISPRa", "NT", 2),
        ("d", "c", "CRISPRa", "KLF1+NT", 2),
        ("d", "c", "CRISPRa", "KLF1+SET", 2),
    ]
    path, _, _ = _write(tmp_path / "ctrl.h5ad", design=design)
    result = read_h5ad_pseudobulk(path, IngestOptions(control_label="NT"))
    assert set(result.measurements["perturbation"]) == {"CRISPRa:KLF1", "CRISPRa:KLF1+CRISPRa:SET"}


def test_context_with_only_controls_is_dropped_from_controls(tmp_path: Path) -> None:
    design = [*DESIGN, ("dsC", "T98G", "CRISPRi", "control", 2)]
    path, _, _ = _write(tmp_path / "lonely.h5ad", design=design)
    result = read_h5ad_pseudobulk(path, IngestOptions())
    assert result.notes["contexts_with_only_controls"] == ["dsC/T98G"]
    assert result.controls is not None and "dsC/T98G" not in set(result.controls["context"])
    write_store(result.measurements, tmp_path / "store", controls=result.controls)


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "fake.h5ad"
    path.write_text("cell,gene\n1,2\n")
    _rejected(tmp_path, path, "not an h5ad file")


def test_truncated(tmp_path: Path) -> None:
    full, _, _ = _write(tmp_path / "full.h5ad")
    data = full.read_bytes()
    full.unlink()
    path = tmp_path / "cut.h5ad"
    path.write_bytes(data[: len(data) // 2])
    _rejected(tmp_path, path, "cannot read h5ad")


def test_hdf5_but_not_anndata(tmp_path: Path) -> None:
    path = tmp_path / "other.h5ad"
    with h5py.File(path, "w") as fh:
        fh["something"] = np.arange(3)
    _rejected(tmp_path, path, "cannot read h5ad")


def test_missing_column_lists_available(tmp_path: Path) -> None:
    path, _, _ = _write(tmp_path / "nopert.h5ad", drop=("perturbation",))
    err = _rejected(tmp_path, path, "no column 'perturbation'")
    assert "available: dataset, cell_type, perturbation_type, dose" in str(err)
    err = _rejected(
        tmp_path, path, "no column 'target'", IngestOptions(perturbation_column="target")
    )


def test_missing_context_column(tmp_path: Path) -> None:
    path, _, _ = _write(tmp_path / "noctx.h5ad", drop=("cell_type",))
    _rejected(tmp_path, path, "no column 'cell_type'.*--cell-line")


def test_missing_type_needs_option(tmp_path: Path) -> None:
    path, _, _ = _write(tmp_path / "notype.h5ad", drop=("perturbation_type",))
    _rejected(tmp_path, path, "pass --perturbation-type")
    result = read_h5ad_pseudobulk(path, IngestOptions(perturbation_type="CRISPRi"))
    assert all(p.startswith("CRISPRi:") for p in result.measurements["perturbation"].unique())


def test_unknown_type_value(tmp_path: Path) -> None:
    design = [("d", "c", "CRISPRx", "control", 2), ("d", "c", "CRISPRx", "A", 2)]
    path, _, _ = _write(tmp_path / "badtype.h5ad", design=design)
    _rejected(tmp_path, path, "unknown perturbation type 'CRISPRx'")


def test_context_without_controls(tmp_path: Path) -> None:
    design = [d for d in DESIGN if not (d[0] == "dsB" and d[3] == "control")]
    path, _, _ = _write(tmp_path / "noctrl.h5ad", design=design)
    _rejected(tmp_path, path, "context dsB/A172 has no 'control' cells")


def test_only_controls(tmp_path: Path) -> None:
    path, _, _ = _write(tmp_path / "onlyctrl.h5ad", design=[("d", "c", "CRISPRi", "control", 3)])
    _rejected(tmp_path, path, "only 'control' cells")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_x(tmp_path: Path, bad: float) -> None:
    x = _x(sum(d[4] for d in DESIGN))
    x[7, 2] = bad
    path, _, _ = _write(tmp_path / "nan.h5ad", x=x)
    _rejected(tmp_path, path, "X has .*NaN/inf value.*cell7")


@pytest.mark.parametrize(
    ("transform", "match"),
    [
        (lambda x: x - 1.0, "negative values"),
        (lambda x: np.round(np.expm1(x) * 50), "does not look log1p-normalised"),
        (lambda x: np.round(np.expm1(x)), "whole numbers only"),
    ],
)
def test_x_not_log_normalised(
    tmp_path: Path, transform: Callable[[np.ndarray], np.ndarray], match: str
) -> None:
    path, _, _ = _write(tmp_path / "raw.h5ad", x=transform(_x(sum(d[4] for d in DESIGN))))
    _rejected(tmp_path, path, match)


def test_empty(tmp_path: Path) -> None:
    obs = pd.DataFrame(
        {
            c: pd.Series([], dtype=str)
            for c in ("dataset", "cell_type", "perturbation_type", "perturbation")
        }
    )
    obs.index = pd.Index([], dtype=str)
    path, _, _ = _write(tmp_path / "empty.h5ad", obs=obs, x=np.zeros((0, 4)))
    _rejected(tmp_path, path, "empty h5ad")


def test_compound_doses_not_pooled(tmp_path: Path) -> None:
    obs = _obs([("d", "c", "compound", "control", 2), ("d", "c", "compound", "drugX", 4)])
    obs["dose"] = pd.Categorical(["0", "0", "1", "1", "10", "10"])
    path, _, _ = _write(tmp_path / "drug.h5ad", obs=obs)
    _rejected(tmp_path, path, "dose-resolved pseudobulk is not supported")


def test_duplicate_gene_names(tmp_path: Path) -> None:
    path, _, _ = _write(tmp_path / "dupgenes.h5ad")
    # anndata warns when writing duplicate names, so edit the stored index in place
    with h5py.File(path, "r+") as fh:
        index = fh["var"][fh["var"].attrs["_index"]]
        index[2] = index[0]
    _rejected(tmp_path, path, "duplicate gene name")


# --- real data ----------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_devel_h5ad(tmp_path: Path) -> None:
    path = _real("norman19_mcfaline23_devel/devel.h5ad")
    result: IngestResult = read_h5ad_pseudobulk(path, IngestOptions())
    m = result.measurements
    assert set(m["context"]) == {
        "norman19/K562",
        "mcfaline23/A172",
        "mcfaline23/T98G",
        "mcfaline23/U87MG",
    }
    assert m["readout"].n_unique() == 500
    perts = set(m["perturbation"])
    assert "CRISPRa:KLF1+CRISPRa:MAP2K6" in perts
    assert sum("+" in p for p in perts) == 15
    assert m.filter(pl.col("context") == "norman19/K562")["perturbation"].n_unique() == 33
    assert m.filter(pl.col("context") == "mcfaline23/A172")["perturbation"].n_unique() == 9
    assert m.height == (33 + 3 * 9) * 500
    assert m["n_cells"].min() > 0 and m["n_cells"].max() == 100
    assert result.controls is not None and result.controls.height == 4 * 500
    # agrees with the pseudobulk means shipped beside the file
    ref = pl.read_csv(
        _real("norman19_mcfaline23_devel/devel_pseudobulk_mean_log1p_by_condition_celltype.csv.gz")
    )
    want = (
        ref.filter(pl.col("condition_cell_type") == "KLF1+MAP2K6_k562")
        .select("PERM1", "KAZN")
        .row(0)
    )
    base = (
        ref.filter(pl.col("condition_cell_type") == "control_k562").select("PERM1", "KAZN").row(0)
    )
    got = (
        m.filter(pl.col("perturbation") == "CRISPRa:KLF1+CRISPRa:MAP2K6")
        .filter(pl.col("readout").is_in(["PERM1", "KAZN"]))
        .sort("readout", descending=True)["value"]
        .to_list()
    )
    np.testing.assert_allclose(got, np.array(want) - np.array(base), atol=1e-5)
    store = write_store(m, tmp_path / "store", controls=result.controls)
    assert store.n_rows == m.height


def corrupt_h5ad(path: Path) -> Path:
    """A gzip-compressed h5ad whose metadata reads but one chunk of ``X/data`` does not."""
    obs = _obs(DESIGN * 20)
    x = _x(len(obs))
    adata = ad.AnnData(
        X=sp.csr_matrix(x), obs=obs, var=pd.DataFrame(index=pd.Index(GENES, dtype=str))
    )
    adata.write_h5ad(path, compression="gzip")
    with h5py.File(path) as fh:
        data = fh["X/data"]
        chunk = data.id.get_chunk_info(data.id.get_num_chunks() - 1)
    raw = bytearray(path.read_bytes())
    start = chunk.byte_offset + chunk.size // 4
    raw[start : start + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    return path


def test_corrupt_chunk_of_x_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = corrupt_h5ad(tmp_path / "corrupt.h5ad")
    err = _rejected(tmp_path, path, r"cannot read X for cells 0\.\.\d+ \(corrupt or truncated")
    assert str(err).startswith(f"{path}: ")

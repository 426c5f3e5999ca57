"""SubTab context features: determinism, that shared profiles embed close, input errors, loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.priors.context_features import (
    context_feature_table,
    mcfaline_control_samples,
    measured_readout_samples,
    simulation_control_samples,
    subtab_embeddings,
    write_feature_table,
)
from tests.conftest import shared_data

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"epochs": 15, "hidden": 16, "dim": 4}


def _toy(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Groups a and b share one mean profile; c has another."""
    rng = np.random.default_rng(seed)
    p = 24
    shared, other = rng.normal(0, 2, p), rng.normal(0, 2, p)
    rows, groups = [], []
    for name, mean in (("a", shared), ("b", shared), ("c", other)):
        rows.append(mean + rng.normal(0, 0.3, (30, p)))
        groups += [name] * 30
    return np.vstack(rows), groups


def _cos(u: np.ndarray, v: np.ndarray) -> float:
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_same_seed_same_bytes_other_seed_differs() -> None:
    x, g = _toy()
    one = subtab_embeddings(x, g, seed=3, **FAST)
    two = subtab_embeddings(x, g, seed=3, **FAST)
    other = subtab_embeddings(x, g, seed=4, **FAST)
    assert one.drop("symbol").to_numpy().tobytes() == two.drop("symbol").to_numpy().tobytes()
    assert not np.array_equal(one.drop("symbol").to_numpy(), other.drop("symbol").to_numpy())


def test_shape_columns_and_thin_wrapper() -> None:
    x, g = _toy()
    table = context_feature_table(x, g, seed=0, **FAST)
    assert table.columns == ["symbol", "ctx_0", "ctx_1", "ctx_2", "ctx_3"]
    assert table["symbol"].to_list() == ["a", "b", "c"]
    assert all(table[c].dtype == pl.Float32 for c in table.columns[1:])
    assert table.equals(subtab_embeddings(x, g, seed=0, **FAST))


def test_groups_with_one_profile_embed_closer_than_a_different_group() -> None:
    x, g = _toy()
    for noise in ("swap", "zero"):
        table = subtab_embeddings(x, g, epochs=60, hidden=32, dim=8, noise=noise)
        a, b, c = table.drop("symbol").to_numpy().astype(np.float64)
        assert _cos(a, b) > _cos(a, c)
        assert _cos(a, b) > _cos(b, c)


def test_input_leaves_caller_data_unchanged() -> None:
    x, g = _toy()
    before = x.copy()
    subtab_embeddings(x, g, **FAST)
    assert np.array_equal(x, before)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, g: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), g), "NaN"),
        (
            lambda x, g: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.inf, x), g),
            "infinite",
        ),
        (lambda x, g: (x, g[:-1]), "groups has 89 entries"),
        (lambda x, g: (x[:, :1], g), "at least 2 feature"),
        (lambda x, g: (x[0], g), "2-D"),
    ],
)
def test_bad_input_gives_one_line_error(change, message: str) -> None:  # type: ignore[no-untyped-def]
    x, g = change(*_toy())
    with pytest.raises(LpmInputError, match=message) as info:
        subtab_embeddings(x, g, **FAST)
    assert "\n" not in str(info.value)


def test_too_many_subsets() -> None:
    x, g = _toy()
    with pytest.raises(LpmInputError, match="n_subsets"):
        subtab_embeddings(x[:, :3], g, n_subsets=4, **FAST)


def test_write_feature_table_is_atomic_and_round_trips(tmp_path: Path) -> None:
    x, g = _toy()
    table = subtab_embeddings(x, g, **FAST)
    out = write_feature_table(table, tmp_path / "sub" / "ctx.parquet")
    assert pl.read_parquet(out).equals(table)
    assert [p.name for p in out.parent.iterdir()] == ["ctx.parquet"]


def test_mcfaline_controls_from_shared_h5ad() -> None:
    path = shared_data("norman19_mcfaline23_devel") / "devel.h5ad"
    x, groups, genes = mcfaline_control_samples(path)
    assert x.dtype == np.float32 and x.shape == (len(groups), len(genes)) == (400, 500)
    assert sorted(set(groups)) == [
        "mcfaline23/A172",
        "mcfaline23/T98G",
        "mcfaline23/U87MG",
        "norman19/K562",
    ]
    assert x.min() >= 0 and x.max() < 20  # log1p scale, used as stored


def test_counts_h5ad_is_normalised(tmp_path: Path) -> None:
    ad = pytest.importorskip("anndata")
    import pandas as pd

    counts = np.array([[1, 3, 0], [2, 2, 4], [5, 0, 0]], dtype=np.float32)
    obs = pd.DataFrame(
        {
            "perturbation": ["control", "control", "KLF1"],
            "cell_type": ["a172", "t98g", "a172"],
            "dataset": ["toy"] * 3,
        },
        index=["c1", "c2", "c3"],
    )
    path = tmp_path / "toy.h5ad"
    ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=["G1", "G2", "G3"])).write_h5ad(path)
    x, groups, genes = mcfaline_control_samples(path)
    assert groups == ["toy/A172", "toy/T98G"] and genes == ["G1", "G2", "G3"]
    want = np.log1p(counts[:2] / counts[:2].sum(1, keepdims=True) * 1e4)
    np.testing.assert_allclose(x, want, rtol=1e-6)


def _tiny_sim(tmp_path: Path) -> tuple[Path, Path]:
    truth, store = tmp_path / "truth", tmp_path / "store"
    truth.mkdir()
    store.mkdir()
    pl.DataFrame(
        {
            "context": ["s/A", "s/A", "s/B", "s/B"],
            "gene": ["G1", "G2", "G1", "G2"],
            "log_expression": [1.0, 2.0, 3.0, 4.0],
        }
    ).write_parquet(truth / "baseline.parquet")
    pl.DataFrame(
        {
            "context": ["s/A", "s/A", "s/A", "s/B"],
            "perturbation": ["control", "control", "KO:G1", "KO:G1"],
            "readout": ["G1", "G2", "G1", "G1"],
            "value": [0.5, -0.5, 9.0, 9.0],
            "replicate": [1, 1, 1, 1],
        },
        schema_overrides={"value": pl.Float32},
    ).write_parquet(store / "measurements.parquet")
    pl.DataFrame({"context": ["s/A"], "readout": ["G1"], "value": [7.0]}).write_parquet(
        store / "controls.parquet"
    )  # another schema: must not break the scan
    return truth, store


def test_simulation_baseline_plus_control_replicates(tmp_path: Path) -> None:
    truth, store = _tiny_sim(tmp_path)
    x, groups, genes = simulation_control_samples(truth)
    assert groups == ["s/A", "s/B"] and genes == ["G1", "G2"]
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    x, groups, _ = simulation_control_samples(truth, store)
    assert groups == ["s/A", "s/B", "s/A"]
    np.testing.assert_allclose(x[2], [1.5, 1.5])


def test_measured_readouts_are_a_presence_matrix(tmp_path: Path) -> None:
    _, store = _tiny_sim(tmp_path)
    x, groups, genes = measured_readout_samples(store)
    assert groups == ["s/A", "s/B"] and genes == ["G1", "G2"]
    np.testing.assert_array_equal(x, [[1, 1], [1, 0]])
    with pytest.raises(LpmInputError, match="no Parquet files"):
        measured_readout_samples(tmp_path / "truth" / "nothing")

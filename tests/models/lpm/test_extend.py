"""The featurised LPM: symbols never seen in training are predicted from prior features (and
refused without them), features carry signal to unseen perturbations, control anchoring teaches
"no effect" even without control rows, and a fitted model saves and reloads exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.registry import get_model, load_model
from tests.conftest import shared_data

pytest.importorskip("torch")
pytest.importorskip("lightning")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL: dict[str, Any] = {
    "embedding_dim": 8,
    "hidden": [32],
    "lr": 1e-2,
    "max_epochs": 40,
    "patience": 40,
    "feature_hidden": 16,
}
N_GENES, N_READ, N_CTX, K = 40, 30, 3, 4


def _world(seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A knock-down's delta is a fixed linear map of its gene's K features (context-scaled);
    returns (rows, gene features, context features, readout features)."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(N_GENES, K))
    read_feats = rng.normal(size=(N_READ, K))
    scale = np.array([1.0, 1.5, 0.6])
    genes = [f"G{i:02d}" for i in range(N_GENES)]
    readouts = [f"R{j:02d}" for j in range(N_READ)]
    contexts = [f"d/C{c}" for c in range(N_CTX)]
    effect = feats @ read_feats.T  # genes × readouts
    rows = [
        (ctx, f"CRISPRi:{g}", r, float(scale[c] * effect[i, j] + 0.05 * rng.normal()))
        for c, ctx in enumerate(contexts)
        for i, g in enumerate(genes)
        for j, r in enumerate(readouts)
    ]
    df = pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")
    gene_table = pl.DataFrame({"symbol": genes}).with_columns(
        pl.DataFrame(feats.astype(np.float32), schema=[f"f{k}" for k in range(K)])
    )
    ctx_table = pl.DataFrame({"symbol": contexts, "s": scale.astype(np.float32)})
    read_table = pl.DataFrame({"symbol": readouts}).with_columns(
        pl.DataFrame(read_feats.astype(np.float32), schema=[f"r{k}" for k in range(K)])
    )
    return df, gene_table, ctx_table, read_table


def _write(table: pl.DataFrame, tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.parquet"
    table.write_parquet(path)
    return str(path)


def _split_genes(rows: pl.DataFrame, n_test: int = 8) -> tuple[pl.DataFrame, pl.DataFrame]:
    test_perts = [f"CRISPRi:G{i:02d}" for i in range(N_GENES - n_test, N_GENES)]
    held = pl.col("perturbation").is_in(test_perts)
    return rows.filter(~held), rows.filter(held)


def _corr(pred: np.ndarray, rows: pl.DataFrame) -> float:
    return float(np.corrcoef(pred, rows["value"].to_numpy())[0, 1])


def test_unseen_perturbations_predicted_from_features_and_refused_without(tmp_path: Path) -> None:
    rows, genes, _, _ = _world()
    train, test = _split_genes(rows)
    plain = get_model("lpm_fast", seed=0, **SMALL).fit(train)
    assert not plain.supported(test).any()
    with pytest.raises(UnknownSymbolError):
        plain.predict(test)
    feats = _write(genes, tmp_path, "genes")
    model = get_model("lpm_fast", seed=0, perturbation_features=feats, **SMALL).fit(train)
    assert model.supported(test).all()
    pred = model.predict(test)
    # the effect is a function of the features: the unseen genes' profiles are recovered,
    # far beyond the context mean (which predicts the same profile for every gene)
    context_mean = get_model("context_mean").fit(train).predict(test)
    assert _corr(pred, test) > 0.8
    assert np.mean((pred - test["value"].to_numpy()) ** 2) < 0.5 * np.mean(
        (context_mean - test["value"].to_numpy()) ** 2
    )
    # a gene with no features at all stays an error, never "no effect"
    stranger = test.head(3).with_columns(pl.lit("CRISPRi:NOFEATURES").alias("perturbation"))
    with pytest.raises(UnknownSymbolError, match="NOFEATURES"):
        model.predict(stranger)


@pytest.mark.parametrize("mode", ["lpm", "lpm_fast"])
def test_unseen_context_and_readout_from_features(tmp_path: Path, mode: str) -> None:
    rows, _, ctx, reads = _world(1)
    held_ctx, held_read = "d/C2", "R29"
    train = rows.filter((pl.col("context") != held_ctx) & (pl.col("readout") != held_read))
    test = rows.filter((pl.col("context") == held_ctx) | (pl.col("readout") == held_read))
    params = {**SMALL, "batch_size": 256} if mode == "lpm" else SMALL
    plain = get_model(mode, seed=0, **params).fit(train)
    assert not plain.supported(test).any()
    model = get_model(
        mode,
        seed=0,
        context_features=_write(ctx, tmp_path, "ctx"),
        readout_features=_write(reads, tmp_path, "reads"),
        **params,
    ).fit(train)
    assert model.supported(test).all()
    pred = model.predict(test)
    assert np.isfinite(pred).all()
    # the model saved and reloaded predicts the unseen symbols identically
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(test), pred)


def test_same_seed_same_predictions(tmp_path: Path) -> None:
    rows, genes, _, _ = _world(2)
    train, test = _split_genes(rows)
    feats = _write(genes, tmp_path, "genes")
    preds = [
        get_model("lpm_fast", seed=3, perturbation_features=feats, anchor_controls=4, **SMALL)
        .fit(train)
        .predict(test)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(preds[0], preds[1])


def test_control_anchoring_teaches_no_effect_without_control_rows() -> None:
    rows, _, _, _ = _world(3)
    shifted = rows.with_columns(pl.col("value") + 1.0)  # every perturbation shifts readouts up
    control = shifted.filter(pl.col("perturbation") == "CRISPRi:G00").with_columns(
        pl.lit("control").alias("perturbation")
    )
    plain = get_model("lpm_fast", seed=0, **SMALL).fit(shifted)
    assert not plain.supported(control).any()  # no control rows: the control is unknown
    anchored = get_model("lpm_fast", seed=0, anchor_controls=8, **SMALL).fit(shifted)
    pred = anchored.predict(control)
    assert np.abs(pred).mean() < 0.2  # against a typical |value| above 1
    assert np.abs(shifted["value"].to_numpy()).mean() > 1.0


def test_feature_sources_errors(tmp_path: Path) -> None:
    rows, genes, _, _ = _world()
    with pytest.raises(LpmInputError, match="not found"):
        get_model("lpm_fast", perturbation_features=str(tmp_path / "no.parquet"), **SMALL).fit(rows)
    other = genes.with_columns(pl.col("symbol") + "_X")
    with pytest.raises(LpmInputError, match="none of the"):
        get_model("lpm_fast", perturbation_features=_write(other, tmp_path, "other"), **SMALL).fit(
            rows
        )
    with pytest.raises(LpmInputError, match="no features for contexts"):
        get_model("lpm_fast", context_features="morgan", **SMALL).fit(rows)
    bad = genes.with_columns(pl.lit(float("nan")).alias("f0"))
    with pytest.raises(LpmInputError, match="NaN"):
        get_model("lpm_fast", perturbation_features=_write(bad, tmp_path, "bad"), **SMALL).fit(rows)


@pytest.mark.realdata
def test_go_keyword_resolves_genetic_targets_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from lpm.priors.features import FeatureSource

    monkeypatch.setenv("LPM_PRIORS", str(shared_data("gene_ontology").parent))
    src = FeatureSource.of("go", "member")
    values, found = src.vectors(["CRISPRi:MAPK1", "CRISPRa:MAPK1", "compound:imatinib", "control"])
    assert found.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(values[0], values[1])  # the type is the encoder's other input
    assert np.linalg.norm(values[0]) > 0

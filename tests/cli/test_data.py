"""The featurised LPM from the command line: feature flags on train and benchmark, model
variants (``NAME@LABEL``), `lpm features`, and one-line errors for what cannot be predicted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data.store import write_store
from tests.conftest import error_line, lpm, shared_data

pytest.importorskip("lightning")
FAST = ["--param", "max_epochs=5", "--param", "embedding_dim=8", "--param", "hidden=[16]"]


def _world(tmp_path: Path) -> tuple[Path, Path, pl.DataFrame]:
    """A store of 24 knock-downs whose effects are a linear map of 3 gene features, the
    feature table, and rows of 4 knock-downs never measured (features known)."""
    rng = np.random.default_rng(0)
    genes = [f"G{i:02d}" for i in range(28)]
    feats = rng.normal(size=(len(genes), 3))
    load = rng.normal(size=(3, 12))
    rows = pl.DataFrame(
        [
            ("d/C1", f"CRISPRi:{g}", f"R{j:02d}", float(feats[i] @ load[:, j]))
            for i, g in enumerate(genes)
            for j in range(12)
        ],
        schema=["context", "perturbation", "readout", "value"],
        orient="row",
    )
    unseen = pl.col("perturbation").is_in([f"CRISPRi:{g}" for g in genes[24:]])
    write_store(rows.filter(~unseen), tmp_path / "s")
    table = tmp_path / "genes.parquet"
    pl.DataFrame({"symbol": genes}).with_columns(
        pl.DataFrame(feats.astype(np.float32), schema=["a", "b", "c"])
    ).write_parquet(table)
    return tmp_path / "s", table, rows.filter(unseen)


@pytest.mark.slow
def test_train_with_features_predicts_unseen_and_refuses_featureless(tmp_path: Path) -> None:
    store, table, unseen = _world(tmp_path)
    proc = lpm("train", "--store", str(store), "--model", "lpm_fast", "--out", str(tmp_path / "m"),
               "--perturbation-features", str(table), "--anchor-controls", "4", *FAST)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    unseen.write_parquet(tmp_path / "rows.parquet")
    out = tmp_path / "pred.parquet"
    proc = lpm("predict", "--model", str(tmp_path / "m"), "--rows", str(tmp_path / "rows.parquet"),
               "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pred = pl.read_parquet(out)
    assert pred.height == unseen.height and pred["prediction"].is_finite().all()
    stranger = unseen.with_columns(pl.lit("CRISPRi:NOFEATS").alias("perturbation"))
    stranger.write_parquet(tmp_path / "bad.parquet")
    bad_out = tmp_path / "bad_pred.parquet"
    proc = lpm("predict", "--model", str(tmp_path / "m"), "--rows", str(tmp_path / "bad.parquet"),
               "--out", str(bad_out))  # fmt: skip
    assert proc.returncode == 2
    assert "NOFEATS" in error_line(proc)
    assert not bad_out.exists()


def test_feature_flags_on_a_model_without_them_are_one_line(tmp_path: Path) -> None:
    store, table, _ = _world(tmp_path)
    proc = lpm("train", "--store", str(store), "--model", "linear", "--out", str(tmp_path / "m"),
               "--perturbation-features", str(table))  # fmt: skip
    assert proc.returncode == 2
    assert "takes no --perturbation-features" in error_line(proc)
    assert not (tmp_path / "m").exists()


def test_benchmark_runs_variants_with_feature_flags(tmp_path: Path) -> None:
    store, table, _ = _world(tmp_path)
    # unseen knock-downs held out by the split; the flags reach lpm_fast and its variant only
    proc = lpm("benchmark", "--store", str(store), "--split", "unseen_perturbation",
               "--models", "context_mean,lpm_fast,lpm_fast@anchored", "--seeds", "1",
               "--out", str(tmp_path / "b"), "--n-boot", "10",
               "--perturbation-features", str(table),
               "--param", "lpm_fast.max_epochs=5", "--param", "lpm_fast.embedding_dim=8",
               "--param", "lpm_fast@anchored.anchor_controls=4")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = pl.read_csv(tmp_path / "b" / "results.csv")
    assert {"context_mean", "lpm_fast", "lpm_fast@anchored"} <= set(res["model"].to_list())
    cov = pl.read_csv(tmp_path / "b" / "coverage.csv")
    assert cov.filter(pl.col("model") == "lpm_fast@anchored")["covered"].sum() > 0


@pytest.mark.realdata
def test_features_contexts_from_control_cells(tmp_path: Path) -> None:
    h5ad = shared_data("norman19_mcfaline23_devel") / "devel.h5ad"
    out = tmp_path / "ctx.parquet"
    proc = lpm("features", "contexts", "--h5ad", str(h5ad), "--out", str(out), "--epochs", "5",
               "--dims", "4")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pl.read_parquet(out)
    assert table.columns == ["symbol", "ctx_0", "ctx_1", "ctx_2", "ctx_3"]
    assert "mcfaline23/A172" in table["symbol"].to_list()
    proc = lpm("features", "contexts", "--out", str(out))
    assert proc.returncode == 2 and "exactly one of" in error_line(proc)


def test_feature_outputs_are_kept_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    out.write_text("mine")
    for command in (
        ("features", "genes"),
        ("features", "contexts", "--store", str(tmp_path / "s")),
        ("features", "compounds", "--store", str(tmp_path / "s")),
        ("prior-embedding", "--gene2go", str(tmp_path / "gene2go.tsv")),
    ):
        proc = lpm(*command, "--out", str(out))
        assert proc.returncode == 2, proc.stderr
        assert "already exists (pass --overwrite" in error_line(proc)
        assert out.read_text() == "mine"


def test_prior_embedding_overwrites_when_asked(tmp_path: Path) -> None:
    gene2go = tmp_path / "gene2go.tsv"
    gene2go.write_text(
        "symbol\tgo_id\n" + "".join(f"G{i}\tGO:{i % 3}\nG{i}\tGO:{i % 4 + 10}\n" for i in range(8))
    )
    out = tmp_path / "emb.parquet"
    out.write_text("mine")
    proc = lpm("prior-embedding", "--gene2go", str(gene2go), "--out", str(out), "--dims", "2",
               "--overwrite")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert pl.read_parquet(out).height == 8
    proc = lpm("prior-embedding", "--gene2go", str(gene2go), "--out", str(out), "--dims", "0",
               "--overwrite")  # fmt: skip
    assert proc.returncode == 2 and "--dims must be between 1 and 1024" in error_line(proc)

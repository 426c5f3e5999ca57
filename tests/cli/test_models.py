"""``lpm benchmark --models salt,peper,gene_graph`` and Peper's fallback flag in ``lpm predict``."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lpm.data.store import write_store
from tests.conftest import lpm


def _chain(tmp_path: Path) -> Path:
    path = tmp_path / "chain.csv"
    genes = [f"G{i}" for i in range(12)]
    pl.DataFrame({"source": genes[:-1], "target": genes[1:]}).write_csv(path)
    return path


def test_benchmark_runs_salt_peper_and_gene_graph(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    write_store(toy_rows, tmp_path / "s")
    proc = lpm(
        "benchmark", "--store", str(tmp_path / "s"), "--split", "combination",
        "--models", "context_mean,salt,peper,gene_graph", "--seeds", "1",
        "--param", f"gene_graph.graph={_chain(tmp_path)}", "--param", "gene_graph.epochs=3",
        "--param", "peper.epochs=3", "--split-param", "test_fraction=0.5",
        "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    scores = pl.read_csv(tmp_path / "b" / "results.csv")
    assert {"salt", "peper", "gene_graph"} <= set(scores["model"].to_list())


@pytest.mark.slow
def test_predict_writes_peper_fallback_flag(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    # G0 unmeasured in toy/A: the G0+G1 double there is Salt's sum with G0 from perturbation_mean
    train = toy_rows.filter(
        ~((pl.col("perturbation") == "CRISPRi:G0") & (pl.col("context") == "toy/A"))
        & ~pl.col("perturbation").is_in(["CRISPRi:G0+CRISPRi:G1"])
    )
    write_store(train, tmp_path / "s")
    proc = lpm(
        "train", "--store", str(tmp_path / "s"), "--model", "peper", "--out", str(tmp_path / "m"),
        "--param", 'single_model="perturbation_mean"', "--param", "epochs=3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = toy_rows.filter(pl.col("perturbation") == "CRISPRi:G0+CRISPRi:G1").drop("value")
    rows.write_parquet(tmp_path / "rows.parquet")
    proc = lpm("predict", "--model", str(tmp_path / "m"), "--rows", str(tmp_path / "rows.parquet"),
               "--out", str(tmp_path / "p.parquet"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pred = pl.read_parquet(tmp_path / "p.parquet")
    flagged = pred.group_by("context").agg(pl.col("fallback").all())
    assert dict(flagged.iter_rows()) == {"toy/A": True, "toy/B": False, "toy/C": False}


def test_benchmark_goes_on_when_a_model_is_not_applicable(
    toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    """gene_graph on a compound screen: exit 0, the model named with its reason on stderr and
    in the report, the other models scored; --no-checkpoints writes no checkpoint."""
    compounds = toy_rows.with_columns(
        pl.col("perturbation").str.replace_all("CRISPRi:G", "compound:D")
    )
    write_store(compounds, tmp_path / "s")
    proc = lpm(
        "benchmark", "--store", str(tmp_path / "s"), "--split", "unseen_pair",
        "--models", "no_change,context_mean,gene_graph", "--seeds", "2",
        "--param", "gene_graph.graph=none", "--no-checkpoints", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())  # a log line, wrapped to the terminal
    assert "not applicable: gene_graph (fit, seeds 0, 1):" in said
    assert "no genetic perturbation rows to train on" in said
    assert "**Not applicable:** gene_graph" in (tmp_path / "b" / "results.md").read_text()
    assert set(pl.read_csv(tmp_path / "b" / "results.csv")["model"]) == {
        "no_change",
        "context_mean",
    }
    assert not (tmp_path / "b" / "checkpoints").exists()

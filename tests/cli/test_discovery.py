"""``lpm moa``, ``lpm grn`` and ``lpm explain`` on a tiny simulated world: thin over the library,
scores printed, files written, bad options refused in one line with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from lpm.sim.simulate import SimulationResult, simulate

pytest.importorskip("torch")
pytest.importorskip("lightning")


def lpm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lpm.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate(
        tmp_path_factory.mktemp("sim") / "w", n_genes=100, n_perturbations=40, n_contexts=3
    )


def test_moa_without_a_model_ranks_and_scores_the_measured_baseline(
    world: SimulationResult, tmp_path: Path
) -> None:
    truth = world.out / "truth"
    proc = lpm(
        "moa",
        "--store",
        str(world.out / "store"),
        "--truth",
        str(truth),
        "--out",
        str(tmp_path / "m"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "measured_profile" in proc.stdout and "AUROC" in proc.stdout
    scores = pl.read_csv(tmp_path / "m" / "moa_scores.csv")
    assert scores["method"].to_list() == ["measured_profile"]
    assert 0.5 < scores["auroc"][0] <= 1.0, (
        "measured profiles of compounds resemble their targets' knock-downs"
    )


def test_grn_knockdown_scores_against_the_true_network_and_refuses_a_bad_method(
    world: SimulationResult, tmp_path: Path
) -> None:
    store, truth = str(world.out / "store"), str(world.out / "truth")
    proc = lpm("grn", "--store", store, "--reference", truth, "--out", str(tmp_path / "g"))
    assert proc.returncode == 0, proc.stderr
    assert "knockdown vs simulator_truth" in proc.stdout
    assert (tmp_path / "g" / "edges_knockdown.graphml").is_file()
    bad = lpm("grn", "--store", store, "--method", "bogus", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "unknown method 'bogus'" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "b").exists()
    needs = lpm("grn", "--store", store, "--method", "imputed", "--out", str(tmp_path / "c"))
    assert needs.returncode == 2 and "model" in needs.stderr and not (tmp_path / "c").exists()


@pytest.mark.slow
def test_explain_reports_shares_and_the_sanity_check(
    world: SimulationResult, tmp_path: Path
) -> None:
    out = tmp_path / "e"
    proc = lpm(
        "explain", "--store", str(world.out / "store"), "--truth", str(world.out / "truth"),
        "--no-ame", "--param", "lpm_fast.max_epochs=3", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "posthoc: share of importance" in proc.stdout
    assert "sanity check (posthoc_mean_substitution)" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert abs(sum(summary["shares"]["posthoc"].values()) - 1) < 1e-9
    bad = lpm(
        "explain",
        "--store",
        str(world.out / "store"),
        "--param",
        "linear.ridge=1",
        "--out",
        str(tmp_path / "x"),
    )
    assert bad.returncode == 2 and "explain takes lpm_fast.* and lpm_ame.*" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_bad_inputs_name_the_store_or_context_and_write_nothing(
    world: SimulationResult, tmp_path: Path
) -> None:
    from lpm.data.store import write_store

    genetic = (
        world.open().read().filter(~pl.col("perturbation").cast(pl.String).str.contains("compound"))
    )
    write_store(genetic, tmp_path / "genetic")
    proc = lpm("moa", "--store", str(tmp_path / "genetic"), "--out", str(tmp_path / "m"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'genetic'}: no single compound" in proc.stderr
    assert not (tmp_path / "m").exists()
    proc = lpm(
        "explain",
        "--store",
        str(world.out / "store"),
        "--context",
        "nope/X",
        "--out",
        str(tmp_path / "e"),
    )
    assert (
        proc.returncode == 2 and "no context nope/X in column context; contexts are" in proc.stderr
    )
    assert not (tmp_path / "e").exists()

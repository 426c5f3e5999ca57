"""``lpm moa`` as a run (``lpm.runs.moa``): a tiny simulation ranked, scored and written as one
folder; an existing folder refused before any work unless ``--overwrite``; the real L1000
A375 plate scored against compound annotations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.models.registry import get_model
from lpm.runs.moa import (
    FIGURE_FILE,
    OPTIONS_FILE,
    PER_QUERY_FILE,
    RANKING_FILE,
    SCORES_FILE,
    read_annotation_truths,
    run_moa,
)
from lpm.sim.simulate import SimulationResult, simulate
from lpm.tasks.moa import METHODS, rank_moa
from lpm.tasks.moa_scores import score_shared_annotation, score_targets
from tests.conftest import SMALL_LPM, shared_data

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    out = tmp_path_factory.mktemp("moa") / "sim"
    return simulate(out, n_genes=60, n_perturbations=30, n_contexts=2, seed=0)


def test_run_moa_on_a_tiny_simulation(sim: SimulationResult, tmp_path: Path) -> None:
    data = sim.open().read()
    model = get_model("lpm_fast", **SMALL_LPM, max_epochs=2, val_fraction=0, seed=0).fit(data)
    out = tmp_path / "moa"
    res = run_moa(sim.store, out=out, model=model, truth=sim.truth)
    names = {p.name for p in out.iterdir()}
    assert names == {RANKING_FILE, SCORES_FILE, PER_QUERY_FILE, FIGURE_FILE, OPTIONS_FILE}
    assert (out / FIGURE_FILE).read_bytes()[:8] == PNG_MAGIC
    assert res.methods == METHODS and res.n_queries > 0
    assert pl.read_parquet(out / RANKING_FILE).equals(rank_moa(data, model=model))
    scores = pl.read_csv(out / SCORES_FILE)
    assert set(scores["truth"]) == {"sim_targets"}
    assert scores["auroc"].is_finite().all() and scores["recall_at_k"].is_finite().all()
    assert (scores["n_pairs"] > 0).all()
    assert "sim_targets" in str(res)


def test_an_existing_folder_is_refused_before_any_work(
    sim: SimulationResult, tmp_path: Path
) -> None:
    out = tmp_path / "moa"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    # the store does not exist: a check after reading it would name the store instead
    with pytest.raises(LpmInputError, match="already exists"):
        run_moa(tmp_path / "no_store", out=out)
    run_moa(sim.store, out=out, truth=sim.truth, overwrite=True)
    assert not (out / "mine.txt").exists(), "the new output replaces the old one whole"
    assert (out / SCORES_FILE).is_file()
    with pytest.raises(LpmInputError, match="is a file"):
        run_moa(sim.store, out=out / SCORES_FILE, overwrite=True)
    with pytest.raises(LpmInputError, match="compound_targets"):
        run_moa(sim.store, out=tmp_path / "t", truth=tmp_path / "nowhere")
    assert not (tmp_path / "t").exists()


def test_lpm_moa_refuses_an_existing_folder_without_overwrite(
    sim: SimulationResult, tmp_path: Path
) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "old.csv").write_text("a\n1\n")

    def lpm(*extra: str) -> subprocess.CompletedProcess[str]:
        args = ["moa", "--store", str(sim.store), "--out", str(out), *extra]
        return subprocess.run(
            [sys.executable, "-m", "lpm.cli", *args], capture_output=True, text=True, timeout=300
        )

    refused = lpm()
    assert refused.returncode == 2 and "already exists (pass --overwrite" in refused.stderr
    assert sorted(p.name for p in out.iterdir()) == ["old.csv"], "nothing written beside it"
    done = lpm("--overwrite")
    assert done.returncode == 0, done.stderr
    assert not (out / "old.csv").exists() and (out / SCORES_FILE).is_file()


@pytest.mark.realdata
def test_real_a375_measured_baseline_mechanisms() -> None:
    from lpm.data.io.base import IngestOptions
    from lpm.data.io.ingest import read_source

    plate = shared_data("lincs_l1000_a375") / "test_l1000.gct"
    folder = shared_data("compounds")
    data = read_source(plate, IngestOptions(dataset="lincs")).measurements
    r = rank_moa(data)
    assert r["query"].n_unique() == 59
    targets, mechanisms, n_matched = read_annotation_truths(r, folder, None)
    assert n_matched >= 40
    for truth, ann in (("shared_mechanism", mechanisms), ("shared_target", targets)):
        s = score_shared_annotation(r, ann, truth=truth).row(0, named=True)
        assert s["n_queries"] > 5 and s["n_pairs"] > 0
        assert 0.0 <= s["auroc"] <= 1.0 and 0.0 < s["average_precision"] <= 1.0
    with pytest.raises(LpmInputError, match="no genetic perturbation"):
        score_targets(r, targets)

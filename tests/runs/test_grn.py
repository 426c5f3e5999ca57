"""``lpm grn`` as a run (``lpm.runs.grn``): every method written as one folder (edges as CSV and
GraphML, module figures, scores, options), an existing folder refused before any work, bad
references named with nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.runs.grn import run_grn, write_network
from lpm.sim.simulate import SimulationResult
from lpm.tasks.grn import knockdown_edges
from tests.conftest import SMALL_LPM


@pytest.fixture(scope="module")
def frame(small_frame: pl.DataFrame) -> pl.DataFrame:
    return small_frame


@pytest.fixture(scope="module")
def fitted(frame: pl.DataFrame, one_torch_thread: None) -> Any:
    pytest.importorskip("lightning")
    from lpm.models.registry import get_model

    return get_model("lpm_fast", **SMALL_LPM, max_epochs=3, val_fraction=0, seed=0).fit(frame)


def test_write_network_csv_and_graphml(frame: pl.DataFrame, tmp_path: Path) -> None:
    nx = pytest.importorskip("networkx")
    e = knockdown_edges(frame)
    csv, graphml = write_network(e, tmp_path / "net", top=50)
    assert pl.read_csv(csv).height == 50
    g = nx.read_graphml(graphml)
    assert g.is_directed() and g.number_of_edges() == 50
    s, t = e.row(0)[:2]
    assert g.edges[s, t]["score"] == pytest.approx(e.row(0, named=True)["score"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.csv", "net.graphml"]


def test_run_grn_writes_every_method(
    fitted: Any, small_world: SimulationResult, tmp_path: Path
) -> None:
    nx = pytest.importorskip("networkx")
    out = tmp_path / "grn"
    res = run_grn(
        small_world.store,
        out=out,
        method="all",
        model=fitted,
        reference=small_world.out,
        top=100,
        k=(10, 50),
    )
    assert res.methods == ("knockdown", "embedding", "imputed")
    names = sorted(p.name for p in out.iterdir())
    for m in res.methods:
        assert {f"edges_{m}.csv", f"edges_{m}.graphml", f"module_{m}.png"} <= set(names)
        assert nx.read_graphml(out / f"edges_{m}.graphml").number_of_edges() == 100
    assert {"scores.csv", "grn.json"} <= set(names)
    assert all(p.exists() for p in res.files)
    scores = pl.read_csv(out / "scores.csv")
    assert scores.columns == ["method", "reference", "metric", "value"]
    assert set(scores["method"]) == set(res.methods)
    assert set(scores["reference"]) == {"simulator_truth"}
    wanted = {"auprc", "precision_at_10", "random_auprc_top", "lift_auprc_top", "base_rate"}
    assert wanted <= set(scores["metric"])
    assert "simulator_truth" in str(res)
    with pytest.raises(LpmInputError, match="already exists"):
        run_grn(small_world.store, out=out)
    again = run_grn(small_world.store, out=out, overwrite=True, top=100)
    assert again.methods == ("knockdown",) and not (out / "scores.csv").exists()


def test_bad_runs_are_refused_before_any_work_and_write_nothing(
    frame: pl.DataFrame, tmp_path: Path
) -> None:
    ref = tmp_path / "trrust.tsv"
    ref.write_text("TF\tTarget\tRegulation\tReference\nX1\tX2\tActivation\t1\n")
    out = tmp_path / "run"
    with pytest.raises(LpmInputError, match=r"trrust\.tsv: no reference edge"):
        run_grn(frame, out=out, reference=ref)
    assert not out.exists()  # nothing half-written
    with pytest.raises(LpmInputError, match="needs a trained LPM"):
        run_grn(frame, out=out, method="embedding")
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    # with --overwrite a file still cannot become a folder: said before the store is read
    with pytest.raises(LpmInputError, match="is a file"):
        run_grn(tmp_path / "no_store", out=a_file, overwrite=True)
    assert a_file.read_text() == "mine"

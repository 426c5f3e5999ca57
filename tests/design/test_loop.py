"""The active-learning loop: pool and oracle, kernels, strategies, the loop and its outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.design.kernels import cosine_kernel, feature_kernel, graph_kernel, prior_kernel
from lpm.design.loop import LoopConfig, area_under_curve, perturbation_graph, run_design
from lpm.design.manager import ModelManager
from lpm.design.pool import (
    NOT_IN_GRAPH,
    NOT_SINGLE,
    LabelledPool,
    Oracle,
    design_universe,
    perturbation_strength,
    read_strength,
    strongest,
)
from lpm.design.strategies import RoundState, _k_centre, get_strategy
from lpm.errors import LpmInputError
from lpm.models.baselines import NoChange
from lpm.models.registry import _registered, register_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_GENES = 40
READOUTS = [f"R{j}" for j in range(12)]


def chain_world(tmp_path: Path) -> tuple[pl.DataFrame, Path]:
    """Single knock-downs of genes on a chain; neighbours have similar profiles, every fifth
    gene is strong. Plus a compound and a double, which the loop must leave out."""
    rng = np.random.default_rng(0)
    genes = [f"G{i:02d}" for i in range(N_GENES)]
    basis = rng.normal(size=(4, len(READOUTS)))
    rows = []
    for i, g in enumerate(genes):
        t = i / N_GENES * 2 * np.pi
        profile = np.cos(t) * basis[0] + np.sin(t) * basis[1]
        profile *= 3.0 if i % 5 == 0 else 0.5
        profile += 0.05 * rng.normal(size=len(READOUTS))
        rows += [
            ("w/A", f"CRISPRi:{g}", r, float(v)) for r, v in zip(READOUTS, profile, strict=True)
        ]
    for p in ("compound:X", "CRISPRi:G00+CRISPRi:G01"):
        rows += [("w/A", p, r, 0.1) for r in READOUTS]
    edges = tmp_path / "chain.parquet"
    pl.DataFrame({"source": genes[:-1], "target": genes[1:]}).write_parquet(edges)
    table = pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")
    return table, edges


# ---- pool, oracle, strength ----------------------------------------------------------------
def test_universe_keeps_single_genetic_perturbations_and_says_why_others_are_out(
    tmp_path: Path,
) -> None:
    rows, _ = chain_world(tmp_path)
    u = design_universe(
        rows, test_fraction=0.25, seed=3, graph_genes=[f"G{i:02d}" for i in range(30)]
    )
    assert u.excluded["compound:X"] == NOT_SINGLE
    assert u.excluded["CRISPRi:G00+CRISPRi:G01"] == NOT_SINGLE
    assert sum(v == NOT_IN_GRAPH for v in u.excluded.values()) == 10
    assert len(u.test) == 8 and len(u.pool) == 22 and not set(u.test) & set(u.pool)
    again = design_universe(
        rows, test_fraction=0.25, seed=3, graph_genes=[f"G{i:02d}" for i in range(30)]
    )
    assert again.test == u.test
    assert design_universe(rows, test_fraction=0.25, seed=4).test != u.test
    parts = u.table().group_by("part").len()
    assert dict(parts.iter_rows()) == {"pool": 22, "test": 8, "excluded": 12}


def test_universe_errors(tmp_path: Path) -> None:
    rows, _ = chain_world(tmp_path)
    with pytest.raises(LpmInputError, match="test-fraction"):
        design_universe(rows, test_fraction=1.0, seed=0)
    with pytest.raises(LpmInputError, match="only 0 single genetic"):
        design_universe(rows, test_fraction=0.2, seed=0, graph_genes=["nope"])


def test_pool_and_oracle(tmp_path: Path) -> None:
    rows, _ = chain_world(tmp_path)
    pool = LabelledPool(["CRISPRi:G01", "CRISPRi:G02", "CRISPRi:G03"])
    pool.label(["CRISPRi:G02"], 0)
    assert pool.unlabelled == ["CRISPRi:G01", "CRISPRi:G03"]
    with pytest.raises(LpmInputError, match="not an unlabelled pool"):
        pool.label(["CRISPRi:G02"], 1)
    with pytest.raises(LpmInputError, match="twice"):
        pool.label(["CRISPRi:G01", "CRISPRi:G01"], 1)
    oracle = Oracle(rows)
    revealed = oracle.reveal(["CRISPRi:G01", "CRISPRi:G03"])
    assert revealed.height == 2 * len(READOUTS) and oracle.n_revealed == 2
    assert "value" not in oracle.keys(["CRISPRi:G01"]).columns
    with pytest.raises(LpmInputError, match="no measurements of 'CRISPRi:NOPE'"):
        oracle.reveal(["CRISPRi:NOPE"])


def test_strength_and_strongest(tmp_path: Path) -> None:
    rows, _ = chain_world(tmp_path)
    energy = perturbation_strength(rows)
    pool = [f"CRISPRi:G{i:02d}" for i in range(N_GENES)]
    top = strongest(pool, energy, 0.2)
    assert top == {f"CRISPRi:G{i:02d}" for i in range(0, N_GENES, 5)}
    with pytest.raises(LpmInputError, match="no strength"):
        strongest([*pool, "CRISPRi:NEW"], energy, 0.1)
    bad = tmp_path / "e.csv"
    pl.DataFrame({"perturbation": ["a", "a"], "energy": [1.0, 2.0]}).write_csv(bad)
    with pytest.raises(LpmInputError, match="duplicate"):
        read_strength(bad)
    pl.DataFrame({"perturbation": ["a"], "energy": [float("nan")]}).write_csv(bad)
    with pytest.raises(LpmInputError, match="NaN"):
        read_strength(bad)
    pl.DataFrame({"perturbation": ["a"]}).write_csv(bad)
    with pytest.raises(LpmInputError, match="energy"):
        read_strength(bad)


def test_perturbation_graph_maps_genes_to_perturbations() -> None:
    edges = pl.DataFrame({"source": ["A", "B"], "target": ["B", "C"], "weight": [1.0, 1.0]})
    graph = perturbation_graph(edges, {"CRISPRi:A": "A", "CRISPRa:A": "A", "CRISPRi:C": "C"})
    pairs = set(zip(graph["source"], graph["target"], strict=True))
    assert {("CRISPRi:A", "B"), ("CRISPRa:A", "B"), ("B", "CRISPRi:C")} <= pairs
    assert {("CRISPRi:A", "CRISPRa:A"), ("CRISPRa:A", "CRISPRi:A")} <= pairs
    assert not any(s == "A" or t == "A" for s, t in pairs)


# ---- kernels -------------------------------------------------------------------------------
def test_kernels() -> None:
    k = cosine_kernel(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]))
    assert np.allclose(np.diag(k), 1.0) and k[0, 1] == pytest.approx(1.0) and k[0, 2] == 0.0
    table = pl.DataFrame({"symbol": ["A", "B"], "f0": [1.0, 0.0], "f1": [0.0, 1.0]})
    fk = feature_kernel(table, ["A", "B", "Z"])
    assert fk[0, 1] == pytest.approx(0.0) and fk[2, 0] == 0.0 and fk[2, 2] == 1.0
    chain = pl.DataFrame(
        {"source": ["A", "B", "C", "D"], "target": ["B", "C", "D", "E"], "weight": [1.0] * 4}
    )
    gk = graph_kernel(chain, ["A", "B", "E"], hops=2)
    assert gk[0, 1] > gk[0, 2]
    with pytest.raises(LpmInputError, match="needs a gene graph"):
        prior_kernel(["graph"], ["A"], graph=None, hops=2)
    with pytest.raises(LpmInputError, match="at least one"):
        prior_kernel([], ["A"], graph=chain, hops=2)


def test_k_centre_picks_the_farthest_points() -> None:
    x = np.array([0.0, 1.0, 10.0, 5.0, 9.0])
    names = ["a", "b", "c", "d", "e"]
    chosen, scores = _k_centre(lambda i: np.abs(x - x[i]), 5, 1, 2, names)
    assert chosen == ["c", "d"] and scores == [10.0, 5.0]


# ---- strategies with a model whose spread is known ------------------------------------------
class SpreadModel(NoChange):
    """Predicts seed × (gene number): members disagree most on the highest-numbered gene."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        number = rows["perturbation"].str.extract(r"G(\d+)").cast(pl.Float64).to_numpy()
        return self.seed * number


@pytest.fixture
def spread_model() -> Any:
    register_model("_spread_test", SpreadModel)
    yield "_spread_test"
    _registered.pop("_spread_test", None)


def test_variance_strategy_picks_the_largest_ensemble_spread(
    tmp_path: Path, spread_model: str
) -> None:
    rows, _ = chain_world(tmp_path)
    manager = ModelManager(spread_model, seed=0)
    labelled = ["CRISPRi:G00", "CRISPRi:G01"]
    manager.fit(Oracle(rows).reveal(labelled))
    state = RoundState(
        round=1,
        batch=2,
        seed=0,
        labelled=labelled,
        unlabelled=[f"CRISPRi:G{i:02d}" for i in range(2, 10)],
        oracle=Oracle(rows),
        models=manager,
        ensemble=3,
    )
    chosen, scores = get_strategy("variance").choose(state)
    assert chosen == ["CRISPRi:G09", "CRISPRi:G08"] and scores[0] > scores[1]
    assert len(manager.members) == 3
    state.ensemble = 1
    manager.fit(Oracle(rows).reveal(labelled))
    with pytest.raises(LpmInputError, match="at least 2"):
        get_strategy("variance").choose(state)


def test_strategy_errors() -> None:
    with pytest.raises(LpmInputError, match="unknown strategy 'nope'"):
        get_strategy("nope")


# ---- the loop ------------------------------------------------------------------------------
def _config(edges: Path, **kw: Any) -> LoopConfig:
    params = {"epochs": 3, "hidden": 8, "readout_graph": str(edges)}
    base: dict[str, Any] = dict(
        model="gene_graph",
        model_params=params,
        initial=6,
        batch=4,
        rounds=2,
        test_fraction=0.25,
        graph=str(edges),
        hops=1,
        ensemble=2,
        top_fraction=0.2,
        seed=1,
    )
    return LoopConfig(**{**base, **kw})


def test_loop_runs_every_strategy_and_is_reproducible(tmp_path: Path) -> None:
    rows, edges = chain_world(tmp_path)
    names = ["random", "coverage", "spectral", "variance", "coreset", "kernel"]
    result = run_design(rows, names, _config(edges))
    r = result.rounds
    assert r.height == 3 * len(names)
    assert r.filter(pl.col("strategy") == "random")["n_labelled"].to_list() == [6, 10, 14]
    assert r["n_test_unsupported"].max() == 0 and r["n_test_conditions"].min() == 10
    assert set(result.summary["strategy"]) == set(names)
    acquired = result.acquired
    test = set(result.universe.test)
    for (name,), part in acquired.group_by("strategy"):
        chosen = part["perturbation"].to_list()
        assert len(chosen) == len(set(chosen)) == 14, name
        assert not set(chosen) & test
    # model strategies share round 0 with random; graph ones start from their own choice
    first = {
        n: set(acquired.filter((pl.col("strategy") == n) & (pl.col("round") == 0))["perturbation"])
        for n in names
    }
    assert first["variance"] == first["coreset"] == first["kernel"] == first["random"]
    again = run_design(rows, names, _config(edges))
    keep = [c for c in r.columns if not c.endswith("_seconds")]
    assert again.rounds.select(keep).equals(r.select(keep))
    assert again.acquired.equals(acquired)


def test_loop_budget_and_errors(tmp_path: Path) -> None:
    rows, edges = chain_world(tmp_path)
    result = run_design(rows, ["random"], _config(edges, budget=12))
    assert result.rounds["n_labelled"].to_list() == [6, 10, 12]
    with pytest.raises(LpmInputError, match="exceeds"):
        run_design(rows, ["random"], _config(edges, initial=100))
    with pytest.raises(LpmInputError, match="--first"):
        run_design(rows, ["coreset"], _config(edges, first="variance"))
    with pytest.raises(LpmInputError, match="unknown strategy"):
        run_design(rows, ["bogus"], _config(edges))
    with pytest.raises(LpmInputError, match="needs a gene graph"):
        run_design(rows, ["coverage"], _config(edges, graph=None))


def test_area_under_curve_is_the_mean_level() -> None:
    assert area_under_curve([100, 200, 300], [0.2, 0.2, 0.2]) == pytest.approx(0.2)
    assert area_under_curve([0, 1], [0.0, 1.0]) == pytest.approx(0.5)
    assert area_under_curve([5], [0.3]) == pytest.approx(0.3)

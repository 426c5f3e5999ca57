"""The active-learning loop: rounds of choose, reveal, refit and score, and its outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.design.loop import LoopConfig, area_under_curve, perturbation_graph, run_design
from lpm.errors import LpmInputError

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


def test_perturbation_graph_maps_genes_to_perturbations() -> None:
    edges = pl.DataFrame({"source": ["A", "B"], "target": ["B", "C"], "weight": [1.0, 1.0]})
    graph = perturbation_graph(edges, {"CRISPRi:A": "A", "CRISPRa:A": "A", "CRISPRi:C": "C"})
    pairs = set(zip(graph["source"], graph["target"], strict=True))
    assert {("CRISPRi:A", "B"), ("CRISPRa:A", "B"), ("B", "CRISPRi:C")} <= pairs
    assert {("CRISPRi:A", "CRISPRa:A"), ("CRISPRa:A", "CRISPRi:A")} <= pairs
    assert not any(s == "A" or t == "A" for s, t in pairs)


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


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("initial", 0, "--initial must be at least 1, got 0"),
        ("batch", -2, "--batch must be at least 1, got -2"),
        ("rounds", -1, "--rounds must be at least 0, got -1"),
        ("budget", 0, "--budget must be at least 1, got 0"),
        ("ensemble", 0, "--ensemble must be at least 1, got 0"),
        ("hops", -1, "--hops must be at least 0, got -1"),
        ("test_fraction", 1.0, r"--test-fraction must be in \[0, 1\), got 1.0"),
        ("top_fraction", -0.5, r"--top-fraction must be in \[0, 1\], got -0.5"),
    ],
)
def test_config_refuses_counts_no_loop_can_run(option: str, value: Any, message: str) -> None:
    with pytest.raises(LpmInputError, match=message):
        LoopConfig(**{option: value})

"""The simulated world: deterministic files, a valid store, and ground truth that matches it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.data import schema as S
from lpm.data.store import open_store
from lpm.data.symbols import combine, parse, perturbation_type
from lpm.errors import LpmInputError
from lpm.sim.design import DOSES_UM, INTERACTIONS
from lpm.sim.simulate import SimulationConfig, SimulationResult, simulate

TINY: dict[str, Any] = {"n_genes": 100, "n_perturbations": 40, "n_contexts": 3}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate(tmp_path_factory.mktemp("sim") / "world", **TINY)


@pytest.fixture(scope="module")
def rows(world: SimulationResult) -> pl.DataFrame:
    return world.open().read()


def truth(world: SimulationResult, name: str) -> pl.DataFrame:
    return pl.read_parquet(world.truth / f"{name}.parquet")


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def norms(rows: pl.DataFrame) -> pl.DataFrame:
    """Effect norm per measured condition."""
    return rows.group_by(S.CONTEXT, S.PERTURBATION, S.DOSE).agg(
        pl.col(S.VALUE).pow(2).sum().sqrt().alias("norm")
    )


def test_same_seed_gives_byte_identical_files(world: SimulationResult, tmp_path: Path) -> None:
    first, again = files(world.out), files(simulate(tmp_path / "again", **TINY).out)
    assert sorted(first) == sorted(again)
    assert [name for name in first if first[name] != again[name]] == []
    for name in (
        "store/measurements.parquet",
        "store/controls.parquet",
        "config.json",
        "truth/edges.parquet",
    ):
        assert name in first


def test_other_seed_gives_other_data(world: SimulationResult, tmp_path: Path) -> None:
    first, other = files(world.out), files(simulate(tmp_path / "other", seed=1, **TINY).out)
    differ = {name for name in first if first[name] != other[name]}
    assert {
        "store/measurements.parquet",
        "truth/edges.parquet",
        "truth/pair_types.parquet",
    } <= differ


def test_store_has_contexts_datasets_and_delta_rows(
    world: SimulationResult, rows: pl.DataFrame
) -> None:
    store = open_store(world.store)
    assert store.contexts == ["sim_l1000/S03", "sim_rnaseq/S01", "sim_rnaseq/S02"]
    assert rows.height == store.n_rows == world.n_rows
    assert rows[S.READOUT_TYPE].unique().to_list() == ["delta"]
    assert (
        rows[S.CONTEXT] == rows[S.DATASET] + "/" + rows[S.CONTEXT].str.split("/").list.last()
    ).all()
    assert rows[S.N_CELLS].unique().to_list() == [50]
    assert rows[S.VALUE].is_finite().all()
    assert store.meta.sources[0]["name"] == "lpm.simulate"


def test_perturbation_kinds_counts_and_doses(world: SimulationResult, rows: pl.DataFrame) -> None:
    perts = rows[S.PERTURBATION].unique().to_list()
    assert {perturbation_type(p) for p in perts} == {
        "CRISPRi",
        "CRISPRa",
        "combination",
        "compound",
    }
    assert dict(world.n_perturbations) == {
        "CRISPRi": 14,
        "CRISPRa": 8,
        "combination": 12,
        "compound": 6,
    }
    assert len(perts) == sum(world.n_perturbations.values())
    compound = rows.filter(pl.col(S.PERTURBATION).str.starts_with("compound:"))
    assert np.allclose(sorted(compound[S.DOSE].unique().to_list()), DOSES_UM)
    assert (
        rows.filter(~pl.col(S.PERTURBATION).str.starts_with("compound:"))[S.DOSE].null_count()
        == rows.height - compound.height
    )
    for p in perts:
        if perturbation_type(p) == "combination":
            members = parse(p)
            assert len(members) == 2 and members[0].kind == members[1].kind
            assert combine([str(m) for m in reversed(members)]) == p


def test_landmark_contexts_read_only_landmarks(world: SimulationResult, rows: pl.DataFrame) -> None:
    landmarks = (world.truth / "landmarks.txt").read_text().split()
    assert len(landmarks) == world.config.n_landmarks == 50
    genes = truth(world, "genes")["gene"].to_list()
    assert set(landmarks) < set(genes)
    per = rows.group_by(S.CONTEXT, S.PERTURBATION, S.DOSE).agg(pl.col(S.READOUT).sort())
    for ctx, readouts in zip(per[S.CONTEXT], per[S.READOUT], strict=True):
        assert readouts.to_list() == (landmarks if ctx.startswith("sim_l1000/") else genes)


def test_every_context_has_its_control_profile(world: SimulationResult, rows: pl.DataFrame) -> None:
    ctrl = world.open().controls()
    assert ctrl is not None
    assert sorted(ctrl[S.CONTEXT].unique()) == world.open().contexts
    for ctx, g in ctrl.group_by(S.CONTEXT):
        measured = rows.filter(pl.col(S.CONTEXT) == ctx[0])[S.READOUT].unique().sort().to_list()
        assert g[S.READOUT].sort().to_list() == measured
        assert (g[S.VALUE] > 0).all() and (g[S.N_CELLS] == 200).all()


def test_perturbations_are_measured_in_subsets_of_contexts(
    world: SimulationResult, rows: pl.DataFrame
) -> None:
    seen = rows.group_by(S.PERTURBATION).agg(pl.col(S.CONTEXT).unique().sort().alias("seen"))
    table = truth(world, "perturbations").join(seen, on=S.PERTURBATION, how="full", coalesce=True)
    assert table.height == sum(world.n_perturbations.values())
    assert (table["contexts"] == table["seen"]).all()
    assert (table["n_contexts"] == table["seen"].list.len()).all()
    n_contexts = table["n_contexts"].to_numpy()
    assert n_contexts.min() >= 1 and n_contexts.max() < world.config.n_contexts


def test_truth_tables_agree_with_the_store(world: SimulationResult, rows: pl.DataFrame) -> None:
    genes = set(truth(world, "genes")["gene"])
    edges = truth(world, "edges")
    assert sorted(edges["context"].unique()) == world.open().contexts
    assert set(edges["source"]) <= genes and set(edges["target"]) <= genes
    assert (edges["source"] != edges["target"]).all()
    assert (edges["sign"] == edges["weight"].sign().cast(pl.Int8)).all()
    targets = truth(world, "compound_targets")
    compounds = {p for p in rows[S.PERTURBATION].unique() if p.startswith("compound:")}
    assert set(targets["perturbation"]) == compounds
    assert set(targets["target"]) <= genes
    on = targets.filter(~pl.col("is_off_target"))
    assert set(on["perturbation"]) == compounds
    assert (targets["ic50_um"] > 0).all() and targets["hill"].is_between(1.0, 2.0).all()
    off = targets.filter(pl.col("is_off_target"))
    assert on["emax"].to_numpy().min() > off["emax"].to_numpy().max()
    pairs = truth(world, "pair_types")
    assert set(pairs["perturbation"]) == {p for p in rows[S.PERTURBATION].unique() if "+" in p}
    for row in pairs.iter_rows(named=True):
        assert combine([row["member_a"], row["member_b"]]) == row["perturbation"]
        assert (row["dominant"] is not None) == (row["interaction"] == "epistatic")
        assert row["dominant"] in (None, row["member_a"], row["member_b"])
        assert (row["neomorphic_gene"] is not None) == (row["interaction"] == "neomorphic")
    assert set(pairs["interaction"]) == set(INTERACTIONS)
    singles = set(pairs["n_singles_in_design"])
    assert 2 in singles and singles & {0, 1}
    config = json.loads((world.out / "config.json").read_text())
    assert config["n_landmarks"] == 50 and config["seed"] == world.config.seed


def test_leaf_knockdown_is_much_weaker_than_hub_knockdown(
    world: SimulationResult, rows: pl.DataFrame
) -> None:
    perts = truth(world, "perturbations").filter(pl.col("type") == "CRISPRi")
    degree = truth(world, "genes").select("gene", "out_degree")
    perts = perts.with_columns(pl.col("targets").list.first().alias("gene")).join(degree, on="gene")
    leaves = perts.filter(~pl.col("has_downstream_effect"))
    hub = perts.sort("out_degree", descending=True).row(0, named=True)
    assert leaves.height >= 1 and hub["has_downstream_effect"]
    assert hub["true_effect_norm"] > 2 * leaves["true_effect_norm"].to_numpy().max()
    full = norms(rows.filter(pl.col(S.DATASET) == "sim_rnaseq"))
    leaf_norm = full.filter(pl.col(S.PERTURBATION).is_in(leaves[S.PERTURBATION].implode()))[
        "norm"
    ].mean()
    hub_norm = full.filter(pl.col(S.PERTURBATION) == hub[S.PERTURBATION])["norm"].mean()
    assert isinstance(leaf_norm, float) and isinstance(hub_norm, float)
    assert hub_norm > 2 * leaf_norm


def test_compound_effect_grows_with_dose(world: SimulationResult, rows: pl.DataFrame) -> None:
    by_dose = norms(rows.filter(pl.col(S.DOSE).is_not_null())).pivot(
        S.DOSE, index=[S.CONTEXT, S.PERTURBATION], values="norm"
    )
    low, high = by_dose[str(DOSES_UM[0])].to_numpy(), by_dose[str(DOSES_UM[-1])].to_numpy()
    assert np.mean(high > low) >= 0.8
    assert high.mean() > 1.5 * low.mean()


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    small: dict[str, Any] = {"n_genes": 40, "n_perturbations": 10, "n_contexts": 2, "n_cells": 5}
    first = simulate(tmp_path / "w", **small)
    assert first.open().read()[S.N_CELLS].unique().to_list() == [5]
    with pytest.raises(LpmInputError, match="already exists"):
        simulate(tmp_path / "w", **small)
    again = simulate(tmp_path / "w", seed=3, overwrite=True, **small)
    assert SimulationConfig.read(again.out / "config.json").seed == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_a_file_is_never_replaced_by_the_output_folder_and_is_checked_before_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "w"
    out.write_text("a user's file")

    def no_world(*args: object) -> None:
        raise AssertionError("the world was built before the output was checked")

    monkeypatch.setattr(sys.modules["lpm.sim.simulate"], "_build_world", no_world)
    with pytest.raises(LpmInputError, match="is a file; an output folder cannot replace it"):
        simulate(out, n_genes=40, n_perturbations=10, n_contexts=2, n_cells=5, overwrite=True)
    assert out.read_text() == "a user's file"


def test_config_round_trip(world: SimulationResult) -> None:
    cfg = SimulationConfig.read(world.out / "config.json")
    assert cfg == world.config == SimulationConfig(**TINY, n_landmarks=50).resolved()
    assert SimulationConfig().resolved().n_landmarks == 978


@pytest.mark.parametrize(
    "bad",
    [{"n_genes": 5}, {"n_contexts": 0}, {"n_landmarks": 1000}, {"seed": -1}, {"n_cells": True}],
)
def test_bad_options_fail_before_writing(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(LpmInputError, match="simulation option"):
        simulate(tmp_path / "w", **{**TINY, **bad})
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    ("bad", "most"),
    [({"n_genes": 3_000_000_000}, "100,000"), ({"n_contexts": 5_000}, "1,000")],
)
def test_huge_counts_are_refused_before_any_work(
    tmp_path: Path, bad: dict[str, Any], most: str
) -> None:
    with pytest.raises(LpmInputError, match=f"must be at most {most}"):
        simulate(tmp_path / "w", **{**TINY, **bad})
    assert not (tmp_path / "w").exists()


def test_progress_reports_each_step(tmp_path: Path) -> None:
    messages: list[str] = []
    result = simulate(
        tmp_path / "w", n_genes=40, n_perturbations=10, n_contexts=2, progress=messages.append
    )
    assert messages[0].startswith("network:") and messages[-1].startswith("done:")
    assert sum("conditions sampled" in m for m in messages) == 2
    assert str(result.out) in str(result)


def test_result_does_not_depend_on_thread_count(
    world: SimulationResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lpm.sim.counts as counts

    monkeypatch.setattr(counts, "n_workers", lambda: 1)
    serial = simulate(tmp_path / "serial", **TINY)
    assert files(serial.store) == files(world.store)

"""Reading a simulation's truth folder back (``lpm.sim.truth``): the true network, pair types,
compound targets and mechanisms, downstream effects; a folder without them is named."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.sim.simulate import SimulationResult, simulate
from lpm.sim.truth import (
    read_compound_targets,
    read_downstream_effects,
    read_pair_types,
    read_target_mechanisms,
    read_true_network,
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    out = tmp_path_factory.mktemp("truth") / "sim"
    return simulate(out, n_genes=60, n_perturbations=30, n_contexts=2, seed=0)


def test_the_true_network_from_a_folder_its_truth_or_the_file(sim: SimulationResult) -> None:
    union = read_true_network(sim.out)
    assert union.columns == ["source", "target", "weight", "sign", "resource"]
    assert union.equals(read_true_network(sim.truth))
    assert union.equals(read_true_network(sim.truth / "edges.parquet"))
    assert not union.select(pl.struct("source", "target").is_duplicated().any()).item()
    context = pl.read_parquet(sim.truth / "edges.parquet")["context"][0]
    one = read_true_network(sim.out, context=context)
    assert one.height <= union.height and set(one["resource"]) == {f"simulator_truth_{context}"}
    with pytest.raises(LpmInputError, match="no true edge in context 'nowhere'"):
        read_true_network(sim.out, context="nowhere")


def test_compounds_targets_and_mechanisms(sim: SimulationResult) -> None:
    targets = read_compound_targets(sim.truth)
    assert targets and all(k.startswith("compound:") for k in targets)
    labels = read_target_mechanisms(sim.out)
    for compound, genes in targets.items():
        name = compound.partition(":")[2]
        gene = labels[name].removeprefix("target ")
        assert gene in genes and labels[gene] == labels[name]


def test_pair_types_and_downstream_effects(sim: SimulationResult, tmp_path: Path) -> None:
    types = read_pair_types(sim.truth)
    assert types.columns == ["perturbation", "type"] and types.height > 0
    effects = read_downstream_effects(sim.truth)
    assert effects["has_downstream_effect"].dtype == pl.Boolean
    pl.DataFrame(
        {"perturbation": ["CRISPRi:A+CRISPRi:B"], "interaction": ["epistatic"], "strength": [0.0]}
    ).write_parquet(tmp_path / "pair_types.parquet")
    assert read_pair_types(tmp_path).to_dicts() == [
        {"perturbation": "CRISPRi:A+CRISPRi:B", "type": "epistatic"}
    ]


def test_a_folder_without_truth_is_named(tmp_path: Path) -> None:
    with pytest.raises(LpmInputError, match=r"pair_types\.parquet"):
        read_pair_types(tmp_path / "nope")
    with pytest.raises(LpmInputError, match="no simulator truth"):
        read_true_network(tmp_path)
    with pytest.raises(LpmInputError, match="compound_targets"):
        read_compound_targets(tmp_path / "nowhere")
    with pytest.raises(LpmInputError, match="not a simulation truth folder"):
        read_target_mechanisms(tmp_path)
    with pytest.raises(LpmInputError, match="simulator truth not found"):
        read_downstream_effects(tmp_path)
    pl.DataFrame({"perturbation": ["x"]}).write_parquet(tmp_path / "perturbations.parquet")
    with pytest.raises(LpmInputError, match="has no 'has_downstream_effect' column"):
        read_downstream_effects(tmp_path)

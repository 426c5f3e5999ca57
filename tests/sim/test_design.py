"""The simulated screen's design: perturbation kinds, interactions, doses, measured contexts."""

from __future__ import annotations

import numpy as np

from lpm.sim.design import Binding, build_design, split_counts
from lpm.sim.network import build_network


def test_split_counts_sum_and_cover() -> None:
    assert split_counts(40, [0.35, 0.2, 0.3, 0.15]) == [14, 8, 12, 6]
    assert sum(split_counts(7, [0.4, 0.15, 0.15, 0.15, 0.15], at_least_one=True)) == 7
    assert min(split_counts(5, [0.4, 0.15, 0.15, 0.15, 0.15], at_least_one=True)) == 1


def test_design_counts_and_every_context_measures_something() -> None:
    rng = np.random.default_rng(0)
    net = build_network(rng, 120)
    out_degree = np.bincount(net.edges.source, minlength=120)
    genes = [f"G{i}" for i in range(120)]
    design = build_design(rng, net, out_degree, genes, n_perturbations=40, n_contexts=3)
    n = len(design.singles) + len(design.pairs) + len(design.compounds)
    assert n == 40 and len(design.contexts) == 40
    assert all(1 <= len(cs) <= 3 for cs in design.contexts.values())
    assert {c for cs in design.contexts.values() for c in cs} == {0, 1, 2}
    assert set(design.genes_needed().tolist()) >= {g.gene for g in design.singles}


def test_binding_inhibition_follows_a_hill_curve() -> None:
    b = Binding(gene=0, ic50=1.0, hill=1.0, emax=0.8, off_target=False)
    assert b.inhibition(1.0) == 0.4 and b.inhibition(0.0) == 0.0
    assert b.inhibition(10.0) < b.inhibition(100.0) < 0.8

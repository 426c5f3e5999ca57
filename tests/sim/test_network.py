"""The simulated gene network: hub regulators, a stable steady state, context rewiring."""

from __future__ import annotations

import numpy as np

from lpm.sim.network import RHO_MAX, build_network, gene_names, rewire, spectral_bound


def test_network_is_seeded_with_hubs_and_no_self_loops() -> None:
    net = build_network(np.random.default_rng(0), 200)
    again = build_network(np.random.default_rng(0), 200)
    assert np.array_equal(net.edges.source, again.edges.source)
    assert np.array_equal(net.edges.weight, again.edges.weight)
    assert len(net.regulators) == 20 and np.isclose(net.hub_weight.sum(), 1.0)
    assert not (net.edges.source == net.edges.target).any()
    assert set(net.edges.source.tolist()) <= set(
        net.regulators.tolist()
    )  # only regulators regulate
    pairs = set(zip(net.edges.source.tolist(), net.edges.target.tolist(), strict=True))
    assert len(pairs) == len(net.edges)


def test_rewired_context_stays_stable_and_changes_ten_to_twenty_percent() -> None:
    rng = np.random.default_rng(1)
    net = build_network(rng, 300)
    ctx = rewire(rng, net)
    changed = ctx.n_dropped + ctx.n_flipped + ctx.n_added
    assert 0.09 * len(net.edges) <= changed <= 0.21 * len(net.edges)
    assert spectral_bound(ctx.edges, 300) <= RHO_MAX + 1e-9
    effects = ctx.total_effects(300, np.array([int(net.regulators[0])]))
    assert effects.shape == (300, 1) and np.isfinite(effects).all()
    assert effects[int(net.regulators[0]), 0] > 0  # a knock-up raises the gene itself


def test_gene_names_are_unique() -> None:
    names = gene_names(1000)
    assert len(set(names)) == 1000

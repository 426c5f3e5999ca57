"""The gene-graph network: messages passed over a neighbourhood give the genes the vectors the
whole graph gives them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
from lpm.models.gene_graph_network import GeneGraphNet, Neighbourhood, sparse_tensor  # noqa: E402


@pytest.mark.parametrize("layers", [0, 1, 2, 3])
def test_a_neighbourhood_gives_the_whole_graphs_vectors(layers: int) -> None:
    rng = np.random.default_rng(0)
    n = 60
    adj = sp.random(n, n, density=0.05, random_state=1, format="csr", dtype=np.float32)
    torch.manual_seed(0)
    net = GeneGraphNet(n, 1, 4, 1, hidden=8, layers=layers)
    with torch.no_grad():
        net.node.normal_()
        for w in net.nbr_w:
            w.weight.normal_()
    genes = rng.choice(n, size=5, replace=False)
    keep = torch.ones(n)
    whole = net.genes(sparse_tensor(adj), keep, torch.arange(n))
    hood = Neighbourhood.around(adj, genes, layers)
    local = net.genes(hood.adj, keep, hood.nodes)
    positions = hood.local(torch.as_tensor(genes))
    torch.testing.assert_close(local[positions], whole[torch.as_tensor(genes)])
    assert len(hood.nodes) <= n

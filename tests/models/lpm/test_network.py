"""The LPM network: fast mode scores a sparse panel as the dense product does."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpm.data.store import open_store
from lpm.models.source import RowSource

pytest.importorskip("torch")
from lpm.models.lpm.vocab import Vocab


def test_fast_mode_scores_a_sparse_panel_as_the_dense_product_does(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import lpm.models.lpm.network as net_module
    from lpm.models.lpm.batches import profile_batches
    from lpm.models.lpm.network import LPMNetwork, NetworkConfig
    from lpm.models.lpm.rows import code_rows

    rows = open_store(store_path).read()
    vocab = Vocab.build(RowSource(frame=rows))
    sparse = rows.sample(fraction=0.1, seed=0)  # a tenth of each profile's readouts
    cfg = NetworkConfig(
        n_contexts=len(vocab.contexts),
        n_readouts=len(vocab.readouts),
        n_members=len(vocab.members),
        embedding_dim=8,
        hidden=(16,),
        dropout=0.0,
        fast=True,
        combine="mean",
    )
    torch.manual_seed(0)
    net = LPMNetwork(cfg).eval()
    batch = next(profile_batches(code_rows(sparse, vocab), 50))
    batch["perturbation_members"] = torch.from_numpy(vocab.member_matrix)
    with torch.no_grad():
        monkeypatch.setattr(net_module, "SPARSE_PANEL", 0)  # always the gathered dots
        gathered = net.forward_rows(batch)
        monkeypatch.setattr(net_module, "SPARSE_PANEL", 1_000_000)  # always the dense product
        dense = net.forward_rows(batch)
    torch.testing.assert_close(gathered, dense)

"""The network of ``gene_graph``, the neighbourhoods it passes messages over, and its
LightningModule (trained by the shared engine, :mod:`lpm.models.training`).

Message passing is two sparse × dense products per layer (``torch.sparse.mm``): the graphs are
static, a few hundred thousand edges, and need no scatter kernels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from lpm.models.training import VAL_LOSS, masked_mse

log = logging.getLogger("lpm.models.gene_graph")


def sparse_tensor(adj: sp.spmatrix) -> torch.Tensor:
    """A scipy sparse matrix as a coalesced torch sparse tensor (float32)."""
    coo = adj.tocoo()
    idx = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
    return torch.sparse_coo_tensor(
        idx, torch.as_tensor(coo.data, dtype=torch.float32), adj.shape, check_invariants=True
    ).coalesce()


@dataclass(frozen=True)
class Neighbourhood:
    """The nodes within ``layers`` hops of some genes and the adjacency among them.

    After L rounds of message passing a node's vector depends on the nodes within L hops only,
    so passing messages over this neighbourhood (with the rows of the whole graph's normalised
    adjacency) gives the genes the same vectors as the whole graph, at a fraction of the cost
    when the graph is large (GO: 19,000 genes) and the perturbed genes are few. Nodes outside
    it get no gradient either way.
    """

    nodes: torch.Tensor  # positions in the whole graph (long)
    adj: torch.Tensor  # sparse adjacency among ``nodes``
    position: np.ndarray  # whole-graph position -> position in ``nodes`` (-1: outside)

    @classmethod
    def around(cls, adj: sp.csr_matrix, genes: np.ndarray, layers: int) -> Neighbourhood:
        inside = np.zeros(adj.shape[0], dtype=bool)
        inside[genes[genes >= 0]] = True
        for _ in range(layers):
            inside[adj[np.flatnonzero(inside)].indices] = True
        nodes = np.flatnonzero(inside)
        position = np.full(adj.shape[0], -1, dtype=np.int64)
        position[nodes] = np.arange(len(nodes))
        sub = adj[nodes][:, nodes]
        return cls(torch.as_tensor(nodes, dtype=torch.long), sparse_tensor(sub), position)

    def local(self, genes: torch.Tensor) -> torch.Tensor:
        """Member gene positions (-1 padded) mapped into the neighbourhood."""
        g = genes.numpy()
        return torch.as_tensor(np.where(g >= 0, self.position[np.maximum(g, 0)], -1))


class GeneGraphNet(nn.Module):
    """Gene vectors mixed by message passing, member types, contexts, a fuse MLP and a bilinear
    decoder against readout vectors mixed once over the readout graph."""

    def __init__(
        self, n_nodes: int, n_types: int, n_readouts: int, n_contexts: int, hidden: int, layers: int
    ) -> None:
        super().__init__()
        self.node = nn.Parameter(torch.zeros(n_nodes, hidden))
        nbr = [nn.Linear(hidden, hidden, bias=False) for _ in range(layers)]
        self.nbr_w = nn.ModuleList(nbr)
        self.kind_scale = nn.Parameter(torch.ones(n_types, hidden))
        self.kind = nn.Embedding(n_types, hidden)
        self.context = nn.Embedding(n_contexts, hidden)
        fuse_out = nn.Linear(hidden, hidden)
        self.fuse = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), fuse_out)
        self.readout = nn.Parameter(torch.zeros(n_readouts, hidden))
        self.readout_w = nn.Linear(hidden, hidden, bias=False)
        self.out_b = nn.Parameter(torch.zeros(n_readouts))
        for weight in (*(w.weight for w in nbr), fuse_out.weight, fuse_out.bias):
            nn.init.zeros_(weight)  # start at the warm start (see fit), not at noise
        nn.init.zeros_(self.readout_w.weight)
        nn.init.zeros_(self.kind.weight)
        nn.init.zeros_(self.context.weight)

    def genes(self, adj: torch.Tensor, keep: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """Vectors of ``nodes`` (a neighbourhood, see :class:`Neighbourhood`) after message passing."""
        h = self.node.index_select(0, nodes) * keep.index_select(0, nodes)[:, None]
        for w_nbr in self.nbr_w:
            h = h + w_nbr(torch.sparse.mm(adj, h))
        return h

    def members(self, h: torch.Tensor, genes: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """The sum of each perturbation's member vectors (B, hidden): ``genes`` index ``h`` (-1
        pads), each vector scaled and shifted by its member's type."""
        t = types.clamp(min=0)
        present = (genes >= 0).float()[..., None]
        member = (h[genes.clamp(min=0)] * self.kind_scale[t] + self.kind(t)) * present
        return member.sum(1)

    def forward(
        self,
        hood: Neighbourhood,
        readout_adj: torch.Tensor,
        keep: torch.Tensor,
        ctx: torch.Tensor,
        genes: torch.Tensor,
        types: torch.Tensor,
        base: torch.Tensor,
    ) -> torch.Tensor:
        h = self.genes(hood.adj, keep, hood.nodes)
        pert = self.members(h, genes, types) + self.context(ctx)
        pert = pert + self.fuse(pert)  # (B, hidden): combinations are more than their sum
        r = self.readout + self.readout_w(torch.sparse.mm(readout_adj, self.readout))
        return base + pert @ r.T + self.out_b[None]


@dataclass(frozen=True)
class Conditions:
    """Profiles (conditions) as tensors: context, member genes (whole graph and local to the
    neighbourhood) and types, the context's base profile, the values and where they were measured."""

    ctx: torch.Tensor
    genes: torch.Tensor
    local: torch.Tensor
    types: torch.Tensor
    base: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.ctx)


def training_batches(
    data: Conditions, *, batch_size: int, gen: torch.Generator, n_nodes: int, self_dropout: float
) -> Iterator[tuple[torch.Tensor, ...]]:
    """One epoch's batches: an order drawn from ``gen``, then per batch the perturbed genes whose
    own vector is dropped (also from ``gen``, so the draws repeat exactly under a seed)."""
    order = torch.randperm(len(data), generator=gen)
    for start in range(0, len(data), batch_size):
        b = order[start : start + batch_size]
        keep = torch.ones(n_nodes)
        batch_genes = data.genes[b][data.genes[b] >= 0]
        drop = torch.rand(len(batch_genes), generator=gen) < self_dropout
        keep[batch_genes[drop]] = 0.0
        yield (
            keep,
            data.ctx[b],
            data.local[b],
            data.types[b],
            data.base[b],
            data.target[b],
            data.mask[b],
        )


def validation_batches(data: Conditions) -> Iterator[tuple[torch.Tensor, ...]]:
    """Every validation condition in one batch."""
    yield data.ctx, data.local, data.types, data.base, data.target, data.mask


class GeneGraphModule(L.LightningModule):
    """The network, its masked MSE and Adam; a history record per epoch (with the validation
    MSE where there are validation profiles: they are scored after every epoch, for the best
    epoch's weights)."""

    def __init__(
        self,
        net: GeneGraphNet,
        *,
        hood: Neighbourhood,
        val_hood: Neighbourhood | None,
        readout_adj: torch.Tensor,
        n_conditions: int,
        lr: float,
        weight_decay: float,
    ) -> None:
        super().__init__()
        self.net = net
        self.hood, self.val_hood, self.readout_adj = hood, val_hood, readout_adj
        self.n_conditions, self.lr, self.weight_decay = n_conditions, lr, weight_decay
        self.history: list[dict[str, Any]] = []
        self._total = 0.0
        self._val_mse: float | None = None

    def on_train_epoch_start(self) -> None:
        self._total, self._val_mse = 0.0, None

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        keep, ctx, genes, types, base, target, mask = batch
        pred = self.net(self.hood, self.readout_adj, keep, ctx, genes, types, base)
        loss = masked_mse(pred, target, mask)
        self._total += loss.item() * len(ctx)
        return loss

    def on_train_epoch_end(self) -> None:
        record: dict[str, Any] = {
            "epoch": int(self.current_epoch),
            "train_mse": self._total / self.n_conditions,
        }
        if self._val_mse is not None:
            record["val_mse"] = self._val_mse
        self.history.append(record)
        log.info("gene_graph epoch %d: %s", self.current_epoch, record)

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        assert self.val_hood is not None
        ctx, genes, types, base, target, mask = batch
        keep = torch.ones(int(self.net.node.shape[0]))
        pred = self.net(self.val_hood, self.readout_adj, keep, ctx, genes, types, base)
        self._val_mse = float(masked_mse(pred, target, mask))
        self.log(VAL_LOSS, torch.tensor(self._val_mse, dtype=torch.float64))

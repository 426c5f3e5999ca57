"""``gene_graph``: a GEARS-like graph neural network over a gene graph and a readout graph.

In the spirit of GEARS (Roohani et al. 2023), not a copy of it:

- **Perturbation side.** Every gene of the gene graph (GO similarity by default,
  :func:`lpm.priors.gene_graph.go_similarity_graph`) has a learned vector; ``layers`` rounds of
  message passing (``h ← relu(h·W_self + mean_neighbours(h)·W_nbr)``) mix each gene with its
  neighbours. A perturbation is the fused sum of its members' gene vectors plus a vector of the
  member's type (CRISPRi and CRISPRa of one gene differ), so a combination is more than the
  sum of its singles, and a gene never perturbed in training gets a vector from its neighbours.
  Training drops the own vector of the perturbed genes of a batch with probability
  ``self_dropout``, so the network must also predict from neighbours alone.
- **Readout side.** A readout that is a gene of the graph shares that gene's vector (plus a
  learned vector of its own), so perturbing a gene moves the readouts near it in the graph; the
  result is mixed once with its neighbours in a readout graph: co-expression of the training
  effects (GEARS's choice; top 20 above 0.4) or any gene graph spec.
- **Decoder.** ``base[c, r] + <MLP(perturbation + context_c), readout_r> + b_r``, with ``base``
  the context's mean perturbed profile, so an untrained network predicts ``context_mean`` and
  training learns the deviation from it. The product is bilinear (one matrix product for a
  batch), where GEARS runs an MLP per gene: the per-gene MLP cost 20× the time on 2 cores.

Message passing is two sparse × dense products per layer (``torch.sparse.mm``): the graphs are
static, a few hundred thousand edges, and need no scatter kernels, so torch_geometric would add
a compiled dependency for nothing. Training is a short seeded run of the shared engine
(:mod:`lpm.models.training`) over whole profiles (one condition = one example), keeping the
weights of the best validation epoch when validation rows are given. The network and its
LightningModule are in :mod:`lpm.models.gene_graph_network`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from lpm._utils.threads import one_torch_thread
from lpm.data import schema as S
from lpm.data.profiles import profile_matrix, row_positions
from lpm.data.symbols import genetic_targets
from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.base import PerturbationModel
from lpm.models.gene_graph_network import (
    Conditions,
    GeneGraphModule,
    GeneGraphNet,
    Neighbourhood,
    sparse_tensor,
    training_batches,
    validation_batches,
)
from lpm.models.params import COUNT, NON_NEGATIVE, POSITIVE, PROBABILITY, SEED, WIDTH, Rule
from lpm.models.torch_state import load_network_arrays, network_arrays
from lpm.models.training import TrainerOptions, build_trainer, loader, run_fit
from lpm.priors.gene_graph import coexpression_graph, graph_source, normalised_adjacency

#: Loss-of-function types push a gene's program one way, gain-of-function the other.
_GAIN_OF_FUNCTION = frozenset({"CRISPRa", "ORF"})


class GeneGraphModel(PerturbationModel):
    """Message passing over a gene graph (GEARS-like): a gene never perturbed is placed by its neighbours."""

    uses_trainer = True
    embeds_perturbations = True
    param_rules: ClassVar[Mapping[str, Rule]] = {
        "graph_k": COUNT,
        "readout_k": COUNT,
        "hidden": WIDTH,
        "layers": NON_NEGATIVE,
        "epochs": COUNT,
        "batch_size": COUNT,
        "lr": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "self_dropout": PROBABILITY,
        "seed": SEED,
    }
    memory_params = ("hidden", "batch_size")

    def __init__(
        self,
        *,
        graph: str = "go",
        graph_k: int = 20,
        readout_graph: str = "coexpression",
        readout_k: int = 20,
        hidden: int = 64,
        layers: int = 2,
        epochs: int = 40,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        self_dropout: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.graph = graph
        self.graph_k = graph_k
        self.readout_graph = readout_graph
        self.readout_k = readout_k
        self.hidden = hidden
        self.layers = layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.self_dropout = self_dropout
        self.seed = seed

    # ---- data ---------------------------------------------------------------------------------
    def _genetic(self, rows: pl.DataFrame) -> pl.DataFrame:
        perts = rows[S.PERTURBATION].cast(pl.String).unique().to_list()
        ok = [p for p in perts if p != S.CONTROL and genetic_targets(p) is not None]
        return rows.filter(pl.col(S.PERTURBATION).cast(pl.String).is_in(ok))

    def _encode(self, keys: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Context index, member gene indices and member type indices (-1 padded) per condition."""
        ctx = np.array([self._ctx[c] for c, _ in keys], dtype=np.int64)
        return (ctx, *self._members([p for _, p in keys]))

    def _members(self, perturbations: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        width = max([1, *(len(genetic_targets(p) or []) for p in perturbations)])
        genes = np.full((len(perturbations), width), -1, dtype=np.int64)
        types = np.full((len(perturbations), width), -1, dtype=np.int64)
        for i, p in enumerate(perturbations):
            for j, (kind, gene) in enumerate(genetic_targets(p) or []):
                genes[i, j] = self._node[gene]
                types[i, j] = self._type[kind]
        return genes, types

    def _index(self) -> None:
        self._ctx = {c: i for i, c in enumerate(self.contexts_)}
        self._node = {g: i for i, g in enumerate(self.nodes_)}
        self._type = {t: i for i, t in enumerate(self.types_)}
        self._readout = {r: i for i, r in enumerate(self.readouts_)}
        #: the gene graph's normalised adjacency (scipy, cut to neighbourhoods as needed)
        self._gene_adj = normalised_adjacency(self.gene_edges_, self.nodes_)

    def _new_network(self) -> GeneGraphNet:
        return GeneGraphNet(
            len(self.nodes_),
            len(self.types_),
            len(self.readouts_),
            len(self.contexts_),
            self.hidden,
            self.layers,
        )

    def _warm_start(self, keys: list[tuple[str, str]], resid: np.ndarray) -> None:
        """Readout vectors = the top principal axes of the training effects; a trained gene's
        vector = the mean score of its single perturbations (sign-flipped for gain of function),
        so the network starts where a rank-``hidden`` linear model ends and learns the rest."""
        x = np.nan_to_num(resid)
        u, sv, vt = np.linalg.svd(x, full_matrices=False)
        k = min(self.hidden, len(sv))
        basis = np.zeros((len(self.readouts_), self.hidden), dtype=np.float32)
        basis[:, :k] = vt[:k].T
        scores = np.zeros((len(keys), self.hidden), dtype=np.float32)
        scores[:, :k] = u[:, :k] * sv[:k]
        total = np.zeros((len(self.nodes_), self.hidden))
        count = np.zeros(len(self.nodes_))
        for i, (_, p) in enumerate(keys):
            members = genetic_targets(p) or []
            if len(members) == 1:
                kind, gene = members[0]
                total[self._node[gene]] += -scores[i] if kind in _GAIN_OF_FUNCTION else scores[i]
                count[self._node[gene]] += 1
        node = total / np.maximum(count, 1)[:, None]
        signs = np.array([-1.0 if t in _GAIN_OF_FUNCTION else 1.0 for t in self.types_])
        with torch.no_grad():
            self.net_.readout.copy_(torch.as_tensor(basis))
            self.net_.node.copy_(torch.as_tensor(node, dtype=torch.float32))
            self.net_.kind_scale.copy_(
                torch.as_tensor(np.repeat(signs[:, None], self.hidden, 1), dtype=torch.float32)
            )

    def _graphs(self) -> tuple[sp.csr_matrix, torch.Tensor]:
        """The gene graph's normalised adjacency (scipy, built once by ``_index``) and the
        readout graph's (torch)."""
        readout_adj = normalised_adjacency(self.readout_edges_, self.readouts_)
        return self._gene_adj, sparse_tensor(readout_adj)

    # ---- fitting ------------------------------------------------------------------------------
    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        options = trainer or TrainerOptions()
        data = self._genetic(train)
        if data.height == 0:
            raise LpmInputError(None, "gene_graph: no genetic perturbation rows to train on")
        self.readouts_ = sorted(data[S.READOUT].cast(pl.String).unique().to_list())
        keys, y = profile_matrix(data, self.readouts_)
        self.contexts_ = sorted({c for c, _ in keys})
        targets = sorted({g for _, p in keys for _, g in genetic_targets(p) or []})
        self.types_ = sorted({t for _, p in keys for t, _ in genetic_targets(p) or []})
        edges = graph_source(self.graph, k=self.graph_k)
        self.nodes_ = sorted(
            set(edges["source"].to_list()) | set(edges["target"].to_list()) | set(targets)
        )
        self.gene_edges_ = edges
        self.trained_genes_ = targets
        self._index()
        ctx_of = np.array([self._ctx[c] for c, _ in keys])
        base = np.zeros((len(self.contexts_), len(self.readouts_)))
        measured = np.isfinite(y)
        filled = np.where(measured, y, 0.0)
        overall = filled.sum(0) / np.maximum(measured.sum(0), 1)
        for c in range(len(self.contexts_)):
            here = ctx_of == c
            n = measured[here].sum(0)
            base[c] = np.where(n > 0, filled[here].sum(0) / np.maximum(n, 1), overall)
        self.base_ = base.astype(np.float32)
        resid = y - self.base_[ctx_of]
        self.readout_edges_ = (
            coexpression_graph(resid, self.readouts_, k=self.readout_k)
            if self.readout_graph == "coexpression"
            else graph_source(self.readout_graph, k=self.readout_k)
        )
        torch.manual_seed(self.seed)
        self.net_ = self._new_network()
        self._warm_start(keys, resid)
        with one_torch_thread():
            self._train(keys, y, val, options)
        self.n_train_conditions_ = len(keys)

    def _train(
        self,
        keys: list[tuple[str, str]],
        y: np.ndarray,
        val: pl.DataFrame | None,
        options: TrainerOptions,
    ) -> None:
        adj, readout_adj = self._graphs()
        data, hood = self._conditions(keys, y, adj)
        validation = self._validation(val, adj)
        batches = functools.partial(
            training_batches, data, batch_size=self.batch_size,
            gen=torch.Generator().manual_seed(self.seed), n_nodes=len(self.nodes_),
            self_dropout=self.self_dropout,
        )  # fmt: skip
        loaders = {"train_dataloaders": loader(batches)}
        if validation is not None:
            loaders["val_dataloaders"] = loader(
                functools.partial(validation_batches, validation[0])
            )
        module = GeneGraphModule(
            self.net_, hood=hood, val_hood=validation[1] if validation is not None else None,
            readout_adj=readout_adj, n_conditions=len(keys), lr=self.lr,
            weight_decay=self.weight_decay,
        )  # fmt: skip
        trainer = build_trainer(
            options, max_epochs=self.epochs, validates=validation is not None, keep_best=True,
        )  # fmt: skip
        run_fit(trainer, module, **loaders)
        self.history_ = module.history

    def _conditions(
        self, keys: list[tuple[str, str]], y: np.ndarray, adj: sp.csr_matrix
    ) -> tuple[Conditions, Neighbourhood]:
        """Profiles as tensors, and the neighbourhood of their genes."""
        ctx, genes, types = (torch.as_tensor(a) for a in self._encode(keys))
        hood = Neighbourhood.around(adj, genes.numpy().ravel(), self.layers)
        data = Conditions(
            ctx=ctx,
            genes=genes,
            local=hood.local(genes),
            types=types,
            base=torch.as_tensor(self.base_)[ctx],
            target=torch.as_tensor(np.nan_to_num(y), dtype=torch.float32),
            mask=torch.as_tensor(np.isfinite(y), dtype=torch.float32),
        )
        return data, hood

    def _validation(
        self, val: pl.DataFrame | None, adj: sp.csr_matrix
    ) -> tuple[Conditions, Neighbourhood] | None:
        """The validation profiles the model can predict, as tensors (None without any)."""
        if val is None or val.height == 0:
            return None
        val = self._genetic(val)
        val = val.filter(pl.Series(self._supported(val))) if val.height else val
        if val.height == 0:
            return None
        keys, y = profile_matrix(val, self.readouts_)
        return self._conditions(keys, y, adj)

    # ---- prediction ---------------------------------------------------------------------------
    def _perturbation_ok(self, symbol: str) -> bool:
        members = genetic_targets(symbol)
        if symbol == S.CONTROL or members is None:
            return False
        return all(g in self._node and t in self._type for t, g in members)

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        ctx = rows[S.CONTEXT].cast(pl.String)
        read = rows[S.READOUT].cast(pl.String)
        pert = rows[S.PERTURBATION].cast(pl.String)
        ok_perts = [p for p in pert.unique().to_list() if self._perturbation_ok(p)]
        return (
            ctx.is_in(self.contexts_).to_numpy()
            & read.is_in(self.readouts_).to_numpy()
            & pert.is_in(ok_perts).to_numpy()
        )

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        keys = rows.select(
            pl.col(S.CONTEXT).cast(pl.String), pl.col(S.PERTURBATION).cast(pl.String)
        )
        uniq = [tuple(k) for k in keys.unique(maintain_order=True).iter_rows()]
        cond, read = row_positions(rows, uniq, self.readouts_)
        adj, readout_adj = self._graphs()
        ctx, genes, types = (torch.as_tensor(a) for a in self._encode(uniq))
        hood = Neighbourhood.around(adj, genes.numpy().ravel(), self.layers)
        genes = hood.local(genes)
        self.net_.eval()
        out = np.empty((len(uniq), len(self.readouts_)), dtype=np.float32)
        with torch.no_grad(), one_torch_thread():
            keep = torch.ones(len(self.nodes_))
            for start in range(0, len(uniq), 256):
                s = slice(start, start + 256)
                pred = self.net_(
                    hood,
                    readout_adj,
                    keep,
                    ctx[s],
                    genes[s],
                    types[s],
                    torch.as_tensor(self.base_)[ctx[s]],
                )
                out[s] = pred.numpy()
        return out[cond, read]

    def _perturbation_embedding(self, perturbations: Sequence[str]) -> np.ndarray:
        """Each perturbation's vector after message passing and before any context is added:
        the space in which the network places genes it never saw next to their neighbours."""
        bad = [p for p in perturbations if not self._perturbation_ok(p)]
        if bad:
            raise UnknownSymbolError(S.PERTURBATION, bad)
        genes, types = self._members(perturbations)
        hood = Neighbourhood.around(self._gene_adj, genes.ravel(), self.layers)
        self.net_.eval()
        with torch.no_grad(), one_torch_thread():
            h = self.net_.genes(hood.adj, torch.ones(len(self.nodes_)), hood.nodes)
            g, t = hood.local(torch.as_tensor(genes)), torch.as_tensor(types)
            return self.net_.members(h, g, t).numpy().astype(np.float64)

    def _known(self) -> dict[str, set[str]]:
        perts = {f"{t}:{g}" for t in self.types_ for g in self.trained_genes_}
        return {
            S.CONTEXT: set(self.contexts_),
            S.READOUT: set(self.readouts_),
            S.PERTURBATION: perts,
        }

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        arrays = network_arrays(self.net_)
        arrays["base"] = self.base_
        tables = {"gene_edges": self.gene_edges_, "readout_edges": self.readout_edges_}
        extra = {
            "contexts": self.contexts_,
            "readouts": self.readouts_,
            "nodes": self.nodes_,
            "types": self.types_,
            "trained_genes": self.trained_genes_,
            "history": self.history_,
            "n_train_conditions": self.n_train_conditions_,
        }
        return arrays, tables, extra

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:

        self.contexts_ = list(extra["contexts"])
        self.readouts_ = list(extra["readouts"])
        self.nodes_ = list(extra["nodes"])
        self.types_ = list(extra["types"])
        self.trained_genes_ = list(extra["trained_genes"])
        self.history_ = list(extra["history"])
        self.n_train_conditions_ = int(extra["n_train_conditions"])
        self.gene_edges_ = tables["gene_edges"]
        self.readout_edges_ = tables["readout_edges"]
        self.base_ = arrays["base"]
        self._index()
        self.net_ = load_network_arrays(self._new_network(), arrays)

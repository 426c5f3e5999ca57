"""The LPM network and its Lightning module (the data module and trainer live elsewhere).

Exact mode (the published architecture): embeddings of perturbation, context and readout are
concatenated and an MLP outputs one value. Fast mode: the MLP maps (perturbation, context) to
a hidden vector once and every readout is scored by one matrix product with readout embeddings.
Continuous rows are fitted with MSE and binary rows with a logistic loss, in the same model.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lpm.models.lpm.featurised import FeaturisedTable
from lpm.models.training import VAL_LOSS

#: Per-row condition inputs of a network trained before time was an input: log dose, has dose.
DOSE_FEATURES = 2
#: Since then: log10 dose (µM), has dose, log10 time (h), has time (doses and times held out
#: are interpolated along these axes).
CONDITION_FEATURES = 4


@dataclass(frozen=True)
class NetworkConfig:
    n_contexts: int
    n_readouts: int
    n_members: int
    embedding_dim: int
    hidden: tuple[int, ...]
    dropout: float
    fast: bool
    combine: str  # "mean" or "sum" of a combination's members
    condition_features: int = DOSE_FEATURES
    #: Feature block widths per table ("member", "context", "readout"): featurised encoders.
    features: dict[str, list[int]] = field(default_factory=dict)
    feature_hidden: int = 128
    feature_dropout: float = 0.5
    n_member_types: int = 0
    #: Each member embedded with its own dose (:class:`MemberDoses`) before the members are
    #: combined (data with doses per member).
    member_conditions: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> NetworkConfig:
        out = dict(cfg)
        out["hidden"] = tuple(out["hidden"])
        out["features"] = {k: list(v) for k, v in out.get("features", {}).items()}
        return cls(**out)


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class MemberDoses(nn.Module):
    """A member's vector at its own dose: ``e ⊙ (1 + Γ f) + B f``, with ``f`` the member's dose
    features (log10 dose µM, has dose, log10 time h, has time) and ``Γ``, ``B`` linear maps
    without bias, zero at the start (no dose effect until one is learned).

    The shift ``B f`` alone would not do: summed (or averaged) over the members it is the same
    for A@1.5+B@6 and A@6+B@1.5; the scale ties each dose to its own member.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.map = nn.Linear(CONDITION_FEATURES, 2 * dim, bias=False)
        nn.init.zeros_(self.map.weight)

    def forward(self, vectors: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        scale, shift = self.map(conditions).chunk(2, dim=-1)
        return vectors * (1.0 + scale) + shift


def combine_members(
    table: nn.Module,
    members: torch.Tensor,
    combine: str,
    doses: MemberDoses | None = None,
    conditions: torch.Tensor | None = None,
) -> torch.Tensor:
    """A perturbation's vector from its members' rows of ``table``: their mean (``combine``
    ``"mean"``) or sum; ``members`` is perturbations × max members, padded with -1. With
    ``doses`` and ``conditions`` (perturbations × members × 4 dose features) each member's
    vector is first put at its own dose."""
    vectors = table(members.clamp(min=0))
    if doses is not None and conditions is not None:
        vectors = doses(vectors, conditions)
    mask = (members >= 0).unsqueeze(-1).to(vectors.dtype)
    emb = (vectors * mask).sum(1)
    if combine == "mean":
        emb = emb / mask.sum(1).clamp(min=1.0)
    return emb


class _GatherSum(torch.autograd.Function):
    """``out[i] = sum_j table[rows[i, j]]``: embedding_bag's forward, a cheaper backward.

    embedding_bag's own CPU backward sorts the indices first; adding the gradient rows
    straight into place, one index column at a time, is about twice as fast.
    """

    @staticmethod
    def forward(ctx: Any, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.n_table = table.shape[0]
        return F.embedding_bag(rows, table, mode="sum")

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (rows,) = ctx.saved_tensors
        out = grad.new_zeros((ctx.n_table, grad.shape[1]))
        for j in range(rows.shape[1]):
            out.index_add_(0, rows[:, j], grad)
        return out, None


#: Batch entries shared by all rows (per perturbation, not per row).
_TABLES = ("perturbation_members", "perturbation_conditions")

#: Fast mode scores only the measured readouts when a batch measured fewer than one in this
#: many of its profiles' possible (profile, readout) pairs; the same function either way.
SPARSE_PANEL = 8


class LPMNetwork(nn.Module):
    """Three embedding tables and an MLP; see the module docstring for the two modes.

    Batches name perturbations by an index into ``perturbation_members`` (member ids per
    perturbation, -1 padded), so each distinct perturbation is embedded once per batch.
    Exact mode computes the MLP's first layer per distinct symbol and adds the parts per row:
    ``W [p; c; r; d] = Wp p + Wc c + Wr r + Wd d``, the same function with a fraction of the
    arithmetic (a batch holds far fewer distinct symbols than rows).
    """

    def __init__(self, cfg: NetworkConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embedding_dim
        self.member: nn.Embedding | FeaturisedTable = self._table("member", cfg.n_members)
        self.context: nn.Embedding | FeaturisedTable = self._table("context", cfg.n_contexts)
        self.readout: nn.Embedding | FeaturisedTable = self._table("readout", cfg.n_readouts)
        n_cond = cfg.condition_features
        if cfg.fast:
            self.body = _mlp(2 * d + n_cond, cfg.hidden, d, cfg.dropout)
            self.readout_bias = nn.Parameter(torch.zeros(cfg.n_readouts))
        else:
            self.body = _mlp(3 * d + n_cond, cfg.hidden, 1, cfg.dropout)
        for emb in (self.member, self.context, self.readout):
            nn.init.normal_(
                emb.learned.weight if isinstance(emb, FeaturisedTable) else emb.weight, std=0.1
            )
        # made last (other weights draw as before) and zero (no dose effect until learned)
        self.member_dose = MemberDoses(d) if cfg.member_conditions else None

    def _table(self, kind: str, n: int) -> nn.Embedding | FeaturisedTable:
        """A plain embedding, or a featurised one where the config gives feature blocks."""
        cfg = self.cfg
        widths = cfg.features.get(kind)
        if not widths:
            return nn.Embedding(n, cfg.embedding_dim)
        return FeaturisedTable(
            n,
            cfg.embedding_dim,
            list(widths),
            hidden=cfg.feature_hidden,
            dropout=cfg.feature_dropout,
            n_types=cfg.n_member_types if kind == "member" else 0,
        )

    def perturbation(
        self, members: torch.Tensor, conditions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean or sum of member embeddings (padding is -1); with ``conditions`` (perturbations ×
        members × 4 dose features) each member is put at its own dose first."""
        return combine_members(self.member, members, self.cfg.combine, self.member_dose, conditions)

    def _perturbations(
        self, index: torch.Tensor, table: torch.Tensor, conditions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of the distinct perturbations among ``index``, and each row's position."""
        uniq, inv = torch.unique(index, return_inverse=True)
        cond = conditions[uniq] if conditions is not None else None
        return self.perturbation(table[uniq], cond), inv

    def forward_rows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One output per row (exact mode), or per row via its profile (fast mode)."""
        table = batch["perturbation_members"]
        if self.cfg.fast:
            h = self.profile_hidden(
                batch["profile_perturbation"],
                table,
                batch["profile_context"],
                batch["profile_dose"],
                conditions=batch.get("perturbation_conditions"),
            )
            readout, row_profile = batch["readout"], batch["row_profile"]
            if readout.shape[0] * SPARSE_PANEL < h.shape[0] * self.cfg.n_readouts:
                # a sparse panel (e.g. ~100 labelled genes of 10,000): only the measured scores
                r = self.readout(readout)
                return (h.index_select(0, row_profile) * r).sum(1) + self.readout_bias[readout]
            # every readout of each profile by one matrix product, then the measured ones
            scores = torch.addmm(self.readout_bias, h, self.readout.weight.T)
            return scores.reshape(-1).gather(0, row_profile * scores.shape[1] + readout)
        return self._mlp_from_first_layer(self._first_layer(batch, table))

    def _first_layer(self, batch: dict[str, torch.Tensor], table: torch.Tensor) -> torch.Tensor:
        """Exact mode: the first layer's pre-activation, ``W [p; c; r; d] + b`` for every row.

        Each distinct perturbation, context and readout of the batch is projected once (the
        bias rides on the contexts); one fused gather-and-sum gives every row its three parts.
        """
        d = self.cfg.embedding_dim
        first = self.body[0]
        assert isinstance(first, nn.Linear)
        w = first.weight
        pert, p_row = self._perturbations(
            batch["perturbation"], table, batch.get("perturbation_conditions")
        )
        ctx, c_row = torch.unique(batch["context"], return_inverse=True)
        read, r_row = torch.unique(batch["readout"], return_inverse=True)
        parts = torch.cat(
            [
                pert @ w[:, :d].T,
                torch.addmm(first.bias, self.context(ctx), w[:, d : 2 * d].T),
                self.readout(read) @ w[:, 2 * d : 3 * d].T,
            ]
        )
        rows = torch.stack([p_row, c_row + len(pert), r_row + (len(pert) + len(ctx))], dim=1)
        h = _GatherSum.apply(parts, rows)
        dose = batch["dose"][:, : self.cfg.condition_features]
        if dose.is_cuda or bool(dose.any()):  # a batch without doses adds zeros
            h = torch.addmm(h, dose, w[:, 3 * d :].T)
        return h

    def _mlp_from_first_layer(self, h: torch.Tensor) -> torch.Tensor:
        """The rest of the MLP after the first linear layer (ReLUs in place: no copies).

        The one-output last layer is a matrix-vector product: its input gradient is then an
        outer product by broadcasting, several times cheaper than a matrix product of inner
        size 1.
        """
        layers = list(itertools.islice(self.body, 1, None))
        for layer in layers[:-1]:
            if isinstance(layer, nn.ReLU):
                h = F.relu(h, inplace=True)
            elif isinstance(layer, nn.Dropout):
                if layer.p > 0:
                    h = layer(h)
            else:
                h = layer(h)
        last = layers[-1] if layers else None
        if isinstance(last, nn.Linear):
            return torch.mv(h, last.weight[0]) + last.bias
        return h.squeeze(-1)

    def profile_hidden(
        self,
        perturbation: torch.Tensor,
        table: torch.Tensor,
        context: torch.Tensor,
        dose: torch.Tensor,
        *,
        conditions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fast mode: the hidden vector of each profile (profiles × embedding)."""
        dose = dose[:, : self.cfg.condition_features]
        cond = conditions[perturbation] if conditions is not None else None
        p = self.perturbation(table[perturbation], cond)
        return self.body(torch.cat([p, self.context(context), dose], dim=-1))

    def profile_scores(
        self,
        perturbation: torch.Tensor,
        table: torch.Tensor,
        context: torch.Tensor,
        dose: torch.Tensor,
        *,
        conditions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fast mode: all readouts of each profile in one matrix product (profiles × readouts)."""
        return torch.addmm(
            self.readout_bias,
            self.profile_hidden(perturbation, table, context, dose, conditions=conditions),
            self.readout.weight.T,
        )


def mixed_loss(pred: torch.Tensor, value: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """MSE on continuous rows, logistic loss on binary rows, averaged over all rows."""
    if value.numel() == 0:
        return pred.sum() * 0.0
    if not bool(binary.any()):
        return F.mse_loss(pred, value)
    per_row = torch.where(
        binary,
        F.binary_cross_entropy_with_logits(pred, value, reduction="none"),
        (pred - value) ** 2,
    )
    return per_row.mean()


class LPMModule(L.LightningModule):
    """Network + loss + optimiser (AdamW, learning rate decayed per epoch); a validation loss
    (where there are validation rows) for early stopping and best-checkpoint selection."""

    def __init__(
        self,
        network: dict[str, Any],
        lr: float,
        decay: float,
        weight_decay: float,
        seed: int,
        anchor_controls: int = 0,
        control_index: int = -1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = LPMNetwork(NetworkConfig.from_dict(network))
        self.anchor_controls = anchor_controls if control_index >= 0 else 0
        self.control_index = control_index
        self.lr = lr
        self.decay = decay
        self.weight_decay = weight_decay
        self.seed = seed
        self._loss_sum = torch.zeros(())
        self._values = 0
        self._threads = 0

    def on_fit_start(self) -> None:
        # fast mode's tensors are small (a few profiles per step): more intra-op threads only
        # add synchronisation, and stall badly when another process holds a core; restored
        # when the fit ends
        if self.net.cfg.fast and self.device.type == "cpu" and torch.get_num_threads() > 1:
            self._threads = torch.get_num_threads()
            torch.set_num_threads(1)

    def teardown(self, stage: str) -> None:
        if self._threads:
            torch.set_num_threads(self._threads)
            self._threads = 0

    def on_train_epoch_start(self) -> None:
        # data order and dropout depend only on (seed, epoch): a resumed run repeats them
        torch.manual_seed(
            int(np.random.default_rng([self.seed, self.current_epoch]).integers(2**31))
        )
        dm = self.trainer.datamodule  # type: ignore[attr-defined]
        if dm is not None:
            dm.set_epoch(
                self.current_epoch, rank=self.global_rank, world_size=self.trainer.world_size
            )
        self._loss_sum = torch.zeros((), device=self.device)
        self._values = 0

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = mixed_loss(self.net.forward_rows(batch), batch["value"], batch["binary"])
        if self.anchor_controls:
            anchor, n_anchor = self._control_loss(batch)
            n_rows = int(batch["value"].shape[0])
            # the control rows join the batch: one mean over measured and control rows
            loss = (loss * n_rows + anchor * n_anchor) / (n_rows + n_anchor)
        # the epoch's mean loss is logged once at its end (per-step logging costs more than a
        # fast-mode step); weighted by values, as Lightning's on_epoch mean would be
        n = int(batch["value"].shape[0])
        self._loss_sum += loss.detach() * n
        self._values += n
        return loss

    def _control_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Loss of control rows added to the batch, whose target is no effect (0; "not
        differentially expressed" for binary readouts).

        Fast mode: ``anchor_controls`` control profiles, in contexts drawn (with replacement) from
        the batch's profiles, scored on the readouts the batch measured. Exact mode: the same
        number of batch rows per control profile (the batch's rows over its profiles), drawn
        from the batch with perturbation set to control and no dose.
        """
        k = self.anchor_controls
        table = batch["perturbation_members"]
        if self.net.cfg.fast:
            ctx_all = batch["profile_context"]
            ctx = ctx_all[torch.randint(len(ctx_all), (k,), device=ctx_all.device)]
            pert = torch.full_like(ctx, self.control_index)
            dose = batch["profile_dose"].new_zeros((k, batch["profile_dose"].shape[1]))
            scores = self.net.profile_scores(
                pert, table, ctx, dose, conditions=batch.get("perturbation_conditions")
            )
            read, inv = torch.unique(batch["readout"], return_inverse=True)
            binary = torch.zeros(len(read), dtype=torch.bool, device=read.device)
            binary[inv[batch["binary"]]] = True
            pred = scores[:, read].reshape(-1)
            return mixed_loss(pred, torch.zeros_like(pred), binary.repeat(k)), int(pred.numel())
        n_rows = int(batch["value"].shape[0])
        per_profile = max(1, n_rows // max(1, int(torch.unique(batch["perturbation"]).numel())))
        pick = torch.randint(n_rows, (k * per_profile,), device=batch["value"].device)
        shared = {k: v for k, v in batch.items() if k in _TABLES}
        rows = {key: v[pick] for key, v in batch.items() if key not in _TABLES}
        rows["perturbation"] = torch.full_like(rows["perturbation"], self.control_index)
        rows["dose"] = torch.zeros_like(rows["dose"])
        rows.update(shared)
        pred = self.net.forward_rows(rows)
        return mixed_loss(pred, torch.zeros_like(pred), rows["binary"]), int(pred.numel())

    def on_train_epoch_end(self) -> None:
        if self._values:
            self.log("train_loss", self._loss_sum / self._values, sync_dist=True)

    def configure_optimizers(self) -> Any:
        # one fused kernel per parameter instead of a dozen small ops (where torch has it)
        fused = self.device.type in ("cpu", "cuda")
        opt = torch.optim.AdamW(
            self.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=fused
        )
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=self.decay)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss = mixed_loss(self.net.forward_rows(batch), batch["value"], batch["binary"])
        self.log(
            VAL_LOSS,
            loss,
            on_step=False,
            on_epoch=True,
            batch_size=int(batch["value"].numel()),
            sync_dist=True,
        )

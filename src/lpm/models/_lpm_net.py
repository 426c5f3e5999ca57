"""The LPM network and its Lightning module (the data module and trainer live elsewhere).

Exact mode (the published architecture): embeddings of perturbation, context and readout are
concatenated and an MLP outputs one value. Fast mode: the MLP maps (perturbation, context) to
a hidden vector once and every readout is scored by one matrix product with readout embeddings.
Continuous rows are fitted with MSE and binary rows with a logistic loss, in the same model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DOSE_FEATURES = 2


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

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class LPMNetwork(nn.Module):
    """Three embedding tables and an MLP; see the module docstring for the two modes."""

    def __init__(self, cfg: NetworkConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embedding_dim
        self.member = nn.Embedding(cfg.n_members, d)
        self.context = nn.Embedding(cfg.n_contexts, d)
        self.readout = nn.Embedding(cfg.n_readouts, d)
        if cfg.fast:
            self.body = _mlp(2 * d + DOSE_FEATURES, cfg.hidden, d, cfg.dropout)
            self.readout_bias = nn.Parameter(torch.zeros(cfg.n_readouts))
        else:
            self.body = _mlp(3 * d + DOSE_FEATURES, cfg.hidden, 1, cfg.dropout)
        for emb in (self.member, self.context, self.readout):
            nn.init.normal_(emb.weight, std=0.1)

    def perturbation(self, members: torch.Tensor) -> torch.Tensor:
        """Mean or sum of member embeddings (padding is -1)."""
        mask = (members >= 0).unsqueeze(-1).to(self.member.weight.dtype)
        emb = (self.member(members.clamp(min=0)) * mask).sum(1)
        if self.cfg.combine == "mean":
            emb = emb / mask.sum(1).clamp(min=1.0)
        return emb

    def forward_rows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One output per row (exact mode), or per row via its profile (fast mode)."""
        if self.cfg.fast:
            h = self.profile_hidden(
                batch["profile_members"], batch["profile_context"], batch["profile_dose"]
            )
            rows = h[batch["row_profile"]]
            w = self.readout(batch["readout"])
            return (rows * w).sum(-1) + self.readout_bias[batch["readout"]]
        x = torch.cat(
            [
                self.perturbation(batch["members"]),
                self.context(batch["context"]),
                self.readout(batch["readout"]),
                batch["dose"],
            ],
            dim=-1,
        )
        return self.body(x).squeeze(-1)

    def profile_hidden(
        self, members: torch.Tensor, context: torch.Tensor, dose: torch.Tensor
    ) -> torch.Tensor:
        x = torch.cat([self.perturbation(members), self.context(context), dose], dim=-1)
        return self.body(x)

    def profile_scores(
        self, members: torch.Tensor, context: torch.Tensor, dose: torch.Tensor
    ) -> torch.Tensor:
        """Fast mode: all readouts of each profile in one matrix product (profiles × readouts)."""
        return (
            self.profile_hidden(members, context, dose) @ self.readout.weight.T + self.readout_bias
        )


def mixed_loss(pred: torch.Tensor, value: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """MSE on continuous rows, logistic loss on binary rows, averaged over all rows."""
    cont = ~binary
    total = pred.new_zeros(())
    if cont.any():
        total = total + F.mse_loss(pred[cont], value[cont], reduction="sum")
    if binary.any():
        total = total + F.binary_cross_entropy_with_logits(
            pred[binary], value[binary], reduction="sum"
        )
    return total / max(int(value.numel()), 1)


class LPMModule(L.LightningModule):
    """Network + loss + optimiser (AdamW, learning rate decayed per epoch)."""

    def __init__(
        self, network: dict[str, Any], lr: float, decay: float, weight_decay: float, seed: int
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        cfg = dict(network)
        cfg["hidden"] = tuple(cfg["hidden"])
        self.net = LPMNetwork(NetworkConfig(**cfg))
        self.lr = lr
        self.decay = decay
        self.weight_decay = weight_decay
        self.seed = seed

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

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = mixed_loss(self.net.forward_rows(batch), batch["value"], batch["binary"])
        self.log(
            "train_loss",
            loss,
            on_step=False,
            on_epoch=True,
            batch_size=int(batch["value"].numel()),
            sync_dist=True,
        )
        return loss

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=self.decay)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


class LPMModuleWithValidation(LPMModule):
    """The same, with a validation loss for early stopping and best-checkpoint selection."""

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss = mixed_loss(self.net.forward_rows(batch), batch["value"], batch["binary"])
        self.log(
            "val_loss",
            loss,
            on_step=False,
            on_epoch=True,
            batch_size=int(batch["value"].numel()),
            sync_dist=True,
        )

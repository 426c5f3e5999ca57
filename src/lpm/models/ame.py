"""An attentive mixture of experts (AME) with a Granger-causal loss: registry name ``lpm_ame``.

After Schwab, Miladinovic and Karlen (2019), "Granger-causal attentive mixtures of experts".
Each input of a row is one expert:

- ``perturbation``: the mean (or sum) of its members' embeddings, as in the LPM, so an unseen
  combination of known members can be predicted;
- ``context`` and ``readout``: one embedding each;
- ``dose`` and ``time`` (only where the training rows have them): ``[log1p(x), has_x]``; a row
  without one (a knock-down beside compounds) masks that expert out of its attention. Where
  doses are given per member of a combination, each member's embedding is put at its own dose
  (``MemberDoses``, as in the LPM) before the members are combined.

Every expert maps its input by a small MLP to a hidden vector ``h_i``. The gate scores each
expert from its own hidden vector, ``g_i(h_i)``, and a softmax over the experts gives attention
``a``, one weight per expert and row. (A gate reading all hidden vectors at once can compute the
answer itself; leaving an expert out then no longer removes its information.) Each expert makes a scalar contribution ``y_i`` and the prediction is ``sum_i a_i y_i``.
A value is measured for one readout, so a contribution must be readout-specific: non-readout
experts give ``y_i = z_i . u`` with ``z_i`` a head on ``h_i`` and ``u`` the readout expert's
decoder vector (the readout acts as the coordinate being read, not as a competing input); the
readout expert's own contribution is a scalar per readout (its main effect, the readout's
typical delta). So leaving the perturbation out removes every perturbation-specific effect,
while leaving the readout out removes only what the readout explains by itself.

The Granger-causal loss: for every expert ``i`` the prediction without it (attention
re-normalised over the others) has error ``e_-i``; ``w_i = max(e_-i - e, 0)`` normalised over the
experts of the row (uniform when no expert helps) is the target, and the loss is
``MSE + granger_weight * KL(w || a)`` with the targets detached. The attention then reads as
how much each input drives the prediction.

The network and its Lightning module are below; the façade (``AttentiveMixtureModel``) owns
the data and early stopping on a seeded validation carve of whole profiles; the Trainer comes
from the shared engine (:mod:`lpm.models.training`), which keeps the best epoch's weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import lightning as L
import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from lpm._utils.threads import one_torch_thread
from lpm.data import schema as S
from lpm.data.holdout import carve_validation
from lpm.data.members import has_member_values
from lpm.errors import LpmInputError
from lpm.models.base import PerturbationModel
from lpm.models.lpm.network import MemberDoses, combine_members
from lpm.models.lpm.rows import code_rows
from lpm.models.lpm.vocab import Vocab
from lpm.models.params import (
    COUNT,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    SEED,
    WIDTH,
    Choice,
    Rule,
)
from lpm.models.source import RowSource
from lpm.models.training import (
    VAL_LOSS,
    TrainerOptions,
    best_state,
    build_trainer,
    loader,
    run_fit,
)

#: Expert names, in the order of the attention columns (numeric ones only where present).
SYMBOL_EXPERTS = ("perturbation", "context", "readout")
NUMERIC_EXPERTS = (S.DOSE, S.TIME)
#: Batch entries shared by all rows (per perturbation, not per row).
_TABLES = ("perturbation_members", "perturbation_conditions")
#: A small table is cut into at least this many batches per epoch (batches of 16 rows at least),
#: so the optimiser still takes steps between early-stopping checks.
MIN_BATCHES_PER_EPOCH = 32


@dataclass(frozen=True)
class AMEConfig:
    n_members: int
    n_contexts: int
    n_readouts: int
    numeric: tuple[str, ...]  # numeric experts present: a subset of NUMERIC_EXPERTS
    embedding_dim: int
    hidden: int
    combine: str
    #: Each member embedded with its own dose (data with doses per member), as in the LPM.
    member_conditions: bool = False

    @property
    def experts(self) -> tuple[str, ...]:
        return (*SYMBOL_EXPERTS, *self.numeric)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["numeric"] = list(self.numeric)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AMEConfig:
        return cls(**{**d, "numeric": tuple(d["numeric"])})


def _expert(n_in: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())


# ---- the Granger-causal pieces (pure functions, tested on their own) ----------------------------
def mixture(y: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``sum_i softmax(logits)_i y_i`` per row (rows × experts in, rows out)."""
    return (torch.softmax(logits, dim=-1) * y).sum(-1)


def leave_one_out(y: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Rows × experts: the prediction without expert ``i``, attention re-normalised over the rest.

    A masked softmax (not ``(full - a_i y_i) / (1 - a_i)``), so an expert holding nearly all the
    attention gives a finite answer.
    """
    n = logits.shape[-1]
    mask = torch.eye(n, dtype=torch.bool, device=logits.device)
    masked = logits.unsqueeze(1).expand(-1, n, n).masked_fill(mask, float("-inf"))
    return (torch.softmax(masked, dim=-1) * y.unsqueeze(1)).sum(-1)


def granger_targets(err_full: torch.Tensor, err_without: torch.Tensor) -> torch.Tensor:
    """Normalised error increases ``w_i = max(e_-i - e, 0) / sum_j max(e_-j - e, 0)`` per row;
    uniform where no expert's removal increases the error."""
    delta = (err_without - err_full.unsqueeze(-1)).clamp(min=0.0)
    total = delta.sum(-1, keepdim=True)
    uniform = torch.full_like(delta, 1.0 / delta.shape[-1])
    return torch.where(total > 0, delta / total.clamp(min=torch.finfo(delta.dtype).tiny), uniform)


def granger_kl(omega: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``KL(omega || softmax(logits))`` (``0 log 0 = 0``); never negative."""
    log_a = torch.log_softmax(logits, dim=-1)
    # experts absent from a row (logit -inf) have omega 0: their term is 0, not 0 * -inf
    cross = torch.where(omega > 0, omega * log_a, torch.zeros_like(log_a))
    kl = torch.xlogy(omega, omega) - cross
    return kl.sum(-1).mean()


def granger_loss(
    y: torch.Tensor, logits: torch.Tensor, value: torch.Tensor, weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(MSE + weight * KL(w || a), MSE)``; the targets ``w`` come from detached errors."""
    pred = mixture(y, logits)
    mse = F.mse_loss(pred, value)
    if weight == 0:
        return mse, mse
    with torch.no_grad():
        err = (pred - value) ** 2
        err_without = (leave_one_out(y, logits) - value.unsqueeze(-1)) ** 2
        omega = granger_targets(err, err_without)
    return mse + weight * granger_kl(omega, logits), mse


# ---- the network --------------------------------------------------------------------------------
class AMENetwork(nn.Module):
    """Experts, heads and the attentive gate; ``forward`` gives (contributions, gate logits)."""

    def __init__(self, cfg: AMEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, h = cfg.embedding_dim, cfg.hidden
        self.member = nn.Embedding(cfg.n_members, d)
        self.context = nn.Embedding(cfg.n_contexts, d)
        self.readout = nn.Embedding(cfg.n_readouts, d)
        for emb in (self.member, self.context, self.readout):
            nn.init.normal_(emb.weight, std=0.1)
        self.experts = nn.ModuleDict(
            {name: _expert(d if name in SYMBOL_EXPERTS else 2, h) for name in cfg.experts}
        )
        self.heads = nn.ModuleDict(
            {name: nn.Linear(h, d) for name in cfg.experts if name != "readout"}
        )
        self.decoder = nn.Linear(h, d)  # the readout's coordinate vector u
        self.readout_out = nn.Linear(h, 1)  # the readout's own contribution
        self.gate = nn.ModuleDict(
            {
                name: nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1))
                for name in cfg.experts
            }
        )
        # made last (other weights draw as before) and zero (no dose effect until learned)
        self.member_dose = MemberDoses(d) if cfg.member_conditions else None

    def _perturbation(
        self, members: torch.Tensor, conditions: torch.Tensor | None = None
    ) -> torch.Tensor:
        return combine_members(self.member, members, self.cfg.combine, self.member_dose, conditions)

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Each expert's hidden vector per row (symbol experts run once per distinct symbol)."""
        pert, p_row = torch.unique(batch["perturbation"], return_inverse=True)
        ctx, c_row = torch.unique(batch["context"], return_inverse=True)
        read, r_row = torch.unique(batch["readout"], return_inverse=True)
        table = batch["perturbation_members"]
        conds = batch.get("perturbation_conditions")
        p = self._perturbation(table[pert], conds[pert] if conds is not None else None)
        out = [
            self.experts["perturbation"](p)[p_row],
            self.experts["context"](self.context(ctx))[c_row],
            self.experts["readout"](self.readout(read))[r_row],
        ]
        out += [self.experts[name](batch[name]) for name in self.cfg.numeric]
        return out

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        hs = self.hidden_states(batch)
        names = self.cfg.experts
        u = self.decoder(hs[names.index("readout")])
        y = torch.stack(
            [
                self.readout_out(h).squeeze(-1)
                if name == "readout"
                else (self.heads[name](h) * u).sum(-1)
                for name, h in zip(names, hs, strict=True)
            ],
            dim=-1,
        )
        logits = torch.cat([self.gate[name](h) for name, h in zip(names, hs, strict=True)], dim=-1)
        # a row without a dose (or time) has no such input: its expert gets no attention there,
        # so it can neither carry the prediction nor be credited with it
        if self.cfg.numeric:
            absent = torch.zeros_like(logits, dtype=torch.bool)
            for name in self.cfg.numeric:
                absent[:, names.index(name)] = batch[name][:, 1] == 0
            logits = logits.masked_fill(absent, float("-inf"))
        return y, logits


class AMEModule(L.LightningModule):
    """Network + Granger-causal loss + AdamW; a validation MSE (where there are validation
    rows) for early stopping and the best epoch's weights."""

    def __init__(
        self, network: dict[str, Any], lr: float, weight_decay: float, granger_weight: float
    ) -> None:
        super().__init__()
        self.net = AMENetwork(AMEConfig.from_dict(network))
        self.lr = lr
        self.weight_decay = weight_decay
        self.granger_weight = granger_weight
        self._val_sum = 0.0
        self._val_n = 0

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        y, logits = self.net(batch)
        loss, _ = granger_loss(y, logits, batch["value"], self.granger_weight)
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def on_validation_epoch_start(self) -> None:
        self._val_sum, self._val_n = 0.0, 0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        y, logits = self.net(batch)
        _, mse = granger_loss(y, logits, batch["value"], 0.0)
        n = int(batch["value"].shape[0])
        self._val_sum += float(mse) * n
        self._val_n += n

    def on_validation_epoch_end(self) -> None:
        # float64, as summed: the best epoch and its recorded MSE are this exact value
        self.log(VAL_LOSS, torch.tensor(self._val_sum / max(self._val_n, 1), dtype=torch.float64))


# ---- data ---------------------------------------------------------------------------------------
def _numeric(rows: pl.DataFrame, name: str) -> np.ndarray:
    """``[log1p(x), has_x]`` per row (missing, non-finite or negative: ``[0, 0]``)."""
    out = np.zeros((rows.height, 2), np.float32)
    if name in rows.columns:
        x = rows[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        has = np.isfinite(x) & (x >= 0)
        out[:, 0] = np.log1p(np.where(has, x, 0.0))
        out[:, 1] = has
    return out


def _tensors(
    rows: pl.DataFrame, vocab: Vocab, numeric: tuple[str, ...], *, member_conditions: bool = False
) -> dict[str, Any]:
    coded = code_rows(rows, vocab, member_conditions=member_conditions)
    t: dict[str, Any] = {
        "perturbation": torch.from_numpy(coded.perturbation.astype(np.int64)),
        "context": torch.from_numpy(coded.context.astype(np.int64)),
        "readout": torch.from_numpy(coded.readout.astype(np.int64)),
        "value": torch.from_numpy(coded.value.astype(np.float32)),
    }
    for name in numeric:
        t[name] = torch.from_numpy(_numeric(rows, name))
    t["perturbation_members"] = torch.from_numpy(coded.perturbation_members.astype(np.int64))
    if coded.perturbation_conditions is not None:
        t["perturbation_conditions"] = torch.from_numpy(coded.perturbation_conditions)
    return t


def _batches(t: dict[str, Any], size: int, order: np.ndarray) -> list[dict[str, torch.Tensor]]:
    idx = torch.from_numpy(order)
    out = []
    for start in range(0, len(order), size):
        part = idx[start : start + size]
        batch = {k: v.index_select(0, part) for k, v in t.items() if k not in _TABLES}
        batch.update({k: v for k, v in t.items() if k in _TABLES})
        out.append(batch)
    return out


class _Rows:
    """Batches of rows, reshuffled each pass from (seed, pass number): runs repeat exactly (a
    pass is a call, see :func:`lpm.models.training.loader`)."""

    def __init__(
        self, t: dict[str, Any], *, batch_size: int, seed: int, shuffle: bool = True
    ) -> None:
        self.t, self.batch_size, self.seed, self.shuffle = t, batch_size, seed, shuffle
        self.passes = 0

    def __call__(self) -> Iterator[dict[str, torch.Tensor]]:
        n = int(self.t["value"].shape[0])
        rng = np.random.default_rng([self.seed, self.passes])
        self.passes += 1
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        yield from _batches(self.t, self.batch_size, order)


def _present(rows: pl.DataFrame, name: str) -> bool:
    return name in rows.columns and bool(_numeric(rows, name)[:, 1].any())


# ---- the model ----------------------------------------------------------------------------------
class AttentiveMixtureModel(PerturbationModel):
    """Attentive mixture of experts (one per input) trained with a Granger-causal attention loss."""

    name: ClassVar[str] = "lpm_ame"
    uses_trainer = True
    family = "ame"
    member_conditions = True
    param_rules: ClassVar[Mapping[str, Rule]] = {
        "embedding_dim": WIDTH,
        "hidden": WIDTH,
        "granger_weight": NON_NEGATIVE,
        "combine": Choice("mean", "sum"),
        "batch_size": COUNT,
        "lr": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "max_epochs": COUNT,
        "patience": NON_NEGATIVE,
        "val_fraction": FRACTION,
        "seed": SEED,
    }
    memory_params = ("embedding_dim", "hidden", "batch_size")

    def __init__(
        self,
        *,
        embedding_dim: int = 16,
        hidden: int = 32,
        granger_weight: float = 1.0,
        combine: str = "mean",
        batch_size: int = 512,
        lr: float = 1e-2,
        weight_decay: float = 1e-5,
        max_epochs: int = 60,
        patience: int = 8,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.granger_weight = granger_weight
        self.combine = combine
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.seed = seed

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        """Early stopping on ``val`` or on a seeded ``val_fraction`` of the training profiles
        (rows with a non-finite value are left out)."""
        options = trainer or TrainerOptions()
        train = train.filter(pl.col(S.VALUE).is_finite())
        if train.height == 0:
            raise LpmInputError(None, "no training rows (with a finite value)")
        if (val is None or val.height == 0) and self.val_fraction > 0:
            train, val = carve_validation(train, fraction=self.val_fraction, seed=self.seed)
        vocab = Vocab.build(RowSource(frame=train))
        numeric = tuple(n for n in NUMERIC_EXPERTS if _present(train, n))
        members = has_member_values(train) or (val is not None and has_member_values(val))
        cfg = AMEConfig(
            n_members=len(vocab.members),
            n_contexts=len(vocab.contexts),
            n_readouts=len(vocab.readouts),
            numeric=numeric,
            embedding_dim=self.embedding_dim,
            hidden=self.hidden,
            combine=self.combine,
            member_conditions=members,
        )
        if val is not None:
            val = val.filter(pl.col(S.VALUE).is_finite() & vocab.seen())
        has_val = val is not None and val.height > 0
        L.seed_everything(self.seed, workers=True, verbose=False)
        module = AMEModule(
            cfg.to_dict(),
            lr=self.lr,
            weight_decay=self.weight_decay,
            granger_weight=self.granger_weight,
        )
        batch_size = min(self.batch_size, max(16, train.height // MIN_BATCHES_PER_EPOCH))
        rows = _Rows(
            _tensors(train, vocab, numeric, member_conditions=members),
            batch_size=batch_size,
            seed=self.seed,
        )
        data: dict[str, Any] = {"train_dataloaders": loader(rows)}
        if val is not None and has_val:
            val_rows = _Rows(
                _tensors(val, vocab, numeric, member_conditions=members),
                batch_size=8192, seed=0, shuffle=False,
            )  # fmt: skip
            data["val_dataloaders"] = loader(val_rows)
        trainer_ = build_trainer(
            options, max_epochs=self.max_epochs, validates=has_val, patience=self.patience,
            keep_best=True,
        )  # fmt: skip
        # the networks are small: more intra-op threads only add synchronisation, and stall
        # badly when another process holds a core (as in the LPM's fast mode)
        with one_torch_thread():
            run_fit(trainer_, module, **data)
        self.vocab_ = vocab
        self.network_config_ = cfg.to_dict()
        self.state_ = {
            k: v.detach().cpu().numpy().copy() for k, v in module.net.state_dict().items()
        }
        self.history_ = {
            "epochs": int(trainer_.current_epoch),
            "best_val_mse": best.best_score if (best := best_state(trainer_)) else None,
            "train_rows": train.height,
        }

    # ---- prediction ---------------------------------------------------------------------------
    @property
    def experts_(self) -> list[str]:
        """Expert (input) names, in the order of ``attention``'s columns."""
        self._check_fitted()
        return list(AMEConfig.from_dict(self.network_config_).experts)

    def _network(self) -> AMENetwork:
        net = AMENetwork(AMEConfig.from_dict(self.network_config_))
        net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in self.state_.items()})
        net.eval()
        return net

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        return self.vocab_.supported(rows)

    def _known(self) -> dict[str, set[str]]:
        return self.vocab_.known()

    def contributions(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per row and expert: the contribution ``y_i`` and the gate logit (rows × experts each)."""
        self._check_predictable(rows)
        return self._contributions(rows)

    def _contributions(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``contributions`` of rows already checked."""
        cfg = AMEConfig.from_dict(self.network_config_)
        t = _tensors(
            rows.with_columns(pl.lit(0.0).alias(S.VALUE)),
            self.vocab_,
            cfg.numeric,
            member_conditions=cfg.member_conditions,
        )
        net = self._network()
        n = len(cfg.experts)
        y = np.zeros((rows.height, n), np.float32)
        logits = np.zeros((rows.height, n), np.float32)
        pos = 0
        with torch.no_grad():
            for batch in _batches(t, 65_536, np.arange(rows.height)):
                yb, lb = net(batch)
                k = int(yb.shape[0])
                y[pos : pos + k], logits[pos : pos + k] = yb.numpy(), lb.numpy()
                pos += k
        return y, logits

    def attention(self, rows: pl.DataFrame) -> np.ndarray:
        """The gate's weights (rows × experts, rows sum to 1); columns named by ``experts_``."""
        _, logits = self.contributions(rows)
        return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()

    def predict_without(self, rows: pl.DataFrame) -> np.ndarray:
        """Rows × experts: the prediction with each expert left out (attention re-normalised)."""
        y, logits = self.contributions(rows)
        return leave_one_out(torch.from_numpy(y), torch.from_numpy(logits)).numpy()

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        y, logits = self._contributions(rows)
        return mixture(torch.from_numpy(y), torch.from_numpy(logits)).numpy()

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        arrays = {k: np.asarray(v) for k, v in self.state_.items()}
        extra = {"network": self.network_config_, "history": self.history_}
        return arrays, self.vocab_.to_tables(), extra

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.vocab_ = Vocab.from_tables(tables)
        self.network_config_ = dict(extra["network"])
        self.history_ = dict(extra["history"])
        self.state_ = dict(arrays)

"""``peper``: Salt plus a learned correction (Gaudelet et al. 2024), trained on measured doubles.

Salt predicts a combination as the sum of its singles' measured deltas in the same context.
Peper keeps that sum and adds what it misses, per readout:

    pred_r = Σ_i a_ir + σ · MLP([s_r, q_r, |max−min|_r, |s_r|] / σ, readout_r, context, pair)

with ``a_i`` the members' profiles, ``s = Σ a_i``, ``q`` the sum of pairwise products
(interaction), a learned vector per readout and per context, and a pair vector encoded from the
members' whole profiles (symmetric in the members, so A+B and B+A agree). ``σ`` is the sd of
the training singles' values, so the network works on a unit scale. It is trained on the
training doubles whose members were all measured in the same context, with early stopping on
held-out doubles (the ``val`` rows' doubles, else a seeded ``val_fraction`` of them).

**Doses per member.** Where the training rows give a combination's doses (times) per member,
a condition is (context, perturbation, dose, time, member doses, member times) and each member
is the single measured at its own dose and time; otherwise doses are pooled per (context,
perturbation), as before.

**Fallback, flagged.** When a member was not measured in the context, Peper has no measured
profile to correct: it returns Salt's sum over the members, taking the missing ones from
``single_model`` (any registered model fitted on the same rows, e.g. ``gene_graph``), and
:meth:`PeperModel.fallback` marks those rows. Without a ``single_model`` such rows are
unsupported (an error at ``predict``), never guessed. With no training double to learn from,
every combination is a flagged fallback.

The correction network is a LightningModule trained by the shared engine
(:mod:`lpm.models.training`): Adam on the doubles, early stopping on the held-out doubles' MSE
and the best epoch's weights kept, in one CPU process.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import lightning as L
import numpy as np
import polars as pl
import torch
from torch import nn

from lpm._utils.threads import one_torch_thread
from lpm.data import schema as S
from lpm.data.symbols import is_combination
from lpm.errors import LpmInputError
from lpm.models._conditions import POOLED, ConditionKeys, Key
from lpm.models.base import PerturbationModel
from lpm.models.params import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, SEED, WIDTH, Rule
from lpm.models.torch_state import load_network_arrays, network_arrays
from lpm.models.training import (
    VAL_LOSS,
    TrainerOptions,
    build_trainer,
    loader,
    masked_mse,
    run_fit,
)

log = logging.getLogger(__name__)
_N_VALUE_FEATURES = 4


def _value_features(profiles: torch.Tensor) -> torch.Tensor:
    """Symmetric per-readout features of the members' profiles (members on dim 1)."""
    s = profiles.sum(1)
    pairwise = (s**2 - (profiles**2).sum(1)) / 2  # Σ_{i<j} a_i a_j
    spread = profiles.max(1).values - profiles.min(1).values
    return torch.stack([s, pairwise, spread, s.abs()], dim=-1)


class PeperNet(nn.Module):
    """The correction: an MLP per readout over value features, readout, context and pair."""

    def __init__(self, n_readouts: int, n_contexts: int, width: int, hidden: int) -> None:
        super().__init__()
        self.readout = nn.Embedding(n_readouts, width)
        self.context = nn.Embedding(n_contexts, width)
        self.encode = nn.Linear(n_readouts, width)
        last = nn.Linear(hidden, 1)
        nn.init.zeros_(last.weight)  # start at Salt: no correction until one is learned
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(
            nn.Linear(_N_VALUE_FEATURES + 3 * width, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            last,
        )

    def forward(self, profiles: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """profiles (B, members, R) on the unit scale → correction (B, R)."""
        b, _, r = profiles.shape
        pair = self.encode(profiles).sum(1)  # (B, width)
        x = torch.cat(
            [
                _value_features(profiles),
                self.readout.weight[None].expand(b, r, -1),
                self.context(ctx)[:, None].expand(b, r, -1),
                pair[:, None].expand(b, r, -1),
            ],
            dim=-1,
        )
        return self.mlp(x).squeeze(-1)


#: A training double: its context, its members' single keys, its measured profile.
Double = tuple[str, list[Key], np.ndarray]
#: A batch of doubles: members' profiles (unit scale), context, residual target, mask.
Doubles = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class PeperModule(L.LightningModule):
    """The correction network, its masked MSE and Adam; a history record per epoch (the
    validation MSE and Salt's, on the original scale, where there are validation doubles: they
    are scored after every epoch, for early stopping and the best epoch's weights)."""

    def __init__(self, net: PeperNet, *, scale: float, lr: float, weight_decay: float) -> None:
        super().__init__()
        self.net = net
        self.scale, self.lr, self.weight_decay = scale, lr, weight_decay
        self.history: list[dict[str, float]] = []
        self._record: dict[str, float] = {}

    def on_train_epoch_start(self) -> None:
        self._record = {"epoch": float(self.current_epoch)}

    def training_step(self, batch: Doubles, batch_idx: int) -> torch.Tensor:
        prof, ctx, resid, mask = batch
        return masked_mse(self.net(prof, ctx), resid, mask)

    def on_train_epoch_end(self) -> None:
        self.history.append(self._record)

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def validation_step(self, batch: Doubles, batch_idx: int) -> None:
        prof, ctx, resid, mask = batch
        val_mse = float(masked_mse(self.net(prof, ctx), resid, mask)) * self.scale**2
        self._record["val_mse"] = val_mse
        salt = torch.zeros_like(resid)  # Salt's residual is all of it
        self._record["val_salt_mse"] = float(masked_mse(salt, resid, mask)) * self.scale**2
        self.log(VAL_LOSS, torch.tensor(val_mse, dtype=torch.float64))


def _shuffled(data: Doubles, batch_size: int, gen: torch.Generator) -> Iterator[Doubles]:
    """One epoch's batches, in an order drawn from ``gen`` (seeded once per fit)."""
    perm = torch.randperm(len(data[0]), generator=gen)
    for start in range(0, len(perm), batch_size):
        batch = perm[start : start + batch_size]
        yield data[0][batch], data[1][batch], data[2][batch], data[3][batch]


def _whole(data: Doubles) -> Iterator[Doubles]:
    yield data


class PeperModel(PerturbationModel):
    """Peper: Salt's sum of the singles plus a correction learned on the doubles seen in training."""

    flags_fallback = True
    uses_trainer = True
    member_conditions = True
    param_rules: ClassVar[Mapping[str, Rule]] = {
        "width": WIDTH,
        "hidden": WIDTH,
        "epochs": COUNT,
        "batch_size": COUNT,
        "lr": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "val_fraction": FRACTION,
        "patience": NON_NEGATIVE,
        "seed": SEED,
    }
    memory_params = ("width", "hidden", "batch_size")

    def __init__(
        self,
        *,
        single_model: str | None = None,
        single_params: dict[str, Any] | None = None,
        width: int = 8,
        hidden: int = 32,
        epochs: int = 200,
        batch_size: int = 16,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        val_fraction: float = 0.2,
        patience: int = 30,
        seed: int = 0,
    ) -> None:
        self.single_model = single_model
        self.single_params = single_params
        self.width = width
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.patience = patience
        self.seed = seed

    # ---- fitting ------------------------------------------------------------------------------
    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        options = trainer or TrainerOptions()
        data = train.filter(pl.col(S.PERTURBATION).cast(pl.String) != S.CONTROL)
        if data.height == 0:
            raise LpmInputError(None, "peper: no perturbed training rows")
        self.readouts_ = sorted(data[S.READOUT].cast(pl.String).unique().to_list())
        self.conditions_ = ConditionKeys.of(train)
        keys, y = self.conditions_.profiles(data, self.readouts_)
        self.contexts_ = sorted({k[0] for k in keys})
        singles = [i for i, k in enumerate(keys) if not is_combination(k[1])]
        self.single_keys_ = [self.conditions_.single(keys[i]) for i in singles]
        self.singles_ = y[singles].astype(np.float32)
        self._index()
        finite = self.singles_[np.isfinite(self.singles_)]
        self.scale_ = float(finite.std()) if finite.size > 1 and finite.std() > 0 else 1.0
        doubles = self._examples(keys, y)
        val_doubles = (
            self._examples(*self.conditions_.profiles(val, self.readouts_))
            if val is not None and val.height
            else []
        )
        self.sub_model_ = None
        if self.single_model:
            from lpm.models.registry import make_model

            sub = make_model(self.single_model, self.single_params, seed=self.seed)
            self.sub_model_ = sub.fit(train, val)
        torch.manual_seed(self.seed)
        self.net_ = PeperNet(len(self.readouts_), len(self.contexts_), self.width, self.hidden)
        self.n_train_doubles_ = len(doubles)
        self.history_: list[dict[str, float]] = []
        if doubles:
            with one_torch_thread():
                self._train(doubles, val_doubles, options)
        else:
            log.warning(
                "peper: no training double has all its singles measured; every combination falls back to Salt"
            )

    def _index(self) -> None:
        self._single = {k: i for i, k in enumerate(self.single_keys_)}
        self._ctx = {c: i for i, c in enumerate(self.contexts_)}

    def _examples(self, keys: list[Key], y: np.ndarray) -> list[Double]:
        """Doubles whose members were all measured in the same context (at their doses):
        (context, the members' single keys, profile)."""
        out = []
        for k, mem, row in zip(keys, self.conditions_.member_keys(keys), y, strict=True):
            if is_combination(k[1]) and k[0] in self._ctx and all(m in self._single for m in mem):
                out.append((k[0], mem, row))
        return out

    def _tensors(self, examples: list[Double]) -> Doubles:
        width = max(len(mem) for _, mem, _ in examples)
        prof = np.zeros((len(examples), width, len(self.readouts_)), dtype=np.float32)
        for i, (_, mem, _) in enumerate(examples):
            for j, m in enumerate(mem):
                prof[i, j] = np.nan_to_num(self.singles_[self._single[m]])
        y = np.stack([e[2] for e in examples])
        ctx = torch.as_tensor([self._ctx[c] for c, _, _ in examples])
        salt = prof.sum(1)
        resid = (np.nan_to_num(y) - salt) / self.scale_
        mask = np.isfinite(y) & np.isfinite(prof.sum(1))
        return (
            torch.as_tensor(prof / self.scale_),
            ctx,
            torch.as_tensor(resid, dtype=torch.float32),
            torch.as_tensor(mask, dtype=torch.float32),
        )

    def _train(
        self,
        doubles: list[Double],
        val_doubles: list[Double],
        options: TrainerOptions,
    ) -> None:
        rng = np.random.default_rng(self.seed)
        if not val_doubles and len(doubles) >= 5 and self.val_fraction > 0:
            order = rng.permutation(len(doubles))
            n_val = max(1, round(self.val_fraction * len(doubles)))
            val_doubles = [doubles[i] for i in order[:n_val]]
            doubles = [doubles[i] for i in order[n_val:]]
        gen = torch.Generator().manual_seed(self.seed)
        data = {
            "train_dataloaders": loader(
                functools.partial(_shuffled, self._tensors(doubles), self.batch_size, gen)
            )
        }
        if val_doubles:
            data["val_dataloaders"] = loader(functools.partial(_whole, self._tensors(val_doubles)))
        module = PeperModule(
            self.net_, scale=self.scale_, lr=self.lr, weight_decay=self.weight_decay
        )
        trainer = build_trainer(
            options, max_epochs=self.epochs, validates=bool(val_doubles), patience=self.patience,
            keep_best=True,
        )  # fmt: skip
        run_fit(trainer, module, **data)
        self.history_ = module.history

    # ---- prediction ---------------------------------------------------------------------------
    def _member_profiles(
        self, rows: pl.DataFrame
    ) -> tuple[list[Key], list[list[Key]], dict[Key, np.ndarray], set[Key]]:
        """The conditions of ``rows``, their members' single keys, and each member's profile:
        measured, else from ``single_model``."""
        keys = list(dict.fromkeys(self.conditions_.row_keys(rows)))
        member_keys = self.conditions_.member_keys(keys)
        needed = {m for mem in member_keys for m in mem}
        profiles: dict[Key, np.ndarray] = {}
        predicted: set[Key] = set()
        missing = []
        for key in sorted(needed, key=lambda k: tuple(map(str, k))):
            if key in self._single:
                profiles[key] = self.singles_[self._single[key]]
            else:
                missing.append(key)
        if missing and self.sub_model_ is not None:
            query = self.conditions_.query(missing, self.readouts_)
            ok = self.sub_model_.supported(query)
            values = np.full(query.height, np.nan, dtype=np.float32)
            if ok.any():
                values[ok] = self.sub_model_.predict(query.filter(pl.Series(ok)))
            for i, key in enumerate(missing):
                block = values[i * len(self.readouts_) : (i + 1) * len(self.readouts_)]
                if np.isfinite(block).any():
                    profiles[key] = block
                    predicted.add(key)
        return keys, member_keys, profiles, predicted

    def _condition_values(self, rows: pl.DataFrame) -> tuple[list[Key], np.ndarray, np.ndarray]:
        """Full readout vectors per condition of rows, NaN where unpredictable, and the fallback flag."""
        keys, member_keys, profiles, predicted = self._member_profiles(rows)
        out = np.full((len(keys), len(self.readouts_)), np.nan, dtype=np.float32)
        fallback = np.zeros(len(keys), dtype=bool)
        to_correct = []
        for i, (key, mem) in enumerate(zip(keys, member_keys, strict=True)):
            if not mem or any(m not in profiles for m in mem):
                continue
            out[i] = np.sum([profiles[m] for m in mem], axis=0)
            if not is_combination(key[1]):
                continue
            if (
                self.n_train_doubles_
                and key[0] in self._ctx
                and not any(m in predicted for m in mem)
            ):
                to_correct.append(i)
            else:
                fallback[i] = True
        if to_correct:
            width = max(len(member_keys[i]) for i in to_correct)
            prof = np.zeros((len(to_correct), width, len(self.readouts_)), dtype=np.float32)
            for j, i in enumerate(to_correct):
                for k, m in enumerate(member_keys[i]):
                    prof[j, k] = np.nan_to_num(profiles[m])
            ctx = torch.as_tensor([self._ctx[keys[i][0]] for i in to_correct])
            self.net_.eval()
            with torch.no_grad(), one_torch_thread():
                corr = self.net_(torch.as_tensor(prof / self.scale_), ctx).numpy() * self.scale_
            out[to_correct] += corr
        return keys, out, fallback

    def _lookup(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        keys, values, fallback = self._condition_values(rows)
        k_index = {k: i for i, k in enumerate(keys)}
        r_index = {r: i for i, r in enumerate(self.readouts_)}
        cond = np.array([k_index[k] for k in self.conditions_.row_keys(rows)], dtype=np.int64)
        read = np.array(
            [r_index.get(r, -1) for r in rows[S.READOUT].cast(pl.String)], dtype=np.int64
        )
        v = np.where(read >= 0, values[cond, np.maximum(read, 0)], np.nan)
        return v, fallback[cond]

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        return np.isfinite(self._shared("lookup", rows, self._lookup)[0])

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        return self._shared("lookup", rows, self._lookup)[0]  # computed by the check

    def _fallback(self, rows: pl.DataFrame) -> np.ndarray:
        """Rows predicted by Salt's sum alone (a member unmeasured in the context, or nothing learned)."""
        return self._lookup(rows)[1]

    def _known(self) -> dict[str, set[str]]:
        return {
            S.CONTEXT: set(self.contexts_),
            S.READOUT: set(self.readouts_),
            S.PERTURBATION: {k[1] for k in self.single_keys_},
        }

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        arrays = network_arrays(self.net_)
        arrays["singles"] = self.singles_
        tables = {"single_keys": self.conditions_.table(self.single_keys_)}
        extra: dict[str, Any] = {
            "readouts": self.readouts_,
            "contexts": self.contexts_,
            "scale": self.scale_,
            "n_train_doubles": self.n_train_doubles_,
            "history": self.history_,
        }
        if self.conditions_.by != POOLED:  # models of pooled doses save as before
            extra["conditions"] = list(self.conditions_.by)
        if self.sub_model_ is not None:
            sub_arrays, sub_tables, sub_extra = self.sub_model_._get_state()
            arrays.update({f"single.{k}": v for k, v in sub_arrays.items()})
            tables.update({f"single.{k}": v for k, v in sub_tables.items()})
            extra["single"] = {"params": self.sub_model_.get_params(), "state": sub_extra}
        return arrays, tables, extra

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:

        self.readouts_ = list(extra["readouts"])
        self.contexts_ = list(extra["contexts"])
        self.scale_ = float(extra["scale"])
        self.n_train_doubles_ = int(extra["n_train_doubles"])
        self.history_ = list(extra["history"])
        self.singles_ = arrays["singles"]
        self.conditions_ = ConditionKeys(tuple(extra.get("conditions", POOLED)))
        self.single_keys_ = [tuple(k) for k in tables["single_keys"].iter_rows()]
        self._index()
        self.net_ = load_network_arrays(
            PeperNet(len(self.readouts_), len(self.contexts_), self.width, self.hidden), arrays
        )
        self.sub_model_ = None
        if "single" in extra and self.single_model:
            from lpm.models.registry import get_model_class

            sub = get_model_class(self.single_model)(**extra["single"]["params"])
            sub._set_state(
                {
                    k.removeprefix("single."): v
                    for k, v in arrays.items()
                    if k.startswith("single.")
                },
                {
                    k.removeprefix("single."): v
                    for k, v in tables.items()
                    if k.startswith("single.")
                },
                extra["single"]["state"],
            )
            self.sub_model_ = sub

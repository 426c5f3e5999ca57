"""The Large Perturbation Model behind the registry names ``lpm`` (exact) and ``lpm_fast``.

The estimator is a façade over Lightning's split: the network and its steps (``network``), the
data module over streaming rows (``datamodule``, ``batches``) and the Trainer, built by the
shared engine (:mod:`lpm.models.training`) from typed options that are not model parameters.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import lightning as L
import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.holdout import carve_validation
from lpm.data.symbols import PERTURBATION_TYPES
from lpm.models.base import PerturbationModel
from lpm.models.checkpoints import claim_checkpoints, release_checkpoints
from lpm.models.lpm.batches import StreamingRows, known_rows, profile_batches, row_batches
from lpm.models.lpm.datamodule import data_module
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
    Range,
    Rule,
)
from lpm.models.source import RowSource
from lpm.models.training import (
    VAL_LOSS,
    TrainerOptions,
    build_trainer,
    resume_epoch,
    run_fit,
)
from lpm.models.twoway import TwoWay, residual_sources
from lpm.priors.features import FeatureSource, parse_sources

if TYPE_CHECKING:
    from lpm.models.lpm.extend import Block, Extension
    from lpm.models.lpm.network import NetworkConfig

#: Hyper-parameters of the paper's presets (embedding, MLP widths, dropout, batch values, lr, decay).
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "lincs": {
        "embedding_dim": 128,
        "hidden": (256, 256),
        "dropout": 0.1,
        "batch_size": 1000,
        "lr": 2e-3,
        "decay": 0.97,
    },
    "replogle": {
        "embedding_dim": 32,
        "hidden": (512, 512),
        "dropout": 0.0,
        "batch_size": 5000,
        "lr": 2e-3,
        "decay": 0.99,
    },
}


#: What the network learns on top of: ``"none"`` (the values themselves, the published LPM) or
#: ``"twoway"`` (the standardised residual of the closed-form two-way part, ``lpm.models.twoway``).
BASES = ("none", "twoway")
#: The float32 step below 1: binary probabilities stay strictly between 0 and 1.
_TINY = float(np.finfo(np.float32).epsneg)
#: Fast mode's batch, in whole profiles (not in the preset's values): a profile costs one MLP
#: pass however many readouts it has, so a batch of 5,000 values would hold only two profiles
#: of a transcriptome and give the MLP two inputs per optimiser step.
FAST_BATCH_PROFILES = 128
#: Where the run options 0.1.0 saved among an LPM's parameters went (dropped when loading).
_RUN_OPTIONS = "a trainer option (lpm train --{flag}; TrainerOptions.{field})"


class LPMModel(PerturbationModel):
    """The Large Perturbation Model (exact mode): embeddings of P, R, C concatenated into an MLP."""

    FAST: ClassVar[bool] = False
    #: Defaults of ``max_epochs`` and ``patience``: exact mode is costly per epoch.
    MAX_EPOCHS: ClassVar[int] = 30
    PATIENCE: ClassVar[int] = 4

    streams = True
    gives_spread = True
    uses_trainer = True
    family = "lpm"
    resumes = True
    data_parallel = True
    #: Each member of a combination is embedded with its own dose (see ``network``).
    member_conditions = True
    param_rules: ClassVar[Mapping[str, Rule]] = {
        "preset": Choice(*PRESETS),
        "embedding_dim": WIDTH,
        "hidden": WIDTH,
        "dropout": FRACTION,
        "batch_size": COUNT,
        "batch_profiles": COUNT,
        "lr": POSITIVE,
        "decay": Range(0, 1, low_open=True),
        "weight_decay": NON_NEGATIVE,
        "combine": Choice("mean", "sum"),
        "feature_dropout": FRACTION,
        "feature_hidden": WIDTH,
        "anchor_controls": NON_NEGATIVE,
        "max_epochs": COUNT,
        "patience": NON_NEGATIVE,
        "ensemble": COUNT,
        "val_fraction": FRACTION,
        "seed": SEED,
        "base": Choice(*BASES),
    }
    memory_params = ("embedding_dim", "hidden", "batch_size", "batch_profiles")
    retired_params: ClassVar[Mapping[str, str]] = {
        name: _RUN_OPTIONS.format(flag=name.replace("_", "-"), field=name)
        for name in ("devices", "strategy", "accelerator", "checkpoint_dir", "progress")
    }

    def __init__(
        self,
        *,
        preset: str = "replogle",
        embedding_dim: int | None = None,
        hidden: list[int] | None = None,
        dropout: float | None = None,
        batch_size: int | None = None,
        batch_profiles: int | None = None,
        lr: float | None = None,
        decay: float | None = None,
        weight_decay: float = 1e-4,
        combine: str = "mean",
        perturbation_features: str | list[str] | None = None,
        context_features: str | list[str] | None = None,
        readout_features: str | list[str] | None = None,
        feature_dropout: float = 0.5,
        feature_hidden: int = 128,
        anchor_controls: int = 0,
        max_epochs: int | None = None,
        patience: int | None = None,
        ensemble: int = 1,
        val_fraction: float = 0.05,
        seed: int = 0,
        base: str = "none",
    ) -> None:
        self.preset = preset
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.dropout = dropout
        self.batch_size = batch_size
        self.batch_profiles = batch_profiles
        self.lr = lr
        self.decay = decay
        self.weight_decay = weight_decay
        self.combine = combine
        self.perturbation_features = perturbation_features
        self.context_features = context_features
        self.readout_features = readout_features
        self.feature_dropout = feature_dropout
        self.feature_hidden = feature_hidden
        self.anchor_controls = anchor_controls
        self.max_epochs = max_epochs
        self.patience = patience
        self.ensemble = ensemble
        self.val_fraction = val_fraction
        self.seed = seed
        self.base = base

    # ---- settings -----------------------------------------------------------------------------
    def resolved(self) -> dict[str, Any]:
        """Preset values with explicit parameters on top."""
        out = dict(PRESETS[self.preset])
        out.setdefault("batch_profiles", FAST_BATCH_PROFILES)
        for key in (
            "embedding_dim", "hidden", "dropout", "batch_size", "batch_profiles", "lr", "decay"
        ):  # fmt: skip
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["hidden"] = tuple(out["hidden"])
        return out

    def epochs(self) -> tuple[int, int]:
        """``max_epochs`` and ``patience``, the mode's defaults where not given."""
        return (
            self.max_epochs if self.max_epochs is not None else self.MAX_EPOCHS,
            self.patience if self.patience is not None else self.PATIENCE,
        )

    # ---- fitting ------------------------------------------------------------------------------
    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        """Early stopping on ``val``, or on a seeded ``val_fraction`` of the training profiles
        when no validation rows are given."""
        if (val is None or val.height == 0) and self.val_fraction > 0:
            train, val = carve_validation(train, fraction=self.val_fraction, seed=self.seed)
        self._fit_source(
            RowSource(frame=train),
            RowSource(frame=val) if val is not None and val.height else None,
            trainer,
        )

    def _fit_source(
        self, train: RowSource, val: RowSource | None, trainer: TrainerOptions | None
    ) -> None:
        """Train from chunked sources (a store's row groups stream; nothing needs all rows at
        once). Without ``val``, a store source gives up a seeded ``val_fraction`` of its rows
        (by hash, see ``RowHoldout``) for early stopping."""
        from lpm.models.lpm.extend import training_blocks

        options = trainer or TrainerOptions()
        if val is None and self.val_fraction > 0 and train.stores and train.holdout is None:
            train, val = train.split_holdout(seed=self.seed, fraction=self.val_fraction)
        twoway = None
        if self.base == "twoway":
            train, val, twoway = residual_sources(train, val, unseen_zero=self._featurised())
        vocab = Vocab.build(train)
        if self.anchor_controls and S.CONTROL not in vocab.perturbation_index:
            vocab = vocab.with_control()  # stores without control rows: anchored all the same
        sources = self.feature_sources()
        blocks = training_blocks(sources, vocab)
        members = any(s is not None and s.has_member_values() for s in (train, val))
        cfg = self._network_config(vocab, blocks, member_conditions=members)
        states, history = [], []
        with _checkpoint_folder(options, self._fingerprint(train, val, options)) as folder:
            for k in range(self.ensemble):
                state, record = self._fit_member(
                    k, train, val, vocab=vocab, cfg=cfg, blocks=blocks,
                    options=_member_options(options, k, self.ensemble),
                    folder=folder / f"member{k}" if folder is not None else None,
                )  # fmt: skip
                states.append(state)
                history.append(record)
        self.vocab_ = vocab
        self.network_config_ = cfg.to_dict()
        self.feature_sources_ = {k: [asdict(x) for x in v] for k, v in sources.items()}
        self.states_ = states
        self.history_ = history
        self.twoway_ = twoway

    def _network_config(
        self, vocab: Vocab, blocks: dict[str, list[Block]], *, member_conditions: bool = False
    ) -> NetworkConfig:
        from lpm.models.lpm.network import CONDITION_FEATURES, NetworkConfig

        hp = self.resolved()
        return NetworkConfig(
            n_contexts=len(vocab.contexts),
            n_readouts=len(vocab.readouts),
            n_members=len(vocab.members),
            embedding_dim=hp["embedding_dim"],
            hidden=hp["hidden"],
            dropout=hp["dropout"],
            fast=self.FAST,
            combine=self.combine,
            condition_features=CONDITION_FEATURES,
            features={k: [int(v.shape[1]) for v, _ in b] for k, b in blocks.items() if b},
            feature_hidden=self.feature_hidden,
            feature_dropout=self.feature_dropout,
            n_member_types=len(PERTURBATION_TYPES) if blocks.get("member") else 0,
            member_conditions=member_conditions,
        )

    def _fit_member(
        self,
        k: int,
        train: RowSource,
        val: RowSource | None,
        *,
        vocab: Vocab,
        cfg: NetworkConfig,
        blocks: dict[str, list[Block]],
        options: TrainerOptions,
        folder: Path | None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Ensemble member ``k`` (seed ``seed + k``): its best weights and its history record.
        With a checkpoint ``folder`` (a resumable run), resumes from ``folder/last.ckpt`` when an
        interrupted run left one; without, the best epoch's weights are kept in memory and no
        checkpoint is written (but the one ``options.best_checkpoint_dir`` asks for)."""
        from lpm.models.lpm.extend import fill_features
        from lpm.models.lpm.network import LPMModule

        hp = self.resolved()
        seed = self.seed + k
        L.seed_everything(seed, workers=True, verbose=False)
        val_set = None
        if val:
            val_set = known_rows(
                val, vocab, fast=self.FAST, batch_values=hp["batch_size"], seed=seed,
                member_conditions=cfg.member_conditions,
            )  # fmt: skip
        module = LPMModule(
            cfg.to_dict(),
            lr=hp["lr"],
            decay=hp["decay"],
            weight_decay=self.weight_decay,
            seed=seed,
            anchor_controls=self.anchor_controls,
            control_index=vocab.perturbation_index.get(S.CONTROL, -1),
        )
        fill_features(module.net, blocks, vocab)
        train_set = StreamingRows(
            train, vocab, fast=self.FAST, batch_values=hp["batch_size"],
            batch_profiles=hp["batch_profiles"], seed=seed,
            member_conditions=cfg.member_conditions,
        )  # fmt: skip
        max_epochs, patience = self.epochs()
        trainer = build_trainer(
            options, max_epochs=max_epochs, validates=val_set is not None, patience=patience,
            checkpoint_dir=folder, keep_best=folder is None,
        )  # fmt: skip
        last = folder / "last.ckpt" if folder is not None else None
        ckpt = str(last) if last is not None and last.is_file() else None
        first = resume_epoch(ckpt)
        if ckpt is not None:
            options.say(f"resuming from {last}: {first} of {max_epochs} epochs done (member {k})")
        t0 = time.perf_counter()
        run_fit(
            trainer, module, datamodule=data_module(train_set, val_set, first_epoch=first),
            ckpt_path=ckpt, resuming=ckpt is not None,
        )  # fmt: skip
        elapsed = time.perf_counter() - t0
        best = (  # only the first process keeps a model (and may delete the checkpoints)
            getattr(trainer.checkpoint_callback, "best_model_path", "")
            if folder is not None and val_set is not None and trainer.is_global_zero
            else ""
        )
        if best:
            module = LPMModule.load_from_checkpoint(best, weights_only=False)
        metrics = trainer.callback_metrics
        record = {
            "member": k,
            "seed": seed,
            "epochs": int(trainer.current_epoch),
            "seconds": elapsed,
            "train_values_per_epoch": train.n_rows,
            "val_loss": float(metrics[VAL_LOSS]) if VAL_LOSS in metrics else None,
        }
        return {n: t.detach().cpu().numpy() for n, t in module.net.state_dict().items()}, record

    # ---- prediction ---------------------------------------------------------------------------
    def feature_sources(self) -> dict[str, list[FeatureSource]]:
        """The feature sources of each table, from the parameters (before fit) or as fitted."""
        if hasattr(self, "feature_sources_"):
            return {k: [FeatureSource(**x) for x in v] for k, v in self.feature_sources_.items()}
        given = {
            "member": self.perturbation_features,
            "context": self.context_features,
            "readout": self.readout_features,
        }
        return {k: [FeatureSource.of(x, k) for x in parse_sources(v)] for k, v in given.items()}

    def _unseen(self, rows: pl.DataFrame) -> Extension:
        """Symbols of ``rows`` never seen in training that the feature sources can place (found
        once per prediction: its check and its networks share them)."""
        return self._shared("unseen", rows, self._extension)

    def _extension(self, rows: pl.DataFrame) -> Extension:
        from lpm.models.lpm.extend import Extension

        return Extension.of(self.vocab_, self.feature_sources(), rows)

    def _featurised(self) -> bool:
        """Whether perturbation features place perturbations never seen in training."""
        return bool(self.feature_sources().get("member"))

    def _base(self, rows: pl.DataFrame) -> tuple[np.ndarray, ...]:
        """``(cm + t, s)`` of each row under ``base="twoway"`` (NaN where absent)."""
        assert self.twoway_ is not None, "base='twoway' fits the two-way part first"
        cm, t, s = self.twoway_.parts(rows, unseen_zero=self._featurised())
        return cm + t, s

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        ok = self._unseen(rows).vocab.supported(rows)
        if getattr(self, "twoway_", None) is not None:
            ok &= ~np.isnan(self._shared("base", rows, self._base)[0])
        return ok

    def _known(self) -> dict[str, set[str]]:
        return self.vocab_.known()

    def _networks(self, extension: Extension | None = None) -> list[Any]:
        """Plain networks, one per ensemble member; featurised tables are reduced to vectors,
        with rows appended for the unseen symbols of ``extension``."""
        import torch

        from lpm.models.lpm.extend import bake
        from lpm.models.lpm.network import LPMNetwork, NetworkConfig

        cfg = NetworkConfig.from_dict(self.network_config_)
        nets = []
        for state in self.states_:
            net = LPMNetwork(cfg)
            net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
            net.eval()
            if cfg.features or extension is not None:
                net = bake(net, extension)
            nets.append(net)
        return nets

    @property
    def models_member_doses(self) -> bool:
        """Whether the fitted networks embed each member with its own dose."""
        return bool(self.network_config_.get("member_conditions", False))

    def baked_state(self, member: int = 0) -> dict[str, np.ndarray]:
        """Ensemble member ``member``'s weights with plain tables (``member.weight`` ...), the
        layout of a model without features; what embeddings are read from."""
        net = self._networks()[member]
        return {k: v.detach().numpy() for k, v in net.state_dict().items()}

    def predict_members(self, rows: pl.DataFrame) -> np.ndarray:
        """Predictions of every ensemble member (members × rows); binary rows as probabilities."""
        with self._one_call():
            self._check_predictable(rows)
            return self._members(rows)

    def _members(self, rows: pl.DataFrame) -> np.ndarray:
        """``predict_members`` of rows already checked."""
        import torch

        extension = self._unseen(rows)
        coded = code_rows(rows, extension.vocab, member_conditions=self.models_member_doses)
        out = np.zeros((len(self.states_), rows.height), dtype=np.float32)
        with torch.no_grad():
            for k, net in enumerate(self._networks(extension if extension.n_new else None)):
                if self.FAST:
                    for batch in profile_batches(coded, 512):
                        out[k, batch["row_index"].numpy()] = net.forward_rows(batch).numpy()
                else:
                    pos = 0
                    for batch in row_batches(coded, 65_536):
                        n = int(batch["value"].shape[0])
                        out[k, pos : pos + n] = net.forward_rows(batch).numpy()
                        pos += n
        binary = coded.binary
        if binary.any():
            from scipy.special import expit

            # a stable logistic (no overflow warning), kept inside (0, 1) in float32
            out[:, binary] = np.clip(expit(out[:, binary].astype(np.float64)), _TINY, 1.0 - _TINY)
        if getattr(self, "twoway_", None) is not None:  # the net predicts the standardised residual
            base, scale = self._shared("base", rows, self._base)
            out = (base + scale * out).astype(np.float32)
        return out

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        return self._members(rows).mean(axis=0)

    def _predict_with_spread(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and spread (standard deviation over members; 0 for a single model)."""
        members = self._members(rows)
        return members.mean(axis=0), members.std(axis=0)

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        arrays = {
            f"m{k}/{name}": np.asarray(v)
            for k, state in enumerate(self.states_)
            for name, v in state.items()
        }
        extra = {
            "network": self.network_config_,
            "history": self.history_,
            "members": len(self.states_),
            "feature_sources": self.feature_sources_,
        }
        tables = self.vocab_.to_tables()
        if self.twoway_ is not None:
            more, extra["twoway"] = self.twoway_.to_tables("twoway_")
            tables.update(more)
        return arrays, tables, extra

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.vocab_ = Vocab.from_tables(tables)
        self.network_config_ = dict(extra["network"])
        self.feature_sources_ = dict(extra.get("feature_sources", {}))
        self.history_ = list(extra["history"])
        self.twoway_ = (
            TwoWay.from_tables(tables, extra["twoway"], "twoway_")
            if self.base == "twoway"
            else None
        )
        self.states_ = [
            {name.split("/", 1)[1]: v for name, v in arrays.items() if name.startswith(f"m{k}/")}
            for k in range(int(extra["members"]))
        ]
        self._networks()  # arrays that do not fit the network config fail here, at load

    def _fingerprint(
        self, train: RowSource, val: RowSource | None, options: TrainerOptions
    ) -> dict[str, Any]:
        """What a checkpoint folder must match to be resumed: parameters, hardware and data."""
        params = {k: v for k, v in self.get_params().items() if k not in ("max_epochs", "patience")}
        params.update(
            devices=options.devices, strategy=options.strategy, accelerator=options.accelerator
        )
        return {
            "model": type(self).__name__,
            "params": json.loads(json.dumps(params, default=str)),
            "train": train.fingerprint(),
            "val": val.fingerprint() if val is not None else None,
        }


class LPMFastModel(LPMModel):
    """The LPM in fast mode: (perturbation, context) → hidden once, every readout by one matrix product."""

    FAST: ClassVar[bool] = True
    #: An epoch costs seconds, and whole-profile batches make the validation loss noisier.
    MAX_EPOCHS: ClassVar[int] = 100
    PATIENCE: ClassVar[int] = 8


def _member_options(options: TrainerOptions, k: int, ensemble: int) -> TrainerOptions:
    """The options of ensemble member ``k``: its kept checkpoint in a folder of its own."""
    if options.best_checkpoint_dir is None or ensemble == 1:
        return options
    return replace(options, best_checkpoint_dir=options.best_checkpoint_dir / f"member{k}")


@contextlib.contextmanager
def _checkpoint_folder(
    options: TrainerOptions, fingerprint: dict[str, Any]
) -> Iterator[Path | None]:
    """The run's checkpoint folder: the options' (claimed for this run; removed again if the run
    fails having created it and written nothing to resume), else none: a run that cannot
    resume writes no checkpoint per epoch (the best weights stay in memory)."""
    if options.checkpoint_dir is None:
        yield None
        return
    folder = options.checkpoint_dir
    created = claim_checkpoints(folder, fingerprint)
    try:
        yield folder
    except BaseException:
        release_checkpoints(folder, created=created)
        raise

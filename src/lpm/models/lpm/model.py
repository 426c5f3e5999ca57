"""The Large Perturbation Model behind the registry names ``lpm`` (exact) and ``lpm_fast``.

A ``fit`` façade builds the data module and the Lightning Trainer from typed settings; the
network and its steps live in ``_lpm_net``, the streaming data in ``_lpm_data``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.symbols import PERTURBATION_TYPES
from lpm.errors import LpmInputError
from lpm.models.base import PerturbationModel
from lpm.models.lpm.rows import (
    RowSource,
    StreamingRows,
    Vocab,
    code_rows,
    profile_batches,
    row_batches,
)
from lpm.priors.features import FeatureSource, parse_sources

if TYPE_CHECKING:
    from lpm.models.lpm.extend import Extension

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


#: The float32 step below 1: binary probabilities stay strictly between 0 and 1.
_TINY = float(np.finfo(np.float32).epsneg)
#: Fast mode's batch, in whole profiles (not in the preset's values): a profile costs one MLP
#: pass however many readouts it has, so a batch of 5,000 values would hold only two profiles
#: of a transcriptome and give the MLP two inputs per optimiser step.
FAST_BATCH_PROFILES = 128


@dataclass(frozen=True)
class TrainerSettings:
    """What the Lightning Trainer gets: hardware, epochs, stopping, checkpoints (typed, not a dict)."""

    max_epochs: int
    patience: int
    devices: int
    strategy: str
    accelerator: str
    checkpoint_dir: Path | None
    progress: bool


def _data_module(train: StreamingRows, val: StreamingRows | None, *, first_epoch: int) -> Any:
    """A Lightning data module over streaming rows (validation only when there is some).

    Lightning draws the first batch of a run (epoch 0, or the first epoch after a resume) while
    it sets up the loader, before ``on_train_epoch_start``; so the loader sets the epoch, rank
    and world size that batch needs itself. The loaders get their own random generator, so
    creating one leaves the global torch state (dropout) alone.
    """
    import lightning as L
    import torch
    from torch.utils.data import DataLoader

    class LPMDataModule(L.LightningDataModule):
        def __init__(self) -> None:
            super().__init__()
            self.train_set, self.val_set = train, val

        def set_epoch(self, epoch: int, *, rank: int, world_size: int) -> None:
            # training rows are shared out between data-parallel processes; every process
            # scores all validation rows (a share of a small set can be empty, losing val_loss)
            self.train_set.epoch, self.train_set.rank = epoch, rank
            self.train_set.world_size = world_size
            if self.val_set is not None:
                self.val_set.epoch = epoch

        def train_dataloader(self) -> DataLoader[Any]:
            trainer = self.trainer
            self.set_epoch(
                first_epoch,
                rank=trainer.global_rank if trainer is not None else 0,
                world_size=trainer.world_size if trainer is not None else 1,
            )
            return DataLoader(self.train_set, batch_size=None, generator=torch.Generator())

    if val is None:
        return LPMDataModule()
    val_rows: StreamingRows = val

    class LPMDataModuleWithVal(LPMDataModule):
        def val_dataloader(self) -> DataLoader[Any]:
            return DataLoader(val_rows, batch_size=None, generator=torch.Generator())

    return LPMDataModuleWithVal()


class LPMModel(PerturbationModel):
    """The Large Perturbation Model (exact mode): embeddings of P, R, C concatenated into an MLP."""

    FAST: ClassVar[bool] = False
    #: Defaults of ``max_epochs`` and ``patience``: exact mode is costly per epoch.
    MAX_EPOCHS: ClassVar[int] = 30
    PATIENCE: ClassVar[int] = 4

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
        devices: int = 1,
        strategy: str = "auto",
        accelerator: str = "cpu",
        checkpoint_dir: str | None = None,
        progress: bool = False,
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
        self.devices = devices
        self.strategy = strategy
        self.accelerator = accelerator
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress

    # ---- settings -----------------------------------------------------------------------------
    def resolved(self) -> dict[str, Any]:
        """Preset values with explicit parameters on top."""
        if self.preset not in PRESETS:
            raise LpmInputError(
                None, f"unknown LPM preset {self.preset!r}; available: {', '.join(PRESETS)}"
            )
        if self.combine not in ("mean", "sum"):
            raise LpmInputError(None, f"combine must be 'mean' or 'sum', got {self.combine!r}")
        out = dict(PRESETS[self.preset])
        out.setdefault("batch_profiles", FAST_BATCH_PROFILES)
        for key in (
            "embedding_dim", "hidden", "dropout", "batch_size", "batch_profiles", "lr", "decay"
        ):  # fmt: skip
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["hidden"] = tuple(out["hidden"])
        return out

    def trainer_settings(self) -> TrainerSettings:
        return TrainerSettings(
            max_epochs=self.max_epochs if self.max_epochs is not None else self.MAX_EPOCHS,
            patience=self.patience if self.patience is not None else self.PATIENCE,
            devices=self.devices,
            strategy=self.strategy,
            accelerator=self.accelerator,
            checkpoint_dir=Path(self.checkpoint_dir) if self.checkpoint_dir else None,
            progress=self.progress,
        )

    # ---- fitting ------------------------------------------------------------------------------
    def fit(self, train: pl.DataFrame, val: pl.DataFrame | None = None) -> Self:
        """Train on ``train``; early stopping on ``val``, or on a seeded ``val_fraction`` of the
        training profiles when no validation rows are given."""
        if (val is None or val.height == 0) and self.val_fraction > 0:
            train, val = _carve_validation(train, fraction=self.val_fraction, seed=self.seed)
        return self.fit_source(
            RowSource(frame=train), RowSource(frame=val) if val is not None and val.height else None
        )

    def fit_source(self, train: RowSource, val: RowSource | None = None) -> Self:
        """Train from chunked sources (a store's row groups stream; nothing needs all rows at once).

        Without ``val``, a store source gives up a seeded ``val_fraction`` of its rows (by hash,
        see ``RowHoldout``) for early stopping.
        """
        import tempfile

        import lightning as L

        from lpm.models.lpm.network import (
            CONDITION_FEATURES,
            LPMModule,
            LPMModuleWithValidation,
            NetworkConfig,
        )

        hp = self.resolved()
        if val is None and self.val_fraction > 0 and train.stores and train.holdout is None:
            train, val = train.split_holdout(seed=self.seed, fraction=self.val_fraction)
        vocab = Vocab.build(train)
        if self.anchor_controls < 0:
            raise LpmInputError(None, f"anchor_controls must be ≥ 0, got {self.anchor_controls}")
        if self.anchor_controls and S.CONTROL not in vocab.perturbation_index:
            vocab = vocab.with_control()  # stores without control rows: anchored all the same
        from lpm.models.lpm.extend import fill_features, training_blocks

        sources = self.feature_sources()
        blocks = training_blocks(sources, vocab)
        cfg = NetworkConfig(
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
        )
        settings = self.trainer_settings()
        states, history = [], []
        scratch = (
            tempfile.TemporaryDirectory(prefix="lpm-ckpt-")
            if settings.checkpoint_dir is None
            else None
        )
        ckpt_root = settings.checkpoint_dir or Path(scratch.name)  # type: ignore[union-attr]
        _claim_checkpoints(ckpt_root, self._fingerprint(train, val))
        for k in range(self.ensemble):
            seed = self.seed + k
            L.seed_everything(seed, workers=True, verbose=False)
            val_set = (
                _known_only(val, vocab, fast=self.FAST, batch_values=hp["batch_size"], seed=seed)
                if val
                else None
            )
            module_cls = LPMModuleWithValidation if val_set is not None else LPMModule
            module = module_cls(
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
                train,
                vocab,
                fast=self.FAST,
                batch_values=hp["batch_size"],
                batch_profiles=hp["batch_profiles"],
                seed=seed,
            )
            trainer, ckpt = _trainer(
                settings, ckpt_root / f"member{k}", has_val=val_set is not None
            )
            dm = _data_module(train_set, val_set, first_epoch=_resume_epoch(ckpt))
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                # lightning 2.6 calls a torch pytree API that torch 2.13 deprecates (not ours)
                warnings.filterwarnings(
                    "ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning
                )
                if ckpt is not None:  # resuming: the folder holds our own checkpoints on purpose
                    warnings.filterwarnings(
                        "ignore", message=r"Checkpoint directory .* exists and is not empty"
                    )
                trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
            elapsed = time.perf_counter() - t0
            best = (  # only the first process keeps a model (and may delete the checkpoints)
                getattr(trainer.checkpoint_callback, "best_model_path", "")
                if val_set is not None and trainer.is_global_zero
                else ""
            )
            if best:
                module = module_cls.load_from_checkpoint(best, weights_only=False)
            self.is_global_zero_ = bool(trainer.is_global_zero)
            states.append({n: t.detach().cpu().numpy() for n, t in module.net.state_dict().items()})
            history.append(
                {
                    "member": k,
                    "seed": seed,
                    "epochs": int(trainer.current_epoch),
                    "seconds": elapsed,
                    "train_values_per_epoch": train.n_rows,
                    "val_loss": float(trainer.callback_metrics["val_loss"])
                    if "val_loss" in trainer.callback_metrics
                    else None,
                }
            )
        if scratch is not None:
            scratch.cleanup()
        self.vocab_ = vocab
        self.network_config_ = cfg.to_dict()
        self.feature_sources_ = {k: [asdict(x) for x in v] for k, v in sources.items()}
        self.states_ = states
        self.history_ = history
        return self

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
        """Symbols of ``rows`` never seen in training that the feature sources can place."""
        if not hasattr(self, "_extensions"):
            self._extensions: dict[int, Extension] = {}
        key = hash(tuple(sorted(set(rows[S.PERTURBATION].unique().to_list()) | set(rows[S.CONTEXT].unique().to_list()) | set(rows[S.READOUT].unique().to_list()))))  # fmt: skip
        hit = self._extensions.get(key)
        if hit is None:
            from lpm.models.lpm.extend import Extension

            hit = Extension.of(self.vocab_, self.feature_sources(), rows)
            self._extensions = {key: hit}  # one entry: predict after supported reuses it
        return hit

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        v = self._unseen(rows).vocab
        members = set(v.members)
        ctx = rows[S.CONTEXT].is_in(v.contexts).to_numpy()
        read = rows[S.READOUT].is_in(v.readouts).to_numpy()
        uniq = rows[S.PERTURBATION].unique().to_list()
        known = {
            p for p in uniq if p in v.perturbation_index or all(m in members for m in _split(p))
        }
        pert = rows[S.PERTURBATION].is_in(list(known)).to_numpy()
        return ctx & read & pert

    def _known(self) -> dict[str, set[str]]:
        return {
            S.CONTEXT: set(self.vocab_.contexts),
            S.READOUT: set(self.vocab_.readouts),
            S.PERTURBATION: set(self.vocab_.perturbations),
        }

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

    def baked_state(self, member: int = 0) -> dict[str, np.ndarray]:
        """Ensemble member ``member``'s weights with plain tables (``member.weight`` ...), the
        layout of a model without features; what embeddings are read from."""
        net = self._networks()[member]
        return {k: v.detach().numpy() for k, v in net.state_dict().items()}

    def predict_members(self, rows: pl.DataFrame) -> np.ndarray:
        """Predictions of every ensemble member (members × rows); binary rows as probabilities."""
        import torch

        self._check_fitted()
        ok = self.supported(rows)
        if not ok.all():
            from lpm.models.base import unknown_symbols_error

            raise unknown_symbols_error(self, rows.filter(pl.Series(~ok)))
        extension = self._unseen(rows)
        coded = code_rows(rows, extension.vocab)
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
        return out

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        return self.predict_members(rows).mean(axis=0)

    def predict_with_spread(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and spread (standard deviation over members; 0 for a single model)."""
        members = self.predict_members(rows)
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
        return arrays, self.vocab_.to_tables(), extra

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.vocab_ = Vocab.from_tables(tables)
        self.network_config_ = dict(extra["network"])
        self.feature_sources_ = dict(extra.get("feature_sources", {}))
        self.history_ = list(extra["history"])
        self.states_ = [
            {name.split("/", 1)[1]: v for name, v in arrays.items() if name.startswith(f"m{k}/")}
            for k in range(int(extra["members"]))
        ]
        self.is_global_zero_ = True

    def _fingerprint(self, train: RowSource, val: RowSource | None) -> dict[str, Any]:
        """What a checkpoint folder must match to be resumed: parameters and training data."""
        ignored = {"checkpoint_dir", "progress", "max_epochs", "patience"}
        params = {k: v for k, v in self.get_params().items() if k not in ignored}
        return {
            "model": type(self).__name__,
            "params": json.loads(json.dumps(params, default=str)),
            "train": _source_fingerprint(train),
            "val": _source_fingerprint(val) if val is not None else None,
        }


def _source_fingerprint(source: RowSource) -> dict[str, Any]:
    if source.frame is not None:
        return {"rows": source.frame.height, "hash": int(source.frame.hash_rows(seed=0).sum())}
    holdout = source.holdout
    return {
        "stores": [s.meta.content_hash for s in source.stores],
        "holdout": None if holdout is None else [holdout.seed, holdout.fraction, holdout.held],
    }


#: Written into a checkpoint folder; a later run resumes from the folder only if it matches.
RUN_FILE = "run.json"


def _claim_checkpoints(folder: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse to resume from checkpoints of a different run (other data or parameters)."""
    marker = folder / RUN_FILE
    text = json.dumps(fingerprint, sort_keys=True, indent=1)
    if marker.is_file():
        if json.loads(marker.read_text()) != json.loads(text):
            raise LpmInputError(
                folder,
                "holds checkpoints of a different training run (other data or parameters); "
                "delete the folder or give another --checkpoint-dir",
            )
        return
    if folder.is_dir() and any(folder.rglob("*.ckpt")):
        raise LpmInputError(
            folder, f"holds checkpoints without {RUN_FILE}; delete it or choose another folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(f".{RUN_FILE}.{os.getpid()}")  # data-parallel ranks write alike
    tmp.write_text(text + "\n")
    tmp.replace(marker)


class LPMFastModel(LPMModel):
    """The LPM in fast mode: (perturbation, context) → hidden once, every readout by one matrix product."""

    FAST: ClassVar[bool] = True
    #: An epoch costs seconds, and whole-profile batches make the validation loss noisier.
    MAX_EPOCHS: ClassVar[int] = 100
    PATIENCE: ClassVar[int] = 8


def _carve_validation(
    rows: pl.DataFrame, *, fraction: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Hold out a seeded share of whole profiles for early stopping (none if that leaves no training)."""
    keys = [c for c in S.condition_columns(rows.columns) if c != S.REPLICATE]
    profiles = rows.select(keys).unique().sort(keys, nulls_last=True)
    n_val = round(fraction * profiles.height)
    if n_val == 0 or n_val >= profiles.height:
        return rows, None
    pick = np.random.default_rng([seed, 7]).choice(profiles.height, size=n_val, replace=False)
    held = profiles[np.sort(pick)]
    val = rows.join(held, on=keys, how="semi", nulls_equal=True)
    return rows.join(held, on=keys, how="anti", nulls_equal=True), val


def _split(symbol: str) -> list[str]:
    return [symbol] if symbol == S.CONTROL else symbol.split("+")


def _known_only(
    val: RowSource, vocab: Vocab, *, fast: bool, batch_values: int, seed: int
) -> StreamingRows | None:
    """Validation rows the model can score (symbols seen in training), in a fixed order."""
    frames = []
    for chunk in val:
        keep = chunk.filter(
            pl.col(S.CONTEXT).is_in(vocab.contexts)
            & pl.col(S.READOUT).is_in(vocab.readouts)
            & pl.col(S.PERTURBATION).is_in(vocab.perturbations)
        )
        if keep.height:
            frames.append(keep)
    if not frames:
        return None
    return StreamingRows(
        # stores of a joint run differ in columns (dose, time): missing ones become null
        RowSource(frame=pl.concat(frames, how="diagonal_relaxed")),
        vocab,
        fast=fast,
        batch_values=batch_values,
        seed=seed,
        shuffle=False,
    )


def _resume_epoch(ckpt: str | None) -> int:
    """The epoch a run resumed from ``ckpt`` trains first (checkpoints are written at epoch ends)."""
    if ckpt is None:
        return 0
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"]) + 1


def _trainer(settings: TrainerSettings, ckpt_dir: Path, *, has_val: bool) -> tuple[Any, str | None]:
    """A Lightning Trainer from typed settings; resumes from ``ckpt_dir/last.ckpt`` if present."""
    import logging

    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    if (
        not settings.progress
    ):  # Lightning's start-up chatter (accelerator, tips) only with progress on
        logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    callbacks: list[Any] = [
        ModelCheckpoint(
            dirpath=ckpt_dir,
            monitor="val_loss" if has_val else None,
            save_last=True,
            save_top_k=1,
            mode="min",
        )
    ]
    if has_val:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=settings.patience, mode="min"))
    trainer = L.Trainer(
        max_epochs=settings.max_epochs,
        accelerator=settings.accelerator,
        devices=settings.devices,
        strategy=settings.strategy,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=settings.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
        default_root_dir=str(ckpt_dir),
    )
    last = ckpt_dir / "last.ckpt"
    return trainer, (str(last) if last.is_file() else None)

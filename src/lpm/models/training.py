"""The one training engine of lpm's neural models (``lpm``, ``lpm_fast``, ``lpm_ame``, ``peper``,
``gene_graph``): typed trainer options, the Lightning Trainer built from them, and what every run
needs around it (an interrupt that stays an interrupt, the best epoch's weights, which process of
a data-parallel run may save).

Hardware and run options are not model parameters: a model saved on two GPUs loads and predicts
on a laptop, and its ``model.json`` does not say where it was trained. Lightning's split is kept:
each model has a LightningModule (network, loss, optimiser) and data loaders or a data module;
:func:`build_trainer` is the only place a ``Trainer`` is made.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lpm.errors import LpmInputError

#: Accelerators a run may ask for (Lightning's names).
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")
#: What the validation loop logs and early stopping, checkpoints and best weights follow.
VAL_LOSS = "val_loss"


def _strategies() -> tuple[str, ...]:
    from lightning.pytorch.strategies import StrategyRegistry

    return ("auto", *StrategyRegistry.available_strategies())


@dataclass(frozen=True)
class TrainerOptions:
    """Where and how a model trains: hardware, checkpoints, progress (never saved with a model).

    Parameters
    ----------
    devices
        Processes (CPU) or GPUs of a data-parallel run, at least 1.
    strategy
        Lightning strategy (``auto``, ``ddp``, ...).
    accelerator
        One of :data:`ACCELERATORS`.
    checkpoint_dir
        Where a model that resumes writes its checkpoints; an interrupted run started again
        with the same folder resumes there. None: no checkpoint files (the best epoch's weights
        are kept in memory).
    best_checkpoint_dir
        Where a fit writes the weights it keeps (the best epoch's by validation loss, else the
        last epoch's) as one weights-only checkpoint, ``best.ckpt``, when it ends: one write per
        fit, nothing to resume from (a benchmark's record of its fits). Not with
        ``checkpoint_dir``.
    progress
        Lightning's progress bar and start-up messages.
    report
        Called with one-line messages about the run (e.g. that it resumed, and from which epoch).
    callbacks
        Extra Lightning callbacks (e.g. a timer of a benchmark).
    """

    devices: int = 1
    strategy: str = "auto"
    accelerator: str = "cpu"
    checkpoint_dir: Path | None = None
    best_checkpoint_dir: Path | None = None
    progress: bool = False
    report: Callable[[str], None] | None = field(default=None, compare=False)
    callbacks: tuple[Any, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.devices, bool) or not isinstance(self.devices, int | np.integer):
            raise LpmInputError(None, f"devices must be a whole number ≥ 1, got {self.devices!r}")
        if self.devices < 1:
            raise LpmInputError(None, f"devices must be ≥ 1, got {self.devices}")
        if self.accelerator not in ACCELERATORS:
            raise LpmInputError(
                None,
                f"accelerator must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}",
            )
        if self.strategy not in (known := _strategies()):
            raise LpmInputError(
                None, f"strategy must be one of {', '.join(known)}, got {self.strategy!r}"
            )
        for name in ("checkpoint_dir", "best_checkpoint_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.checkpoint_dir is not None and self.best_checkpoint_dir is not None:
            raise LpmInputError(
                self.best_checkpoint_dir,
                "a resumable run (checkpoint_dir) keeps its own checkpoints: "
                "give checkpoint_dir or best_checkpoint_dir, not both",
            )

    def say(self, message: str) -> None:
        """Pass a message to ``report`` (first process only: one line per run, not per rank)."""
        if self.report is not None and is_global_zero():
            self.report(message)

    def single_cpu(self, model: str) -> TrainerOptions:
        """These options for a model that trains in one CPU process (``auto`` means the CPU)."""
        if self.devices != 1 or self.strategy not in ("auto", "single_device"):
            raise LpmInputError(
                None,
                f"model {model!r} trains in one process: it takes no --devices "
                f"{self.devices} / --strategy {self.strategy}",
            )
        if self.accelerator not in ("cpu", "auto"):
            raise LpmInputError(
                None,
                f"model {model!r} trains on the CPU: it takes no --accelerator {self.accelerator}",
            )
        return replace(self, accelerator="cpu", strategy="auto")


def build_trainer(
    options: TrainerOptions,
    *,
    max_epochs: int,
    validates: bool,
    patience: int | None = None,
    checkpoint_dir: Path | None = None,
    keep_best: bool = False,
    callbacks: Sequence[Any] = (),
) -> Any:
    """The Lightning Trainer of a fit: the options' hardware, ``max_epochs``, early stopping on
    the validation loss after ``patience`` epochs without improvement (when ``validates`` and a
    patience is given), the best epoch's weights kept in memory (when ``validates`` and
    ``keep_best``: :class:`BestState`, see :func:`best_state`) and checkpoints in
    ``checkpoint_dir`` (the best by validation loss and the last, to resume from) when one is
    given. With ``options.best_checkpoint_dir`` (and no ``checkpoint_dir``), the weights the fit
    keeps are written there once, as ``best.ckpt``, when it ends (:class:`SaveKept`). Runs are
    deterministic and quiet unless ``options.progress``."""
    if not options.progress:  # Lightning's start-up chatter (accelerator, tips)
        logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    best = [BestState()] if validates and keep_best else []
    every: list[Any] = [*best, *callbacks, *options.callbacks]
    if options.best_checkpoint_dir is not None and checkpoint_dir is None:
        every.insert(len(best), SaveKept(options.best_checkpoint_dir))  # after BestState's restore
    if checkpoint_dir is not None:
        every.append(
            ModelCheckpoint(
                dirpath=checkpoint_dir,
                monitor=VAL_LOSS if validates else None,
                save_last=True,
                save_top_k=1,
                mode="min",
            )
        )
    if validates and patience is not None:
        every.append(EarlyStopping(monitor=VAL_LOSS, patience=patience, mode="min"))
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator=options.accelerator,
        devices=options.devices,
        strategy=options.strategy,
        plugins=_checkpoint_io(options),
        callbacks=every,
        logger=False,
        enable_checkpointing=checkpoint_dir is not None,
        enable_progress_bar=options.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
        default_root_dir=str(checkpoint_dir) if checkpoint_dir is not None else None,
    )


def _checkpoint_io(options: TrainerOptions) -> list[Any] | None:
    """:class:`BesideCheckpointIO` where Lightning's plain checkpoint writer would be used
    (not for TPUs or strategies that write their own, sharded checkpoints)."""
    plain = options.strategy == "auto" or options.strategy.startswith(("ddp", "single_device"))
    return [BesideCheckpointIO()] if plain and options.accelerator != "tpu" else None


class BesideCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic beside the target: Lightning's own stages
    every checkpoint in the temporary folder (fsspec's transaction) and moves it into place,
    so each epoch's checkpoint passed through ``TMPDIR`` (a copy where that is another disk).
    Here it is written to a hidden file in its own folder and renamed."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("BesideCheckpointIO.save_checkpoint takes no storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


_MALLOC_TUNED = False


def keep_freed_memory() -> None:
    """On glibc, keep freed large blocks in the heap for reuse (once per process).

    A training step frees and re-allocates the same activation-sized blocks (10 MB each at
    batch 5,000 x 512 in the LPM; Adam's temporaries for a 19,000-gene table in gene_graph).
    By default glibc gives such blocks back to the kernel (it unmaps them or trims the heap),
    so the next step page-faults them in again: about a fifth of an exact-mode step on CPU. Serving blocks under 32 MiB from the heap and trimming it only
    above 256 MiB of free space keeps them warm (without it, glibc's adaptive threshold made
    gene_graph's Lightning fit take 3.3 or 5.5 s by chance). Other C libraries are left alone.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 256 << 20)
    except (OSError, AttributeError):
        pass


def run_fit(trainer: Any, module: Any, *, resuming: bool = False, **data: Any) -> None:
    """``trainer.fit(module, **data)``, with Ctrl-C kept a ``KeyboardInterrupt``.

    Lightning answers Ctrl-C by tearing the run down and calling ``sys.exit(1)`` with SIGINT
    ignored; here the run is torn down the same way and then interrupted, with Ctrl-C working
    again, so the caller can say what was kept. A module's ``validation_step`` is skipped,
    without Lightning's warning, in a fit given no validation data: one module class validates
    or not.
    """
    from lightning.pytorch.accelerators import CPUAccelerator

    if isinstance(trainer.accelerator, CPUAccelerator):
        keep_freed_memory()
    with warnings.catch_warnings():
        # lightning 2.6 calls a torch pytree API that torch 2.13 deprecates (not ours); loading
        # in-process is on purpose (batches are views of tensors made once)
        warnings.filterwarnings(
            "ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning
        )
        warnings.filterwarnings("ignore", message=r".*does not have many workers")
        warnings.filterwarnings(
            "ignore", message=r"You defined a `validation_step` but have no `val_dataloader`"
        )
        if resuming:  # the folder holds this run's own checkpoints on purpose
            warnings.filterwarnings(
                "ignore", message=r"Checkpoint directory .* exists and is not empty"
            )
        try:
            trainer.fit(module, **data)
        except SystemExit:
            if not trainer.interrupted:
                raise
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None


def resume_epoch(ckpt: str | None) -> int:
    """The epoch a run resumed from ``ckpt`` trains first (checkpoints are written at epoch ends)."""
    if ckpt is None:
        return 0
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"]) + 1


def is_global_zero() -> bool:
    """Whether this is the first process of the run (the only one that saves): Lightning's rank,
    set from the launcher's environment when a data-parallel process starts."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0)) == 0


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean squared error over the values ``mask`` marks (1: measured, 0: missing)."""
    return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1)


class BestState(L.Callback):
    """Keeps, in memory, the module's weights of the epoch with the lowest validation loss; at
    the end of the fit the module gets them back (no checkpoint files for small networks)."""

    def __init__(self) -> None:
        self.best_score = float("inf")
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        score = trainer.callback_metrics.get(VAL_LOSS)
        if score is not None and float(score) < self.best_score:
            self.best_score = float(score)
            self.best_epoch = int(trainer.current_epoch)
            # a copy on the CPU: a GPU's memory holds the network once, not twice
            self._state = {
                k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()
            }

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self._state is not None:
            pl_module.load_state_dict(self._state)


#: The file :class:`SaveKept` writes: the weights a fit keeps.
KEPT_CHECKPOINT = "best.ckpt"


class SaveKept(L.Callback):
    """Writes the module's weights, as the fit leaves them (the best epoch's where
    :class:`BestState` restored them), to ``folder/best.ckpt`` once, when the fit ends:
    one weights-only file per fit instead of a checkpoint per epoch."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def path(self) -> Path:
        return self.folder / KEPT_CHECKPOINT

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.interrupted:
            return
        if trainer.is_global_zero:
            self.folder.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(self.path, weights_only=True)  # every rank calls; rank 0 writes


def best_state(trainer: Any) -> BestState | None:
    """The :class:`BestState` of a trainer built with ``keep_best`` (None where it validates not)."""
    return next((c for c in trainer.callbacks if isinstance(c, BestState)), None)


class Batches(torch.utils.data.IterableDataset[Any]):
    """A loader's batches made afresh on every pass by ``make`` (its order drawn by the caller's
    seeded generator), for networks whose data are a few tensors already in memory."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make

    def __iter__(self) -> Any:
        yield from self.make()


def loader(make: Callable[[], Any]) -> Any:
    """A DataLoader over :class:`Batches` (batches are made by ``make``; no collation)."""
    return torch.utils.data.DataLoader(Batches(make), batch_size=None)

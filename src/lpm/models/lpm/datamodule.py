"""The LPM's LightningDataModule: loaders over streaming rows, one share per data-parallel process.

Lightning draws the first batch of a run (epoch 0, or the first epoch after a resume) while it
sets up the loader, before ``on_train_epoch_start``; so the loader sets the epoch, rank and world
size that batch needs itself. The loaders get their own random generator, so creating one leaves
the global torch state (dropout) alone.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from lpm.models.lpm.batches import StreamingRows


class LPMDataModule(L.LightningDataModule):
    """Training batches only (a fit without validation rows)."""

    def __init__(self, train: StreamingRows, *, first_epoch: int = 0) -> None:
        super().__init__()
        self.train_set = train
        self.first_epoch = first_epoch

    def set_epoch(self, epoch: int, *, rank: int, world_size: int) -> None:
        """Training rows are shared out between data-parallel processes."""
        self.train_set.epoch, self.train_set.rank = epoch, rank
        self.train_set.world_size = world_size

    def train_dataloader(self) -> DataLoader[Any]:
        trainer = self.trainer
        self.set_epoch(
            self.first_epoch,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )
        return DataLoader(self.train_set, batch_size=None, generator=torch.Generator())


class LPMDataModuleWithValidation(LPMDataModule):
    """The same, with validation batches: every process scores all validation rows (a share of
    a small set can be empty, losing ``val_loss``)."""

    def __init__(self, train: StreamingRows, val: StreamingRows, *, first_epoch: int = 0) -> None:
        super().__init__(train, first_epoch=first_epoch)
        self.val_set = val

    def set_epoch(self, epoch: int, *, rank: int, world_size: int) -> None:
        super().set_epoch(epoch, rank=rank, world_size=world_size)
        self.val_set.epoch = epoch

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val_set, batch_size=None, generator=torch.Generator())


def data_module(
    train: StreamingRows, val: StreamingRows | None, *, first_epoch: int = 0
) -> LPMDataModule:
    """The data module of a fit, with validation batches when there are validation rows."""
    if val is None:
        return LPMDataModule(train, first_epoch=first_epoch)
    return LPMDataModuleWithValidation(train, val, first_epoch=first_epoch)

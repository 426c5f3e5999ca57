"""The LPM's data module: a run's first batches are its own epoch and share."""

from __future__ import annotations

import pytest

from lpm.models.source import RowSource
from tests.conftest import boring_rows

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
from lpm.models.lpm.batches import StreamingRows  # noqa: E402
from lpm.models.lpm.datamodule import LPMDataModuleWithValidation, data_module  # noqa: E402
from lpm.models.lpm.vocab import Vocab  # noqa: E402


def test_a_run_first_batches_are_its_own_epoch_and_share() -> None:
    """Lightning draws a run's first batch before ``on_train_epoch_start``: the loader itself must
    give it the resumed epoch and this process's share, and leave the global RNG (dropout) alone;
    validation is scored whole by every process (a share of a small set can be empty)."""
    from types import SimpleNamespace

    rows = boring_rows()
    train, val = RowSource(frame=rows), RowSource(frame=rows.head(24))
    vocab = Vocab.build(train)

    def stream(source: RowSource, *, shuffle: bool = True) -> StreamingRows:
        return StreamingRows(source, vocab, fast=False, batch_values=64, seed=0, shuffle=shuffle)

    dm = data_module(stream(train), stream(val, shuffle=False), first_epoch=3)
    assert isinstance(dm, LPMDataModuleWithValidation)
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2)  # type: ignore[assignment]
    rng = torch.random.get_rng_state()
    got = [b["value"] for b in dm.train_dataloader()]
    assert torch.equal(torch.random.get_rng_state(), rng)
    expected = stream(train)
    expected.epoch, expected.rank, expected.world_size = 3, 1, 2
    want = [b["value"] for b in expected]
    assert sum(len(v) for v in got) == rows.height // 2
    assert len(got) == len(want) and all(map(torch.equal, got, want))
    dm.set_epoch(4, rank=1, world_size=2)  # what a DDP rank 1 sees
    assert sum(len(b["value"]) for b in dm.val_dataloader()) == 24


def test_without_validation_rows_the_module_has_no_validation_loader() -> None:
    """Lightning validates when a data module defines ``val_dataloader``: one without
    validation rows must not (it would warn, and a warning is an error here)."""
    rows = boring_rows()
    source = RowSource(frame=rows)
    stream = StreamingRows(source, Vocab.build(source), fast=True, batch_values=64, seed=0)
    from lightning.pytorch.utilities.model_helpers import is_overridden

    assert not is_overridden("val_dataloader", data_module(stream, None))
    assert is_overridden("val_dataloader", data_module(stream, stream))

"""The training engine: typed trainer options, the Trainer built from them, Ctrl-C kept an
interrupt, the best epoch's weights kept in memory, and which process saves."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.data.holdout import carve_validation
from lpm.errors import LpmInputError

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")
from lpm.models.training import (  # noqa: E402
    BestState,
    TrainerOptions,
    best_state,
    build_trainer,
    is_global_zero,
    loader,
    run_fit,
)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"devices": 0}, r"devices must be ≥ 1, got 0"),
        ({"devices": "2"}, r"devices must be a whole number ≥ 1, got '2'"),
        ({"devices": True}, r"devices must be a whole number"),
        ({"accelerator": "tpuu"}, r"accelerator must be one of cpu, gpu, cuda, mps, tpu, auto"),
        ({"strategy": "ddpp"}, r"strategy must be one of auto, .*ddp"),
    ],
)
def test_trainer_options_are_checked_when_made(options: dict[str, Any], message: str) -> None:
    with pytest.raises(LpmInputError, match=message):
        TrainerOptions(**options)


def test_trainer_options_take_a_folder_as_text() -> None:
    assert TrainerOptions(checkpoint_dir="ck").checkpoint_dir == Path("ck")  # type: ignore[arg-type]


def test_the_trainer_has_the_asked_callbacks(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    def kinds(trainer: Any) -> set[type]:
        return {
            type(c) for c in trainer.callbacks if isinstance(c, EarlyStopping | ModelCheckpoint)
        }

    plain = build_trainer(TrainerOptions(), max_epochs=3, validates=False)
    assert kinds(plain) == set() and plain.max_epochs == 3
    stopping = build_trainer(TrainerOptions(), max_epochs=3, validates=True, patience=2)
    assert kinds(stopping) == {EarlyStopping}
    saving = build_trainer(
        TrainerOptions(), max_epochs=3, validates=True, patience=2, checkpoint_dir=tmp_path
    )
    assert kinds(saving) == {EarlyStopping, ModelCheckpoint}


class _Scripted(L.LightningModule):
    """A one-weight module whose validation loss per epoch is scripted."""

    def __init__(self, losses: list[float], *, interrupt_at: int | None = None) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.losses, self.interrupt_at = losses, interrupt_at

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.current_epoch == self.interrupt_at:
            raise KeyboardInterrupt
        return (self.w - 1.0).pow(2).sum()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self.losses[self.current_epoch])

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _batches() -> list[Any]:
    return [torch.zeros(1)]


def test_best_state_gives_the_module_its_best_epochs_weights() -> None:
    module, best = _Scripted([3.0, 1.0, 2.0]), BestState()
    weights: list[float] = []

    class Record(L.Callback):
        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            weights.append(float(pl_module.w.detach()))

    trainer = build_trainer(
        TrainerOptions(), max_epochs=3, validates=True, callbacks=[best, Record()]
    )
    run_fit(trainer, module, train_dataloaders=loader(_batches), val_dataloaders=loader(_batches))
    assert best.best_epoch == 1 and best.best_score == 1.0
    assert float(module.w.detach()) == weights[1] != weights[2]


def test_keep_best_keeps_the_best_epoch_only_where_the_fit_validates() -> None:
    trainer = build_trainer(TrainerOptions(), max_epochs=3, validates=True, keep_best=True)
    module = _Scripted([3.0, 1.0, 2.0])
    run_fit(trainer, module, train_dataloaders=loader(_batches), val_dataloaders=loader(_batches))
    best = best_state(trainer)
    assert best is not None and best.best_epoch == 1
    # the same module without validation data: no validation, no warning (warnings fail here)
    trainer = build_trainer(TrainerOptions(), max_epochs=2, validates=False, keep_best=True)
    assert best_state(trainer) is None
    run_fit(trainer, _Scripted([3.0, 1.0]), train_dataloaders=loader(_batches))


def test_ctrl_c_stays_an_interrupt_and_ctrl_c_works_again() -> None:
    trainer = build_trainer(TrainerOptions(), max_epochs=3, validates=False)
    with pytest.raises(KeyboardInterrupt):
        run_fit(
            trainer,
            _Scripted([0.0] * 3, interrupt_at=1),
            train_dataloaders=loader(_batches),
            val_dataloaders=loader(_batches),
        )
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_first_process_is_rank_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    assert is_global_zero()
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    assert not is_global_zero()


def test_reports_come_from_the_first_process_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    said: list[str] = []
    options = TrainerOptions(report=said.append)
    options.say("one")
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    options.say("two")
    assert said == ["one"]


def test_validation_carve_holds_out_whole_profiles_by_seed() -> None:
    rows = pl.DataFrame(
        {
            "context": ["A"] * 40,
            "perturbation": [f"P{i // 4}" for i in range(40)],
            "readout": [f"R{i % 4}" for i in range(40)],
            "value": np.arange(40.0),
        }
    )
    train, val = carve_validation(rows, fraction=0.2, seed=0)
    assert val is not None and val.height == 8 and train.height == 32
    assert set(val["perturbation"]).isdisjoint(train["perturbation"])
    again, _ = carve_validation(rows, fraction=0.2, seed=0)
    assert again.equals(train)
    assert carve_validation(rows, fraction=0.0, seed=0)[1] is None


def _no_temp_files(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> list[str]:
    """Record files and folders made in the temporary folder (now ``tmp``)."""
    import tempfile

    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    made: list[str] = []
    for name in ("mkstemp", "mkdtemp"):
        real = getattr(tempfile, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            out = _real(*args, **kwargs)
            made.append(str(out))
            return out

        monkeypatch.setattr(tempfile, name, spy)
    return made


def test_the_kept_weights_are_written_once_beside_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``best_checkpoint_dir``: one weights-only file of the best epoch, written when the fit
    ends, and nothing staged in the temporary folder."""
    made = _no_temp_files(monkeypatch, tmp_path / "tmp")
    folder = tmp_path / "kept"
    saves: list[int] = []
    options = TrainerOptions(best_checkpoint_dir=folder)
    trainer = build_trainer(options, max_epochs=3, validates=True, keep_best=True)
    real_save = trainer.save_checkpoint
    monkeypatch.setattr(
        trainer, "save_checkpoint", lambda *a, **k: (saves.append(1), real_save(*a, **k))
    )
    module = _Scripted([3.0, 1.0, 2.0])
    run_fit(trainer, module, train_dataloaders=loader(_batches), val_dataloaders=loader(_batches))
    assert [p.name for p in folder.iterdir()] == ["best.ckpt"] and len(saves) == 1
    kept = torch.load(folder / "best.ckpt", weights_only=False)
    assert "optimizer_states" not in kept
    assert float(kept["state_dict"]["w"]) == float(module.w.detach())  # the best epoch's
    assert made == []


def test_resumable_checkpoints_are_not_staged_in_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning stages each checkpoint in TMPDIR and moves it; here it is written beside."""
    made = _no_temp_files(monkeypatch, tmp_path / "tmp")
    trainer = build_trainer(
        TrainerOptions(), max_epochs=3, validates=True, checkpoint_dir=tmp_path / "ck"
    )
    module = _Scripted([3.0, 1.0, 2.0])
    run_fit(trainer, module, train_dataloaders=loader(_batches), val_dataloaders=loader(_batches))
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert "last.ckpt" in names and len(names) == 2 and made == []


def test_resumable_and_kept_checkpoints_are_exclusive() -> None:
    with pytest.raises(LpmInputError, match="give checkpoint_dir or best_checkpoint_dir, not both"):
        TrainerOptions(checkpoint_dir=Path("a"), best_checkpoint_dir=Path("b"))

"""Train as the CLI does it: read stores, fit a registered model, save it with its record.

Hardware and run options (devices, strategy, accelerator, checkpoints) go to the training
engine as :class:`~lpm.models.training.TrainerOptions`, never into the model's parameters. A
resumable model writes its checkpoints to ``OUT.checkpoints`` unless given another folder; a
finished run removes that default folder, an interrupted one keeps it to resume from, and a run
that wrote no checkpoint leaves nothing that could block the next one.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lpm._utils.atomic import check_output
from lpm.data.splits import make_split
from lpm.data.store import open_store, read_stores
from lpm.errors import Interrupted, LpmInputError
from lpm.models.base import PerturbationModel
from lpm.models.checkpoints import has_checkpoints
from lpm.models.registry import get_model_class, make_model
from lpm.models.source import RowSource

if TYPE_CHECKING:
    from lpm.models.training import TrainerOptions

TRAINING_FILE = "training.json"
#: Suffix of the default checkpoint folder beside the output (``OUT.checkpoints``).
CHECKPOINTS_SUFFIX = ".checkpoints"


def feature_params(model: str, features: Mapping[str, Any] | None) -> dict[str, Any]:
    """The featurised-LPM options given (``perturbation_features``, ``context_features``,
    ``readout_features``, ``anchor_controls``; None = not given) as parameters of ``model``;
    a model that takes none of them is refused naming the options."""
    given = {k: v for k, v in (features or {}).items() if v is not None}
    unsupported = sorted(set(given) - set(get_model_class(model).param_names()))
    if unsupported:
        flags = ", ".join("--" + k.replace("_", "-") for k in unsupported)
        raise LpmInputError(None, f"model {model!r} takes no {flags}")
    return given


def train_model(
    stores: Sequence[str | Path],
    *,
    model: str,
    out: str | Path,
    params: Mapping[str, Any] | None = None,
    split: str | None = None,
    seed: int = 0,
    split_params: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    devices: int | None = None,
    strategy: str | None = None,
    accelerator: str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    features: Mapping[str, Any] | None = None,
) -> PerturbationModel:
    """Fit ``model`` on the stores (or on a split's training part) and save it to ``out``.

    ``seed`` seeds the split and the model (unless ``params`` give the model one). Models that
    stream (the LPM) read the stores row group by row group when no split is asked for; a split
    needs the rows in memory to be drawn. In a data-parallel run every process executes this,
    and only the first saves. ``progress`` receives one-line messages (e.g. a resumed run says
    from which epoch). Ctrl-C raises :class:`~lpm.errors.Interrupted`, saying whether a
    checkpoint was kept to resume from.
    """
    out = Path(out)
    check_output(out, kind="folder", overwrite=overwrite)
    params = {**dict(params or {}), **feature_params(model, features)}
    estimator = make_model(model, params, seed=seed)
    hardware = {"devices": devices, "strategy": strategy, "accelerator": accelerator}
    options = _trainer_options(
        estimator,
        out,
        {k: v for k, v in hardware.items() if v is not None},
        checkpoint_dir,
        progress,
    )
    try:
        n_rows = _fit(
            estimator, stores, split=split, seed=seed, split_params=split_params, trainer=options
        )
    except KeyboardInterrupt:
        folder = options.checkpoint_dir if options is not None else None
        if folder is not None and has_checkpoints(folder):
            raise Interrupted(f"interrupted; checkpoint kept at {folder}") from None
        raise Interrupted("interrupted; nothing written") from None
    if not is_first_process():
        return estimator
    record = {
        "stores": [str(p) for p in stores],
        "model": model,
        "params": {
            k: v for k, v in estimator.get_params().items() if k in {*(params or {}), "seed"}
        },
        "trainer": _trainer_record(options),
        "split": split,
        "seed": seed,
        "split_params": dict(split_params or {}),
        "rows": n_rows,
    }
    files = {TRAINING_FILE: json.dumps(record, indent=2, default=str) + "\n"}
    estimator.save(out, overwrite=overwrite, files=files)
    if options is not None and checkpoint_dir is None and options.checkpoint_dir is not None:
        shutil.rmtree(options.checkpoint_dir, ignore_errors=True)  # finished: nothing to resume
    return estimator


def _trainer_options(
    estimator: PerturbationModel,
    out: Path,
    hardware: dict[str, Any],
    checkpoint_dir: str | Path | None,
    progress: Callable[[str], None] | None,
) -> TrainerOptions | None:
    """The engine's options for a model it trains (checked against what the model can use);
    hardware options for any other model are refused."""
    if not estimator.uses_trainer:
        given = [*hardware, *(["checkpoint_dir"] if checkpoint_dir is not None else [])]
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise LpmInputError(
                None,
                f"model {estimator.label!r} is not trained by the Lightning engine: it takes no {flags}",
            )
        return None
    from lpm.models.training import TrainerOptions

    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is None and estimator.resumes:
        folder = out.with_name(out.name + CHECKPOINTS_SUFFIX)
    options = TrainerOptions(**hardware, checkpoint_dir=folder, report=progress)
    return estimator.check_trainer(options)


def _fit(
    estimator: PerturbationModel,
    stores: Sequence[str | Path],
    *,
    split: str | None,
    seed: int,
    split_params: Mapping[str, Any] | None,
    trainer: TrainerOptions | None,
) -> int:
    """Fit ``estimator`` as asked; returns how many rows the stores hold."""
    if split:
        rows = read_stores(stores)
        parts = make_split(rows, kind=split, seed=seed, **dict(split_params or {}))
        estimator.fit(parts.train, parts.val, trainer=trainer)
        return rows.height
    if estimator.streams:
        handles = [open_store(p) for p in stores]
        estimator.fit_source(RowSource(stores=handles), trainer=trainer)
        return sum(h.n_rows for h in handles)
    rows = read_stores(stores)
    estimator.fit(rows, trainer=trainer)
    return rows.height


def is_first_process() -> bool:
    """Whether this process saves: the only one, or the first of a data-parallel run (a run
    that never loaded the training engine has one process)."""
    if "lightning" not in sys.modules:
        return True
    from lpm.models.training import is_global_zero

    return is_global_zero()


def _trainer_record(options: TrainerOptions | None) -> dict[str, Any] | None:
    if options is None:
        return None
    return {
        "devices": options.devices,
        "strategy": options.strategy,
        "accelerator": options.accelerator,
        "checkpoint_dir": str(options.checkpoint_dir) if options.checkpoint_dir else None,
    }

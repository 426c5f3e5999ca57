"""The discovery part of ``lpm demo``: embeddings, mechanisms, gene networks and explanations of
an LPM trained on a simulated world, each scored against the world's ground truth.

The same runs as ``lpm embed``, ``lpm moa``, ``lpm grn`` and ``lpm explain``, into one folder;
:func:`lpm.reports.discovery.discovery_section` turns the written tables into the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from lpm._utils.atomic import check_output
from lpm.reports.discovery import RUN_FILE

#: The demo's LPM: fast mode, few epochs (early stopping may end it sooner).
DISCOVERY_MODEL: Final = "lpm_fast"
DISCOVERY_PARAMS: Final[dict[str, Any]] = {"max_epochs": 30}
#: The demo's attentive mixture of experts (``lpm explain``'s trained form).
AME_PARAMS: Final[dict[str, Any]] = {"max_epochs": 20}


@contextlib.contextmanager
def folder_in_place(target: Path, *, overwrite: bool) -> Iterator[Path]:
    """Build the folder ``target`` where it will stay, whole or not at all.

    The demo's outputs record their own paths (stores, truth, model folders), so they cannot be
    built under a temporary name and renamed as :func:`lpm._utils.atomic.atomic_dir` does. An
    existing ``target`` is refused without ``overwrite`` (before any work); with it, it is set
    aside and put back if the build fails. A failed build leaves nothing of its own.
    """
    target = check_output(Path(target), kind="folder", overwrite=overwrite)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, old / "old")
    try:
        target.mkdir(parents=True)
        yield target
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        if old is not None:
            os.replace(old / "old", target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def run_discovery(
    store: Path,
    truth: Path,
    out: Path,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Train an LPM on ``store`` and run the four discovery tasks into the folder ``out``.

    ``out`` gets ``model/``, ``embeddings*.h5ad`` and ``embeddings.png``, ``moa/``, ``grn/``,
    ``explain/`` (each as its command writes it) and ``discovery.json`` (model, seed, seconds,
    layout), scored against the simulation truth folder ``truth``.
    """
    from lpm.runs.embed import write_embeddings
    from lpm.runs.explain import run_explain
    from lpm.runs.grn import run_grn
    from lpm.runs.moa import run_moa
    from lpm.runs.train import train_model

    say = progress or (lambda _: None)
    with folder_in_place(Path(out), overwrite=overwrite) as out:
        t0 = time.perf_counter()
        say(f"discovery: training {DISCOVERY_MODEL} on the whole simulated store")
        model = train_model(
            [store],
            model=DISCOVERY_MODEL,
            out=out / "model",
            params={**DISCOVERY_PARAMS, "seed": seed},
        )
        say("discovery: embeddings (UMAP)")
        emb = write_embeddings(
            model, out / "embeddings.h5ad", truth=truth, figure=out / "embeddings.png", seed=seed
        )
        say("discovery: mechanisms of action")
        run_moa(store, out=out / "moa", model=model, truth=truth)
        say("discovery: gene networks")
        run_grn(store, out=out / "grn", method="all", model=model, reference=truth, seed=seed)
        say("discovery: which input drives a prediction")
        run_explain(
            store,
            out=out / "explain",
            truth=truth,
            seed=seed,
            lpm_params=DISCOVERY_PARAMS,
            ame_params=AME_PARAMS,
        )
        record = {
            "model": DISCOVERY_MODEL,
            "params": DISCOVERY_PARAMS,
            "ame_params": AME_PARAMS,
            "seed": seed,
            "seconds": time.perf_counter() - t0,
            "layout": emb.layout,
        }
        (out / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return out


__all__ = ["AME_PARAMS", "DISCOVERY_MODEL", "DISCOVERY_PARAMS", "folder_in_place", "run_discovery"]

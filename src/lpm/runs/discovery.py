"""The discovery part of ``lpm demo``: embeddings, mechanisms, gene networks and explanations of
an LPM trained on a simulated world, each scored against the world's ground truth.

The same runs as ``lpm embed``, ``lpm moa``, ``lpm grn`` and ``lpm explain``, into one folder;
:func:`lpm.reports.discovery.discovery_section` turns the written tables into the report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from lpm._utils.atomic import building_dir
from lpm.reports.discovery import RUN_FILE

#: The demo's LPM: fast mode, few epochs (early stopping may end it sooner).
DISCOVERY_MODEL: Final = "lpm_fast"
DISCOVERY_PARAMS: Final[dict[str, Any]] = {"max_epochs": 30}
#: The demo's attentive mixture of experts (``lpm explain``'s trained form).
AME_PARAMS: Final[dict[str, Any]] = {"max_epochs": 20}
#: The folder built in place, whole or not at all (its earlier name here).
folder_in_place = building_dir


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
    layout), scored against the simulation truth folder ``truth``. It is built whole or not at
    all (:func:`lpm._utils.atomic.building_dir`): refused before any work if it exists, unless
    ``overwrite``.
    """
    with building_dir(Path(out), overwrite=overwrite) as folder:
        discover(store, truth, folder, seed=seed, progress=progress)
    return folder


def discover(
    store: Path,
    truth: Path,
    out: Path,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """:func:`run_discovery` into ``out`` inside a folder its caller builds whole (the demo's):
    ``out`` is made if missing and written without further checks."""
    from lpm.runs.embed import write_embeddings
    from lpm.runs.explain import run_explain
    from lpm.runs.grn import run_grn
    from lpm.runs.moa import run_moa
    from lpm.runs.train import train_model

    say = progress or (lambda _: None)
    out = Path(out)
    out.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    say(f"discovery: training {DISCOVERY_MODEL} on the whole simulated store")
    model = train_model(
        [store], model=DISCOVERY_MODEL, out=out / "model", params={**DISCOVERY_PARAMS, "seed": seed}
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


__all__ = [
    "AME_PARAMS",
    "DISCOVERY_MODEL",
    "DISCOVERY_PARAMS",
    "discover",
    "folder_in_place",
    "run_discovery",
]

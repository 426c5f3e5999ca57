"""Checkpoint folders of resumable fits: a folder belongs to one training run (its data and
parameters, written in ``run.json``); a run started again with the same folder resumes there,
another run is refused, and a folder with nothing to resume never blocks a run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from lpm.errors import LpmInputError

#: Written into a checkpoint folder; a later run resumes from the folder only if it matches.
RUN_FILE = "run.json"


def has_checkpoints(folder: Path) -> bool:
    """Whether ``folder`` holds a checkpoint a run could resume from."""
    return folder.is_dir() and any(folder.rglob("*.ckpt"))


def _recorded(marker: Path) -> Any:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def claim_checkpoints(folder: Path, fingerprint: dict[str, Any]) -> bool:
    """Make ``folder`` the checkpoint folder of the run ``fingerprint`` describes; returns
    whether this run created it.

    A folder holding checkpoints of another run (other data or parameters), or checkpoints
    without ``run.json``, is refused: resuming from it would silently train something else. A
    folder holding no checkpoint yet (a run that failed before its first epoch ended) has
    nothing to resume and is taken over.
    """
    marker = folder / RUN_FILE
    text = json.dumps(fingerprint, sort_keys=True, indent=1)
    if has_checkpoints(folder):
        if not marker.is_file():
            raise LpmInputError(
                folder, f"holds checkpoints without {RUN_FILE}; delete it or choose another folder"
            )
        if _recorded(marker) != json.loads(text):
            raise LpmInputError(
                folder,
                "holds checkpoints of a different training run (other data or parameters); "
                "delete the folder or give another --checkpoint-dir",
            )
        return False
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(f".{RUN_FILE}.{os.getpid()}")  # data-parallel ranks write alike
    tmp.write_text(text + "\n")
    tmp.replace(marker)
    return created


def release_checkpoints(folder: Path, *, created: bool) -> None:
    """After a failed fit: remove the folder this run created if it holds nothing to resume."""
    if created and folder.is_dir() and not has_checkpoints(folder):
        shutil.rmtree(folder, ignore_errors=True)

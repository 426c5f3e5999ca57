"""Checkpoint folders: resumed only by the run that wrote them, taken over when they hold
nothing to resume, removed after a failure when the failed run created them empty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lpm.errors import LpmInputError
from lpm.models.checkpoints import RUN_FILE, claim_checkpoints, has_checkpoints, release_checkpoints

RUN = {"model": "LPMFastModel", "params": {"lr": 0.01}}
OTHER = {"model": "LPMFastModel", "params": {"lr": 0.005}}


def test_a_new_folder_is_claimed_and_resumed_only_by_the_same_run(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    assert claim_checkpoints(folder, RUN) is True
    assert json.loads((folder / RUN_FILE).read_text()) == RUN
    (folder / "member0").mkdir()
    (folder / "member0" / "last.ckpt").write_bytes(b"x")
    assert has_checkpoints(folder)
    assert claim_checkpoints(folder, RUN) is False  # the same run: resume
    with pytest.raises(LpmInputError, match="different training run"):
        claim_checkpoints(folder, OTHER)


def test_a_folder_without_checkpoints_is_taken_over(tmp_path: Path) -> None:
    """A run that failed before its first checkpoint left only run.json: a corrected run (other
    parameters) takes the folder over instead of being refused."""
    folder = tmp_path / "ck"
    claim_checkpoints(folder, RUN)
    assert claim_checkpoints(folder, OTHER) is False
    assert json.loads((folder / RUN_FILE).read_text()) == OTHER


def test_checkpoints_without_a_run_record_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / "last.ckpt").write_bytes(b"x")
    with pytest.raises(LpmInputError, match=f"without {RUN_FILE}"):
        claim_checkpoints(folder, RUN)


def test_release_removes_only_an_empty_folder_this_run_created(tmp_path: Path) -> None:
    created = tmp_path / "new"
    release_checkpoints(created, created=claim_checkpoints(created, RUN))
    assert not created.exists()
    kept = tmp_path / "kept"
    was_new = claim_checkpoints(kept, RUN)
    (kept / "last.ckpt").write_bytes(b"x")  # something to resume from
    release_checkpoints(kept, created=was_new)
    assert has_checkpoints(kept)
    users = tmp_path / "users"
    users.mkdir()
    release_checkpoints(users, created=claim_checkpoints(users, RUN))
    assert users.is_dir()  # the user's folder stays

"""Shared fixtures: one tiny dataset (Lightning's 'boring' pattern) and the real-data location."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest

if TYPE_CHECKING:
    from lpm.sim.simulate import SimulationResult

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for a module's tiny networks: under ``pytest -n 2`` on two
    cores, more threads than cores make them about ten times slower (threads spin waiting for
    each other), and one thread keeps in-process fits bit-comparable with one-thread
    subprocesses. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def shared_data(folder: str) -> Path:
    """Path of a real dataset folder, or skip the test saying what is missing."""
    path = SHARED_DATA / folder
    if not path.exists():
        pytest.skip(f"real data not present: {path} (see ../shared/data/README.md)")
    return path


def boring_rows(seed: int = 0) -> pl.DataFrame:
    """3 contexts × (6 singles + 2 pairs) × 12 readouts of deltas with a shared structure."""
    rng = np.random.default_rng(seed)
    contexts = ["toy/A", "toy/B", "toy/C"]
    singles = [f"CRISPRi:G{i}" for i in range(6)]
    pairs = ["CRISPRi:G0+CRISPRi:G1", "CRISPRi:G2+CRISPRi:G3"]
    readouts = [f"G{i}" for i in range(12)]
    effect = {p: rng.normal(size=len(readouts)) for p in singles}
    for p in pairs:
        a, b = p.split("+")
        effect[p] = effect[a] + effect[b] + 0.1 * rng.normal(size=len(readouts))
    ctx_shift = {c: 0.3 * rng.normal(size=len(readouts)) for c in contexts}
    rows = []
    for c in contexts:
        for p in [*singles, *pairs]:
            vals = effect[p] + ctx_shift[c] + 0.05 * rng.normal(size=len(readouts))
            rows += [(c, p, r, float(v)) for r, v in zip(readouts, vals, strict=True)]
    return pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")


@pytest.fixture
def toy_rows() -> pl.DataFrame:
    return boring_rows()


def lpm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``lpm`` command line in a fresh process (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "lpm.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line (progress lines may precede it); no traceback anywhere."""
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert proc.stderr.rstrip().endswith(lines[0]), "the error must be the last thing printed"
    return lines[0]


#: A tiny LPM network and batches, for tests that need a fitted LPM in seconds.
SMALL_LPM: dict[str, Any] = {"embedding_dim": 8, "hidden": [32, 32], "batch_size": 64, "lr": 1e-2}


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """100 genes, 40 perturbations, 3 contexts (one L1000-like reading 50 landmarks), seed 0."""
    from lpm.sim.simulate import simulate

    return simulate(
        tmp_path_factory.mktemp("world") / "sim",
        n_genes=100,
        n_perturbations=40,
        n_contexts=3,
        seed=0,
    )


@pytest.fixture(scope="module")
def small_frame(small_world: SimulationResult) -> pl.DataFrame:
    return small_world.open().read()

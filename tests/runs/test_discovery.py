"""The demo's discovery section on a tiny simulated world: every task runs, writes its files and
its scores reach the report (the figures it links exist)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lpm.sim.simulate import simulate

pytest.importorskip("torch")
pytest.importorskip("lightning")


@pytest.mark.slow
def test_discovery_section_runs_every_task_and_links_existing_figures(
    tmp_path: Path, one_torch_thread: None
) -> None:
    from lpm.runs.discovery import discovery_section

    world = simulate(tmp_path / "sim", n_genes=100, n_perturbations=40, n_contexts=3, seed=0)
    out = tmp_path / "discovery"
    lines = discovery_section(world.out / "store", world.out / "truth", out, seed=0)
    text = "\n".join(lines)
    for name in ("embedding", "predicted_profile", "measured_profile", "knockdown", "imputed"):
        assert f"| {name} |" in text, f"{name} missing from the section"
    assert "sanity check" in text and "share of importance" in text
    links = re.findall(r"!\[[^\]]*\]\(discovery/([^)]+)\)", text)
    assert len(links) >= 4
    for link in links:
        assert (out / link).is_file(), link
    assert (out / "model" / "model.json").is_file()
    assert (out / "grn" / "scores.csv").is_file() and (out / "moa" / "moa_scores.csv").is_file()

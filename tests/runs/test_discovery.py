"""The demo's discovery run on a tiny simulated world (``lpm.runs.discovery``): every task runs
and writes its files, the report section made from them links figures that exist; the folder is
built whole or not at all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lpm.errors import LpmInputError
from lpm.reports.discovery import discovery_section
from lpm.runs.discovery import folder_in_place, run_discovery
from lpm.sim.simulate import simulate

pytest.importorskip("torch")
pytest.importorskip("lightning")


@pytest.mark.slow
def test_discovery_runs_every_task_and_the_section_links_existing_figures(
    tmp_path: Path, one_torch_thread: None
) -> None:
    world = simulate(tmp_path / "sim", n_genes=100, n_perturbations=40, n_contexts=3, seed=0)
    out = run_discovery(world.out / "store", world.out / "truth", tmp_path / "discovery", seed=0)
    text = "\n".join(discovery_section(out))
    for name in ("embedding", "predicted_profile", "measured_profile", "knockdown", "imputed"):
        assert f"| {name} |" in text, f"{name} missing from the section"
    assert "sanity check" in text and "share of importance" in text
    links = re.findall(r"!\[[^\]]*\]\(discovery/([^)]+)\)", text)
    assert len(links) >= 4
    for link in links:
        assert (out / link).is_file(), link
    assert (out / "model" / "model.json").is_file()
    assert (out / "grn" / "scores.csv").is_file() and (out / "moa" / "moa_scores.csv").is_file()
    with pytest.raises(LpmInputError, match="already exists"):
        run_discovery(world.out / "store", world.out / "truth", out)


def test_a_folder_built_in_place_is_whole_or_the_old_one_stays(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with folder_in_place(target, overwrite=False) as folder:
        (folder / "a.txt").write_text("first")
    with pytest.raises(LpmInputError, match="already exists"):
        with folder_in_place(target, overwrite=False):
            raise AssertionError("refused before the block runs")
    with pytest.raises(RuntimeError, match="midway"):
        with folder_in_place(target, overwrite=True) as folder:
            (folder / "b.txt").write_text("second")
            raise RuntimeError("midway")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"], "the old folder is back"
    with pytest.raises(RuntimeError):
        with folder_in_place(tmp_path / "new", overwrite=False) as folder:
            (folder / "b.txt").write_text("half")
            raise RuntimeError
    assert not (tmp_path / "new").exists(), "a failed first build leaves nothing"
    with folder_in_place(target, overwrite=True) as folder:
        (folder / "c.txt").write_text("third")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "nothing set aside is left"
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]

"""``lpm demo`` (``lpm.runs.demo``) on a tiny world: the report is made from the written
tables; an existing folder is refused before any work unless ``--overwrite``, and a failed run
leaves the old one in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpm.errors import LpmInputError
from lpm.runs import demo

pytest.importorskip("torch")
pytest.importorskip("lightning")


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "DEMO_GENES", 60)
    monkeypatch.setattr(demo, "DEMO_PERTURBATIONS", 30)
    monkeypatch.setattr(demo, "DEMO_CONTEXTS", 2)
    monkeypatch.setattr(demo, "DEMO_SPLITS", ("unseen_pair",))
    monkeypatch.setattr(demo, "DEMO_SEEDS", (0,))
    monkeypatch.setattr(demo, "runnable_models", lambda: ["no_change", "linear"])


@pytest.mark.slow
@pytest.mark.usefixtures("tiny", "one_torch_thread")
def test_the_demo_writes_its_report_and_replaces_an_old_one_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "demo_out"
    report = demo.run_demo(out)
    text = report.read_text()
    assert report == out / "report.md" and text.startswith("# lpm demo")
    assert "60 genes × 30 perturbations × 2 contexts" in text
    assert "[unseen_pair](unseen_pair/results.md)" in text and "| measured_profile |" in text
    for name in ("sim", "unseen_pair", "discovery", "demo.json"):
        assert (out / name).exists(), name
    with pytest.raises(LpmInputError, match="already exists"):
        demo.run_demo(out)

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("discovery failed")

    monkeypatch.setattr(demo, "discover", fail)
    with pytest.raises(RuntimeError, match="discovery failed"):
        demo.run_demo(out, overwrite=True)
    assert report.read_text() == text, "a failed run leaves the old demo in place"

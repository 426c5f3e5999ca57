"""The demo report (``lpm.reports.demo``), made from ``demo.json`` and the discovery tables."""

from __future__ import annotations

import json
from pathlib import Path

from lpm.reports.demo import RUN_FILE, demo_report
from tests.reports.test_discovery import _folder


def test_the_report_is_made_from_what_the_demo_wrote(tmp_path: Path) -> None:
    _folder(tmp_path)
    record = {
        "world": "6 genes × 2 perturbations × 1 contexts",
        "seed": 0,
        "simulate_seconds": 1.25,
        "seconds": 9.5,
        "splits": ["unseen_pair"],
        "excluded": ["lpm", "lpm_ame"],
        "store_info": "rows: 12",
    }
    (tmp_path / RUN_FILE).write_text(json.dumps(record))
    text = demo_report(tmp_path)
    assert text.startswith("# lpm demo")
    assert "6 genes × 2 perturbations × 1 contexts, seed 0: 1.2 s; whole demo 9.5 s." in text
    assert "except lpm, lpm_ame" in text and "```\nrows: 12\n```" in text
    assert "- [unseen_pair](unseen_pair/results.md)" in text
    assert "## Discovery on the simulated world" in text

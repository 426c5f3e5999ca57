"""The demo's ``report.md``, made only from what ``lpm demo`` wrote (``demo.json``, the
benchmarks' reports and the discovery tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from lpm.reports.discovery import discovery_section

#: What :func:`lpm.runs.demo.run_demo` records about its run, and the report it writes.
RUN_FILE: Final = "demo.json"
REPORT_FILE: Final = "report.md"


def demo_report(folder: str | Path) -> str:
    """The Markdown report of the demo written into ``folder``."""
    folder = Path(folder)
    run = json.loads((folder / RUN_FILE).read_text())
    epochs = run.get("model_params", {}).get("lpm_fast", {}).get("max_epochs")
    stand_in = f"lpm_fast, up to {epochs} epochs with early stopping," if epochs else "lpm_fast"
    sections = [
        f"- [{split}]({split}/results.md)\n\n  ![{split}]({split}/results.png)"
        for split in run["splits"]
    ]
    return "\n".join(
        [
            "# lpm demo",
            "",
            f"Simulated world of {run['world']}, seed {run['seed']}: "
            f"{run['simulate_seconds']:.1f} s; whole demo {run['seconds']:.1f} s.",
            "Ground truth (network edges, compound targets, pair interaction types) is in `sim/truth/`.",
            "Models: every registered model that runs without user inputs (models that need them, "
            "such as precomputed, are left out by their class's needs_inputs), "
            f"except {', '.join(run['excluded'])} (exact-mode LPM is too slow for a "
            f"three-minute demo on two cores; {stand_in} stands in "
            "for it: the same inputs and embeddings, the readout scored late; lpm_ame, the attentive mixture "
            "of experts, is an explanation model and appears in the discovery section).",
            "",
            "## Store",
            "",
            "```",
            run["store_info"],
            "```",
            "",
            "## Benchmarks (all registered models)",
            "",
            *sections,
            "",
            *discovery_section(folder / "discovery"),
        ]
    )


__all__ = ["REPORT_FILE", "RUN_FILE", "demo_report"]

"""Speed and memory of the foundation's long jobs, measured through the CLI as a user runs them.

Run from the repository root:  .venv/bin/python benchmarks/speed.py
Prints and writes benchmarks/results/speed.md: wall time and peak RSS of `lpm simulate` at the
default size (goal: under a minute on 2 cores), a byte-identity check of two runs with the same
seed, and the wall time of `lpm demo` (goal: under 3 minutes).
"""

from __future__ import annotations

import hashlib
import shlex
import sys
import tempfile
from pathlib import Path

from _common import RESULTS, machine, measure_lpm, write_text

SIMULATE = ["simulate", "--genes", "2000", "--perturbations", "500", "--contexts", "5"]
SIMULATE += ["--seed", "0"]


def folder_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def main() -> None:
    lines = [
        "# Speed and memory of the foundation jobs",
        "",
        f"Produced by `python benchmarks/speed.py` on {machine()}.",
        "",
        "| command | wall time (s) | peak RSS (GiB) | goal |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        digests = []
        for run in (1, 2):
            r = measure_lpm([*SIMULATE, "--out", f"{tmp}/sim{run}"])
            digests.append(folder_digest(Path(tmp) / f"sim{run}"))
            shown = shlex.join(["lpm", *SIMULATE, "--out", "DIR"])
            lines.append(
                f"| `{shown}` (run {run}) | {r.seconds:.1f} | {r.peak_rss_gib:.2f} | < 60 s |"
            )
            print(lines[-1], flush=True)
        r = measure_lpm(["demo", "--out", f"{tmp}/demo"])
        lines.append(f"| `lpm demo --out DIR` | {r.seconds:.1f} | {r.peak_rss_gib:.2f} | < 180 s |")
        print(lines[-1], flush=True)
    same = digests[0] == digests[1]
    lines += [
        "",
        f"Same seed, same bytes: {'yes' if same else 'NO'} (folder digests {digests[0]} and {digests[1]}).",
        "",
    ]
    print(lines[-2])
    write_text(RESULTS / "speed.md", "\n".join(lines))
    if not same:
        sys.exit("simulate is not byte-reproducible")


if __name__ == "__main__":
    main()

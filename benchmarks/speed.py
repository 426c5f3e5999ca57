"""Speed and memory of the foundation's long jobs, measured through the CLI as a user runs them.

Run from the repository root:  .venv/bin/python benchmarks/speed.py
Prints and writes benchmarks/results/speed.md: wall time and peak RSS of `lpm simulate` at the
default size (goal: under a minute on 2 cores), a byte-identity check of two runs with the same
seed, and the wall time of `lpm demo` (goal: under 3 minutes).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LPM = str(Path(sys.executable).with_name("lpm"))


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one lpm command run in a fresh process."""
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, LPM, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    wall, rss_kib = out.stdout.split()
    return float(wall), int(rss_kib) / 2**20


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
        f"Produced by `python benchmarks/speed.py` on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        "| command | wall time (s) | peak RSS (GiB) | goal |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        sim = [
            "simulate",
            "--genes",
            "2000",
            "--perturbations",
            "500",
            "--contexts",
            "5",
            "--seed",
            "0",
        ]
        digests = []
        for run in (1, 2):
            args = [*sim, "--out", f"{tmp}/sim{run}"]
            wall, rss = timed(args)
            digests.append(folder_digest(Path(tmp) / f"sim{run}"))
            lines.append(
                f"| `{shlex.join(['lpm', *sim, '--out', 'DIR'])}` (run {run}) | {wall:.1f} | {rss:.2f} | < 60 s |"
            )
            print(lines[-1], flush=True)
        wall, rss = timed(["demo", "--out", f"{tmp}/demo"])
        lines.append(f"| `lpm demo --out DIR` | {wall:.1f} | {rss:.2f} | < 180 s |")
        print(lines[-1], flush=True)
    same = digests[0] == digests[1]
    lines += [
        "",
        f"Same seed, same bytes: {'yes' if same else 'NO'} (folder digests {digests[0]} and {digests[1]}).",
        "",
    ]
    print(lines[-2])
    (RESULTS / "speed.md").write_text("\n".join(lines))
    if not same:
        sys.exit("simulate is not byte-reproducible")


if __name__ == "__main__":
    main()

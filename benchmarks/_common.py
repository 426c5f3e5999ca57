"""What every benchmark script shares: paths, running lpm commands, machine facts, number
formatting and whole-or-nothing writes.

Scripts run as ``python benchmarks/NAME.py`` from the repository root, so this folder is on
``sys.path`` and they import ``from _common import ...``. Shared helpers live here and nowhere
else: a script imports no other script (a benchmark's own ``*_report.py`` aside). The GEARS
comparator in ``benchmarks/gears/`` runs in GEARS's own environment without lpm, so it does not
use this module. Nothing here imports lpm until it writes, so lpm_speed's worker can measure
another revision's lpm (``--compare-rev``).
"""

from __future__ import annotations

import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

ROOT = Path(__file__).resolve().parents[1]
# relative to the repository root, where every command runs, so reports show paths as typed
DATA = Path("..") / "shared" / "data"
STORES = Path("benchmarks") / "stores"
RESULTS = ROOT / "benchmarks" / "results"
LPM = str(Path(sys.executable).with_name("lpm"))
GENE_INFO = DATA / "gene_ontology" / "human_gene_info_orgHsEgDb_3.16.tsv.gz"
GENE2GO = DATA / "gene_ontology" / "human_gene2go_direct_orgHsEgDb_3.16.tsv.gz"
#: The real stores benchmarks/real_data.py builds and joins into ``joint``.
REAL_STORES = ("devel", "replogle", "lincs", "perturbqa", "perturbqa_dir", "norman_growth")


# ---- running commands -----------------------------------------------------------------------
@dataclass(frozen=True)
class Measured:
    """One finished command: wall seconds, the CPU cores other processes used meanwhile (the
    machine may be shared), its output and, from :func:`measure_lpm`, its peak RSS (else NaN)."""

    seconds: float
    other_load: float
    stdout: str
    peak_rss_gib: float = math.nan


def _busy_seconds() -> float:
    """CPU seconds all processes have used since boot (user+nice+system+irq+softirq+steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    jiffies = [int(x) for x in fields]
    busy = jiffies[0] + jiffies[1] + jiffies[2] + jiffies[5] + jiffies[6] + jiffies[7]
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_quiet(max_wait: float = 900.0, window: float = 10.0, threshold: float = 0.15) -> float:
    """Wait until other processes use under ``threshold`` cores for ``window`` seconds."""
    start = time.monotonic()
    while True:
        b0 = _busy_seconds()
        time.sleep(window)
        load = (_busy_seconds() - b0) / window
        if load < threshold or time.monotonic() - start > max_wait:
            return load


def measure(
    args: Sequence[str], *, env: dict[str, str] | None = None, shown: str | None = None
) -> Measured:
    """Run a command from the repository root; exit with its output if it fails (naming it as
    ``shown``, else as run)."""
    b0, c0, t0 = _busy_seconds(), _children_cpu(), time.perf_counter()
    proc = subprocess.run(list(args), capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t0
    own = _children_cpu() - c0
    other = max(0.0, (_busy_seconds() - b0) - own) / wall
    if proc.returncode != 0:
        shown = shown or shlex.join(args)
        sys.exit(f"failed ({proc.returncode}): {shown}\n{proc.stdout}{proc.stderr}")
    return Measured(seconds=wall, other_load=other, stdout=proc.stdout)


#: Runs argv[1:] as a child and prints the child's peak RSS (KiB), so the figure is that
#: command's own and not the benchmark's.
_PEAK_RSS = (
    "import resource, subprocess, sys; "
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
    "sys.stderr.write(p.stderr); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)"
)


def measure_lpm(args: Sequence[str]) -> Measured:
    """``lpm ARGS`` in a fresh process: wall time, other load and its peak RSS (its stdout is
    discarded)."""
    res = measure([sys.executable, "-c", _PEAK_RSS, LPM, *args])
    rss = int(res.stdout.split()[-1]) / 2**20
    return Measured(seconds=res.seconds, other_load=res.other_load, stdout="", peak_rss_gib=rss)


def run(args: Sequence[str]) -> tuple[str, str, float]:
    """Run one lpm command as printed; return (the command as text, stdout, seconds)."""
    shown = shlex.join(["lpm", *args])
    print(f"$ {shown}", flush=True)
    res = measure([LPM, *args], shown=shown)
    return shown, res.stdout, res.seconds


# ---- machine facts --------------------------------------------------------------------------
def machine() -> str:
    """CPU, cores, RAM, Python and torch versions: the line every report states it ran on."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    text = (
        f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
        f"Python {platform.python_version()}"
    )
    try:
        import torch
    except ImportError:
        return f"{text}, no torch"
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{text}, torch {torch.__version__} (CPU capability {capability})"


# ---- numbers --------------------------------------------------------------------------------
def number(x: float | None, digits: int = 3, *, significant: int | None = None) -> str:
    """``x`` with ``digits`` decimals, "n/a" when missing or not finite.

    With ``significant``, a non-zero value too small to read at ``digits`` decimals (below
    ``10 ** (1 - digits)``) gets that many significant digits instead, so small MSEs and base
    rates do not all print as 0.000.
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    if significant is not None and digits > 0 and 0 < abs(x) < 10 ** (1 - digits):
        return f"{x:.{significant}g}"
    return f"{x:.{digits}f}"


def mean_sd(
    mean: float | None,
    sd: float | None,
    *,
    digits: int = 3,
    significant: int | None = None,
    sd_significant: int | None = None,
) -> str:
    """``mean ± sd`` (see :func:`number`); the mean alone when ``sd`` is missing or not finite.

    ``sd_significant`` defaults to ``significant``.
    """
    if mean is None or not math.isfinite(mean):
        return "n/a"
    cell = number(mean, digits, significant=significant)
    if sd is None or not math.isfinite(sd):
        return cell
    small = significant if sd_significant is None else sd_significant
    return f"{cell} ± {number(sd, digits, significant=small)}"


def metric_table(
    title: str,
    table: pl.DataFrame,
    metrics: Sequence[str],
    *,
    columns: tuple[str, str] = ("mean", "seed_sd"),
    missing: str = "n/a",
    cell: Callable[[float | None, float | None], str] = mean_sd,
) -> list[str]:
    """Markdown lines: a row per ``model`` of a long result table (``model, metric`` and the
    mean and sd ``columns``), a ``cell(mean, sd)`` per metric, ``missing`` where none."""
    import polars as pl

    lines = [
        f"`{title}`",
        "",
        "| model | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for model in table["model"].unique(maintain_order=True).to_list():
        cells = []
        for m in metrics:
            r = table.filter((pl.col("model") == model) & (pl.col("metric") == m))
            cells.append(cell(r[columns[0]][0], r[columns[1]][0]) if r.height else missing)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return [*lines, ""]


# ---- verdicts -------------------------------------------------------------------------------
#: The paired verdicts ``lpm benchmark`` writes into its folder (see lpm.evaluation.compare).
COMPARISONS = "comparisons.csv"


def read_comparisons(folder: Path) -> pl.DataFrame | None:
    """The paired comparisons with the best baseline in an ``lpm benchmark`` folder, or None
    where an older lpm wrote the folder without them (its verdicts need a rerun)."""
    import polars as pl

    path = folder / COMPARISONS
    return pl.read_csv(path) if path.is_file() else None


def key_metrics(metrics: Sequence[str]) -> list[str]:
    """The metrics a verdict names among ``metrics``: corrected Pearson and discrimination for
    continuous readouts, AUROC and AUPRC for binary ones (both pairs for mixed tables)."""
    from lpm.evaluation.compare import BINARY_KEY_METRICS, KEY_METRICS

    return [
        m for keys in (KEY_METRICS, BINARY_KEY_METRICS) if set(keys) & set(metrics) for m in keys
    ]


def signed(x: float, digits: int = 3) -> str:
    """``+0.012`` / ``−0.034`` (a true minus sign, so a column of signs reads at a glance)."""
    return f"{x:+.{digits}f}".replace("-", "−")


def paired_text(c: dict[str, object]) -> str:
    """A comparisons.csv row as words: the difference with its 95% interval and the pairs,
    e.g. ``+0.031 [+0.010, +0.052] over 120 conditions in 3 seeds``."""
    diff, lo, hi = (float(str(c[k])) for k in ("difference", "ci_low", "ci_high"))
    interval = f"[{signed(lo)}, {signed(hi)}]" if math.isfinite(lo) else "(no interval)"
    seeds = int(str(c["seeds"]))
    return (
        f"{signed(diff)} {interval} over {c['n_pairs']} conditions in {seeds} "
        f"seed{'s' if seeds != 1 else ''}"
    )


# ---- writing results ------------------------------------------------------------------------
def write_text(path: Path, text: str) -> Path:
    """Write a result file whole or not at all (a rerun replaces it)."""
    from lpm._utils.atomic import write_text_atomic  # lpm only where used: see lpm_speed's worker

    write_text_atomic(path, text, overwrite=True)
    return path


def write_csv(table: pl.DataFrame, path: Path) -> Path:
    """Write a result table as CSV whole or not at all (a rerun replaces it)."""
    from lpm._utils.atomic import atomic_file

    with atomic_file(path, overwrite=True) as tmp:
        table.write_csv(tmp)
    return path

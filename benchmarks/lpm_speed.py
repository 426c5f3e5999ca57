"""Training speed, memory and accuracy of the LPM in exact (`lpm`) and fast (`lpm_fast`) mode.

Run from the repository root:  .venv/bin/python benchmarks/lpm_speed.py
Prints Markdown tables and writes benchmarks/results/lpm_speed.md.

* Speed: both modes (preset replogle: embedding 32, MLP 2 x 512, AdamW; exact: batch 5,000 values, fast: 128 whole profiles)
  stream a simulated store of about 10 million values (`lpm simulate --genes 2500
  --perturbations 1000 --contexts 5 --seed 0`, 10.5 M rows) for a few epochs, as `lpm train
  --store` does. Values/s = training values processed per second of training, over epochs
  2..n (epoch 1 is start-up); the clock runs from an epoch's start to its last optimiser step,
  through a Lightning callback. Goals: exact >= 55,000 values/s (the paper's reference code
  on this machine), fast >= 550,000 values/s.
* Accuracy: both modes on the same `unseen_pair` split (seed 0) of the same store, the same
  number of epochs (early stopping on the split's validation part), scored on the test part
  with `lpm.evaluation.panel.evaluate`; then fast mode with more epochs (it is cheap). Goal:
  fast at least as accurate as exact.
* Memory: peak RSS of `lpm train --store BIG --model lpm_fast --param max_epochs=1` on a store
  of about 100 million values (ten renamed copies of the 10 M store: contexts ``...K0`` to
  ``...K9``, so every row stays unique). Goal: under 4 GB.

Each run is a fresh process (its peak RSS is its own). The machine may be shared: every run
also records how much CPU other processes used meanwhile (from /proc/stat), shown as "other
load" in cores; with ``--wait-quiet`` a run waits for an idle machine first. With
``--compare-rev REV`` the speed runs are repeated with the lpm source of a git revision (0.2.0 or
later: the worker times epochs through ``TrainerOptions(callbacks=...)``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT, STORES, machine, measure, measure_lpm, wait_quiet, write_text

SIM = ROOT / STORES / "lpm_sim10m"
BIG = ROOT / STORES / "lpm_sim100m"
SIMULATE = ["simulate", "--genes", "2500", "--perturbations", "1000", "--contexts", "5"]
SIMULATE += ["--seed", "0"]
COPIES = 10
REFERENCE_EXACT = 55_000
GOAL_FAST = 550_000
GOAL_RSS_GB = 4.0
METRICS = ("mse", "pearson_delta", "pearson_delta_top20", "pearson_delta_vs_mean")


# ---- stores ---------------------------------------------------------------------------------
def ensure_sim() -> dict[str, Any]:
    if (SIM / "store" / "store.json").is_file():
        return {"built": False}
    res = measure_lpm([*SIMULATE, "--out", str(SIM)])
    return {"built": True, "wall": res.seconds, "rss_gb": res.peak_rss_gib}


def ensure_big() -> dict[str, Any]:
    """Ten copies of the 10 M store's row groups, contexts renamed per copy, as one store."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lpm.data import schema as S
    from lpm.data.store import MEASUREMENTS, META, StoreMeta, open_store

    if (BIG / META).is_file():
        return {"built": False}
    source = open_store(SIM / "store")
    t0 = time.perf_counter()
    BIG.mkdir(parents=True, exist_ok=True)
    part = BIG / (MEASUREMENTS + ".part")
    writer: pq.ParquetWriter | None = None
    n_rows = 0
    for k in range(COPIES):
        for table in source.iter_batches():
            ctx = table.column(S.CONTEXT).combine_chunks()
            renamed = pa.DictionaryArray.from_arrays(
                ctx.indices, pa.array([f"{s}K{k}" for s in ctx.dictionary.to_pylist()])
            )
            table = table.set_column(
                table.schema.get_field_index(S.CONTEXT), table.schema.field(S.CONTEXT), renamed
            )
            if writer is None:
                writer = pq.ParquetWriter(part, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=table.num_rows)
            n_rows += table.num_rows
    assert writer is not None
    writer.close()
    digest = hashlib.sha256()
    with part.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    part.rename(BIG / MEASUREMENTS)
    meta = StoreMeta(
        schema_version=S.SCHEMA_VERSION,
        content_hash=f"sha256:{digest.hexdigest()}",
        n_rows=n_rows,
        sources=list(source.meta.sources),
        notes={"benchmark": f"{COPIES} copies of {SIM / 'store'}, contexts renamed ...K<copy>"},
    )
    (BIG / META).write_text(meta.to_json() + "\n")
    return {"built": True, "wall": time.perf_counter() - t0, "rows": n_rows}


# ---- one training run (in its own process) -------------------------------------------------
def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Fit one model as the spec says; per-epoch training times and, with a split, test scores."""
    import lightning as L
    import polars as pl

    from lpm.data.store import open_store
    from lpm.models.registry import get_model
    from lpm.models.source import RowSource
    from lpm.models.training import TrainerOptions

    class EpochTimer(L.Callback):
        """Training values and seconds per epoch (epoch start to its last optimiser step)."""

        def __init__(self) -> None:
            self.epochs: list[dict[str, float]] = []

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.t0 = self.last = time.perf_counter()
            self.values = 0

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            self.values += int(batch["value"].shape[0])
            self.last = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.epochs.append({"values": self.values, "seconds": self.last - self.t0})

    timer = EpochTimer()
    trainer = TrainerOptions(callbacks=(timer,))
    model: Any = get_model(
        spec["model"], max_epochs=spec["epochs"], seed=0, **spec.get("params", {})
    )
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if spec.get("split"):
        from lpm.data.splits import make_split
        from lpm.evaluation.panel import evaluate

        rows = open_store(spec["store"]).read()
        parts = make_split(rows, kind=spec["split"], seed=0)
        del rows
        out["train_values"] = parts.train.height
        t0 = time.perf_counter()
        model.fit(parts.train, parts.val, trainer=trainer)
        out["fit_seconds"] = time.perf_counter() - t0
        pred = model.predict(parts.test)
        summary = evaluate(parts.test, pred, train=parts.train, n_boot=0).summary
        out["scores"] = {
            m: float(summary.filter(pl.col("metric") == m)["mean"].item()) for m in METRICS
        }
        out["test_values"] = parts.test.height
        out["epochs_run"] = len(timer.epochs)
        out["val_loss"] = model.history_[0].get("val_loss")
        del pred
    else:
        source = RowSource(stores=[open_store(spec["store"])])
        model.fit_source(source, trainer=trainer)
        out["fit_seconds"] = time.perf_counter() - t0
    later = timer.epochs[1:] or timer.epochs
    out["epochs"] = timer.epochs
    out["values_per_s"] = sum(e["values"] for e in later) / sum(e["seconds"] for e in later)
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    out["threads"] = int(__import__("torch").get_num_threads())
    return out


def run_worker(spec: dict[str, Any], *, pythonpath: str | None = None) -> dict[str, Any]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    res = measure([sys.executable, __file__, "--worker", json.dumps(spec)], env=env)
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    result["other_load"] = res.other_load
    result["wall"] = res.seconds
    return result


def export_revision(rev: str, into: Path) -> str:
    """The ``src`` folder of a git revision, for measuring the code before a change."""
    archive = subprocess.run(
        ["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return str(into / "src")


# ---- report ---------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    """The command-line options (``--worker`` is the internal one-run mode)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the speed runs")
    ap.add_argument("--accuracy-epochs", type=int, default=5, help="epochs of the split runs")
    ap.add_argument(
        "--fast-epochs", type=int, default=40, help="max epochs of fast mode's longer split run"
    )
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-big", action="store_true", help="no 100 M memory run")
    ap.add_argument("--compare-rev", help="also time the speed runs with this git revision")
    ap.add_argument("--wait-quiet", action="store_true", help="wait for an idle machine per run")
    return ap.parse_args()


def quiet(args: argparse.Namespace) -> None:
    """With ``--wait-quiet``, wait for an idle machine before a run and print its load."""
    if args.wait_quiet:
        load = wait_quiet()
        print(f"(machine load before the run: {load:.2f} cores)", flush=True)


def header_lines(args: argparse.Namespace, sim: dict[str, Any], n_sim: int) -> list[str]:
    """The report's title, store description and the speed table's heading."""
    return [
        "# LPM training speed, memory and accuracy",
        "",
        f"Produced by `{shlex.join(['python', 'benchmarks/lpm_speed.py', *sys.argv[1:]])}` on "
        f"{machine()}.",
        "",
        f"Store: `{shlex.join(['lpm', *SIMULATE, '--out', str(SIM.relative_to(ROOT))])}`, "
        f"{n_sim:,} values"
        + (
            f" (simulated in {sim['wall']:.0f} s, peak RSS {sim['rss_gb']:.1f} GiB)"
            if sim["built"]
            else ""
        )
        + ". Preset `replogle` (embedding 32, MLP 2 x 512, AdamW lr 2e-3); exact mode's batch "
        "is 5,000 values, fast mode's 128 whole profiles (one MLP pass each).",
        "",
        '"Other load" is the CPU other processes used during the run (cores of 2); figures '
        "taken under load are lower than on an idle machine.",
        "",
        "## Speed (streaming the store, as `lpm train --store` does)",
        "",
        f"Values/s over epochs 2..{args.epochs}; the store is re-read row group by row group "
        "every epoch.",
        "",
        "| code | model | values/s | per-epoch values/s | peak RSS (GiB) | other load | goal |",
        "|---|---|---|---|---|---|---|",
    ]


def speed_section(args: argparse.Namespace, lines: list[str]) -> None:
    """Time both modes (and ``--compare-rev``'s code); append and print the rows and ratios."""
    revisions: list[tuple[str, str | None]] = [("working tree", None)]
    tmp = tempfile.TemporaryDirectory(prefix="lpm-rev-")
    if args.compare_rev:
        revisions.append(
            (f"`{args.compare_rev}`", export_revision(args.compare_rev, Path(tmp.name)))
        )
    speed: dict[tuple[str, str], dict[str, Any]] = {}
    for label, path in revisions:
        for model in ("lpm", "lpm_fast"):
            quiet(args)
            spec = {"model": model, "store": str(SIM / "store"), "epochs": args.epochs}
            r = run_worker(spec, pythonpath=path)
            speed[(label, model)] = r
            per_epoch = ", ".join(f"{e['values'] / e['seconds']:,.0f}" for e in r["epochs"])
            goal = f">= {REFERENCE_EXACT:,}" if model == "lpm" else f">= {GOAL_FAST:,}"
            lines.append(
                f"| {label} | `{model}` | {r['values_per_s']:,.0f} | {per_epoch} | "
                f"{r['peak_rss_gb']:.2f} | {r['other_load']:.2f} | {goal} |"
            )
            print(lines[-1], flush=True)
    tmp.cleanup()
    ex, fa = speed[("working tree", "lpm")], speed[("working tree", "lpm_fast")]
    lines += [
        "",
        f"Fast / exact: {fa['values_per_s'] / ex['values_per_s']:.1f}x; fast / reference "
        f"({REFERENCE_EXACT:,} values/s): {fa['values_per_s'] / REFERENCE_EXACT:.1f}x; exact / "
        f"reference: {ex['values_per_s'] / REFERENCE_EXACT:.2f}x.",
        "",
        "Command of each run (a fresh process): `lpm.models.registry.get_model(MODEL, "
        f"max_epochs={args.epochs}, seed=0).fit_source(RowSource(stores=[open_store(STORE)]))`.",
    ]
    print("\n".join(lines[-4:]), flush=True)


def accuracy_section(args: argparse.Namespace, lines: list[str]) -> None:
    """Score both modes on the same split; append and print the accuracy table."""
    lines += [
        "",
        "## Accuracy (same data, same epochs)",
        "",
        f"`unseen_pair` split (seed 0) of the same store; {args.accuracy_epochs} epochs with "
        "early stopping and best-checkpoint selection on the split's validation part; test "
        "part scored with `lpm.evaluation.panel.evaluate` (means over test conditions). "
        "Values/s here: in-memory training rows (coded once, kept), epochs 2..n. Both modes "
        "first get the same epochs; fast mode then also gets more epochs (early stopping, "
        "patience 8: its defaults).",
        "",
        "| model | max epochs (run) | "
        + " | ".join(METRICS)
        + " | values/s | fit (s) | peak RSS (GiB) | other load |",
        "|---|---|" + "---|" * (len(METRICS) + 4),
    ]
    print("\n".join(lines[-5:]), flush=True)
    runs = [("lpm", args.accuracy_epochs), ("lpm_fast", args.accuracy_epochs)]
    runs.append(("lpm_fast", args.fast_epochs))
    for model, epochs in runs:
        quiet(args)
        spec = {
            "model": model,
            "store": str(SIM / "store"),
            "epochs": epochs,
            "split": "unseen_pair",
        }
        r = run_worker(spec)
        scores = " | ".join(f"{r['scores'][m]:.4f}" for m in METRICS)
        lines.append(
            f"| `{model}` | {epochs} ({r['epochs_run']}) | {scores} | "
            f"{r['values_per_s']:,.0f} | {r['fit_seconds']:.0f} | "
            f"{r['peak_rss_gb']:.2f} | {r['other_load']:.2f} |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        "MSE: lower is better; Pearson: higher is better. Peak RSS here includes the whole "
        "store read into memory to draw the split.",
    ]


def memory_section(args: argparse.Namespace, lines: list[str]) -> None:
    """Peak RSS of one fast epoch on the 100 M store; append and print its table."""
    from lpm.data.store import open_store

    big = ensure_big()
    n_big = open_store(BIG).n_rows
    quiet(args)
    with tempfile.TemporaryDirectory(prefix="lpm-big-") as tmp_out:
        cmd = [
            "train", "--store", str(BIG.relative_to(ROOT)), "--model", "lpm_fast",
            "--param", "max_epochs=1", "--out", f"{tmp_out}/model",
        ]  # fmt: skip
        r = measure_lpm(cmd)
    lines += [
        "",
        "## Memory (100 M values, streaming)",
        "",
        f"Store: {n_big:,} values, {COPIES} copies of the 10 M store with renamed contexts"
        + (f" (built in {big['wall']:.0f} s)" if big["built"] else "")
        + ".",
        "",
        "| command | wall time (s) | peak RSS (GiB) | other load | goal |",
        "|---|---|---|---|---|",
        f"| `{shlex.join(['lpm', *cmd[:-1], 'M'])}` | {r.seconds:.0f} | {r.peak_rss_gib:.2f} | "
        f"{r.other_load:.2f} | < {GOAL_RSS_GB:.0f} GB ({GOAL_RSS_GB * 1e9 / 2**30:.2f} GiB) |",
    ]
    print("\n".join(lines[-8:]), flush=True)


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    sim = ensure_sim()
    from lpm.data.store import open_store

    n_sim = open_store(SIM / "store").n_rows
    lines = header_lines(args, sim, n_sim)
    print("\n".join(lines), flush=True)
    speed_section(args, lines)
    if not args.skip_accuracy:
        accuracy_section(args, lines)
    if not args.skip_big:
        memory_section(args, lines)

    write_text(RESULTS / "lpm_speed.md", "\n".join(lines) + "\n")
    print(f"\nwrote {RESULTS / 'lpm_speed.md'}")


if __name__ == "__main__":
    main()

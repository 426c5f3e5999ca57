"""`lpm train` and `lpm predict` with both LPM modes on every real store and the joint store.

Run from the repository root after `python benchmarks/real_data.py` (which builds the stores):
    .venv/bin/python benchmarks/lpm_real_train.py
Writes benchmarks/results/lpm_train_real.md: per store and model, the exact commands, wall time
and peak RSS of training (streamed from the store, early stopping on a hashed 5 % of the
profiles) and of predicting every row of the store, the validation loss, and the error of the
predictions on the store's own rows (a fit check, not a held-out score: held-out scores are in
lpm_accuracy.md). Exact mode is capped at 2 epochs (it trains at ~55,000 values/s here).
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lpm_speed import LPM, ROOT, machine, run_measured
from real_data import RESULTS, STORES

#: store -> extra training options per model (ensembles where the readouts are binary labels).
REAL = ("devel", "replogle", "lincs", "perturbqa", "perturbqa_dir", "norman_growth", "joint")
RUNS: list[tuple[str, str, list[str]]] = [
    (store, model, opts)
    for store in REAL
    for model, opts in (
        ("lpm_fast", ["--ensemble", "3"] if store.startswith("perturbqa") else []),
        ("lpm", ["--param", "max_epochs=2"]),
    )
]

_RSS = (
    "import resource, subprocess, sys; "
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
    "sys.stderr.write(p.stderr); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)"
)


def measured(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one lpm command."""
    r = run_measured([sys.executable, "-c", _RSS, LPM, *args])
    return r["wall"], int(r["stdout"].split()[-1]) / 2**20


def fit_check(pred_path: Path, store: Path) -> dict[str, Any]:
    """Prediction error on the store's own rows: MSE for deltas, accuracy for binary labels."""
    from lpm.data.store import open_store

    truth = open_store(store).read()
    pred = pl.read_parquet(pred_path)
    keys = [c for c in ("context", "perturbation", "readout", "dose", "time") if c in pred.columns]
    both = truth.join(pred.rename({"value": "pred"}), on=keys, nulls_equal=True)
    out: dict[str, Any] = {"rows": pred.height, "joined": both.height}
    binary = both.filter(pl.col("readout_type") == "binary")
    cont = both.filter(pl.col("readout_type") != "binary")
    if cont.height:
        out["mse"] = float(((cont["value"] - cont["pred"]) ** 2).mean())  # type: ignore[operator]
    if binary.height:
        correct = (binary["pred"].to_numpy() > 0.5) == (binary["value"].to_numpy() > 0.5)
        out["accuracy"] = float(np.mean(correct))
    out["has_sd"] = "prediction_sd" in pred.columns
    return out


def main() -> None:
    lines = [
        "# `lpm train` / `lpm predict` with the LPM on every real store",
        "",
        f"Produced by `python benchmarks/lpm_real_train.py` on {machine()}.",
        "",
        "Each store is trained as a whole (`lpm train --store S`, streamed in row groups, early "
        "stopping on a hashed 5 % of its profiles), then every row of it is predicted. The fit "
        "columns score those predictions on the rows the model was trained on: they show the "
        "pipeline works end to end, not how well it generalises (see `lpm_accuracy.md`).",
        "",
        "| store | model | train (s) | train peak RSS (GiB) | epochs | val loss | predict (s) | "
        "predicted rows | fit MSE (deltas) | fit accuracy (labels) | spread column |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    commands: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lpm-real-") as tmp:
        for store, model, opts in RUNS:
            path = STORES / store
            if not (ROOT / path / "store.json").is_file():
                sys.exit(f"store {path} missing: run benchmarks/real_data.py first")
            out = Path(tmp) / f"{store}_{model}"
            train = ["train", "--store", str(path), "--model", model, *opts, "--out", str(out)]
            pred_path = Path(tmp) / f"{store}_{model}.parquet"
            predict = ["predict", "--model", str(out), "--store", str(path)]
            predict += ["--out", str(pred_path)]
            t_train, rss = measured(train)
            t_pred, _ = measured(predict)
            info = json.loads((out / "model.json").read_text())
            history = info.get("state", {}).get("history", [])
            epochs = ", ".join(str(h.get("epochs")) for h in history) or "?"
            vals = [h.get("val_loss") for h in history if h.get("val_loss") is not None]
            check = fit_check(pred_path, ROOT / path)
            shown = [shlex.join(["lpm", *train[:-1], "M"]), shlex.join(["lpm", *predict[:-1]])]
            commands += [f"{c} P.parquet" if c.startswith("lpm predict") else c for c in shown]
            mse = f"{check['mse']:.4f}" if "mse" in check else "–"
            acc = f"{check['accuracy']:.3f}" if "accuracy" in check else "–"
            val = ", ".join(f"{v:.4f}" for v in vals) or "–"
            lines.append(
                f"| {store} | `{model}`{' ' + ' '.join(opts) if opts else ''} | {t_train:.0f} | "
                f"{rss:.2f} | {epochs} | {val} | {t_pred:.0f} | {check['rows']:,} | {mse} | "
                f"{acc} | {'yes' if check['has_sd'] else 'no'} |"
            )
            print(lines[-1], flush=True)
    lines += [
        "",
        "Commands (M: the model folder, P: the predictions):",
        "",
        "```",
        *commands,
        "```",
    ]
    (RESULTS / "lpm_train_real.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'lpm_train_real.md'}")


if __name__ == "__main__":
    main()

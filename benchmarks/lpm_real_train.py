"""`lpm train` and `lpm predict` with both LPM modes on every real store and the joint store.

Run from the repository root after `python benchmarks/real_data.py` (which builds the stores):
    .venv/bin/python benchmarks/lpm_real_train.py
Writes benchmarks/results/lpm_train_real.md: per store and model, the exact commands, wall time
and peak RSS of training (streamed from the store, early stopping on a hashed 5 % of the
rows) and of predicting every row of the store, the validation loss, and the error of the
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

from _common import REAL_STORES, RESULTS, ROOT, STORES, machine, measure_lpm, write_text

#: store -> extra training options per model (ensembles where the readouts are binary labels).
RUNS: list[tuple[str, str, list[str]]] = [
    (store, model, opts)
    for store in (*REAL_STORES, "joint")
    for model, opts in (
        ("lpm_fast", ["--ensemble", "3"] if store.startswith("perturbqa") else []),
        ("lpm", ["--param", "max_epochs=2"]),
    )
]


def fit_check(pred_path: Path) -> dict[str, Any]:
    """Prediction error on rows the model trained on: MSE for deltas, accuracy for labels."""
    pred = pl.read_parquet(pred_path)
    out: dict[str, Any] = {"rows": pred.height}
    binary = pred.filter(pl.col("readout_type") == "binary")
    cont = pred.filter(pl.col("readout_type") != "binary")
    if cont.height:
        err = cont["value"].to_numpy() - cont["prediction"].to_numpy()
        out["mse"] = float(np.mean(err**2))
    if binary.height:
        correct = (binary["prediction"].to_numpy() > 0.5) == (binary["value"].to_numpy() > 0.5)
        out["accuracy"] = float(np.mean(correct))
    if "prediction_sd" in pred.columns:
        out["sd"] = float(pred["prediction_sd"].mean())  # type: ignore[arg-type]
    return out


def known_rows(model_dir: Path, store: Path, out: Path) -> None:
    """The store's rows whose symbols the model trained on. The holdout takes rows, so a
    readout labelled only a few times (sparse binary panels) can leave training entirely; the
    model refuses such rows by name rather than guess."""
    from lpm.data.store import open_store
    from lpm.models.registry import load_model

    model: Any = load_model(model_dir)
    vocab = model.vocab_
    rows = open_store(store).read()
    rows.filter(
        pl.col("perturbation").is_in(vocab.perturbations)
        & pl.col("readout").is_in(vocab.readouts)
        & pl.col("context").is_in(vocab.contexts)
    ).write_parquet(out)


def main() -> None:
    lines = [
        "# `lpm train` / `lpm predict` with the LPM on every real store",
        "",
        f"Produced by `python benchmarks/lpm_real_train.py` on {machine()}.",
        "",
        "Each store is trained as a whole (`lpm train --store S`, streamed in row groups, early "
        "stopping on a hashed 5 % of its rows), then every row of it is predicted. The fit "
        "columns score those predictions on the rows the model was trained on: they show the "
        "pipeline works end to end, not how well it generalises (see `lpm_accuracy.md`). "
        "Predicted rows: TRAINED_ROWS, the store's rows whose context, perturbation and readout "
        "the model trained on (a readout labelled only a few times can fall wholly into the "
        "held-out 5 %; the model refuses those rows by name). "
        "The spread is 0 for a single model and the ensemble members' SD otherwise. "
        '"Other load": CPU cores other processes used meanwhile (of 2); times under load are '
        "longer than on an idle machine.",
        "",
        "| store | model | train (s) | train peak RSS (GiB) | epochs | val loss | predict (s) | "
        "predicted rows | fit MSE (deltas) | fit accuracy (labels) | mean prediction_sd | "
        "other load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
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
            rows_path = Path(tmp) / f"{store}_{model}_rows.parquet"
            predict = ["predict", "--model", str(out), "--rows", str(rows_path)]
            predict += ["--out", str(pred_path)]
            trained = measure_lpm(train)
            known_rows(out, ROOT / path, rows_path)
            predicted = measure_lpm(predict)
            info = json.loads((out / "model.json").read_text())
            history = info.get("state", {}).get("history", [])
            epochs = ", ".join(str(h.get("epochs")) for h in history) or "?"
            vals = [h.get("val_loss") for h in history if h.get("val_loss") is not None]
            check = fit_check(pred_path)
            shown = [shlex.join(["lpm", *train[:-1], "M"]), shlex.join(["lpm", *predict[:-1]])]
            commands += [f"{c} P.parquet" if c.startswith("lpm predict") else c for c in shown]
            commands[-1] = commands[-1].replace(str(rows_path), "TRAINED_ROWS.parquet")
            commands[-1] = commands[-1].replace(str(out), "M")
            mse = f"{check['mse']:.4f}" if "mse" in check else "–"
            acc = f"{check['accuracy']:.3f}" if "accuracy" in check else "–"
            val = ", ".join(f"{v:.4f}" for v in vals) or "–"
            lines.append(
                f"| {store} | `{model}`{' ' + ' '.join(opts) if opts else ''} | "
                f"{trained.seconds:.0f} | {trained.peak_rss_gib:.2f} | {epochs} | {val} | "
                f"{predicted.seconds:.0f} | {check['rows']:,} | {mse} | {acc} | "
                f"{check['sd']:.4f} | {trained.other_load:.2f} |"
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
    write_text(RESULTS / "lpm_train_real.md", "\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'lpm_train_real.md'}")


if __name__ == "__main__":
    main()

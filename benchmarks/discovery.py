"""In-silico discovery, scored against ground truth, for the LPM and the no-model baselines.

Run from the repository root after `python benchmarks/real_data.py` (which builds the stores):
    .venv/bin/python benchmarks/discovery.py [--seeds 3]
Every step is an `lpm` command (printed, and listed in the report). Per seed, `lpm_fast` is
trained (`lpm train --store ...`, the seed in `--param seed=S`) on the whole of each store — a
discovery uses all the data there is — and then:
- simulator: `lpm embed` (UMAP coloured by type and by each compound's target), `lpm moa`
  (true compound targets), `lpm grn --method all` (true network), `lpm explain` (sanity check);
- L1000 A375: `lpm embed`, `lpm moa` (shared mechanism / target, Repurposing Hub + DrugCentral);
- L1000 A375 + Replogle K562 trained jointly: `lpm moa` (compounds vs knock-downs of their own
  targets), with the shared context of the predicted profiles A375 and K562 in turn;
- Replogle K562: `lpm grn --method all` against K562 ChIP-seq, CollecTRI, DoRothEA and TRRUST;
- McFaline (devel store): `lpm explain` (context vs perturbation).
The no-model baselines (measured-profile correlation, knock-down effects) come out of the same
commands; they do not depend on the seed except for the random rewiring. Writes
benchmarks/results/discovery.md, benchmarks/results/discovery/scores.csv (every figure of every
seed) and the seed-0 figures in benchmarks/results/discovery/.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from _common import DATA, GENE_INFO, RESULTS, STORES, machine, mean_sd, run, write_csv, write_text

WORK = STORES / "discovery"
OUT = RESULTS / "discovery"
SIM = STORES / "sim"
COMPOUNDS = DATA / "compounds"
DRH = COMPOUNDS / "drh_repurposing_drugs_20200324.txt"
REFERENCES = {
    "chipseq_k562": DATA / "causalbench_chipseq" / "K562_ChipSeq.csv.gz",
    "collectri": DATA / "tf_regulons" / "collectri_2023__hengkp.csv.gz",
    "dorothea": DATA / "tf_regulons" / "dorothea_ABC__hengkp.csv.gz",
    "trrust": DATA / "tf_regulons" / "trrust_v2_human__hasanalanya.tsv.gz",
}
TASKS: dict[str, list[Path]] = {
    "sim": [SIM / "store"],
    "lincs": [STORES / "lincs"],
    "lincs_replogle": [STORES / "lincs", STORES / "replogle"],
    "replogle": [STORES / "replogle"],
    "mcfaline": [STORES / "devel"],
}

#: Epochs of every lpm_fast here (early stopping may end sooner): the default 100 takes 10 min
#: per seed on the simulator's 4.3 M rows on two cores.
MAX_EPOCHS = 40
#: The parts of explain's summary.json reported (options, timings and histories are not).
EXPLAIN_KEYS = ("shares", "context_vs_perturbation", "test_mse", "sanity_check")
MCFALINE = ("mcfaline23/A172", "mcfaline23/T98G", "mcfaline23/U87MG")

COMMANDS: list[tuple[str, float]] = []
ROWS: list[dict[str, Any]] = []


def lpm(args: list[str]) -> None:
    """Run one lpm command, or reuse it from an interrupted run of this script (same text)."""
    done_file = WORK / "done.json"
    done = json.loads(done_file.read_text()) if done_file.is_file() else {}
    key = shlex.join(["lpm", *args])
    if key in done:
        print(f"reused: {key}", flush=True)
        COMMANDS.append((key, done[key]))
        return
    shown, _, dt = run(args)
    COMMANDS.append((shown, dt))
    done[key] = dt
    write_text(done_file, json.dumps(done, indent=1))


def stores(task: str) -> list[str]:
    return [a for p in TASKS[task] for a in ("--store", str(p))]


def train(task: str, seed: int) -> Path:
    out = WORK / "models" / f"{task}_s{seed}"
    lpm(["train", *stores(task), "--model", "lpm_fast", "--param", f"seed={seed}",
         "--param", f"max_epochs={MAX_EPOCHS}",
         "--out", str(out), "--overwrite"])  # fmt: skip
    return out


def add(task: str, seed: int, step: str, table: pl.DataFrame) -> None:
    """Collect a long table ``truth, method, metric, value`` under its task, seed and step."""
    for r in table.iter_rows(named=True):
        ROWS.append({"task": task, "seed": seed, "step": step, **r})


def moa_rows(folder: Path, label: str = "") -> pl.DataFrame:
    t = pl.read_csv(folder / "moa_scores.csv")
    metrics = [m for m in ("auroc", "average_precision", "recall_at_k", "base_rate", "n_queries",
                           "n_pairs", "n_unscored") if m in t.columns]  # fmt: skip
    return t.unpivot(index=["truth", "method"], on=metrics, variable_name="metric").with_columns(
        pl.col("method") + label, pl.col("value").cast(pl.Float64)
    )


def grn_rows(folder: Path) -> pl.DataFrame:
    t = pl.read_csv(folder / "scores.csv")
    return t.rename({"reference": "truth"}).select(
        "truth", "method", "metric", pl.col("value").cast(pl.Float64)
    )


def explain_rows(folder: Path) -> pl.DataFrame:
    summary = json.loads((folder / "summary.json").read_text())
    rows = [
        {
            "truth": "summary",
            "method": key.rpartition(".")[0] or "all",
            "metric": key.rpartition(".")[2],
            "value": float(v),
        }
        for key, v in _flatten(summary).items()
        if isinstance(v, int | float)
        and not isinstance(v, bool)
        and key.split(".")[0] in EXPLAIN_KEYS
    ]
    return pl.DataFrame(rows, schema={"truth": pl.String, "method": pl.String,
                                      "metric": pl.String, "value": pl.Float64})  # fmt: skip


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def keep_figure(src: Path | None, name: str) -> None:
    if src is not None and src.is_file():
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, OUT / name)


# ---- tasks ----------------------------------------------------------------------------------
def sim(seed: int) -> None:
    model, work = train("sim", seed), WORK / f"sim_s{seed}"
    truth = SIM / "truth"
    lpm(["embed", "--model", str(model), "--out", str(work / "embeddings.h5ad"), *stores("sim"),
         "--figure", str(work / "embeddings.png"), "--truth", str(truth), "--seed", str(seed),
         "--overwrite"])  # fmt: skip
    lpm(["moa", *stores("sim"), "--model", str(model), "--truth", str(truth),
         "--out", str(work / "moa"), "--overwrite"])  # fmt: skip
    add("sim", seed, "moa", moa_rows(work / "moa"))
    lpm(["grn", *stores("sim"), "--model", str(model), "--method", "all", "--reference",
         str(truth), "--seed", str(seed), "--out", str(work / "grn"), "--overwrite"])  # fmt: skip
    add("sim", seed, "grn", grn_rows(work / "grn"))
    # explain fits its own lpm_fast and AME on 80 % of the profiles and explains the rest
    lpm(["explain", *stores("sim"), "--truth", str(truth), "--ame", "--param", "lpm_ame.max_epochs=20",
         "--param", f"lpm_fast.max_epochs={MAX_EPOCHS}",
         "--seed", str(seed), "--out", str(work / "explain"), "--overwrite"])  # fmt: skip
    add("sim", seed, "explain", explain_rows(work / "explain"))
    if seed == 0:
        keep_figure(work / "embeddings.png", "sim_embeddings.png")
        keep_figure(work / "moa" / "moa.png", "sim_moa.png")
        for m in ("knockdown", "embedding", "imputed"):
            keep_figure(work / "grn" / f"module_{m}.png", f"sim_grn_module_{m}.png")
        keep_figure(work / "explain" / "importance.png", "sim_importance.png")


def lincs(seed: int) -> None:
    model, work = train("lincs", seed), WORK / f"lincs_s{seed}"
    lpm(["embed", "--model", str(model), "--out", str(work / "embeddings.h5ad"), *stores("lincs"),
         "--figure", str(work / "embeddings.png"), "--annotations", str(DRH), "--seed", str(seed),
         "--overwrite"])  # fmt: skip
    lpm(["moa", *stores("lincs"), "--model", str(model), "--compounds", str(COMPOUNDS),
         "--gene-info", str(GENE_INFO), "--out", str(work / "moa"), "--overwrite"])  # fmt: skip
    add("lincs", seed, "moa", moa_rows(work / "moa"))
    if seed == 0:
        keep_figure(work / "embeddings.png", "lincs_embeddings.png")
        keep_figure(work / "moa" / "moa.png", "lincs_moa.png")


def lincs_replogle(seed: int) -> None:
    model, work = train("lincs_replogle", seed), WORK / f"lincs_replogle_s{seed}"
    for ctx, label in (("lincs/A375", "@A375"), ("replogle22/K562", "@K562")):
        folder = work / f"moa{label.replace('@', '_')}"
        lpm(["moa", *stores("lincs_replogle"), "--model", str(model), "--context", ctx,
             "--compounds", str(COMPOUNDS), "--gene-info", str(GENE_INFO), "--out", str(folder),
             "--overwrite"])  # fmt: skip
        rows = moa_rows(folder)
        # the embedding and measured rankings do not depend on the shared context: keep them once
        keep = rows.filter(pl.col("method") == "predicted_profile") if label == "@K562" else rows
        add("lincs_replogle", seed, "moa", keep.with_columns(
            pl.when(pl.col("method") == "predicted_profile").then(pl.col("method") + label)
            .otherwise(pl.col("method")).alias("method")))  # fmt: skip
        if seed == 0:
            keep_figure(folder / "moa.png", f"lincs_replogle_moa{label.replace('@', '_')}.png")


def replogle(seed: int) -> None:
    model, work = train("replogle", seed), WORK / f"replogle_s{seed}"
    refs = [a for p in REFERENCES.values() for a in ("--reference", str(p))]
    lpm(["grn", *stores("replogle"), "--model", str(model), "--method", "all", *refs,
         "--gene-info", str(GENE_INFO), "--seed", str(seed), "--out", str(work / "grn"),
         "--overwrite"])  # fmt: skip
    add("replogle", seed, "grn", grn_rows(work / "grn"))
    if seed == 0:
        for m in ("knockdown", "embedding", "imputed"):
            keep_figure(work / "grn" / f"module_{m}.png", f"replogle_grn_module_{m}.png")


def mcfaline(seed: int) -> None:
    work = WORK / f"mcfaline_s{seed}"
    ctx = [a for c in MCFALINE for a in ("--context", c)]
    lpm(["explain", *stores("mcfaline"), *ctx, "--ame", "--seed", str(seed),
         "--param", f"lpm_fast.max_epochs={MAX_EPOCHS}",
         "--out", str(work / "explain"), "--overwrite"])  # fmt: skip
    add("mcfaline", seed, "explain", explain_rows(work / "explain"))
    if seed == 0:
        keep_figure(work / "explain" / "importance.png", "mcfaline_importance.png")


STEPS: dict[str, Callable[[int], None]] = {
    "sim": sim, "lincs": lincs, "lincs_replogle": lincs_replogle, "replogle": replogle,
    "mcfaline": mcfaline,
}  # fmt: skip


# ---- report ---------------------------------------------------------------------------------
def summarise(rows: pl.DataFrame) -> pl.DataFrame:
    return (
        rows.filter(pl.col("value").is_not_null())
        .group_by("task", "step", "truth", "method", "metric", maintain_order=True)
        .agg(
            pl.col("value").mean().alias("mean"),
            pl.col("value").std().alias("sd"),
            pl.len().alias("n_seeds"),
        )
    )


def cell(mean: float, sd: float | None, digits: int) -> str:
    """Mean ± sd over seeds (sd 0, as of the seed-free baselines, left out); values too small
    for ``digits`` decimals get two significant digits (base rates)."""
    return mean_sd(mean, sd or None, digits=digits, significant=2)


def table(
    s: pl.DataFrame, task: str, step: str, metrics: list[str], *, by_truth: bool = True
) -> list[str]:
    part = s.filter((pl.col("task") == task) & (pl.col("step") == step))
    if part.is_empty():
        return ["(no rows)", ""]
    head = ["ground truth", "method", *metrics] if by_truth else ["method", *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (truth, method), g in part.group_by("truth", "method", maintain_order=True):
        vals = {r["metric"]: (r["mean"], r["sd"]) for r in g.iter_rows(named=True)}
        if not any(m in vals for m in metrics):
            continue
        cells = [
            cell(*vals[m], digits=0 if m.startswith("n_") else 3) if m in vals else "–"
            for m in metrics
        ]
        lines.append(
            "| " + " | ".join(([str(truth)] if by_truth else []) + [str(method), *cells]) + " |"
        )
    return [*lines, ""]


def explain_table(s: pl.DataFrame, task: str, group: str, metrics: list[str]) -> list[str]:
    """One explain summary block (``shares``, ``sanity_check``, ...): a row per method."""
    part = s.filter(
        (pl.col("task") == task) & (pl.col("step") == "explain")
        & pl.col("method").str.starts_with(group)
    ).with_columns(pl.col("method").str.strip_prefix(group).str.strip_prefix("."))  # fmt: skip
    if part.is_empty():
        return ["(no rows)", ""]
    lines = ["| method | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 1)]
    for (method,), g in part.group_by("method", maintain_order=True):
        vals = {r["metric"]: (r["mean"], r["sd"]) for r in g.iter_rows(named=True)}
        cells = [
            cell(*vals[m], digits=0 if m.startswith("n_") else 4) if m in vals else "–"
            for m in metrics
        ]
        lines.append(f"| {method or 'all'} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def explain_block(s: pl.DataFrame, task: str, sanity: bool) -> list[str]:
    shares = ["perturbation", "context", "readout", "dose"]
    lines = [
        "Share of importance by input (post-hoc: error increase when the input is swapped for its "
        "neutral value; AME: gate weights), over held-out rows:",
        "",
        *explain_table(s, task, "shares", shares),
        "Context's part of what context and perturbation explain together:",
        "",
        *explain_table(s, task, "context_vs_perturbation", ["posthoc", "ame_attention"]),
        "Held-out MSE of the explained `lpm_fast` and of the AME:",
        "",
        *explain_table(s, task, "test_mse", ["lpm", "ame", "n_test_rows"]),
    ]
    if sanity:
        lines += [
            "Sanity check: per-perturbation importance of perturbations without a downstream "
            "effect (truth) against the others; AUROC of telling them apart (1: perfectly, 0.5: "
            "not at all):",
            "",
            *explain_table(
                s,
                task,
                "sanity_check",
                [
                    "mean_no_effect",
                    "mean_effect",
                    "auroc",
                    "mannwhitney_p",
                    "n_no_effect",
                    "n_effect",
                ],
            ),
        ]
    return lines


def report(rows: pl.DataFrame, seeds: list[int], wall: float) -> str:
    s = summarise(rows)
    moa_m = ["auroc", "average_precision", "recall_at_k", "base_rate", "n_queries", "n_pairs"]
    grn_m = ["auprc", "base_rate", "precision_at_100", "precision_at_500", "random_precision_at_100",
             "lift_precision_at_100", "auprc_top", "random_auprc_top", "lift_auprc_top"]  # fmt: skip
    lines = [
        "# In-silico discovery: mechanisms, gene networks, which input drives a prediction",
        "",
        f"Command: `.venv/bin/python benchmarks/discovery.py --seeds {len(seeds)}` "
        f"(seeds {', '.join(map(str, seeds))}; {sum(dt for _, dt in COMMANDS) / 60:.1f} min of "
        f"commands, this pass {wall / 60:.1f} min, on {machine()}). A pass reuses the commands an "
        "interrupted pass finished (the same command text); each keeps the time it took then.",
        f"Each cell is the mean ± sd over seeds of a model `lpm_fast` (at most {MAX_EPOCHS} epochs) "
        "trained on the whole store with that seed; the no-model baselines (`measured_profile`, `knockdown`) do not depend on it "
        "(sd 0 is not printed). Every command is listed at the end; every figure of every seed is in "
        "`discovery/scores.csv`.",
        "",
        "## Mechanism of action (`lpm moa`)",
        "",
        "Per compound, candidates ranked by cosine similarity of learned embeddings (`embedding`), "
        "by correlation of the model's predicted profiles in one shared context (`predicted_profile`), "
        "and, without a model, by correlation of measured deltas over the readouts both measured "
        "(`measured_profile`). AUROC and average precision per compound, averaged (MAP); "
        "`base_rate` is the MAP of chance.",
        "",
        "### Simulator: true targets among all genetic perturbations",
        "",
        *table(s, "sim", "moa", moa_m),
        "### L1000 A375: compounds sharing an annotated mechanism / target rank each other higher",
        "",
        *table(s, "lincs", "moa", moa_m),
        "### L1000 A375 + Replogle K562 (trained jointly): compounds rank knock-downs of their own targets",
        "",
        *table(s, "lincs_replogle", "moa", moa_m),
        "`n_pairs`: (compound, knock-down of its annotated target) pairs present in both data sets.",
        "",
        "## Gene networks (`lpm grn`)",
        "",
        "Edges from measured knock-down effects (`knockdown`, no model), from similarity of learned "
        "perturbation embeddings (`embedding`) and from the LPM-completed perturbation × readout "
        "matrix (`imputed`). Universe: every knocked-down gene × every readout. `random_*`: the "
        "method's top network rewired with every gene's in- and out-degree kept (mean of 3); "
        "`lift` = method / random.",
        "",
        "### Simulator: the true network (union over contexts)",
        "",
        *table(s, "sim", "grn", grn_m),
        "### Replogle K562: ChIP-seq and TF regulons",
        "",
        *table(s, "replogle", "grn", grn_m),
        "## Which input drives a prediction (`lpm explain`)",
        "",
        "### Simulator",
        "",
        *explain_block(s, "sim", sanity=True),
        "### McFaline glioblastoma lines (A172, T98G, U87MG): context rather than perturbation?",
        "",
        *explain_block(s, "mcfaline", sanity=False),
        "## Figures (seed 0)",
        "",
    ]
    for png in sorted(OUT.glob("*.png")):
        lines.append(f"![{png.stem}](discovery/{png.name})")
    lines += ["", "## Commands", "", "| command | seconds |", "|---|---|"]
    lines += [f"| `{c}` | {dt:.1f} |" for c, dt in COMMANDS]
    return "\n".join(lines) + "\n"


def main() -> None:
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", default=",".join(STEPS))
    parser.add_argument(
        "--fresh", action="store_true", help="rerun every command (default: reuse finished ones)"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite discovery.md from discovery/scores.csv and discovery/commands.json",
    )
    args = parser.parse_args()
    if args.report_only:
        rows = pl.read_csv(OUT / "scores.csv")
        saved = json.loads((OUT / "commands.json").read_text())
        COMMANDS.extend((c, dt) for c, dt in saved["commands"])
        seeds = sorted(rows["seed"].unique().to_list())
        write_text(RESULTS / "discovery.md", report(rows, seeds, saved["wall_s"]))
        print(f"wrote {RESULTS / 'discovery.md'}")
        return
    missing = [str(p) for t in args.tasks.split(",") for p in TASKS[t] if not p.is_dir()]
    if missing:
        sys.exit(f"missing store(s) {', '.join(missing)}: run python benchmarks/real_data.py first")
    if args.fresh and (WORK / "done.json").is_file():
        (WORK / "done.json").unlink()
    t0 = time.perf_counter()
    seeds = list(range(args.seeds))
    for seed in seeds:
        for task in args.tasks.split(","):
            STEPS[task](seed)
    rows = pl.DataFrame(ROWS)
    write_csv(rows, OUT / "scores.csv")
    wall = time.perf_counter() - t0
    write_text(OUT / "commands.json", json.dumps({"commands": COMMANDS, "wall_s": wall}, indent=1))
    write_text(RESULTS / "discovery.md", report(rows, seeds, wall))
    print(f"wrote {RESULTS / 'discovery.md'}")


if __name__ == "__main__":
    main()

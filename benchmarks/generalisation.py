"""Generalisation to perturbations, contexts and doses never seen in training; control anchoring.

Run from the repository root after `python benchmarks/real_data.py` (which builds the stores):
    .venv/bin/python benchmarks/generalisation.py [--seeds 3] [--only replogle,sim,...]
1. Feature tables (`prepare`): GO gene features (for the linear baseline; the LPM takes the
   keyword `go`), Morgan fingerprints of the L1000 A375 compounds (names and the plate's Broad
   ids), SubTab context features from the McFaline control cells, from PerturbQA's measured-gene
   panels and from the simulator's baseline expression, and the simulator's own priors (its
   reference network as gene features, compound target profiles as compound features).
2. Real data: one `lpm benchmark` per task, 3 seeds, featurised `lpm_fast` beside the baselines
   given the same features, with control anchoring on (`@anchored`: 8 control profiles per
   batch of 128) and off; on Replogle also 32 per batch (`@anchor32`): test error by batch
   composition.
3. Simulator (`sim_gen`, 1.28 M rows): unseen perturbation, unseen context, unseen dose; each
   model is scored on half of the test readouts; the ceiling is the same LPM trained also on the
   other half of the test readouts (it saw the test symbols).
Writes benchmarks/results/generalisation.md and benchmarks/results/generalisation/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from _common import DATA, RESULTS, STORES, machine, metric_table, run, write_csv, write_text

OUT = RESULTS / "generalisation"
FEATURES = STORES / "features"
SIM = STORES / "sim_gen"
#: Epoch cap of every lpm_fast (early stopping may end sooner), for 2 CPU cores.
MAX_EPOCHS = 30
SIM_EPOCHS = 60
#: PerturbQA: 10,440 readouts per profile make an epoch slow.
PQA_EPOCHS = 20
#: Control profiles added to every batch of 128 profiles, by variant.
ANCHORS = {"anchored": 8, "anchor32": 32}
os.environ.setdefault("LPM_PRIORS", str(DATA.resolve()))


# ---- feature tables -------------------------------------------------------------------------------
def feature_paths() -> dict[str, Path]:
    return {
        "go": FEATURES / "go.parquet",
        "morgan": FEATURES / "lincs_morgan.parquet",
        "devel_ctx": FEATURES / "devel_contexts.parquet",
        "perturbqa_ctx": FEATURES / "perturbqa_contexts.parquet",
        "sim_ctx": FEATURES / "sim_contexts.parquet",
        "sim_genes": FEATURES / "sim_genes.parquet",
        "sim_members": FEATURES / "sim_members.parquet",
    }


def prepare(out: dict[str, Path]) -> None:
    """Build the feature tables not built yet: with `lpm features` where it makes them, with
    the library where the command has no option for them (the plate's Broad ids, the
    simulator's control replicates, the simulator's own priors)."""
    from lpm.data.io.gct import parse_gct
    from lpm.priors.compound_features import compound_features
    from lpm.priors.context_features import (
        simulation_control_samples,
        subtab_embeddings,
        write_feature_table,
    )

    if not out["go"].is_file():
        run(["features", "genes", "--source", "go", "--out", str(out["go"])])
    if not out["morgan"].is_file():
        meta = parse_gct(DATA / "lincs_l1000_a375" / "test_l1000.gct").col_meta
        treated = meta[meta["pert_type"].isin(["trt_cp", "trt_poscon"])]
        ids = {
            f"compound:{n}": b
            for n, b in zip(treated["pert_iname"], treated["pert_id"], strict=True)
        }
        fp = compound_features(DATA / "compounds", sorted(ids), broad_ids=ids)
        write_feature_table(fp.drop("smiles").rename({"compound": "symbol"}), out["morgan"])
        print(f"morgan: {fp.height} of {len(ids)} A375 compounds resolve to a SMILES")
    if not out["devel_ctx"].is_file():
        h5ad = DATA / "norman19_mcfaline23_devel" / "devel.h5ad"
        run(["features", "contexts", "--h5ad", str(h5ad), "--out", str(out["devel_ctx"])])
    if not out["perturbqa_ctx"].is_file():
        store = STORES / "perturbqa"
        run(["features", "contexts", "--store", str(store), "--out", str(out["perturbqa_ctx"])])
    if not (SIM / "store").is_dir():
        run(["simulate", "--out", str(SIM), "--genes", "1000", "--perturbations", "300",
             "--contexts", "5", "--cells", "30", "--seed", "0"])  # fmt: skip
    if not out["sim_ctx"].is_file():
        x, g, _ = simulation_control_samples(SIM / "truth", SIM / "store")
        write_feature_table(subtab_embeddings(x, g, seed=0), out["sim_ctx"])
    if not out["sim_genes"].is_file():
        _simulator_priors(out["sim_genes"], out["sim_members"])


def _simulator_priors(genes_out: Path, members_out: Path, k: int = 32) -> None:
    """The simulator's analogue of GO and of structure: its reference network, low-rank.

    Gene g: the top-k SVD factors of its signed out-edges and in-edges (mean over contexts).
    Compound c: the sum of its targets' out-edge factors weighted by each target's ``emax``
    (what a structure-to-target model would know). Member symbols, so types are explicit.
    """
    from lpm.priors.context_features import write_feature_table

    truth = SIM / "truth"
    genes = pl.read_parquet(truth / "genes.parquet")["gene"].to_list()
    gi = {g: i for i, g in enumerate(genes)}
    edges = (
        pl.read_parquet(truth / "edges.parquet")
        .group_by("source", "target")
        .agg((pl.col("weight") * pl.col("sign")).mean().alias("w"))
    )
    a = np.zeros((len(genes), len(genes)))
    a[[gi[s] for s in edges["source"]], [gi[t] for t in edges["target"]]] = edges["w"].to_numpy()
    u, s, vt = np.linalg.svd(a)
    out_f, in_f = u[:, :k] * s[:k], vt[:k].T * s[:k]
    cols = [f"out_{i}" for i in range(k)] + [f"in_{i}" for i in range(k)]
    gene_table = pl.DataFrame({"symbol": genes}).with_columns(
        pl.DataFrame(np.hstack([out_f, in_f]).astype(np.float32), schema=cols)
    )
    write_feature_table(gene_table, genes_out)
    targets = pl.read_parquet(truth / "compound_targets.parquet")
    comps = sorted(targets["perturbation"].unique().to_list())
    comp = np.zeros((len(comps), 2 * k), dtype=np.float32)
    for i, c in enumerate(comps):
        t = targets.filter(pl.col("perturbation") == c)
        for g, e in zip(t["target"], t["emax"], strict=True):
            comp[i, :k] += e * out_f[gi[g]]
    rows = [
        pl.DataFrame({"symbol": [f"{kind}:{g}" for g in genes]}).with_columns(
            pl.DataFrame(np.hstack([out_f, in_f]).astype(np.float32), schema=cols)
        )
        for kind in ("CRISPRi", "CRISPRa")
    ]
    rows.append(pl.DataFrame({"symbol": comps}).with_columns(pl.DataFrame(comp, schema=cols)))
    write_feature_table(pl.concat(rows), members_out)


# ---- real-data tasks (lpm benchmark) --------------------------------------------------------------
def tasks(f: dict[str, Path]) -> dict[str, dict[str, Any]]:
    lpm = f"lpm_fast.max_epochs={MAX_EPOCHS}"
    anchored = [f"lpm_fast@{k}.anchor_controls={v}" for k, v in ANCHORS.items()]
    return {
        "replogle_unseen_perturbation": {
            "store": STORES / "replogle",
            "split": "unseen_perturbation",
            "models": ["context_mean", "linear", "lpm_fast", "lpm_fast@anchored", "lpm_fast@anchor32"],
            "params": [lpm, f"linear.perturbation_embeddings={f['go']}",
                       "lpm_fast.perturbation_features=go", *anchored],
        },
        "lincs_unseen_compound": {
            "store": STORES / "lincs",
            "split": "unseen_perturbation",
            "models": ["context_mean", "linear", "lpm_fast", "lpm_fast@anchored"],
            "params": [lpm, f"linear.perturbation_embeddings={f['morgan']}",
                       f"lpm_fast.perturbation_features={f['morgan']}",
                       anchored[0]],
        },
        "lincs_unseen_dose": {
            "store": STORES / "lincs",
            "split": "unseen_dose",
            "models": ["context_mean", "perturbation_mean", "nearest_dose", "lpm_fast",
                       "lpm_fast@anchored"],
            "params": [lpm, f"lpm_fast.perturbation_features={f['morgan']}", anchored[0]],
        },
        **{
            f"mcfaline_unseen_{line}": {
                "store": STORES / "devel",
                "split": "unseen_context",
                "split_params": [f"context=mcfaline23/{line}"],
                "models": ["perturbation_mean", "lpm_fast", "lpm_fast@anchored"],
                "params": [lpm, f"lpm_fast.context_features={f['devel_ctx']}",
                           "lpm_fast.perturbation_features=go",
                           anchored[0]],
            }
            for line in ("A172", "T98G", "U87MG")
        },
        "perturbqa_unseen_K562": {
            "store": STORES / "perturbqa",
            "split": "unseen_context",
            "split_params": ["context=perturbqa/K562"],
            "models": ["perturbation_mean", "lpm_fast", "lpm_fast@anchored"],
            "params": [f"lpm_fast.max_epochs={PQA_EPOCHS}", f"lpm_fast.context_features={f['perturbqa_ctx']}",
                       "lpm_fast.perturbation_features=go", anchored[0]],
        },
    }  # fmt: skip


def run_task(name: str, spec: dict[str, Any], seeds: int) -> float:
    out = OUT / name
    if (out / "results.csv").is_file():
        print(f"{name}: done (delete {out} to rerun)")
        return float("nan")
    args = ["benchmark", "--store", str(spec["store"]), "--split", spec["split"],
            "--models", ",".join(spec["models"]), "--seeds", str(seeds), "--out", str(out),
            "--n-boot", "200", "--title", name]  # fmt: skip
    for p in spec["params"]:
        args += ["--param", p]
    for p in spec.get("split_params", []):
        args += ["--split-param", p]
    shown, _, dt = run(args)
    write_text(out / "command.txt", f"{shown}\n# {dt:.0f} s\n")
    return dt


# ---- simulator with the ceiling --------------------------------------------------------------
SIM_KINDS = {
    "unseen_perturbation": ({}, "context_mean"),
    "unseen_context": ({"context": "sim_rnaseq/S01"}, "perturbation_mean"),
    "unseen_dose": ({}, "nearest_dose"),
}


def simulator(f: dict[str, Path], seeds: int) -> pl.DataFrame:
    """Per kind and seed: baselines, featurised LPM (anchoring off/on) and the ceiling, all
    scored on the same half of the test readouts."""
    from lpm.data.splits import make_split
    from lpm.data.store import open_store
    from lpm.evaluation.panel import evaluate
    from lpm.models.registry import get_model

    done = OUT / "simulator_scores.csv"
    if done.is_file():
        return pl.read_csv(done)
    rows = open_store(SIM / "store").read()
    feats = {
        "perturbation_features": str(f["sim_members"]),
        "context_features": str(f["sim_ctx"]),
        "max_epochs": SIM_EPOCHS,
    }
    scores = []
    for kind, (split_params, baseline) in SIM_KINDS.items():
        for seed in range(seeds):
            split = make_split(rows, kind=kind, seed=seed, **split_params)
            readouts = sorted(split.test["readout"].unique().to_list())
            rng = np.random.default_rng([seed, 11])
            half = set(rng.choice(readouts, size=len(readouts) // 2, replace=False).tolist())
            seen_half = split.test.filter(pl.col("readout").is_in(list(half)))
            scored = split.test.filter(~pl.col("readout").is_in(list(half)))
            models = {
                baseline: (get_model(baseline), split.train),
                "lpm_fast (no features)": (get_model("lpm_fast", seed=seed, max_epochs=SIM_EPOCHS), split.train),
                "lpm_fast": (get_model("lpm_fast", seed=seed, **feats), split.train),
                "lpm_fast@anchored": (get_model("lpm_fast", seed=seed, anchor_controls=8, **feats), split.train),
                "ceiling": (get_model("lpm_fast", seed=seed, **feats), pl.concat([split.train, seen_half], how="diagonal_relaxed")),
            }  # fmt: skip
            preds, masks = {}, {}
            for name, (model, train) in models.items():
                t0 = time.perf_counter()
                model.fit(train, split.val)
                masks[name] = model.supported(scored)
                if masks[name].any():
                    preds[name] = model.predict(scored.filter(pl.Series(masks[name])))
                print(f"sim {kind} seed {seed} {name}: covers {masks[name].mean():.2f}, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
            # scored on the rows every model that covers (nearly) all of them predicts
            main = [m for m, ok in masks.items() if ok.mean() >= 0.9]
            common = np.logical_and.reduce([masks[m] for m in main])
            for name, ok in masks.items():
                scores.append({"kind": kind, "seed": seed, "model": name, "metric": "coverage",
                               "mean": float(ok.mean())})  # fmt: skip
                if name not in main:
                    continue
                full = np.full(scored.height, np.nan, dtype=np.float32)
                full[ok] = preds[name]
                res = evaluate(scored.filter(pl.Series(common)), full[common],
                               train=split.train, n_boot=0, seed=seed)  # fmt: skip
                for r in res.summary.iter_rows(named=True):
                    scores.append({"kind": kind, "seed": seed, "model": name, "metric": r["metric"],
                                   "mean": r["mean"]})  # fmt: skip
    table = pl.DataFrame(scores)
    write_csv(table, done)
    return table


# ---- report ---------------------------------------------------------------------------------------
METRICS = ("pearson_delta_vs_mean", "discrimination", "pearson_delta", "mse")
BINARY = ("auroc", "auprc", "auroc_pooled", "auprc_pooled")


def task_table(name: str) -> list[str]:
    path = OUT / name / "results.csv"
    if not path.is_file():
        return [f"*{name}: not run*", ""]
    res = pl.read_csv(path)
    metrics = BINARY if name.startswith("perturbqa") else METRICS
    lines = []
    for group in res["group"].unique(maintain_order=True).to_list():
        sub = res.filter(pl.col("group") == group)
        lines += metric_table(group, sub, metrics)
    cmd = (OUT / name / "command.txt").read_text().strip().splitlines()
    return [*lines, "```", *cmd, "```", ""]


def sim_table(scores: pl.DataFrame) -> list[str]:
    lines = []
    agg = scores.group_by("kind", "model", "metric", maintain_order=True).agg(
        pl.col("mean").mean().alias("m"), pl.col("mean").std().alias("sd")
    )
    for kind in SIM_KINDS:
        sub = agg.filter(pl.col("kind") == kind)
        cols = ("coverage", *METRICS)
        lines += metric_table(kind, sub, cols, columns=("m", "sd"), missing="n/a (refuses)")
    return lines


def report(names: list[str], sim: pl.DataFrame | None, seeds: int, wall: dict[str, float]) -> Path:
    lines = [
        "# Generalisation: perturbations, contexts and doses never seen in training",
        "",
        f"`python benchmarks/generalisation.py --seeds {seeds}`; {machine()}.",
        f"`lpm_fast` at most {MAX_EPOCHS} epochs ({PQA_EPOCHS} on PerturbQA, {SIM_EPOCHS} on the simulator),"
        " early stopping on the split's validation part; mean ± sd over seeds.",
        "`pearson_delta_vs_mean` is the systematic-variation-corrected Pearson (Systema);",
        "`discrimination` 1.0 means each prediction is nearest its own profile, 0.5 chance.",
        "",
    ]
    for name in names:
        lines += [f"## {name}", "", *task_table(name)]
    if sim is not None:
        lines += ["## Simulator (sim_gen: 1,000 genes, 300 perturbations, 5 contexts)", "",
                  "Scored on a seeded half of the test readouts; `ceiling` also trained on the",
                  "other half of the test rows (it saw every test symbol).", "",
                  *sim_table(sim)]  # fmt: skip
    for name in names:  # each task's own record (lanes run in parallel share wall.json)
        cmd = OUT / name / "command.txt"
        if cmd.is_file():
            wall[name] = float(cmd.read_text().splitlines()[-1].strip("# s"))
    lines += ["## Wall time", "", *[f"- {k}: {v:.0f} s" for k, v in wall.items()], "",
              "What the figures say: `generalisation_analysis.md`.", ""]  # fmt: skip
    return write_text(RESULTS / "generalisation.md", "\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated task names (or 'sim')")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    f = feature_paths()
    if not args.report_only:
        prepare(f)
    all_tasks = tasks(f)
    only = {x for x in args.only.split(",") if x}
    wall_file = OUT / "wall.json"
    wall = json.loads(wall_file.read_text()) if wall_file.is_file() else {}
    if not args.report_only:
        for name, spec in all_tasks.items():
            if only and name not in only:
                continue
            dt = run_task(name, spec, args.seeds)
            if np.isfinite(dt):
                wall[name] = dt
                write_text(wall_file, json.dumps(wall, indent=1))
    sim = None
    if args.report_only or not only or "sim" in only:
        if args.report_only and not (OUT / "simulator_scores.csv").is_file():
            sim = None
        else:
            t0 = time.perf_counter()
            sim = simulator(f, args.seeds)
            if "simulator" not in wall:
                wall["simulator"] = time.perf_counter() - t0
                write_text(wall_file, json.dumps(wall, indent=1))
    print(f"wrote {report(list(all_tasks), sim, args.seeds, wall)}")


if __name__ == "__main__":
    sys.exit(main())

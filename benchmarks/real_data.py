"""Ingest every real dataset in ../shared/data (alone and jointly) and benchmark the baselines.

Run from the repository root:  .venv/bin/python benchmarks/real_data.py [--only NAME ...]
Writes stores to benchmarks/stores/ (not committed: licences differ) and results to
benchmarks/results/ (committed): ingest.md with `lpm info` of every store, one folder per
benchmark with results.md/csv/png, and baselines.md collating them with their commands.
Every command is run through the `lpm` CLI exactly as printed. ``--only`` names stores and
benchmarks: only those are ingested and run, and only their sections of ingest.md and
baselines.md are replaced (or added); the others stay as they were.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from _common import DATA, GENE2GO, GENE_INFO, REAL_STORES, RESULTS, ROOT, STORES, run, write_text

BASELINES = "no_change,context_mean,perturbation_mean,additive,linear"


def ingests() -> dict[str, list[str]]:
    """The `lpm ingest` command of each real store, by store name (--out is added by main)."""
    g = ["--gene-info", str(GENE_INFO), "--overwrite"]
    d = DATA
    cells = ("k562", "rpe1", "hepg2", "jurkat")
    pqa = [str(d / "perturbqa_de_labels" / f"{c}-de.csv.gz") for c in cells]
    pqa_dir = [str(d / "perturbqa_de_labels" / f"{c}-dir.csv.gz") for c in cells]
    replogle = d / "replogle22_k562_gw"
    replogle_flags = ["--dataset", "replogle22", "--cell-line", "K562"]
    replogle_flags += ["--perturbation-type", "CRISPRi"]
    perturbqa_flags = ["--dataset", "perturbqa", "--perturbation-type", "CRISPRi"]
    return {
        "devel": ["ingest", str(d / "norman19_mcfaline23_devel" / "devel.h5ad"), *g],
        "replogle": ["ingest", str(replogle / "replogle_k562.npz"), *replogle_flags, *g],
        "replogle_csv": [
            "ingest",
            str(replogle / "replogle_k562_gwps_2000pert_x_300genes_delta_log1p.csv.gz"),
            *replogle_flags,
            "--perturbation-column",
            "target_symbol",
            *g,
        ],
        "lincs": [
            "ingest",
            str(d / "lincs_l1000_a375" / "test_l1000.gct"),
            "--dataset",
            "lincs",
            *g,
        ],
        "lincs_l4": [
            "ingest",
            str(d / "lincs_l1000_a375" / "test_l1000_highprecision.gctx"),
            "--dataset",
            "lincs_l4",
            *g,
        ],
        "perturbqa": ["ingest", *pqa, *perturbqa_flags, *g],
        "perturbqa_dir": ["ingest", *pqa_dir, *perturbqa_flags, *g],
        **_multi_context_ingests(d, g),
        "norman_growth": [
            "ingest",
            str(d / "norman19_gi" / "processed_fitnesses.csv"),
            "--layout",
            "pairwise",
            "--dataset",
            "norman19_growth",
            "--cell-line",
            "K562",
            "--perturbation-type",
            "CRISPRa",
            "--control-label",
            "negative",
            *g,
        ],
        **sigrecon_ingests(),
    }


def sigrecon_ingests() -> dict[str, list[str]]:
    """The sigrecon ranked lists as binary "gene in the top 100" readouts (docs/guide.md).
    sci-Plex has only 69 lists, so its panel takes genes in the top 100 of 3 lists, not 10; its
    genes are Ensembl ids, mapped to symbols by --gene-info (two ids of one gene: best rank)."""
    folder = DATA / "sigrecon_ranked_signatures"
    ranked = ["--layout", "ranked", "--top-k", "100", "--gene-info", str(GENE_INFO), "--overwrite"]
    drugs = ["--perturbation-type", "compound", "--duplicate-genes", "best-rank"]
    return {
        "sigrecon_perturbseq": [
            "ingest", str(folder / "perturbseq_ranked_up_lists.csv.gz"), *ranked,
            "--panel-min-lists", "10", "--dataset", "sigrecon_perturbseq",
            "--perturbation-type", "CRISPRi",
        ],
        "sigrecon_sciplex": [
            "ingest", str(folder / "sciplex_ranked_up_lists.csv.gz"), *ranked,
            "--panel-min-lists", "3", "--dataset", "sigrecon_sciplex", *drugs,
        ],
        "sigrecon_tahoe": [
            "ingest", str(folder / "tahoe_ranked_up_lists_top1000.csv.gz"), *ranked,
            "--panel-min-lists", "10", "--dataset", "sigrecon_tahoe", *drugs,
        ],
    }  # fmt: skip


def _multi_context_ingests(d: Path, g: list[str]) -> dict[str, list[str]]:
    """PRISM (killing AUC; dose series) and the 65-line L1000 signatures: the same compounds in
    many cell lines. Their readouts are not genes, so --gene-info is left out for PRISM."""
    prism = d / "prism_repurposing_489lines"
    contexts = ["--layout", "contexts", "--readout-type", "viability"]
    return {
        "prism_auc": [  # a killing score, 0 as untreated: an effect (delta), not a viability
            "ingest", str(prism / "PREP2_AUC_n1396x489.gctx"), "--layout", "contexts",
            "--readout-type", "delta",
            "--readout-name", "killing_auc", "--dataset", "prism", "--overwrite",
        ],
        "prism_doses": [
            "ingest", str(prism / "PREP2_MODZ.ZSPC.COMBAT_n648x489.gctx"),
            str(prism / "PASG002_MODZ.ZSPC_n383x489.gctx"), *contexts,
            "--row-metadata", str(prism / "PRISM_cell_meta_489.csv"), "--drop-type", "lma_x",
            "--overwrite",
        ],
        "lincs65": [
            "ingest", str(d / "lincs_l1000_65lines" / "modzs_n272x978.gctx"),
            "--lincs-level", "5", "--dataset", "lincs65", *g,
        ],
    }  # fmt: skip


def sigrecon_benchmarks() -> dict[str, list[str]]:
    """unseen_pair on each sigrecon store: a list held out in one line, its perturbation's lists
    in the other lines seen (the cross-context transfer these sets exist for)."""
    titles = {
        "sigrecon_perturbseq": "Replogle K562/RPE1 knock-downs",
        "sigrecon_sciplex": "sci-Plex 3 drugs in A549/K562/MCF7",
        "sigrecon_tahoe": "Tahoe-100M drugs in 10 lines",
    }
    return {
        f"{name}_unseen_pair": [
            "benchmark", "--store", str(STORES / name), "--split", "unseen_pair",
            "--models", BASELINES, "--seeds", "3",
            "--title", f"Baselines: sigrecon {what}, gene in the top 100 (binary), unseen pairs",
        ]
        for name, what in titles.items()
    }  # fmt: skip


def _baselines(store: str, title: str) -> list[str]:
    """`lpm benchmark` of the five baselines on unseen (perturbation, context) pairs, 3 seeds."""
    return ["benchmark", "--store", str(STORES / store), "--split", "unseen_pair",
            "--models", BASELINES, "--seeds", "3", "--title", title]  # fmt: skip


def benchmarks(go: Path) -> dict[str, list[str]]:
    s = STORES
    return {
        "mcfaline_unseen_pair": [
            "benchmark",
            "--store",
            str(s / "devel"),
            "--split",
            "unseen_pair",
            "--models",
            BASELINES,
            "--seeds",
            "3",
            "--title",
            "Baselines: McFaline/Norman devel set, unseen (perturbation, context) pairs",
        ],
        "replogle_unseen_perturbation": [
            "benchmark",
            "--store",
            str(s / "replogle"),
            "--split",
            "unseen_perturbation",
            "--models",
            BASELINES,
            "--seeds",
            "3",
            "--param",
            f"linear.perturbation_embeddings={go}",
            "--title",
            "Baselines: Replogle K562, knock-downs never seen in training (linear: GO gene embeddings)",
        ],
        "perturbqa_unseen_pair": [
            "benchmark",
            "--store",
            str(s / "perturbqa"),
            "--split",
            "unseen_pair",
            "--models",
            BASELINES,
            "--seeds",
            "3",
            "--title",
            "Baselines: PerturbQA DE labels, four cell lines, unseen (perturbation, context) pairs",
        ],
        "simulator_unseen_pair": [
            "benchmark",
            "--store",
            str(s / "sim" / "store"),
            "--split",
            "unseen_pair",
            "--models",
            BASELINES,
            "--seeds",
            "3",
            "--title",
            "Baselines: simulated world (2000 genes x 500 perturbations x 5 contexts, seed 0), unseen pairs",
        ],
        "simulator_combination": [
            "benchmark",
            "--store",
            str(s / "sim" / "store"),
            "--split",
            "combination",
            "--models",
            BASELINES,
            "--seeds",
            "3",
            "--split-param",
            "holdout_singles_fraction=0.3",
            "--title",
            "Baselines: simulated world, held-out combinations by singles seen",
        ],
        **sigrecon_benchmarks(),
        **_multi_context_benchmarks(),
    }


def _multi_context_benchmarks() -> dict[str, list[str]]:
    return {
        "prism_auc_unseen_pair": _baselines(
            "prism_auc",
            "Baselines: PRISM killing AUC, 1,396 compounds x 489 lines, unseen (compound, line) pairs",
        ),
        "prism_doses_unseen_pair": _baselines(
            "prism_doses",
            "Baselines: PRISM viability z-scores by dose (PREP2 8 doses, PASG002 3 doses), unseen pairs",
        ),
        "lincs65_unseen_pair": _baselines(
            "lincs65",
            "Baselines: L1000 Level 5 signatures of 3 compounds in 65 lines, unseen (compound, line) pairs",
        ),
    }


def _sections(path: Path, header: list[str], new: dict[str, list[str]], order: list[str]) -> str:
    """``path``'s ``## NAME`` sections for the names in ``order``, those in ``new`` replaced or
    added (a run with ``--only`` rewrites its own sections and keeps the others)."""
    text = path.read_text() if path.exists() else ""
    heading = re.compile(r"^## (" + "|".join(map(re.escape, order)) + r")$", re.MULTILINE)
    found = list(heading.finditer(text))
    head = text[: found[0].start()] if found else "\n".join(header) + "\n"
    ends = [m.start() for m in found[1:]] + [len(text)]
    blocks = {m.group(1): text[m.start() : end] for m, end in zip(found, ends, strict=True)}
    blocks.update({name: "\n".join(lines) + "\n" for name, lines in new.items()})
    return head + "".join(blocks[n] for n in order if n in blocks)


def _ingest(only: list[str] | None) -> None:
    """Build the stores (``only``: just those) and write their `lpm info` to ingest.md."""
    jobs = {name: [*cmd, "--out", str(STORES / name)] for name, cmd in ingests().items()}
    joint = [str(STORES / n) for n in REAL_STORES]
    jobs["joint (all of the above in one store)"] = [
        "ingest", *joint, "--out", str(STORES / "joint"), "--overwrite",
    ]  # fmt: skip
    jobs["simulator (default world)"] = [
        "simulate", "--out", str(STORES / "sim"), "--seed", "0", "--overwrite",
    ]  # fmt: skip
    sections = {}
    for title, cmd in jobs.items():
        if only and title not in only:
            continue
        shown, out, dt = run(cmd)
        sections[title] = [
            f"## {title}",
            "",
            "```",
            shown,
            f"# {dt:.1f} s",
            "",
            out.rstrip(),
            "```",
            "",
        ]
    header = ["# Ingest of every real dataset in ../shared/data", "",
              "Produced by `python benchmarks/real_data.py`.", ""]  # fmt: skip
    path = RESULTS / "ingest.md"
    write_text(path, _sections(path, header, sections, list(jobs)))


def _benchmark(only: list[str] | None, go: Path) -> None:
    """Run the benchmarks (``only``: just those) and collate them in baselines.md."""
    header = [
        "# Baselines on the real sets and the simulator",
        "",
        "Produced by `python benchmarks/real_data.py`; each section links the full report.",
        "",
    ]
    sections = {}
    for name, cmd in benchmarks(go).items():
        if only and name not in only:
            continue
        out_dir = RESULTS / name
        shown, _, dt = run([*cmd, "--out", str(out_dir.relative_to(ROOT)), "--overwrite"])
        lines = [f"## {name}", "", "```", shown, f"# {dt:.0f} s", "```", "",
                 f"[full report]({name}/results.md)", ""]  # fmt: skip
        body = (out_dir / "results.md").read_text().split("\n## ", 1)
        if len(body) == 2:
            lines += [
                "## "
                + body[1]
                .replace("](results.png)", f"]({name}/results.png)")
                .replace("\n## ", "\n### ")
                .replace("## Test", "### Test", 1),
                "",
            ]
        sections[name] = lines
    path = RESULTS / "baselines.md"
    write_text(path, _sections(path, header, sections, list(benchmarks(go))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="store and benchmark names to run (default: all)")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    if not (ROOT / DATA).exists():
        sys.exit(f"real data not present at {DATA}; nothing to do")
    (ROOT / STORES).mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.skip_ingest:
        _ingest(args.only)
    go = STORES / "go_embedding.parquet"
    needs_go = not args.only or "replogle_unseen_perturbation" in args.only
    if needs_go and not (ROOT / go).exists():
        run(["prior-embedding", "--gene2go", str(GENE2GO), "--out", str(go), "--dims", "32"])
    _benchmark(args.only, go)


if __name__ == "__main__":
    main()

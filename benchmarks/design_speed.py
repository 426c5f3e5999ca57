"""Speed of one-shot perturbation selection (lpm.design.selection) on the full GO graph.

Run from the repository root:  .venv/bin/python benchmarks/design_speed.py [--k 500]
Candidates are every gene of the GO Jaccard graph (``graph_source("go")``, about 19,317 genes).
Times (``time.perf_counter``) the reach matrix alone, coverage selection of ``k`` (lazy greedy,
reach matrix included) and spectral selection of ``k`` separately; reports the covered fraction
and checks that coverage repeats exactly for the same seed. Prints a Markdown table and writes it
to ``--out`` (default benchmarks/results/design/speed.md). Skips (exit 0) without the priors.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from _common import ROOT, machine, write_text

T = TypeVar("T")


def _timed(func: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--hops", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/design/speed.md")
    args = ap.parse_args()

    from lpm.design.selection import coverage_selection, reach_matrix, spectral_selection
    from lpm.errors import LpmInputError
    from lpm.priors.gene_graph import graph_source

    try:
        edges, t_graph = _timed(graph_source, "go")
    except LpmInputError as err:
        print(f"skip: no priors folder for the GO graph ({err})")
        return 0
    genes = sorted(set(edges["source"].to_list()) | set(edges["target"].to_list()))
    print(f"GO graph: {len(genes):,} genes, {edges.height:,} directed edges (load {t_graph:.2f} s)")

    reach, t_reach = _timed(reach_matrix, edges, genes, args.hops)
    cov, t_cov = _timed(coverage_selection, edges, genes, args.k, hops=args.hops, seed=args.seed)
    again = coverage_selection(edges, genes, args.k, hops=args.hops, seed=args.seed)
    same = cov.equals(again)
    print(f"determinism: coverage repeated with seed {args.seed} -> identical: {same}")
    assert same, "coverage_selection gave different output for the same seed"
    spec, t_spec = _timed(spectral_selection, edges, genes, args.k, seed=args.seed)
    frac = float(cov["covered_fraction"][-1])
    n_full = int((cov["covered_fraction"] < 1.0).sum()) + 1 if frac >= 1.0 else None

    lines = [
        "# Perturbation selection speed (lpm.design.selection)",
        "",
        f"Produced by `{shlex.join(['python', 'benchmarks/design_speed.py', *sys.argv[1:]])}` "
        f"on {machine()}.",
        "",
        f"Candidates: all {len(genes):,} genes of the GO Jaccard graph "
        f"({edges.height:,} directed edges); k = {args.k}, hops = {args.hops}, seed = {args.seed}.",
        "",
        "| step | seconds | result |",
        "|---|---:|---|",
        f"| load GO graph (from cache when built before) | {t_graph:.2f} | {len(genes):,} genes |",
        f"| reach matrix ({args.hops} hops) | {t_reach:.2f} | {reach.nnz:,} non-zeros "
        f"(mean {reach.nnz / len(genes):.0f} genes per neighbourhood) |",
        f"| coverage selection, k={args.k} (reach matrix included) | {t_cov:.2f} | "
        f"covered fraction {frac:.4f}"
        + (f"; all covered after {n_full} picks" if n_full is not None else "")
        + " |",
        f"| spectral selection, k={args.k} (32 eigenvectors) | {t_spec:.2f} | "
        f"last k-centre distance {float(spec['distance'][-1]):.3f} |",
        "",
        f"Determinism: coverage run twice with seed {args.seed} gave identical output: {same}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

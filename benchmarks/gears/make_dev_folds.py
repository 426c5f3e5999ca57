"""Write a development copy of the Norman 2019 fold file (same rule as the benchmark's real one).

Rule: doubles = the 15 double symbols (lpm canonical form, members sorted) sorted; for each seed
in 0,1,2: order = numpy.random.default_rng(seed).permutation(15); folds = numpy.array_split(order, 5);
fold k's test = those doubles; train = all singles + control + the other doubles.

Self-contained (anndata/numpy only, no lpm):
    /tmp/venv_gears/bin/python benchmarks/gears/make_dev_folds.py --h5ad devel.h5ad --out folds.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import anndata as ad
import numpy as np


def lpm_symbol(condition: str, kind: str = "CRISPRa") -> str:
    if condition == "control":
        return "control"
    return "+".join(sorted(f"{kind}:{g}" for g in condition.split("+")))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--h5ad", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dataset", default="norman19")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-folds", type=int, default=5)
    args = ap.parse_args()

    a = ad.read_h5ad(args.h5ad, backed="r")
    obs = a.obs[a.obs["dataset"].astype(str) == args.dataset]
    symbols = sorted({lpm_symbol(c) for c in obs["condition"].astype(str).unique()})
    doubles = sorted(s for s in symbols if "+" in s)
    singles = sorted(s for s in symbols if "+" not in s and s != "control")
    folds = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        order = np.random.default_rng(seed).permutation(len(doubles))
        for k, idx in enumerate(np.array_split(order, args.n_folds)):
            test = [doubles[i] for i in idx]
            train = singles + ["control"] + [d for d in doubles if d not in test]
            folds.append({"seed": seed, "fold": k, "train": train, "test": test})
    payload = {"context": "norman19/K562", "folds": folds}
    d = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".json.tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, args.out)
    print(f"{len(singles)} singles, {len(doubles)} doubles, {len(folds)} folds -> {args.out}")


if __name__ == "__main__":
    main()

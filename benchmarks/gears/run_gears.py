"""Run GEARS (cell-gears, Roohani et al. 2023) offline on lpm's Norman 2019 K562 folds.

Self-contained: runs in /tmp/venv_gears (see setup_env.sh); does NOT import lpm.

    /tmp/venv_gears/bin/python benchmarks/gears/run_gears.py \
        --folds benchmarks/stores/norman_folds.json \
        --h5ad /work/shared/data/norman19_mcfaline23_devel/devel.h5ad \
        --go-dir /work/shared/data/gene_ontology \
        --out benchmarks/results/gears_norman.parquet --epochs 5 --seeds 0,1,2

Everything GEARS would download from Dataverse is built locally in --work-dir:
  gene2go_all.pkl                          dict symbol -> set(GO ids) (org.Hs.eg.db 3.16, direct, BP+MF+CC)
  essential_all_data_pert_genes.pkl        the perturbation-graph gene universe (see --pert-universe)
  go_essential_all/go_essential_all.csv    GO Jaccard edges (source, target, importance), GEARS's rule
                                           (score > 0.1, self-edges kept), pruned to the top k+1 per target
so PertData(default_pert_graph=True) finds them and never touches the network.

Output: long parquet rows seed, fold, context, perturbation, readout, value where value is
GEARS's mean predicted expression for the double minus the mean expression of the control cells.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

LOG = logging.getLogger("run_gears")
CONTEXT_DEFAULT = "norman19/K562"
GO_JACCARD_MIN = 0.1  # GEARS utils.get_GO_edge_list keeps edges with score > 0.1


# ----------------------------------------------------------------------------- symbols


def symbol_genes(symbol: str) -> tuple[str, ...]:
    """lpm symbol -> gene tuple ('control' -> ()). 'CRISPRa:A+CRISPRa:B' -> ('A', 'B')."""
    if symbol == "control":
        return ()
    genes = []
    for part in symbol.split("+"):
        kind, sep, target = part.partition(":")
        if not sep or not target:
            raise ValueError(f"malformed perturbation symbol {symbol!r}")
        if kind != "CRISPRa":
            raise ValueError(f"only CRISPRa symbols expected for Norman 2019, got {symbol!r}")
        genes.append(target)
    return tuple(genes)


def raw_condition_genes(cond: str) -> tuple[str, ...]:
    """devel.h5ad condition ('control', 'KLF1', 'KLF1+MAP2K6') -> gene tuple."""
    return () if cond == "control" else tuple(cond.split("+"))


def gears_condition(genes: tuple[str, ...]) -> str:
    """Gene tuple -> GEARS condition string: 'ctrl', 'KLF1+ctrl', 'KLF1+MAP2K6'."""
    if len(genes) == 0:
        return "ctrl"
    if len(genes) == 1:
        return f"{genes[0]}+ctrl"
    if len(genes) == 2:
        return f"{genes[0]}+{genes[1]}"
    raise ValueError(f"GEARS handles at most 2 perturbed genes, got {genes}")


# ----------------------------------------------------------------------------- inputs


def load_cells(h5ad: str, dataset: str, cell_type: str | None):
    import anndata as ad

    a = ad.read_h5ad(h5ad)
    mask = a.obs["dataset"].astype(str) == dataset
    if cell_type:
        mask &= a.obs["cell_type"].astype(str) == cell_type
    a = a[mask.values].copy()
    if len(a) == 0:
        raise SystemExit(f"no cells for dataset={dataset!r} cell_type={cell_type!r} in {h5ad}")
    conds = a.obs["condition"].astype(str)
    genes = conds.map(raw_condition_genes)
    X = a.X
    X = (
        sp.csr_matrix(X, dtype=np.float32)
        if sp.issparse(X)
        else sp.csr_matrix(np.asarray(X, dtype=np.float32))
    )
    out = ad.AnnData(X=X)
    out.obs_names = a.obs_names.astype(str)
    out.var_names = a.var_names.astype(str)
    out.obs["condition"] = [gears_condition(g) for g in genes]
    out.obs["cell_type"] = a.obs["cell_type"].astype(str).values
    out.var["gene_name"] = out.var_names.values
    gene_sets = {frozenset(g): gears_condition(g) for g in genes}
    LOG.info(
        "cells: %d x %d genes, %d conditions (dataset=%s)",
        out.n_obs,
        out.n_vars,
        out.obs["condition"].nunique(),
        dataset,
    )
    return out, gene_sets


def load_gene2go(go_dir: Path) -> dict[str, set[str]]:
    path = go_dir / "human_gene2go_direct_orgHsEgDb_3.16.tsv.gz"
    df = pd.read_csv(path, sep="\t", usecols=["symbol", "go_id"], dtype=str).dropna()
    g2g = df.groupby("symbol")["go_id"].agg(lambda s: set(s)).to_dict()
    LOG.info("gene2go: %d genes with GO annotations from %s", len(g2g), path.name)
    return g2g


def go_jaccard_edges(genes: list[str], gene2go: dict[str, set[str]], k: int) -> pd.DataFrame:
    """GEARS's GO graph rule (utils.get_GO_edge_list): Jaccard of GO sets, keep > 0.1 (incl. self).

    Computed vectorised; pruned to the top k+1 sources per target, which is exactly what
    get_similarity_network then keeps (groupby('target').nlargest(k + 1)).
    """
    terms = sorted({t for g in genes for t in gene2go[g]})
    tidx = {t: i for i, t in enumerate(terms)}
    rows, cols = [], []
    for i, g in enumerate(genes):
        for t in gene2go[g]:
            rows.append(i)
            cols.append(tidx[t])
    M = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(genes), len(terms))
    )
    sizes = np.asarray(M.sum(axis=1)).ravel()
    out = []
    chunk = 1024
    for s in range(0, len(genes), chunk):
        inter = (M[s : s + chunk] @ M.T).toarray()
        union = sizes[s : s + chunk, None] + sizes[None, :] - inter
        jac = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        for r in range(jac.shape[0]):
            row = jac[r]
            cand = np.nonzero(row > GO_JACCARD_MIN)[0]
            if len(cand) > k + 1:
                cand = cand[np.argsort(-row[cand], kind="stable")[: k + 1]]
            tgt = genes[s + r]
            for c in cand:  # graph is symmetric: edge (source=c, target=tgt)
                out.append((genes[c], tgt, float(row[c])))
    return pd.DataFrame(out, columns=["source", "target", "importance"])


def build_go_inputs(work: Path, gene2go, universe: list[str], k: int) -> list[str]:
    """Write the three files PertData/GEARS would otherwise download from Dataverse."""
    work.mkdir(parents=True, exist_ok=True)
    pert_genes = sorted(g for g in set(universe) if g in gene2go)
    with open(work / "gene2go_all.pkl", "wb") as f:
        pickle.dump(gene2go, f)
    with open(work / "essential_all_data_pert_genes.pkl", "wb") as f:
        pickle.dump(pert_genes, f)
    t0 = time.time()
    edges = go_jaccard_edges(pert_genes, gene2go, k)
    (work / "go_essential_all").mkdir(exist_ok=True)
    edges.to_csv(work / "go_essential_all" / "go_essential_all.csv", index=False)
    LOG.info(
        "GO graph: %d perturbable genes, %d edges (Jaccard > %.1f, top %d per target), %.1fs",
        len(pert_genes),
        len(edges),
        GO_JACCARD_MIN,
        k + 1,
        time.time() - t0,
    )
    return pert_genes


# ----------------------------------------------------------------------------- splits


def val_doubles(train_doubles: list[str], seed: int, fold: int, n: int) -> list[str]:
    """Validation rule: n training doubles (GEARS conditions, sorted), drawn with
    numpy.random.default_rng(1000 * seed + fold).choice(..., n, replace=False). Never test."""
    if n <= 0 or len(train_doubles) <= n:
        return []
    pool = sorted(train_doubles)
    pick = np.random.default_rng(1000 * seed + fold).choice(len(pool), size=n, replace=False)
    return sorted(pool[i] for i in pick)


class PandasSafeCSR(sp.csr_matrix):
    """csr_matrix that accepts a pandas boolean Series as row index.

    cell-gears 0.1.2 GEARS.__init__ does ``adata.X[adata.obs.condition == 'ctrl']``; scipy >= 1.15
    rejects a pandas Series there (AttributeError: 'Series' object has no attribute 'nonzero').
    This only converts the key to numpy; values are unchanged.
    """

    def __getitem__(self, key):
        if isinstance(key, (pd.Series, pd.Index)):
            key = key.to_numpy()
        elif isinstance(key, tuple):
            key = tuple(k.to_numpy() if isinstance(k, (pd.Series, pd.Index)) else k for k in key)
        return super().__getitem__(key)


def limit_train_eval(train_loader, n_cells: int) -> None:
    """GEARS.train re-evaluates the WHOLE training set after every epoch only to print
    'Train Overall MSE' (it plays no part in training or in best-model selection, which uses the
    validation set). On 2 CPU cores that costs ~25% of an epoch, so evaluate a fixed subset of
    n_cells training cells for that log line instead. Training batches are unaffected."""
    import gears.gears as gg
    from torch_geometric.loader import DataLoader

    if getattr(gg, "_lpm_orig_evaluate", None) is None:
        gg._lpm_orig_evaluate = gg.evaluate
    orig = gg._lpm_orig_evaluate
    ds = train_loader.dataset
    idx = np.random.default_rng(0).choice(len(ds), size=min(n_cells, len(ds)), replace=False)
    small = DataLoader(
        [ds[i] for i in sorted(idx)], batch_size=train_loader.batch_size, shuffle=False
    )

    def evaluate(loader, *a, **k):
        return orig(small if loader is train_loader else loader, *a, **k)

    gg.evaluate = evaluate


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - GEARS draws from numpy's global generator
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- main


def write_parquet_atomic(df: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options; --train-eval-cells -1 becomes None (full train-set evaluation)."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--folds", required=True, help="fold JSON (context, folds[seed, fold, train, test])"
    )
    ap.add_argument("--h5ad", required=True)
    ap.add_argument("--go-dir", required=True)
    ap.add_argument("--out", required=True, help="predictions parquet (long rows)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", default=None, help="comma list; default: all seeds in the fold file")
    ap.add_argument("--folds-only", default=None, help="comma list of fold indices to run (dev)")
    ap.add_argument("--dataset", default="norman19", help="obs['dataset'] value of the Norman part")
    ap.add_argument("--cell-type", default="k562")
    ap.add_argument("--n-val-doubles", type=int, default=2)
    ap.add_argument("--hidden-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument(
        "--k-go", type=int, default=20, help="num_similar_genes_go_graph (GEARS default 20)"
    )
    ap.add_argument(
        "--pert-universe",
        choices=["expressed", "all_go"],
        default="expressed",
        help="perturbation-graph genes: 'expressed' = measured genes + perturbed genes "
        "(GEARS's default_pert_graph=False universe); 'all_go' = every GO-annotated gene",
    )
    ap.add_argument("--work-dir", default=None, help="GEARS data_path (default: fresh temp dir)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 is much faster on the shared 2-core box (2 threads oversubscribe: 136s vs 19s per epoch)",
    )
    ap.add_argument(
        "--train-eval-cells",
        type=int,
        default=256,
        help="cells used for GEARS's per-epoch *logged* train MSE (see limit_train_eval); "
        "pass -1 for GEARS's original full-train-set evaluation",
    )
    args = ap.parse_args(argv)
    if args.train_eval_cells is not None and args.train_eval_cells < 0:
        args.train_eval_cells = None
    return args


def select_folds(args: argparse.Namespace) -> tuple[str, list[dict]]:
    """The fold file's context and the folds that --seeds / --folds-only keep."""
    spec = json.loads(Path(args.folds).read_text())
    context = spec.get("context", CONTEXT_DEFAULT)
    folds = spec["folds"]
    if args.seeds is not None:
        keep = {int(s) for s in args.seeds.split(",")}
        folds = [f for f in folds if int(f["seed"]) in keep]
    if args.folds_only is not None:
        keep = {int(s) for s in args.folds_only.split(",")}
        folds = [f for f in folds if int(f["fold"]) in keep]
    if not folds:
        raise SystemExit("no folds selected")
    return context, folds


def prepare_work_dir(args: argparse.Namespace, adata, gene_sets, gene2go) -> tuple[Path, set[str]]:
    """Build GEARS's offline inputs in the work dir; log versions; return it and the graph genes."""
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="gears_work_"))
    work.mkdir(parents=True, exist_ok=True)
    perturbed = sorted({g for s in gene_sets for g in s})
    if args.pert_universe == "expressed":
        universe = sorted(set(adata.var["gene_name"]) | set(perturbed))
    else:
        universe = sorted(gene2go)
    pert_genes = set(build_go_inputs(work, gene2go, universe, args.k_go))
    LOG.info(
        "perturbed genes among the %d measured genes: %s",
        adata.n_vars,
        sorted(set(perturbed) & set(adata.var["gene_name"])) or "none",
    )
    from importlib.metadata import version

    LOG.info(
        "versions: cell-gears %s, torch %s, torch-geometric %s, anndata %s, scipy %s",
        version("cell-gears"),
        version("torch"),
        version("torch-geometric"),
        version("anndata"),
        version("scipy"),
    )
    LOG.info(
        "note: in cell-gears 0.1.2 perturbed genes need NOT be measured genes; they only need "
        "to be nodes of the GO perturbation graph"
    )
    return work, pert_genes


def drop_outside_graph(adata, gene_sets, pert_genes: set[str]) -> tuple[object, list[str]]:
    """Drop the cells of conditions GEARS cannot represent; return the cells and those conditions."""
    # Conditions whose genes are not in the GO graph: GEARS cannot represent them. PertData.load
    # drops them; new_data_process does not (it would silently treat them as controls), so drop here.
    bad = sorted({c for s, c in gene_sets.items() if any(g not in pert_genes for g in s)})
    if bad:
        LOG.warning("conditions with a gene outside the GO graph, dropped from GEARS data: %s", bad)
        adata = adata[~adata.obs["condition"].isin(bad).values].copy()
    return adata, bad


def condition_lookup(gene_sets, present: set[str]):
    """lpm symbol -> GEARS condition present in the data, or None."""

    def to_condition(symbol: str) -> str | None:
        c = gene_sets.get(frozenset(symbol_genes(symbol)))
        return c if c in present else None

    return to_condition


def seed_pert_data(processed: dict, PertData, work: Path, adata, seed: int, t0: float):
    """The seed's processed GEARS data, built once per seed (its cell pairing uses np.random)."""
    if seed not in processed:
        # one processed dataset per seed (control<->perturbed cell pairing uses np.random)
        seed_everything(seed)
        pd_ = PertData(str(work), default_pert_graph=True)
        pd_.new_data_process(dataset_name=f"norman19_k562_seed{seed}", adata=adata.copy())
        processed[seed] = pd_
        LOG.info("seed %d: GEARS data processed in %.1fs", seed, time.time() - t0)
    pert_data = processed[seed]
    if not isinstance(pert_data.adata.X, PandasSafeCSR):
        pert_data.adata.X = PandasSafeCSR(pert_data.adata.X)
    return pert_data


def fold_conditions(f: dict, seed: int, fold: int, to_condition, pert_genes: set[str], skipped):
    """A fold's train conditions and predictable test doubles; unpredictable ones go to skipped."""
    train_c = []
    for s in f["train"]:
        c = to_condition(s)
        if c is None:
            LOG.warning(
                "seed %d fold %d: train %s has no GEARS condition (not in data/GO graph)",
                seed,
                fold,
                s,
            )
        else:
            train_c.append(c)
    test_pairs = []
    for s in f["test"]:
        genes = symbol_genes(s)
        missing = [g for g in genes if g not in pert_genes]
        if missing:
            LOG.warning(
                "seed %d fold %d: SKIP test %s: gene(s) %s not in GEARS GO graph",
                seed,
                fold,
                s,
                missing,
            )
            skipped.append(
                {
                    "seed": seed,
                    "fold": fold,
                    "perturbation": s,
                    "reason": f"not in GO graph: {missing}",
                }
            )
            continue
        test_pairs.append((s, genes))
    return train_c, test_pairs


def write_split(
    f: dict, seed: int, fold: int, train_c, test_pairs, to_condition, n_val: int, work: Path
) -> Path:
    """Write the fold's train/val/test split pickle for GEARS's custom split; return its path."""
    test_c = [c for c in (to_condition(s) for s, _ in test_pairs) if c is not None]
    overlap = set(train_c) & set(test_c)
    if overlap:
        raise SystemExit(f"seed {seed} fold {fold}: train/test overlap {sorted(overlap)}")
    if f.get("val"):  # the split's own validation part, the one lpm's models stop on
        val_c = [c for c in (to_condition(s) for s in f["val"]) if c is not None]
    else:
        train_doubles = [c for c in train_c if "ctrl" not in c]
        val_c = val_doubles(train_doubles, seed, fold, n_val)
        train_c = [c for c in train_c if c not in val_c]
    split = {"train": train_c, "val": val_c, "test": test_c}
    split_path = work / f"split_seed{seed}_fold{fold}.pkl"
    with open(split_path, "wb") as fh:
        pickle.dump(split, fh)
    LOG.info(
        "seed %d fold %d: train %d conditions, val %s, test %d doubles",
        seed,
        fold,
        len(train_c),
        val_c,
        len(test_c),
    )
    return split_path


def train_fold(args: argparse.Namespace, GEARS, pert_data, seed: int, fold: int, split_path: Path):
    """Train a fresh GEARS model on the fold's split; return it and its training seconds."""
    seed_everything(seed)
    # the split 'seed' only names GEARS's cached co-expression file; make it unique per fold
    pert_data.prepare_split(split="custom", seed=f"s{seed}f{fold}", split_dict_path=str(split_path))
    pert_data.get_dataloader(batch_size=args.batch_size, test_batch_size=128)
    model = GEARS(pert_data, device="cpu")
    if args.train_eval_cells is not None:
        limit_train_eval(pert_data.dataloader["train_loader"], args.train_eval_cells)
    model.model_initialize(hidden_size=args.hidden_size)
    t_train = time.time()
    model.train(epochs=args.epochs, lr=args.lr)
    train_s = time.time() - t_train
    return model, train_s


def predict_fold(model, pert_data, test_pairs, seed: int, fold: int, context: str, rows) -> None:
    """Append to rows each test double's predicted mean expression minus the control mean."""
    ctrl_mean = np.asarray(
        pert_data.adata[pert_data.adata.obs["condition"] == "ctrl"].X.mean(axis=0)
    ).ravel()
    readouts = list(model.gene_list)
    for s, genes in test_pairs:
        g = list(genes)
        pred = model.predict([g])["_".join(g)]
        delta = np.asarray(pred, dtype=np.float64).ravel() - ctrl_mean
        rows.append(
            pd.DataFrame(
                {
                    "seed": seed,
                    "fold": fold,
                    "context": context,
                    "perturbation": s,
                    "readout": readouts,
                    "value": delta,
                }
            )
        )


def write_results(args, rows, timings, skipped, bad, out: Path, t_start: float) -> None:
    """Write the final predictions parquet and its .meta.json (timings, skipped, settings)."""
    df = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(columns=["seed", "fold", "context", "perturbation", "readout", "value"])
    )
    write_parquet_atomic(df, out)
    meta = {
        "timings": timings,
        "skipped": skipped,
        "epochs": args.epochs,
        "hidden_size": args.hidden_size,
        "n_val_doubles": args.n_val_doubles,
        "pert_universe": args.pert_universe,
        "dropped_conditions": bad,
        "total_wall_s": round(time.time() - t_start, 1),
    }
    meta_path = out.with_suffix(".meta.json")
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(meta, fh, indent=1)
    os.replace(tmp, meta_path)
    LOG.info(
        "wrote %d rows -> %s (meta %s); total %.1fs", len(df), out, meta_path, time.time() - t_start
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
    )
    t_start = time.time()

    import torch

    torch.set_num_threads(args.threads)
    from gears import GEARS, PertData

    context, folds = select_folds(args)

    adata, gene_sets = load_cells(args.h5ad, args.dataset, args.cell_type)
    gene2go = load_gene2go(Path(args.go_dir))
    work, pert_genes = prepare_work_dir(args, adata, gene_sets, gene2go)
    adata, bad = drop_outside_graph(adata, gene_sets, pert_genes)
    to_condition = condition_lookup(gene_sets, set(adata.obs["condition"]))

    rows: list[pd.DataFrame] = []
    skipped: list[dict] = []
    timings: list[dict] = []
    out = Path(args.out)
    processed: dict[int, object] = {}

    for f in folds:
        seed, fold = int(f["seed"]), int(f["fold"])
        t0 = time.time()
        pert_data = seed_pert_data(processed, PertData, work, adata, seed, t0)
        train_c, test_pairs = fold_conditions(f, seed, fold, to_condition, pert_genes, skipped)
        split_path = write_split(
            f, seed, fold, train_c, test_pairs, to_condition, args.n_val_doubles, work
        )
        model, train_s = train_fold(args, GEARS, pert_data, seed, fold, split_path)
        predict_fold(model, pert_data, test_pairs, seed, fold, context, rows)
        wall = time.time() - t0
        timings.append(
            {
                "seed": seed,
                "fold": fold,
                "wall_s": round(wall, 1),
                "train_s": round(train_s, 1),
                "n_test": len(f["test"]),
                "n_predicted": len(test_pairs),
            }
        )
        LOG.info(
            "seed %d fold %d: predicted %d/%d test doubles; train %.1fs, fold wall %.1fs",
            seed,
            fold,
            len(test_pairs),
            len(f["test"]),
            train_s,
            wall,
        )
        # checkpoint after every fold (atomic), so an interrupted run keeps finished folds
        write_parquet_atomic(pd.concat(rows, ignore_index=True), out)

    write_results(args, rows, timings, skipped, bad, out, t_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())

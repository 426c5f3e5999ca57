"""Context features from control profiles: a SubTab-style self-supervised encoder.

The LPM can predict a context it never saw in training only if the context comes with a feature
vector. We learn one from the context's unperturbed profile (its control expression) following
SubTab (Ucar et al. 2021): the genes are cut into overlapping subsets, each subset is corrupted
with masking noise, one shared encoder embeds every subset and one shared decoder reconstructs the
whole clean profile from each subset's embedding. A sample's feature is the mean of its subset
embeddings and a context's feature the mean over its samples.

Loaders turn the sources we have into ``(samples, groups, genes)``: single-cell controls from an
h5ad, simulated baselines (plus control replicates) and, where no profile exists at all, which
readouts a context measured.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from lpm._utils.atomic import atomic_file
from lpm._utils.threads import one_torch_thread
from lpm.data import schema as S
from lpm.errors import LpmInputError

Noise = Literal["swap", "zero"]
Samples = tuple[npt.NDArray[np.float32], list[str], list[str]]

__all__ = [
    "context_feature_table",
    "mcfaline_control_samples",
    "measured_readout_samples",
    "simulation_control_samples",
    "subtab_embeddings",
    "write_feature_table",
]


# ---------------------------------------------------------------------------------------------
# SubTab encoder
# ---------------------------------------------------------------------------------------------


def _validate(
    samples: np.ndarray, groups: Sequence[str], n_subsets: int, dim: int
) -> npt.NDArray[np.float64]:
    x = np.asarray(samples)
    if x.ndim != 2:
        raise LpmInputError(None, f"samples must be a 2-D matrix, got {x.ndim} dimension(s)")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise LpmInputError(None, f"samples must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    n, p = x.shape
    if n == 0:
        raise LpmInputError(None, "samples has no rows")
    bad = ~np.isfinite(x)
    if bad.any():
        kind = "NaN" if np.isnan(x).any() else "infinite"
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise LpmInputError(
            None,
            f"samples has {int(bad.sum())} non-finite value(s) ({kind} at row {row}, column {col})",
        )
    if len(groups) != n:
        raise LpmInputError(None, f"groups has {len(groups)} entries but samples has {n} rows")
    if p < 2:
        raise LpmInputError(None, f"samples needs at least 2 feature columns, got {p}")
    if not 1 <= n_subsets <= p:
        raise LpmInputError(
            None, f"n_subsets must be between 1 and the {p} features, got {n_subsets}"
        )
    if dim < 1:
        raise LpmInputError(None, f"dim must be at least 1, got {dim}")
    return x


def _standardise(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Columns to mean 0, sd 1 so no gene dominates the loss by scale; constant columns keep sd 1."""
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd <= 1e-12] = 1.0
    return ((x - mean) / sd).astype(np.float32)


def _column_subsets(
    n_features: int, n_subsets: int, overlap: float, rng: np.random.Generator
) -> list[npt.NDArray[np.int64]]:
    """Seeded permutation cut into contiguous blocks, each widened by ``overlap`` of a block."""
    perm = rng.permutation(n_features)
    bounds = np.linspace(0, n_features, n_subsets + 1).round().astype(int)
    extra = round(overlap * n_features / n_subsets)
    out = []
    for lo, hi in itertools.pairwise(bounds):
        out.append(perm[max(0, lo - extra) : min(n_features, hi + extra)].astype(np.int64))
    return out


def subtab_embeddings(
    samples: np.ndarray,
    groups: Sequence[str],
    *,
    dim: int = 16,
    n_subsets: int = 4,
    overlap: float = 0.75,
    mask_ratio: float = 0.2,
    hidden: int = 128,
    epochs: int = 300,
    lr: float = 1e-3,
    seed: int = 0,
    noise: Noise = "swap",
    batch_size: int = 256,
) -> pl.DataFrame:
    """One learned feature vector per group (context) from its samples' profiles.

    Columns are standardised, cut into ``n_subsets`` overlapping subsets and corrupted by masking
    ``mask_ratio`` of each subset's entries (``noise="swap"``: replaced by the same column of a
    random other sample; ``"zero"``: set to 0). A shared MLP encoder embeds each zero-padded
    subset and a shared decoder reconstructs the whole clean row; the loss is the mean
    reconstruction MSE over subsets. Seeded and bit-identical on CPU for the same call.

    Returns:
        ``symbol`` (the sorted group ids) then ``ctx_0 .. ctx_{dim-1}`` (Float32): the mean over a
        group's samples of the mean of their (noise-free) subset embeddings.
    """
    x = _validate(samples, groups, n_subsets, dim)
    if not 0.0 <= mask_ratio < 1.0:
        raise LpmInputError(None, f"mask_ratio must be in [0, 1), got {mask_ratio}")
    if overlap < 0.0:
        raise LpmInputError(None, f"overlap must be non-negative, got {overlap}")
    if noise not in ("swap", "zero"):
        raise LpmInputError(None, f"noise must be 'swap' or 'zero', got {noise!r}")
    if epochs < 0 or batch_size < 1 or hidden < 1:
        raise LpmInputError(None, "epochs must be >= 0, batch_size and hidden >= 1")
    z = _standardise(x)
    subsets = _column_subsets(z.shape[1], n_subsets, overlap, np.random.default_rng(seed))
    emb = _train_and_embed(
        z, subsets, dim=dim, hidden=hidden, epochs=epochs, lr=lr, seed=seed,
        mask_ratio=mask_ratio, noise=noise, batch_size=batch_size,
    )  # fmt: skip
    return _group_means(emb, [str(g) for g in groups], dim)


def _group_means(emb: npt.NDArray[np.float64], groups: list[str], dim: int) -> pl.DataFrame:
    labels = sorted(set(groups))
    index = {g: i for i, g in enumerate(labels)}
    codes = np.fromiter((index[g] for g in groups), dtype=np.int64, count=len(groups))
    sums = np.zeros((len(labels), dim))
    np.add.at(sums, codes, emb)
    means = (sums / np.bincount(codes, minlength=len(labels))[:, None]).astype(np.float32)
    cols: dict[str, Any] = {"symbol": pl.Series("symbol", labels, dtype=pl.String)}
    for j in range(dim):
        cols[f"ctx_{j}"] = pl.Series(f"ctx_{j}", means[:, j], dtype=pl.Float32)
    return pl.DataFrame(cols)


def _train_and_embed(
    z: npt.NDArray[np.float32],
    subsets: list[npt.NDArray[np.int64]],
    *,
    dim: int,
    hidden: int,
    epochs: int,
    lr: float,
    seed: int,
    mask_ratio: float,
    noise: Noise,
    batch_size: int,
) -> npt.NDArray[np.float64]:
    try:
        import torch
        from torch import nn
    except ImportError as exc:  # pragma: no cover - torch is a declared extra
        raise ImportError("context features need torch: pip install 'lpm[torch]'") from exc

    # one thread: bit-identical results and no spinning threads on small machines
    with one_torch_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        n, p = z.shape
        width = max(len(s) for s in subsets)
        encoder = nn.Sequential(nn.Linear(width, hidden), nn.LeakyReLU(), nn.Linear(hidden, dim))
        decoder = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, p))
        params = [*encoder.parameters(), *decoder.parameters()]
        opt = torch.optim.Adam(params, lr=lr)
        data = torch.from_numpy(z)
        idx = [torch.from_numpy(s) for s in subsets]

        def views(rows: torch.Tensor, corrupt: bool) -> torch.Tensor:
            """(n_subsets * batch, width): each subset of ``rows``, noised and zero-padded."""
            out = torch.zeros(len(idx), rows.shape[0], width)
            for k, cols in enumerate(idx):
                block = rows[:, cols]
                if corrupt and mask_ratio > 0:
                    mask = torch.rand(block.shape, generator=gen) < mask_ratio
                    if noise == "swap":
                        donor = torch.randint(0, n, block.shape, generator=gen)
                        fill = data[:, cols].gather(0, donor)
                    else:
                        fill = torch.zeros_like(block)
                    block = torch.where(mask, fill, block)
                out[k, :, : len(cols)] = block
            return out.reshape(-1, width)

        encoder.train()
        decoder.train()
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, batch_size):
                rows = data[order[start : start + batch_size]]
                recon = decoder(encoder(views(rows, corrupt=True)))
                target = rows.repeat(len(idx), 1)
                # every target is the whole row: mean over subsets
                loss = ((recon - target) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        encoder.eval()
        with torch.no_grad():
            e = encoder(views(data, corrupt=False)).reshape(len(idx), n, dim).mean(dim=0)
        return e.double().numpy()


def context_feature_table(
    samples: np.ndarray, groups: Sequence[str], **subtab_kwargs: Any
) -> pl.DataFrame:
    """The context feature table (``symbol``, ``ctx_*``) for the LPM: see :func:`subtab_embeddings`."""
    return subtab_embeddings(samples, groups, **subtab_kwargs)


def write_feature_table(table: pl.DataFrame, out: str | Path) -> Path:
    """Write a feature table as Parquet whole or not at all (temp file beside it, then rename)."""
    target = Path(out)
    with atomic_file(target, overwrite=True) as tmp:
        table.write_parquet(tmp)
    return target


# ---------------------------------------------------------------------------------------------
# Loaders: (samples, groups, genes)
# ---------------------------------------------------------------------------------------------


def mcfaline_control_samples(h5ad_path: str | Path, *, control: str = S.CONTROL) -> Samples:
    """Control cells of a single-cell h5ad as log1p-normalised rows, grouped by store context id.

    Context ids follow the store's rule ``dataset/CELL_LINE`` (obs ``dataset`` and ``cell_type``),
    e.g. ``mcfaline23/A172``. X is used as is when ``uns['log1p']`` marks it log-normalised;
    counts are normalised to 1e4 per cell and log1p'd. Contexts without control cells are absent.
    """
    from lpm.data.io.h5ad import _open

    path = Path(h5ad_path)
    adata = _open(path)
    try:
        obs = adata.obs
        for col in ("perturbation", "cell_type", "dataset"):
            if col not in obs.columns:
                raise LpmInputError(path, f"obs has no {col!r} column")
        keep = np.flatnonzero(obs["perturbation"].astype(str).to_numpy() == control)
        if keep.size == 0:
            raise LpmInputError(path, f"no control cells (obs 'perturbation' == {control!r})")
        block = adata.X[keep]
        x = np.asarray(block.toarray() if hasattr(block, "toarray") else block, dtype=np.float64)
        is_log = "log1p" in adata.uns
        genes = [str(g) for g in adata.var_names]
        sub = obs.iloc[keep]
        groups = [
            S.context_id(str(d), str(c))
            for d, c in zip(sub["dataset"].astype(str), sub["cell_type"].astype(str), strict=True)
        ]
    finally:
        if getattr(adata, "file", None) is not None:
            adata.file.close()
    if not np.isfinite(x).all():
        raise LpmInputError(path, "X has non-finite values among the control cells")
    if not is_log:
        if (x < 0).any() or not np.allclose(x, np.round(x)):
            raise LpmInputError(
                path, "X is neither marked log1p (uns['log1p']) nor non-negative integer counts"
            )
        totals = x.sum(axis=1, keepdims=True)
        totals[totals == 0] = 1.0
        x = np.log1p(x / totals * 1e4)
    return x.astype(np.float32), groups, genes


def _store_scan(store_dir: str | Path, need: Sequence[str]) -> pl.LazyFrame | None:
    """Lazy scan of a store's Parquet files that carry ``need`` (controls tables differ in schema)."""
    folder = Path(store_dir)
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise LpmInputError(folder, "no Parquet files (is this a store folder?)")
    usable = [f for f in files if set(need) <= set(pl.read_parquet_schema(f))]
    if not usable:
        return None
    frames = [pl.scan_parquet(f).select([pl.col(c).cast(pl.String) for c in need]) for f in usable]
    return pl.concat(frames) if len(frames) > 1 else frames[0]


def simulation_control_samples(
    truth_dir: str | Path, store_dir: str | Path | None = None
) -> Samples:
    """Simulated contexts' baseline profiles, plus one sample per control replicate in the store.

    ``truth_dir/baseline.parquet`` holds ``context, gene, log_expression``: one sample per context.
    With ``store_dir``, control rows (``perturbation == "control"``) add a sample per (context,
    replicate) = baseline + that replicate's control deltas; readouts it lacks stay at baseline.
    """
    truth = Path(truth_dir)
    base_path = truth if truth.is_file() else truth / "baseline.parquet"
    if not base_path.is_file():
        raise LpmInputError(base_path, "no such file (simulation truth baseline)")
    base = pl.read_parquet(base_path)
    missing = [c for c in ("context", "gene", "log_expression") if c not in base.columns]
    if missing:
        raise LpmInputError(base_path, f"missing column(s) {missing}")
    base = base.with_columns(pl.col("context", "gene").cast(pl.String))
    contexts = sorted(base["context"].unique().to_list())
    genes = sorted(base["gene"].unique().to_list())
    gpos = {g: j for j, g in enumerate(genes)}
    profile = np.full((len(contexts), len(genes)), np.nan)
    cpos = {c: i for i, c in enumerate(contexts)}
    ci = np.array([cpos[c] for c in base["context"]])
    gi = np.array([gpos[g] for g in base["gene"]])
    profile[ci, gi] = base["log_expression"].to_numpy()
    if np.isnan(profile).any():
        raise LpmInputError(base_path, "baseline is not complete (some context lacks some gene)")
    rows = [profile[i] for i in range(len(contexts))]
    groups = list(contexts)
    if store_dir is not None:
        rows, groups = _add_control_replicates(store_dir, profile, cpos, gpos, rows, groups)
    return np.vstack(rows).astype(np.float32), groups, genes


def _add_control_replicates(
    store_dir: str | Path,
    profile: npt.NDArray[np.float64],
    cpos: dict[str, int],
    gpos: dict[str, int],
    rows: list[npt.NDArray[np.float64]],
    groups: list[str],
) -> tuple[list[npt.NDArray[np.float64]], list[str]]:
    need = {S.CONTEXT, S.PERTURBATION, S.READOUT, S.VALUE}
    folder = Path(store_dir)
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise LpmInputError(folder, "no Parquet files (is this a store folder?)")
    frames = []
    for f in files:
        names = set(pl.read_parquet_schema(f))
        if not need <= names:
            continue  # e.g. controls.parquet: absolute profiles, not control deltas
        rep = (
            pl.col(S.REPLICATE).cast(pl.String)
            if S.REPLICATE in names
            else pl.lit(None, dtype=pl.String)
        )
        frames.append(
            pl.scan_parquet(f)
            .filter(pl.col(S.PERTURBATION).cast(pl.String) == S.CONTROL)
            .select(
                pl.col(S.CONTEXT).cast(pl.String),
                rep.alias(S.REPLICATE),
                pl.col(S.READOUT).cast(pl.String),
                pl.col(S.VALUE).cast(pl.Float64),
            )
        )
    if not frames:
        return rows, groups
    ctrl = (
        pl.concat(frames)
        .group_by(S.CONTEXT, S.REPLICATE, S.READOUT)
        .agg(pl.col(S.VALUE).mean())
        .collect()
        .filter(pl.col(S.CONTEXT).is_in(list(cpos)) & pl.col(S.READOUT).is_in(list(gpos)))
    )
    for (ctx, _rep), part in sorted(
        ctrl.partition_by(S.CONTEXT, S.REPLICATE, as_dict=True).items(),
        key=lambda kv: (str(kv[0][0]), str(kv[0][1])),
    ):
        row = profile[cpos[str(ctx)]].copy()
        cols = np.array([gpos[g] for g in part[S.READOUT]], dtype=np.int64)
        row[cols] += part[S.VALUE].to_numpy()
        rows.append(row)
        groups.append(str(ctx))
    return rows, groups


def measured_readout_samples(store_dir: str | Path) -> Samples:
    """One 0/1 row per context over all readouts: 1 where the context measured that readout.

    For stores with no expression profile at all (PerturbQA differential-expression labels), a
    readout is only tested where it is expressed enough, so which readouts a context measured is
    a coarse proxy of its expression. These are not the labels: label values are ignored.
    """
    scan = _store_scan(store_dir, (S.CONTEXT, S.READOUT))
    if scan is None:
        raise LpmInputError(store_dir, "no Parquet file with 'context' and 'readout' columns")
    pairs = scan.unique().collect()
    if pairs.height == 0:
        raise LpmInputError(store_dir, "store has no rows")
    contexts = sorted(pairs[S.CONTEXT].unique().to_list())
    genes = sorted(pairs[S.READOUT].unique().to_list())
    cpos = {c: i for i, c in enumerate(contexts)}
    gpos = {g: j for j, g in enumerate(genes)}
    out = np.zeros((len(contexts), len(genes)), dtype=np.float32)
    out[[cpos[c] for c in pairs[S.CONTEXT]], [gpos[g] for g in pairs[S.READOUT]]] = 1.0
    return out, contexts, genes

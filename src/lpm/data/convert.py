"""AnnData in and out: a perturbation×readout matrix per context, the field's interchange format."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import polars as pl

from lpm.data import members
from lpm.data import schema as S
from lpm.data.profiles import profiles
from lpm.data.schema import CONDITION_COLUMNS
from lpm.errors import LpmInputError


def to_anndata(measurements: pl.DataFrame) -> ad.AnnData:
    """Pivot long rows into AnnData: obs = conditions, var = readouts, X = value (NaN where unmeasured).

    Per-row extras that are constant within a condition (dataset, n_cells) go to ``obs``;
    the readout type, when constant per readout, goes to ``var``.
    """
    cond = S.condition_columns(measurements.columns)
    readouts = sorted(measurements[S.READOUT].cast(pl.String).unique().to_list())
    keys, x = profiles(measurements, readouts, by=cond, sort=True)
    obs_df = keys.with_row_index("_row")
    typed = measurements.with_columns(
        pl.col(c).cast(pl.String) for c in (S.CONTEXT, S.PERTURBATION) if c in cond
    )
    joined = typed.join(obs_df, on=cond, how="left", nulls_equal=True)
    obs = members.as_text(obs_df.drop("_row")).to_pandas()  # ``1.5+6``: h5ad holds no lists
    for extra in (S.DATASET, S.N_CELLS):
        if extra in measurements.columns:
            per = joined.group_by("_row").agg(pl.col(extra).first()).sort("_row")
            obs[extra] = per[extra].to_pandas().to_numpy()
    obs.index = pd.Index([f"c{i}" for i in range(obs.shape[0])])
    var = pd.DataFrame(index=pd.Index(readouts, name=S.READOUT))
    if S.READOUT_TYPE in measurements.columns:
        per_readout = measurements.group_by(S.READOUT).agg(pl.col(S.READOUT_TYPE).unique())
        if per_readout[S.READOUT_TYPE].list.len().max() == 1:
            mapping = dict(
                zip(
                    per_readout[S.READOUT].to_list(),
                    per_readout[S.READOUT_TYPE].list.first().to_list(),
                    strict=True,
                )
            )
            var[S.READOUT_TYPE] = [mapping[r] for r in readouts]
    for col in obs.columns:
        if obs[col].dtype == object:
            obs[col] = obs[col].astype("category")
    return ad.AnnData(X=x.astype(np.float32), obs=obs, var=var)


def from_anndata(
    adata: ad.AnnData, *, layer: str | None = None, source: str | Path | None = None
) -> pl.DataFrame:
    """Melt an AnnData of profiles back to long rows; NaN entries are unmeasured and dropped.

    ``obs`` must hold ``context`` and ``perturbation`` columns (and may hold dose, time, ...).
    """
    for col in (S.CONTEXT, S.PERTURBATION):
        if col not in adata.obs.columns:
            raise LpmInputError(source, f"obs has no {col!r} column")
    x = adata.layers[layer] if layer else adata.X
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float32)
    if x.shape != (adata.n_obs, adata.n_vars):
        raise LpmInputError(
            source, f"matrix shape {x.shape} disagrees with obs×var {(adata.n_obs, adata.n_vars)}"
        )
    obs_i, var_i = np.nonzero(~np.isnan(x))
    cols = {
        c: adata.obs[c].to_numpy()[obs_i]
        for c in adata.obs.columns
        if c in (*CONDITION_COLUMNS, S.DATASET, S.N_CELLS)
    }
    for c in members.member_columns(cols):  # written as text (``1.5+6``), empty where none
        cols[c] = np.array([x if isinstance(x, str) and x else None for x in cols[c]], object)
    out = pl.DataFrame({**{c: list(v) if v.dtype == object else v for c, v in cols.items()}})
    out = members.from_text(out, source)
    out = out.with_columns(
        pl.Series(S.READOUT, np.asarray(adata.var_names)[var_i]),
        pl.Series(S.VALUE, x[obs_i, var_i]),
    )
    floats = [c for c in out.columns if out[c].dtype in (pl.Float32, pl.Float64) and c != S.VALUE]
    out = out.with_columns(pl.col(c).fill_nan(None) for c in floats)
    if S.READOUT_TYPE in adata.var.columns:
        out = out.with_columns(
            pl.Series(S.READOUT_TYPE, adata.var[S.READOUT_TYPE].astype(str).to_numpy()[var_i])
        )
    return out

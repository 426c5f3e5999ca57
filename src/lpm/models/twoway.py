"""The two-way part in closed form: a context × readout base plus a perturbation × readout effect.

Where effects are shared across contexts this structure is nearly all there is (issue 17), so
it is a baseline of its own (``twoway``) and the base an LPM can learn the residual of
(``base="twoway"`` on ``lpm``/``lpm_fast``). On long training rows:

- ``cm[c, r]``: the mean of context ``c``'s *perturbed* values of readout ``r`` (controls left
  out, as ``context_mean``: the base is the shared response to a perturbation);
- ``t[p, r]``: the mean of ``v − cm[c, r]`` over ``p``'s rows, per dose (and time, per-member
  doses) where that condition was measured, pooled over ``p``'s doses for a dose never measured;
  the control is a perturbation like any other here (its own effect, from its own rows);
- ``s[r]``: the standard deviation of the residual ``v − cm − t`` per readout, floored at
  :data:`RELATIVE_FLOOR` times that of ``v − cm`` over all readouts and at :data:`SCALE_FLOOR` (what a residual
  network is standardised by).

A perturbation without an effect is never silently "no effect": its rows are unsupported
unless the caller says that 0 stands for it (an LPM whose perturbation features place it).
Binary readouts (``readout_type=binary``): ``cm`` is the logit of the context's smoothed
perturbed mean, ``logit((k + ½) / (n + 1))``, and ``t`` the mean over ``p``'s (context,
condition) groups of their smoothed logit minus ``cm``; ``twoway`` predicts ``expit(cm + t)``.
An LPM's residual base refuses them in one line for now (its network would need the logit base
as an offset inside its logistic loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.errors import LpmInputError
from lpm.models.base import LookupModel
from lpm.models.baselines import _lookup, _profile_keys, _with_keys
from lpm.models.source import RowSource

if TYPE_CHECKING:
    from lpm.models.training import TrainerOptions

#: The smallest per-readout scale, absolute and as a share of the sd of ``v − cm`` over all
#: readouts: where each perturbation has one training row per readout (McFaline: one context
#: each) ``t`` absorbs every value, the training residual is 0, and an absolute floor alone blew
#: held-out residuals up ~10^5-fold (validation loss 1e10 measured); a per-readout relative
#: floor still left 3e6 (readouts constant in training).
SCALE_FLOOR = 1e-6
RELATIVE_FLOOR = 0.1
_MEAN = "_mean"  # the value column of a looked-up table (as in ``baselines``)
_TABLES = ("context", "effect", "pooled", "scale")


@dataclass(frozen=True)
class TwoWay:
    """Fitted two-way tables: ``context`` (cm), ``effect`` (t per condition), ``pooled`` (t over
    doses; None without doses) and ``scale`` (s), each with the value in ``_mean``."""

    context: pl.DataFrame
    effect: pl.DataFrame
    pooled: pl.DataFrame | None
    scale: pl.DataFrame
    keys: list[str]
    pooled_keys: list[str]
    binary: list[str]  # readouts whose cm and t are on the logit scale

    def parts(self, rows: pl.DataFrame, *, unseen_zero: bool = False) -> tuple[np.ndarray, ...]:
        """``(cm, t, s)`` of each row, NaN where absent; ``unseen_zero``: t = 0 for a
        perturbation never seen in training (only for a caller that can place it otherwise)."""
        cm = _lookup(rows, self.context, [S.CONTEXT, S.READOUT])
        t = _lookup(rows, self.effect, self.keys)
        missing = np.isnan(t)
        if self.pooled is not None and S.DOSE in rows.columns and missing.any():
            dosed = missing & rows[S.DOSE].is_not_null().to_numpy()
            if dosed.any():
                t[dosed] = _lookup(rows.filter(pl.Series(dosed)), self.pooled, self.pooled_keys)
        if unseen_zero:
            seen = set(self.effect[S.PERTURBATION].unique().to_list())
            unseen = ~rows[S.PERTURBATION].is_in(list(seen)).to_numpy()
            t[unseen & np.isnan(t)] = 0.0
        s = _lookup(rows, self.scale, [S.READOUT])
        return cm, t, s

    def to_tables(self, prefix: str) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Tables and JSON keys to save with a model (names start with ``prefix``)."""
        tables = {f"{prefix}{k}": getattr(self, k) for k in _TABLES}
        if self.pooled is None:
            del tables[f"{prefix}pooled"]
        return tables, {"keys": self.keys, "pooled_keys": self.pooled_keys, "binary": self.binary}

    @classmethod
    def from_tables(
        cls, tables: dict[str, pl.DataFrame], extra: dict[str, Any], prefix: str
    ) -> TwoWay:
        return cls(
            context=tables[f"{prefix}context"],
            effect=tables[f"{prefix}effect"],
            pooled=tables.get(f"{prefix}pooled"),
            scale=tables[f"{prefix}scale"],
            keys=list(extra["keys"]),
            pooled_keys=list(extra["pooled_keys"]),
            binary=list(extra.get("binary", [])),
        )


def _binary_mask(train: pl.DataFrame) -> pl.Series:
    if S.READOUT_TYPE not in train.columns:
        return pl.Series([False] * train.height)
    return (train[S.READOUT_TYPE].cast(pl.String) == S.BINARY).fill_null(False)


def _smoothed_logit(k: pl.Expr, n: pl.Expr) -> pl.Expr:
    """logit((k + ½) / (n + 1)): finite for all-0 and all-1 groups."""
    p = (k + 0.5) / (n + 1.0)
    return (p / (1.0 - p)).log()


def _binary_groups(rows: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Binary rows on the logit scale: one row per (context, condition) holding the smoothed
    logit of its mean, and the context base, the smoothed logit of the context's perturbed mean."""
    rk = [S.CONTEXT, S.READOUT]
    v = pl.col(S.VALUE).cast(pl.Float64)
    context = (
        rows.filter(pl.col(S.PERTURBATION) != S.CONTROL)
        .group_by(rk)
        .agg(_smoothed_logit(v.sum(), v.count().cast(pl.Float64)).alias(_MEAN))
    )
    groups = rows.group_by([S.CONTEXT, *keys]).agg(
        _smoothed_logit(v.sum(), v.count().cast(pl.Float64)).alias(S.VALUE)
    )
    return groups, context


def fit_twoway(train: pl.DataFrame, *, binary: bool = False) -> TwoWay:
    """The closed-form two-way part of long training rows (see the module docstring);
    ``binary``: take binary readouts, on the logit scale (else they are refused)."""
    rk = [S.CONTEXT, S.READOUT]
    keys = [S.PERTURBATION, *_profile_keys(train), S.READOUT]
    is_bin = _binary_mask(train)
    if is_bin.any() and not binary:
        raise LpmInputError(
            None,
            f"the two-way base of an LPM does not take binary readouts yet ({is_bin.sum()} "
            "binary row(s)): leave them out, or use base='none'",
        )
    cont = train.filter(~is_bin)
    v = pl.col(S.VALUE).cast(pl.Float64)
    context = (
        cont.filter(pl.col(S.PERTURBATION) != S.CONTROL).group_by(rk).agg(v.mean().alias(_MEAN))
    )
    rows = _with_keys(cont, keys).select(S.CONTEXT, *keys, v)
    bin_readouts: list[str] = []
    if is_bin.any():
        groups, bin_context = _binary_groups(_with_keys(train.filter(is_bin), keys), keys)
        context = pl.concat([context, bin_context])
        rows = pl.concat([rows, groups.select(rows.columns)])
        bin_readouts = sorted(bin_context[S.READOUT].unique().to_list())
    context = context.sort(rk)
    rows = rows.join(
        context.rename({_MEAN: "_cm"}), on=rk, how="inner", maintain_order="left"
    )  # a context with controls only has no base: its rows are left out
    rows = rows.with_columns((pl.col(S.VALUE) - pl.col("_cm")).alias("_d"))
    effect = rows.group_by(keys).agg(pl.col("_d").mean().alias(_MEAN))
    pooled_keys = [k for k in keys if k != S.DOSE]
    pooled = None
    if S.DOSE in train.columns:
        pooled = (
            rows.filter(pl.col(S.DOSE).is_not_null())
            .group_by(pooled_keys)
            .agg(pl.col("_d").mean().alias(_MEAN))
            .sort(pooled_keys, nulls_last=True)
        )
    rows = rows.join(
        effect.rename({_MEAN: "_t"}), on=keys, how="left", nulls_equal=True, maintain_order="left"
    )
    spread = rows["_d"].cast(pl.Float64).std(ddof=0)
    floor = max(RELATIVE_FLOOR * (float(spread) if isinstance(spread, float) else 0.0), SCALE_FLOOR)
    scale = (
        rows.group_by(S.READOUT)
        .agg((pl.col("_d") - pl.col("_t")).std(ddof=0).fill_null(0.0).alias(_MEAN))
        .with_columns(pl.col(_MEAN).clip(lower_bound=floor))
        .sort(S.READOUT)
    )
    return TwoWay(
        context=context,
        effect=effect.sort(keys, nulls_last=True),
        pooled=pooled,
        scale=scale,
        keys=keys,
        pooled_keys=pooled_keys,
        binary=bin_readouts,
    )


class TwoWayModel(LookupModel):
    """Context base plus perturbation effect in closed form: ``cm[c, r] + t[p, r]`` (dose-aware).

    The baseline a field expert brings where effects are shared across contexts; rows of a
    perturbation (or context) never seen in training are unsupported, never guessed.
    """

    member_conditions = True

    def __init__(self) -> None:
        pass

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        self.twoway_ = fit_twoway(train, binary=True)

    def _values(self, rows: pl.DataFrame) -> np.ndarray:
        cm, t, _ = self.twoway_.parts(rows)
        out = cm + t
        binary = rows[S.READOUT].is_in(self.twoway_.binary).to_numpy()
        if binary.any():  # the base of a binary readout is a logit: predict a probability
            from scipy.special import expit

            out[binary] = expit(out[binary])
        return out

    def _known(self) -> dict[str, set[str]]:
        return {
            S.PERTURBATION: set(self.twoway_.effect[S.PERTURBATION].unique().to_list()),
            S.CONTEXT: set(self.twoway_.context[S.CONTEXT].unique().to_list()),
            S.READOUT: set(self.twoway_.scale[S.READOUT].unique().to_list()),
        }

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        tables, extra = self.twoway_.to_tables("twoway_")
        return {}, tables, extra

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.twoway_ = TwoWay.from_tables(tables, extra, "twoway_")


def _standardised(rows: pl.DataFrame, twoway: TwoWay, *, unseen_zero: bool) -> pl.DataFrame:
    """``rows`` with values z = (v − cm − t) / s; rows without a base are left out."""
    cm, t, s = twoway.parts(rows, unseen_zero=unseen_zero)
    z = (rows[S.VALUE].cast(pl.Float64).to_numpy() - cm - t) / s
    keep = ~np.isnan(z)
    out = rows.with_columns(pl.Series(S.VALUE, z, dtype=rows.schema[S.VALUE]))
    return out.filter(pl.Series(keep)) if not keep.all() else out


def residual_sources(
    train: RowSource, val: RowSource | None, *, unseen_zero: bool
) -> tuple[RowSource, RowSource | None, TwoWay]:
    """The two-way part fitted on ``train`` and both sources as its standardised residual:
    what an LPM with ``base="twoway"`` trains on. Needs in-memory tables (one pass over all
    training rows); streamed stores are refused in one line for now."""
    if not all(x is None or x.frame is not None for x in (train, val)):
        raise LpmInputError(
            None,
            "base='twoway' fits from an in-memory table, not streamed stores: "
            "train on a table (lpm train --split ...), or use base='none'",
        )
    assert train.frame is not None
    twoway = fit_twoway(train.frame)
    z_train = RowSource(frame=_standardised(train.frame, twoway, unseen_zero=False))
    z_val = None
    if val is not None and val.frame is not None:
        z_val = RowSource(frame=_standardised(val.frame, twoway, unseen_zero=unseen_zero))
    return z_train, z_val, twoway

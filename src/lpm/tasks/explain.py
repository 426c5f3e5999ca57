"""Which input drives a prediction (``lpm explain``): Granger-causal importance of each input.

After the attentive mixtures of experts of Schwab, Miladinovic and Karlen (2019): an input
matters as much as the prediction error grows when it is left out. Two forms:

- post-hoc, :func:`posthoc_importance`: a fitted model predicts each row again with one input
  swapped for a neutral value, and the input's importance is the squared-error increase. For an
  LPM (``lpm``, ``lpm_fast``) the neutral value of an embedded input (perturbation, context,
  readout) is the mean embedding over the training vocabulary, and that of a dose the mean log
  dose of the explained rows that have one (rows without a dose are not changed; the LPM keeps
  no training dose statistics). ``perturbation_neutral="control"`` swaps the perturbation for
  the control instead: the predicted delta 0, so its importance is ``value² - error``. The
  LPM does not use time, so time gets no importance. For the attentive mixture (``lpm_ame``)
  an input is left out by dropping its expert and re-normalising the attention (the loss's
  own quantity).
- trained, :func:`trained_importance`: the gate weights of an :class:`AttentiveMixtureModel`
  (``lpm.models.ame``), trained with a Granger-causal loss so that they match each expert's
  normalised leave-one-out error increase.

Per-row tables share one layout (key columns, ``value``, ``prediction``, ``error`` and one
``importance_<input>`` column per input, with a ``method`` column); :func:`importance_by`
averages them per perturbation, context or overall and gives each input's share.
:class:`InputImportanceTask` is the registered task; ``lpm explain`` (:mod:`lpm.runs.explain`)
fits the models, explains held-out rows and writes the tables that :mod:`lpm.pl.explain` draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.errors import LpmInputError
from lpm.tasks.base import DiscoveryTask, fitted_model

if TYPE_CHECKING:
    from lpm.models.base import PerturbationModel

#: Prefix of the per-row importance columns (``importance_perturbation``, ...).
PREFIX: Final = "importance_"
#: Post-hoc perturbation importance against the control (predicted delta 0), beside the inputs.
VS_CONTROL: Final = "perturbation_vs_control"
METHOD: Final = "method"
#: Per-perturbation importance scores (:func:`per_perturbation_scores`), in this order.
PERTURBATION_SCORES: Final = ("posthoc_mean_substitution", "posthoc_vs_control", "ame_attention")
POSTHOC: Final = "posthoc"
AME_ATTENTION: Final = "ame_attention"


# ---- inputs ------------------------------------------------------------------------------------
def check_rows(rows: pl.DataFrame, *, where: str | None = None) -> None:
    """Rows to explain need the key columns and a finite value in every row."""
    missing = [c for c in S.REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise LpmInputError(where, f"rows to explain miss column(s) {', '.join(missing)}")
    if rows.height == 0:
        raise LpmInputError(where, "no rows to explain")
    bad = rows.select((~pl.col(S.VALUE).cast(pl.Float64).is_finite()).fill_null(True).sum()).item()
    if bad:
        raise LpmInputError(where, f"{bad} row(s) have a missing or non-finite value")


def explainable(model: Any) -> str:
    """``lpm`` or ``ame``: the family of a fitted model that can be explained (its class says so,
    :attr:`~lpm.models.base.PerturbationModel.family`); any other is an error."""
    kind = getattr(type(model), "family", "")
    if kind in ("lpm", "ame"):
        model._check_fitted()
        return str(kind)
    name = getattr(model, "name", "") or type(model).__name__
    raise LpmInputError(
        None, f"model {name!r} cannot be explained: only lpm, lpm_fast and lpm_ame can"
    )


def _checked(model: PerturbationModel, rows: pl.DataFrame) -> None:
    check_rows(rows)
    ok = model.supported(rows)
    if not ok.all():
        from lpm.models.base import unknown_symbols_error

        raise unknown_symbols_error(model, rows.filter(pl.Series(~ok)))


def _key_frame(rows: pl.DataFrame) -> pl.DataFrame:
    keys = [
        c
        for c in (S.CONTEXT, S.PERTURBATION, S.READOUT, S.DOSE, S.TIME, *S.MEMBER_COLUMNS)
        if c in rows.columns
    ]
    return rows.select(*keys, pl.col(S.VALUE).cast(pl.Float64))


# ---- post-hoc ----------------------------------------------------------------------------------
def _lpm_variants(model: Any, rows: pl.DataFrame) -> dict[str, np.ndarray]:
    """Ensemble-mean predictions of an LPM: ``full`` and one per neutralised input."""
    import torch
    from scipy.special import expit

    from lpm.models.lpm.rows import code_rows

    coded = code_rows(rows, model.vocab_, member_conditions=model.models_member_doses)
    dosed = coded.dose[:, 1] > 0
    names = ["full", "perturbation", "context", "readout"] + (["dose"] if dosed.any() else [])
    out = {k: np.zeros(rows.height) for k in names}
    neutral_dose = coded.dose.copy()
    if dosed.any():
        neutral_dose[dosed, 0] = coded.dose[dosed, 0].mean()
    table = _Table(
        torch.from_numpy(coded.perturbation_members.astype(np.int64)),
        None
        if coded.perturbation_conditions is None
        else torch.from_numpy(coded.perturbation_conditions),
    )
    train_table = torch.from_numpy(model.vocab_.member_matrix.astype(np.int64))
    nets = model._networks()
    with torch.no_grad():
        for net in nets:
            p_bar = net.perturbation(train_table).mean(0)
            c_bar = net.context.weight.mean(0)
            r_bar = net.readout.weight.mean(0)
            if net.cfg.fast:
                preds = _fast_variants(net, coded, table, neutral_dose, (p_bar, c_bar, r_bar))
            else:
                preds = _exact_variants(net, coded, table, neutral_dose, (p_bar, c_bar, r_bar))
            for k in names:
                out[k] += preds[k] / len(nets)
    if coded.binary.any():  # as LPMModel.predict: binary rows are probabilities
        for k in names:
            out[k][coded.binary] = expit(out[k][coded.binary])
    return out


class _Table(NamedTuple):
    """A coded chunk's perturbation table: member ids and (models of member doses) doses."""

    members: Any
    conditions: Any

    def embed(self, net: Any, index: np.ndarray) -> Any:
        """The embeddings of the perturbations at ``index``."""
        import torch

        i = torch.from_numpy(index.astype(np.int64))
        return net.perturbation(
            self.members[i], None if self.conditions is None else self.conditions[i]
        )


def _fast_variants(
    net: Any, coded: Any, table: Any, neutral_dose: np.ndarray, bars: tuple[Any, Any, Any]
) -> dict[str, np.ndarray]:
    """Fast mode: one hidden vector per profile (and variant), then every row's readout score."""
    import torch

    p_bar, c_bar, r_bar = bars
    cond = coded.condition.astype(np.int64)
    first = np.zeros(int(cond.max()) + 1, np.int64)
    first[cond[::-1]] = np.arange(len(cond))[::-1]
    p = table.embed(net, coded.perturbation[first])
    c = net.context(torch.from_numpy(coded.context[first].astype(np.int64)))
    d = torch.from_numpy(coded.dose[first])
    d0 = torch.from_numpy(neutral_dose[first])
    n = len(first)
    hidden = {
        "full": net.body(torch.cat([p, c, d], 1)),
        "perturbation": net.body(torch.cat([p_bar.expand(n, -1), c, d], 1)),
        "context": net.body(torch.cat([p, c_bar.expand(n, -1), d], 1)),
        "dose": net.body(torch.cat([p, c, d0], 1)),
    }
    out: dict[str, np.ndarray] = {k: np.zeros(len(cond)) for k in [*hidden, "readout"]}
    bias_bar = net.readout_bias.mean()
    for lo in range(0, len(cond), 262_144):
        rc = torch.from_numpy(cond[lo : lo + 262_144])
        rr = torch.from_numpy(coded.readout[lo : lo + 262_144].astype(np.int64))
        r, b = net.readout(rr), net.readout_bias[rr]
        for k, h in hidden.items():
            out[k][lo : lo + len(rc)] = ((h[rc] * r).sum(1) + b).numpy()
        out["readout"][lo : lo + len(rc)] = (hidden["full"][rc] @ r_bar + bias_bar).numpy()
    return out


def _exact_variants(
    net: Any, coded: Any, table: Any, neutral_dose: np.ndarray, bars: tuple[Any, Any, Any]
) -> dict[str, np.ndarray]:
    """Exact mode: the MLP on ``[p; c; r; d]`` with one block swapped at a time."""
    import torch

    p_bar, c_bar, r_bar = bars
    out: dict[str, np.ndarray] = {
        k: np.zeros(len(coded)) for k in ("full", "perturbation", "context", "readout", "dose")
    }
    for lo in range(0, len(coded), 65_536):
        sl = slice(lo, lo + 65_536)
        p = table.embed(net, coded.perturbation[sl])
        c = net.context(torch.from_numpy(coded.context[sl].astype(np.int64)))
        r = net.readout(torch.from_numpy(coded.readout[sl].astype(np.int64)))
        d, d0 = torch.from_numpy(coded.dose[sl]), torch.from_numpy(neutral_dose[sl])
        n = len(p)
        parts = {
            "full": [p, c, r, d],
            "perturbation": [p_bar.expand(n, -1), c, r, d],
            "context": [p, c_bar.expand(n, -1), r, d],
            "readout": [p, c, r_bar.expand(n, -1), d],
            "dose": [p, c, r, d0],
        }
        for k, xs in parts.items():
            out[k][lo : lo + n] = net.body(torch.cat(xs, 1)).squeeze(-1).numpy()
    return out


def posthoc_importance(
    model: PerturbationModel, rows: pl.DataFrame, *, perturbation_neutral: str = "mean"
) -> pl.DataFrame:
    """Each input's squared-error increase when it is swapped for its neutral value, per row.

    Parameters
    ----------
    model
        A fitted ``lpm``/``lpm_fast`` (inputs swapped for their neutral values, see the module
        docstring) or ``lpm_ame`` (each expert left out, attention re-normalised).
    rows
        Long rows with a finite ``value``; every symbol must be known to the model.
    perturbation_neutral
        ``"mean"`` (the mean training perturbation embedding) or ``"control"`` (the predicted
        delta 0, i.e. ``value² - error``). LPM only; the AME always leaves the expert out.

    Returns
    -------
    polars.DataFrame
        The key columns, ``value``, ``prediction``, ``error`` (squared), one
        ``importance_<input>`` column per input, ``perturbation_vs_control`` (``value² -
        error``) and ``method`` = ``"posthoc"``.

    Example
    -------
    >>> table = posthoc_importance(model, rows)  # doctest: +SKIP
    """
    if perturbation_neutral not in ("mean", "control"):
        raise LpmInputError(
            None, f"perturbation_neutral must be 'mean' or 'control', got {perturbation_neutral!r}"
        )
    kind = explainable(model)
    _checked(model, rows)
    base = _key_frame(rows)
    value = base[S.VALUE].to_numpy()
    if kind == "lpm":
        variants = _lpm_variants(model, rows)
        full = variants.pop("full")
        if perturbation_neutral == "control":
            variants["perturbation"] = np.zeros_like(full)
    else:
        full = model.predict(rows).astype(np.float64)
        without = model.predict_without(rows)  # type: ignore[attr-defined]
        variants = {n: without[:, i].astype(np.float64) for i, n in enumerate(model.experts_)}  # type: ignore[attr-defined]
    err = (full - value) ** 2
    cols = {f"{PREFIX}{k}": (v - value) ** 2 - err for k, v in variants.items()}
    return base.with_columns(
        pl.Series("prediction", full),
        pl.Series("error", err),
        *(pl.Series(k, v) for k, v in cols.items()),
        pl.Series(VS_CONTROL, value**2 - err),
        pl.lit(POSTHOC).alias(METHOD),
    )


def trained_importance(model: PerturbationModel, rows: pl.DataFrame) -> pl.DataFrame:
    """The gate weights of a fitted attentive mixture (``lpm_ame``) per row.

    Returns the key columns, ``value``, ``prediction``, ``error`` and one ``importance_<input>``
    column per expert holding its attention (each row's sum to 1), with ``method`` =
    ``"ame_attention"``; aggregate with :func:`importance_by`.
    """
    if explainable(model) != "ame":
        raise LpmInputError(None, "trained importance needs an attentive mixture model (lpm_ame)")
    _checked(model, rows)
    base = _key_frame(rows)
    attention = model.attention(rows)  # type: ignore[attr-defined]
    pred = model.predict(rows).astype(np.float64)
    return base.with_columns(
        pl.Series("prediction", pred),
        pl.Series("error", (pred - base[S.VALUE].to_numpy()) ** 2),
        *(
            pl.Series(f"{PREFIX}{n}", attention[:, i].astype(np.float64))
            for i, n in enumerate(model.experts_)  # type: ignore[attr-defined]
        ),
        pl.lit(AME_ATTENTION).alias(METHOD),
    )


def inputs_of(table: pl.DataFrame) -> list[str]:
    """The inputs a per-row importance table scores (its ``importance_<input>`` columns)."""
    return [c.removeprefix(PREFIX) for c in table.columns if c.startswith(PREFIX)]


def group_means(table: pl.DataFrame, keys: list[str], columns: Mapping[str, str]) -> pl.DataFrame:
    """Mean of each column per group, summed in row order, so the same table gives the same bits.

    (A polars ``group_by().mean()`` over hundreds of thousands of rows splits the sums across
    threads, and the last bits then change from run to run.) Returns ``keys``, one column per
    entry of ``columns`` (renamed) and ``n``, sorted by ``keys``.
    """
    if table.height == 0:
        raise LpmInputError(None, "no rows to average")
    ordered = table.with_row_index("_row").sort([*keys, "_row"])
    group = (
        ordered.select(pl.struct(keys).rle_id().alias("_g"))["_g"].to_numpy()
        if keys
        else np.zeros(ordered.height, np.int64)
    )
    first: np.ndarray = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[first, ordered.height])
    series = [ordered[first][k] for k in keys]
    for col, name in columns.items():
        sums = np.add.reduceat(ordered[col].cast(pl.Float64).to_numpy(), first)
        series.append(pl.Series(name, sums / counts))
    return pl.DataFrame([*series, pl.Series("n", counts, dtype=pl.UInt32)])


def importance_by(table: pl.DataFrame, *, by: str | None = S.PERTURBATION) -> pl.DataFrame:
    """Mean importance of each input per ``by`` group (``None``: overall), and its share.

    The share is the group's mean importance with negatives clipped at 0, normalised to sum 1
    over the inputs (all 0 when no input helps). Rows of several methods are kept apart.

    Returns a long table: ``by`` (unless None), ``method``, ``input``, ``importance``,
    ``share`` and ``n_rows``.
    """
    inputs = inputs_of(table)
    if not inputs:
        raise LpmInputError(None, f"no {PREFIX}<input> columns to aggregate")
    groups = ([by] if by is not None else []) + ([METHOD] if METHOD in table.columns else [])
    if by is not None and by not in table.columns:
        raise LpmInputError(None, f"cannot aggregate by {by!r}: no such column")
    long = table.unpivot(
        index=groups, on=[f"{PREFIX}{i}" for i in inputs], variable_name="input", value_name="v"
    ).with_columns(pl.col("input").str.strip_prefix(PREFIX))
    keys = [*groups, "input"]
    agg = (
        group_means(long, keys, {"v": "importance"})
        .with_columns(pl.col("n").alias("n_rows"))
        .drop("n")
    )
    clipped = pl.col("importance").clip(lower_bound=0.0)
    total = clipped.sum().over(groups) if groups else clipped.sum()
    share = pl.when(total > 0).then(clipped / total).otherwise(0.0)
    return (
        agg.with_columns(share.alias("share"))
        .select(*keys, "importance", "share", "n_rows")
        .sort(keys)
    )


# ---- the sanity check on the simulator ---------------------------------------------------------
def _auroc(score: np.ndarray, positive: np.ndarray) -> float:
    from scipy.stats import rankdata

    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def sanity_check(per_perturbation: pl.DataFrame, truth: pl.DataFrame) -> dict[str, Any]:
    """Does perturbation importance separate perturbations with and without downstream effect?

    ``per_perturbation`` holds ``perturbation`` and score columns; ``truth`` the simulator's
    ``perturbation`` and ``has_downstream_effect``. Per score column: the mean for perturbations
    without and with an effect, the AUROC of the score for "has an effect" and the two-sided
    Mann-Whitney p-value.
    """
    from scipy.stats import mannwhitneyu

    from lpm.sim.truth import DOWNSTREAM_FLAG as TRUTH_FLAG

    joined = per_perturbation.join(
        truth.select(S.PERTURBATION, TRUTH_FLAG), on=S.PERTURBATION, how="inner"
    )
    out: dict[str, Any] = {}
    flag = joined[TRUTH_FLAG].to_numpy().astype(bool)
    for col in per_perturbation.columns:
        if col == S.PERTURBATION:
            continue
        x = joined[col].to_numpy().astype(np.float64)
        ok = np.isfinite(x)
        pos, neg = x[ok & flag], x[ok & ~flag]
        p = float(mannwhitneyu(pos, neg).pvalue) if len(pos) and len(neg) else float("nan")
        out[col] = {
            "mean_no_effect": float(neg.mean()) if len(neg) else None,
            "mean_effect": float(pos.mean()) if len(pos) else None,
            "n_no_effect": len(neg),
            "n_effect": len(pos),
            "auroc": _auroc(x[ok], flag[ok]),
            "mannwhitney_p": p,
        }
    return out


def per_perturbation_scores(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per perturbation: the perturbation-importance columns of every method
    (:data:`PERTURBATION_SCORES`, the last only with AME rows)."""
    mean_sub, vs_control, attention = PERTURBATION_SCORES
    post = group_means(
        rows.filter(pl.col(METHOD) == POSTHOC),
        [S.PERTURBATION],
        {f"{PREFIX}perturbation": mean_sub, VS_CONTROL: vs_control},
    ).drop("n")
    ame = rows.filter(pl.col(METHOD) == AME_ATTENTION)
    if ame.height:
        post = post.join(
            group_means(ame, [S.PERTURBATION], {f"{PREFIX}perturbation": attention}).drop("n"),
            on=S.PERTURBATION,
            how="left",
        )
    return post.sort(S.PERTURBATION)


# ---- summaries ----------------------------------------------------------------------------------
def importance_shares(by_table: pl.DataFrame) -> dict[str, dict[str, float]]:
    """``method -> input -> share`` of an :func:`importance_by` table of one group."""
    return {
        str(m): {str(i): float(s) for i, s in zip(g["input"], g["share"], strict=True)}
        for (m,), g in by_table.group_by(METHOD, maintain_order=True)
    }


def context_vs_perturbation(shares: Mapping[str, float]) -> float | None:
    """Context's part of what context and perturbation explain together (readout left out: it
    is the coordinate being read, so neutralising it ruins nearly any prediction)."""
    total = shares.get("context", 0.0) + shares.get("perturbation", 0.0)
    return shares.get("context", 0.0) / total if total > 0 else None


# ---- the task -----------------------------------------------------------------------------------
class InputImportanceTask(DiscoveryTask):
    """Each input's importance per row: its error increase when swapped for its neutral value
    (``method="posthoc"``, :func:`posthoc_importance`), or the attention of a trained ``lpm_ame``
    (``method="attention"``, :func:`trained_importance`)."""

    name = "explain"

    def __init__(self, *, method: str = "posthoc", perturbation_neutral: str = "mean"):
        if method not in ("posthoc", "attention"):
            raise LpmInputError(
                "method", f"unknown method {method!r}; expected one of posthoc, attention"
            )
        self.method = method
        self.perturbation_neutral = perturbation_neutral

    def needs_model(self) -> bool:
        return True

    def _run(
        self, data: pl.DataFrame | None, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame:
        assert data is not None and model is not None
        fitted = fitted_model(model)
        if self.method == "attention":
            return trained_importance(fitted, data)
        return posthoc_importance(fitted, data, perturbation_neutral=self.perturbation_neutral)


__all__ = [
    "AME_ATTENTION",
    "METHOD",
    "PERTURBATION_SCORES",
    "POSTHOC",
    "PREFIX",
    "VS_CONTROL",
    "InputImportanceTask",
    "check_rows",
    "context_vs_perturbation",
    "explainable",
    "group_means",
    "importance_by",
    "importance_shares",
    "inputs_of",
    "per_perturbation_scores",
    "posthoc_importance",
    "sanity_check",
    "trained_importance",
]

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
:func:`run_explain` does the whole analysis on a store or table and writes its files.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.errors import LpmInputError

if TYPE_CHECKING:
    from lpm.models.base import PerturbationModel

#: Prefix of the per-row importance columns (``importance_perturbation``, ...).
PREFIX: Final = "importance_"
#: Post-hoc perturbation importance against the control (predicted delta 0), beside the inputs.
VS_CONTROL: Final = "perturbation_vs_control"
METHOD: Final = "method"
POSTHOC: Final = "posthoc"
AME_ATTENTION: Final = "ame_attention"
ROWS_FILE: Final = "importance_rows.parquet"
BY_PERTURBATION_FILE: Final = "importance_by_perturbation.csv"
BY_CONTEXT_FILE: Final = "importance_by_context.csv"
FIGURE_FILE: Final = "importance.png"
SUMMARY_FILE: Final = "summary.json"
TRUTH_FLAG: Final = "has_downstream_effect"


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


def _kind(model: Any) -> str:
    """'lpm' or 'ame' for the models that can be explained; anything else is an error."""
    for module, cls, kind in (
        ("lpm.models.lpm.model", "LPMModel", "lpm"),
        ("lpm.models.ame", "AttentiveMixtureModel", "ame"),
    ):
        mod = sys.modules.get(module)  # loaded whenever such a model exists
        if mod is not None and isinstance(model, getattr(mod, cls)):
            model._check_fitted()
            return kind
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
    keys = [c for c in (S.CONTEXT, S.PERTURBATION, S.READOUT, S.DOSE, S.TIME) if c in rows.columns]
    return rows.select(*keys, pl.col(S.VALUE).cast(pl.Float64))


# ---- post-hoc ----------------------------------------------------------------------------------
def _lpm_variants(model: Any, rows: pl.DataFrame) -> dict[str, np.ndarray]:
    """Ensemble-mean predictions of an LPM: ``full`` and one per neutralised input."""
    import torch
    from scipy.special import expit

    from lpm.models.lpm.rows import code_rows

    coded = code_rows(rows, model.vocab_)
    dosed = coded.dose[:, 1] > 0
    names = ["full", "perturbation", "context", "readout"] + (["dose"] if dosed.any() else [])
    out = {k: np.zeros(rows.height) for k in names}
    neutral_dose = coded.dose.copy()
    if dosed.any():
        neutral_dose[dosed, 0] = coded.dose[dosed, 0].mean()
    table = torch.from_numpy(coded.perturbation_members.astype(np.int64))
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


def _fast_variants(
    net: Any, coded: Any, table: Any, neutral_dose: np.ndarray, bars: tuple[Any, Any, Any]
) -> dict[str, np.ndarray]:
    """Fast mode: one hidden vector per profile (and variant), then every row's readout score."""
    import torch

    p_bar, c_bar, r_bar = bars
    cond = coded.condition.astype(np.int64)
    first = np.zeros(int(cond.max()) + 1, np.int64)
    first[cond[::-1]] = np.arange(len(cond))[::-1]
    p = net.perturbation(table[torch.from_numpy(coded.perturbation[first].astype(np.int64))])
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
        p = net.perturbation(table[torch.from_numpy(coded.perturbation[sl].astype(np.int64))])
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
    kind = _kind(model)
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
    if _kind(model) != "ame":
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


def _per_perturbation_scores(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per perturbation: the perturbation-importance columns of every method."""
    post = group_means(
        rows.filter(pl.col(METHOD) == POSTHOC),
        [S.PERTURBATION],
        {f"{PREFIX}perturbation": "posthoc_mean_substitution", VS_CONTROL: "posthoc_vs_control"},
    ).drop("n")
    ame = rows.filter(pl.col(METHOD) == AME_ATTENTION)
    if ame.height:
        post = post.join(
            group_means(ame, [S.PERTURBATION], {f"{PREFIX}perturbation": "ame_attention"}).drop(
                "n"
            ),
            on=S.PERTURBATION,
            how="left",
        )
    return post.sort(S.PERTURBATION)


# ---- the whole analysis ------------------------------------------------------------------------
@dataclass
class ExplainResult:
    """What :func:`run_explain` computed and wrote."""

    rows: pl.DataFrame
    by_perturbation: pl.DataFrame
    by_context: pl.DataFrame
    summary: dict[str, Any]
    out: Path
    files: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([*summary_lines(self.summary), f"wrote {self.out}"])


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary of :func:`run_explain` in a few sentences (the CLI prints them, the demo
    report lists them): shares per input and method, the sanity check, held-out errors."""
    lines = []
    ratios = summary.get("context_vs_perturbation", {})
    for method, by_input in summary.get("shares", {}).items():
        text = ", ".join(f"{k} {v:.0%}" for k, v in by_input.items())
        ratio = ratios.get(method)
        extra = f" (context / (context + perturbation): {ratio:.0%})" if ratio is not None else ""
        lines.append(f"{method}: share of importance by input: {text}{extra}")
    for score, check in (summary.get("sanity_check") or {}).items():
        lines.append(
            f"sanity check ({score}): perturbations without downstream effect "
            f"{check['mean_no_effect']:.3g} against {check['mean_effect']:.3g} for the others "
            f"(AUROC of telling them apart {check['auroc']:.3f}, {check['n_no_effect']} vs "
            f"{check['n_effect']} perturbations)"
        )
    mse = summary.get("test_mse", {})
    if mse:
        ame = f", lpm_ame {mse['ame']:.4g}" if mse.get("ame") is not None else ""
        lines.append(f"held-out MSE: explained model {mse['lpm']:.4g}{ame}")
    return lines


def _load(data: pl.DataFrame | str | Path, contexts: Sequence[str] | None) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        frame, where = data, None
    else:
        from lpm.data.store import open_store

        frame, where = open_store(data).read(), str(data)
    if contexts is not None:
        present = set(frame[S.CONTEXT].cast(pl.String).unique().to_list())
        missing = sorted(set(contexts) - present)
        if missing:
            raise LpmInputError(
                where,
                f"no context {', '.join(missing)} in column {S.CONTEXT}; "
                f"contexts are {', '.join(sorted(present)[:10])}",
            )
        frame = frame.filter(pl.col(S.CONTEXT).is_in(list(contexts)))
    check_rows(frame, where=where)
    return frame


def _ame(**params: Any) -> PerturbationModel:
    """A new attentive mixture (the class directly: it need not be registered to be used)."""
    from lpm.models.ame import AttentiveMixtureModel

    bad = sorted(set(params) - set(AttentiveMixtureModel.param_names()))
    if bad:
        raise LpmInputError(None, f"lpm_ame has no parameter(s) {', '.join(bad)}")
    return AttentiveMixtureModel(**params)


def _shares(by_table: pl.DataFrame) -> dict[str, dict[str, float]]:
    return {
        str(m): {str(i): float(s) for i, s in zip(g["input"], g["share"], strict=True)}
        for (m,), g in by_table.group_by(METHOD, maintain_order=True)
    }


def _context_vs_perturbation(shares: Mapping[str, float]) -> float | None:
    """Context's part of what context and perturbation explain together (readout left out: it
    is the coordinate being read, so neutralising it ruins nearly any prediction)."""
    total = shares.get("context", 0.0) + shares.get("perturbation", 0.0)
    return shares.get("context", 0.0) / total if total > 0 else None


def run_explain(
    data: pl.DataFrame | str | Path,
    *,
    out: str | Path,
    model: PerturbationModel | str | Path | None = None,
    train_ame: bool = True,
    truth: str | Path | None = None,
    contexts: Sequence[str] | None = None,
    test_fraction: float = 0.2,
    max_rows: int | None = 1_000_000,
    ame_max_rows: int | None = 300_000,
    lpm_params: Mapping[str, Any] | None = None,
    ame_params: Mapping[str, Any] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> ExplainResult:
    """Explain a model's predictions on held-out profiles and write the tables and a figure.

    A seeded ``test_fraction`` of whole profiles is held out. Without ``model`` an ``lpm_fast``
    (``lpm_params``) is fitted on the rest; a given model (fitted, or a saved folder) is used as
    it is and may have seen the held-out rows. With ``train_ame`` an ``lpm_ame`` (``ame_params``)
    is fitted on the rest too and its attention is reported beside the post-hoc importance.
    Held-out rows both models can predict are explained (a seeded sample of ``max_rows``).

    Parameters
    ----------
    data
        A store folder or a long table (finite values).
    out
        Folder to write (whole or not at all): ``importance_rows.parquet``,
        ``importance_by_perturbation.csv``, ``importance_by_context.csv``, ``importance.png``
        and ``summary.json`` (shares per input and method, test MSEs, the sanity check, the
        resolved options).
    truth
        A simulator truth folder (``perturbations.parquet`` with ``has_downstream_effect``):
        adds the sanity check and its figure panel.
    contexts
        Keep only these contexts (e.g. McFaline's glioblastoma lines).
    max_rows
        Held-out rows explained at most (a seeded sample).
    ame_max_rows
        Training rows of the AME at most (a seeded sample; None: all of them).

    Returns
    -------
    ExplainResult
        Per-row table (both methods), the two aggregated tables, the summary and the files.
    """
    from lpm._utils.atomic import atomic_dir
    from lpm.models.lpm.model import _carve_validation
    from lpm.models.registry import get_model, load_model
    from lpm.pl.explain import plot_importance

    out = Path(out)
    if out.exists() and not overwrite:
        raise LpmInputError(out, "already exists (pass --overwrite to replace it)")
    if not 0 < test_fraction < 1:
        raise LpmInputError(None, f"test_fraction must be in (0, 1), got {test_fraction}")
    truth_table = None
    if truth is not None:
        tpath = Path(truth) / "perturbations.parquet"
        if not tpath.is_file():
            raise LpmInputError(tpath, "simulator truth not found")
        truth_table = pl.read_parquet(tpath)
        if TRUTH_FLAG not in truth_table.columns:
            raise LpmInputError(tpath, f"has no {TRUTH_FLAG!r} column")
    t0 = time.perf_counter()
    frame = _load(data, contexts)
    train, test = _carve_validation(frame, fraction=test_fraction, seed=seed)
    if test is None:
        raise LpmInputError(None, "too few profiles to hold out a test set")
    timings: dict[str, float] = {}
    if model is None:
        t = time.perf_counter()
        fitted = get_model("lpm_fast", **{"seed": seed, **dict(lpm_params or {})}).fit(train)
        timings["fit_lpm_s"] = time.perf_counter() - t
        model_desc = f"lpm_fast fitted here on {train.height} rows"
    elif isinstance(model, str | Path):
        fitted, model_desc = load_model(model), str(model)
    else:
        fitted, model_desc = model, getattr(model, "name", "") or type(model).__name__
    _kind(fitted)
    ame = None
    if train_ame:
        t = time.perf_counter()
        ame_train = train
        if ame_max_rows is not None and train.height > ame_max_rows:
            # the AME trains row by row (about 10 min for 8 epochs of 3 M rows on two cores):
            # a seeded sample of the training rows keeps it to a minute or two
            pick = np.random.default_rng([seed, 7]).choice(train.height, ame_max_rows, False)
            ame_train = train[np.sort(pick)]
        ame = _ame(seed=seed, **dict(ame_params or {})).fit(ame_train)
        timings["fit_ame_s"] = time.perf_counter() - t
    ok = fitted.supported(test)
    if ame is not None:
        ok &= ame.supported(test)
    rows = test.filter(pl.Series(ok))
    if rows.height == 0:
        raise LpmInputError(None, "no held-out row the model(s) can predict")
    if max_rows is not None and rows.height > max_rows:
        pick = np.sort(np.random.default_rng([seed, 11]).choice(rows.height, max_rows, False))
        rows = rows[pick]
    t = time.perf_counter()
    parts = [posthoc_importance(fitted, rows)]
    if ame is not None:
        parts.append(trained_importance(ame, rows))
    timings["explain_s"] = time.perf_counter() - t
    table = pl.concat(parts, how="diagonal")
    by_pert = importance_by(table, by=S.PERTURBATION)
    by_ctx = importance_by(table, by=S.CONTEXT)
    overall = importance_by(table, by=None)
    mse = {
        "lpm": float(parts[0]["error"].mean()),  # type: ignore[arg-type]
        "ame": float(parts[1]["error"].mean()) if ame is not None else None,  # type: ignore[arg-type]
        "n_test_rows": rows.height,
    }
    scores = _per_perturbation_scores(table)
    sanity = sanity_check(scores, truth_table) if truth_table is not None else None
    timings["total_s"] = time.perf_counter() - t0
    summary: dict[str, Any] = {
        "model": model_desc,
        "inputs": {m: inputs_of(p) for m, p in zip((POSTHOC, AME_ATTENTION), parts, strict=False)},
        "shares": _shares(overall),
        "shares_by_context": {
            str(c): _shares(g) for (c,), g in by_ctx.group_by(S.CONTEXT, maintain_order=True)
        },
        "context_vs_perturbation": {
            m: _context_vs_perturbation(v) for m, v in _shares(overall).items()
        },
        "test_mse": mse,
        "sanity_check": sanity,
        "ame_history": getattr(ame, "history_", None),
        "seconds": timings,
        "options": {
            "data": str(data) if not isinstance(data, pl.DataFrame) else "<table>",
            "model": model_desc,
            "train_ame": train_ame,
            "truth": str(truth) if truth is not None else None,
            "contexts": list(contexts) if contexts is not None else None,
            "test_fraction": test_fraction,
            "max_rows": max_rows,
            "ame_max_rows": ame_max_rows,
            "lpm_params": dict(lpm_params or {}),
            "ame_params": dict(ame_params or {}),
            "seed": seed,
        },
    }
    files = [ROWS_FILE, BY_PERTURBATION_FILE, BY_CONTEXT_FILE, FIGURE_FILE, SUMMARY_FILE]
    with atomic_dir(out, overwrite=overwrite) as tmp:
        table.write_parquet(tmp / ROWS_FILE)
        by_pert.write_csv(tmp / BY_PERTURBATION_FILE)
        by_ctx.write_csv(tmp / BY_CONTEXT_FILE)
        figure_scores = (
            scores.join(truth_table.select(S.PERTURBATION, TRUTH_FLAG), on=S.PERTURBATION)
            if truth_table is not None
            else None
        )
        plot_importance(by_ctx, figure_scores, tmp / FIGURE_FILE)
        (tmp / SUMMARY_FILE).write_text(
            json.dumps(summary, indent=2, sort_keys=True, default=_json_default) + "\n"
        )
    return ExplainResult(table, by_pert, by_ctx, summary, out, [out / f for f in files])


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")

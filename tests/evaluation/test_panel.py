"""The evaluation panel: metric values against a loop-based reference, and their behaviour."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from lpm.data import schema as S
from lpm.errors import LpmInputError
from lpm.evaluation.metrics import ACROSS_METRICS, ALL_METRICS
from lpm.evaluation.panel import (
    HIGHER_IS_BETTER,
    METRICS,
    PER_CONDITION_METRICS,
    evaluate,
    ratio_to_baseline,
)

KEYS = [S.CONTEXT, S.PERTURBATION, S.DOSE]


def _profiles(
    seed: int = 0,
    *,
    n_contexts: int = 3,
    n_perts: int = 30,
    n_readouts: int = 40,
    shared: float = 0.0,
    missing: float = 0.0,
    prefix: str = "CRISPRi:G",
) -> pl.DataFrame:
    """Long rows: per context a shared response (scaled by ``shared``) plus a specific effect."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(99).normal(size=(n_contexts, n_readouts))  # same across calls
    rows = []
    for k in range(n_contexts):
        for p in range(n_perts):
            dose = 1.0 if p % 3 else None
            values = shared * base[k] + rng.normal(size=n_readouts)
            for r in range(n_readouts):
                if rng.random() >= missing:
                    rows.append((f"sim/C{k}", f"{prefix}{p}", dose, f"r{r}", float(values[r])))
    schema = {
        S.CONTEXT: pl.String,
        S.PERTURBATION: pl.String,
        S.DOSE: pl.Float32,
        S.READOUT: pl.String,
        S.VALUE: pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _metric(result_summary: pl.DataFrame, metric: str, column: str = "mean") -> float:
    return float(result_summary.filter(pl.col("metric") == metric)[column].item())


# --------------------------------------------------------------------------- reference


def _reference(
    truth: pl.DataFrame, pred: np.ndarray, train: pl.DataFrame
) -> dict[tuple[object, ...], dict[str, float]]:
    """Per-condition metrics by plain loops, following the documented definitions."""
    df = truth.with_columns(pl.Series("pred", pred)).to_pandas()
    tr = train.filter(pl.col(S.PERTURBATION) != S.CONTROL).to_pandas()
    local = tr.groupby([S.CONTEXT, S.READOUT])[S.VALUE].mean().to_dict()
    overall = tr.groupby(S.READOUT)[S.VALUE].mean().to_dict()
    df[S.DOSE] = df[S.DOSE].astype(object).where(df[S.DOSE].notna(), None)
    groups = {key: g for key, g in df.groupby(KEYS, dropna=False)}
    out: dict[tuple[object, ...], dict[str, float]] = {}
    for key, g in groups.items():
        t, p = g[S.VALUE].to_numpy(), g["pred"].to_numpy()
        top = np.argsort(-np.abs(t), kind="stable")[:20]
        mu = np.array([local.get((key[0], r), overall.get(r, np.nan)) for r in g[S.READOUT]])
        ok = ~np.isnan(mu)
        same_ctx = [(k2, g2) for k2, g2 in groups.items() if k2[0] == key[0]]
        own = dict(zip(g[S.READOUT], p, strict=True))
        dist = {}
        for k2, g2 in same_ctx:
            shared = [
                (own[r], v) for r, v in zip(g2[S.READOUT], g2[S.VALUE], strict=True) if r in own
            ]
            if shared:
                dist[k2] = float(np.mean([abs(a - b) for a, b in shared]))
        others = [d for k2, d in dist.items() if k2 != key]
        disc = (
            1
            - (sum(d < dist[key] for d in others) + 0.5 * sum(d == dist[key] for d in others))
            / len(others)
            if others
            else np.nan
        )
        out[tuple(None if isinstance(v, float) and np.isnan(v) else v for v in key)] = {
            "pearson_delta": float(np.corrcoef(p, t)[0, 1]),
            "pearson_delta_top20": float(np.corrcoef(p[top], t[top])[0, 1]),
            "pearson_delta_vs_mean": float(np.corrcoef(p[ok] - mu[ok], t[ok] - mu[ok])[0, 1]),
            "mse": float(np.mean((p - t) ** 2)),
            "mse_top20": float(np.mean((p[top] - t[top]) ** 2)),
            "direction_acc_top20": float(np.mean(np.sign(p[top]) == np.sign(t[top]))),
            "discrimination": disc,
        }
    return out


def test_metrics_match_a_loop_reference_with_missing_readouts() -> None:
    truth = _profiles(1, missing=0.15, n_perts=12)
    # Training misses readout r0 in context C0 (fallback to all contexts) and r1 everywhere.
    train = _profiles(2, missing=0.0, n_perts=10, prefix="CRISPRi:T")
    train = train.filter(
        ~((pl.col(S.CONTEXT) == "sim/C0") & (pl.col(S.READOUT) == "r0"))
        & (pl.col(S.READOUT) != "r1")
    )
    pred = truth[S.VALUE].to_numpy() * 0.5 + np.random.default_rng(3).normal(size=truth.height)
    result = evaluate(truth, pred, train=train, n_boot=50)
    ref = _reference(truth, pred, train)
    assert not any(result.per_condition[m].is_nan().any() for m in PER_CONDITION_METRICS[:7])
    assert result.per_condition.height == len(ref)
    for row in result.per_condition.iter_rows(named=True):
        expected = ref[tuple(row[k] for k in KEYS)]
        for metric, value in expected.items():
            assert row[metric] == pytest.approx(value, rel=1e-9, abs=1e-12), (metric, row)


# --------------------------------------------------------------------------- behaviour


def test_perfect_prediction() -> None:
    truth = _profiles(0, shared=1.0)
    result = evaluate(
        truth, truth[S.VALUE].to_numpy(), train=_profiles(5, prefix="CRISPRi:T"), n_boot=100
    )
    pc = result.per_condition
    for metric in (
        "pearson_delta",
        "pearson_delta_top20",
        "pearson_delta_vs_mean",
        "direction_acc_top20",
        "discrimination",
    ):
        assert np.allclose(pc[metric].to_numpy(), 1.0), metric
    for metric in ("mse", "mse_top20"):
        assert np.allclose(pc[metric].to_numpy(), 0.0)
    assert _metric(result.summary, "discrimination") == 1.0
    assert _metric(result.summary, "pearson_delta", "n") == truth.select(KEYS).n_unique()
    assert _metric(result.summary, "pearson_delta", "n_excluded") == 0


def test_predicting_the_mean_profile_is_seen_through() -> None:
    truth = _profiles(0, shared=3.0)
    train = _profiles(7, shared=3.0, prefix="CRISPRi:T")
    mu = train.group_by(S.CONTEXT, S.READOUT).agg(pl.col(S.VALUE).mean().alias("mu"))
    pred = truth.join(mu, on=[S.CONTEXT, S.READOUT], how="left", maintain_order="left")[
        "mu"
    ].to_numpy()
    result = evaluate(truth, pred, train=train, n_boot=100)
    assert _metric(result.summary, "pearson_delta") > 0.8  # the shared response looks good ...
    assert (
        result.per_condition["pearson_delta_vs_mean"].is_nan().all()
    )  # ... but says nothing specific
    assert _metric(result.summary, "pearson_delta_vs_mean", "n") == 0
    assert (
        _metric(result.summary, "pearson_delta_vs_mean", "n_excluded")
        == result.per_condition.height
    )
    assert np.isnan(_metric(result.summary, "pearson_delta_vs_mean"))
    # A mean profile with a little noise: vs-mean correlation near 0 while pearson_delta stays high.
    noisy = pred + 0.05 * np.random.default_rng(0).normal(size=pred.size)
    result = evaluate(truth, noisy, train=train, n_boot=100)
    assert _metric(result.summary, "pearson_delta") > 0.8
    assert abs(_metric(result.summary, "pearson_delta_vs_mean")) < 0.1


def test_shuffled_predictions_discriminate_at_chance() -> None:
    truth = _profiles(0, n_contexts=3, n_perts=60, shared=1.0)
    # Predict, for each condition, the true profile of the next condition in its context.
    keyed = truth.with_columns(
        pl.col(S.PERTURBATION).str.slice(len("CRISPRi:G")).cast(pl.Int64).alias("i")
    )
    other = keyed.select(
        S.CONTEXT, S.READOUT, ((pl.col("i") + 1) % 60).alias("i"), pl.col(S.VALUE).alias("other")
    )
    pred = keyed.join(other, on=[S.CONTEXT, S.READOUT, "i"], how="left", maintain_order="left")[
        "other"
    ].to_numpy()
    assert not np.isnan(pred).any()
    result = evaluate(truth, pred, train=truth, n_boot=100)
    assert abs(_metric(result.summary, "discrimination") - 0.5) < 0.1
    perfect = evaluate(truth, truth[S.VALUE].to_numpy(), train=truth, n_boot=100)
    assert _metric(perfect.summary, "discrimination") == 1.0


def _binary(seed: int = 0, *, n_conditions: int = 40, n_readouts: int = 30) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_conditions):
        labels = (rng.random(n_readouts) < 0.3).astype(float)
        if c == 0:
            labels[:] = 1.0  # one class only: AUROC undefined for this condition
        for r, y in enumerate(labels):
            rows.append((f"sim/C{c % 2}", f"CRISPRko:G{c}", f"dep{r}", y, S.BINARY))
    return pl.DataFrame(
        rows, schema=[S.CONTEXT, S.PERTURBATION, S.READOUT, S.VALUE, S.READOUT_TYPE], orient="row"
    )


def test_binary_perfect_and_random() -> None:
    truth = _binary()
    labels = truth[S.VALUE].to_numpy()
    perfect = evaluate(truth, labels * 0.8 + 0.1, train=truth, n_boot=100)
    for metric in ("auroc", "auprc", "auroc_pooled", "auprc_pooled"):
        assert _metric(perfect.summary, metric) == pytest.approx(1.0), metric
    assert _metric(perfect.summary, "auroc", "n") == 39
    assert _metric(perfect.summary, "auroc", "n_excluded") == 1
    assert np.isnan(perfect.per_condition["auroc"][0])
    # Continuous metrics see no binary rows.
    assert perfect.per_condition["n_readouts"].sum() == 0
    assert np.isnan(_metric(perfect.summary, "pearson_delta"))
    scores = np.random.default_rng(1).normal(size=truth.height)
    rand = evaluate(truth, scores, train=truth, n_boot=100)
    assert abs(_metric(rand.summary, "auroc_pooled") - 0.5) < 0.06
    assert abs(_metric(rand.summary, "auroc") - 0.5) < 0.06
    assert _metric(rand.summary, "auroc_pooled") == pytest.approx(roc_auc_score(labels, scores))
    assert _metric(rand.summary, "auprc_pooled") == pytest.approx(
        average_precision_score(labels, scores)
    )
    per = rand.per_condition.select(S.PERTURBATION, "auroc", "auprc")
    frame = truth.with_columns(pl.Series("s", scores))
    for pert, auroc, auprc in per.iter_rows():
        g = frame.filter(pl.col(S.PERTURBATION) == pert)
        y, s = g[S.VALUE].to_numpy(), g["s"].to_numpy()
        if len(set(y.tolist())) < 2:
            assert np.isnan(auroc) and np.isnan(auprc)
        else:
            assert auroc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
            assert auprc == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_binary_and_continuous_rows_are_scored_apart() -> None:
    cont = _profiles(0, n_contexts=2, n_perts=10).with_columns(
        pl.lit("delta").alias(S.READOUT_TYPE)
    )
    binary = _binary(n_conditions=10).with_columns(pl.lit(1.0, pl.Float32).alias(S.DOSE))
    truth = pl.concat([cont, binary], how="diagonal_relaxed")
    is_bin = (truth[S.READOUT_TYPE] == S.BINARY).to_numpy()
    pred = np.where(
        is_bin, np.random.default_rng(0).normal(size=truth.height), truth[S.VALUE].to_numpy()
    )
    result = evaluate(truth, pred, train=cont, n_boot=50)
    assert _metric(result.summary, "pearson_delta") == pytest.approx(1.0)
    assert _metric(result.summary, "mse") == pytest.approx(0.0)
    assert result.per_condition["n_binary"].sum() == binary.height
    assert result.per_condition["n_readouts"].sum() == cont.height


def test_bootstrap_interval_contains_mean_and_is_seeded() -> None:
    truth = _profiles(0, missing=0.1)
    pred = truth[S.VALUE].to_numpy() + np.random.default_rng(0).normal(size=truth.height)
    a = evaluate(truth, pred, train=truth, n_boot=300, seed=4)
    b = evaluate(truth, pred, train=truth, n_boot=300, seed=4)
    c = evaluate(truth, pred, train=truth, n_boot=300, seed=5)
    assert a.summary.equals(b.summary)
    assert not a.summary.equals(c.summary)
    assert a.summary["metric"].to_list() == list(METRICS)
    defined = a.summary.filter(pl.col("n") > 1)
    assert defined.height == 7
    assert (defined["ci_low"] <= defined["mean"]).all() and (
        defined["mean"] <= defined["ci_high"]
    ).all()
    assert (defined["ci_low"] < defined["ci_high"]).all()
    none = evaluate(truth, pred, train=truth, n_boot=0)
    assert none.summary.filter(pl.col("n") > 0)["ci_low"].is_nan().all()


def test_pooled_binary_interval_contains_the_pooled_score() -> None:
    truth = _binary(3, n_conditions=60)
    scores = truth[S.VALUE].to_numpy() + np.random.default_rng(2).normal(size=truth.height)
    res = evaluate(truth, scores, train=truth, n_boot=300, seed=1)
    for metric in ("auroc_pooled", "auprc_pooled"):
        lo, mean, hi = (_metric(res.summary, metric, c) for c in ("ci_low", "mean", "ci_high"))
        assert lo < mean < hi
        assert hi - lo < 0.2
    assert _metric(res.summary, "auroc_pooled", "n") == 60


def test_undefined_correlations_are_excluded_and_counted() -> None:
    rows = pl.DataFrame(
        {
            S.CONTEXT: ["A"] * 7,
            S.PERTURBATION: ["CRISPRi:X"] * 3 + ["CRISPRi:Y"] * 3 + ["CRISPRi:Z"],
            S.READOUT: ["g1", "g2", "g3", "g1", "g2", "g3", "g1"],
            S.VALUE: [1.0, 1.0, 1.0, 0.5, -1.0, 2.0, 3.0],  # X constant, Z one readout
        }
    )
    result = evaluate(rows, np.array([0.1, 0.2, 0.3, 0.5, -1.0, 2.0, 1.0]), train=rows, n_boot=20)
    assert _metric(result.summary, "pearson_delta") == pytest.approx(1.0)
    assert _metric(result.summary, "pearson_delta", "n") == 1
    assert _metric(result.summary, "pearson_delta", "n_excluded") == 2
    assert _metric(result.summary, "mse", "n") == 3


def test_replicates_are_averaged() -> None:
    base = _profiles(0, n_contexts=2, n_perts=5)
    reps = pl.concat(
        [
            base.with_columns(
                pl.lit(i, pl.Int32).alias(S.REPLICATE),
                (pl.col(S.VALUE) + (0.1 if i else -0.1)).alias(S.VALUE),
            )
            for i in (0, 1)
        ]
    )
    pred = np.concatenate([base[S.VALUE].to_numpy()] * 2)
    result = evaluate(reps, pred, train=base, n_boot=20)
    assert S.REPLICATE not in result.per_condition.columns
    assert result.per_condition.height == base.select(KEYS).n_unique()
    assert _metric(result.summary, "mse") == pytest.approx(0.0, abs=1e-10)


def test_per_context_breakdown() -> None:
    truth = _profiles(0, n_contexts=2, n_perts=20)
    in_c0 = (truth[S.CONTEXT] == "sim/C0").to_numpy()
    noise = np.random.default_rng(1).normal(size=truth.height)
    pred = truth[S.VALUE].to_numpy() + np.where(in_c0, 0.0, 2.0 * noise)
    result = evaluate(truth, pred, train=truth, n_boot=20)
    pc = result.per_context
    assert set(pc.columns) == {S.CONTEXT, "metric", "mean", "n"}
    assert pc.height == 2 * len(METRICS)

    def get(ctx: str, metric: str, col: str = "mean") -> float:
        return float(
            pc.filter((pl.col(S.CONTEXT) == ctx) & (pl.col("metric") == metric))[col].item()
        )

    assert get("sim/C0", "pearson_delta") == pytest.approx(1.0)
    assert get("sim/C1", "pearson_delta") < 0.7
    assert get("sim/C0", "mse") == pytest.approx(0.0) and get("sim/C1", "mse") > 1.0
    assert get("sim/C0", "pearson_delta", "n") == 20
    assert np.isnan(get("sim/C0", "auroc_pooled")) and get("sim/C0", "auroc_pooled", "n") == 0
    per_cond = result.per_condition.filter(pl.col(S.CONTEXT) == "sim/C1")["mse"].mean()
    assert get("sim/C1", "mse") == pytest.approx(per_cond)


def test_per_context_pooled_binary() -> None:
    truth = _binary(1)
    scores = np.random.default_rng(4).normal(size=truth.height)
    pc = evaluate(truth, scores, train=truth, n_boot=10).per_context
    for ctx in ("sim/C0", "sim/C1"):
        part = truth.with_columns(pl.Series("s", scores)).filter(pl.col(S.CONTEXT) == ctx)
        got = pc.filter((pl.col(S.CONTEXT) == ctx) & (pl.col("metric") == "auroc_pooled"))[
            "mean"
        ].item()
        assert got == pytest.approx(roc_auc_score(part[S.VALUE].to_numpy(), part["s"].to_numpy()))


def test_input_errors() -> None:
    truth = _profiles(0, n_contexts=1, n_perts=3)
    values = truth[S.VALUE].to_numpy()
    with pytest.raises(LpmInputError, match="does not match"):
        evaluate(truth, values[:-1], train=truth)
    with pytest.raises(LpmInputError, match="NaN/inf prediction"):
        evaluate(truth, np.where(np.arange(values.size) == 0, np.nan, values), train=truth)
    with pytest.raises(LpmInputError, match="missing column"):
        evaluate(truth.drop(S.READOUT), values, train=truth)
    with pytest.raises(LpmInputError, match="not 0 or 1"):
        evaluate(truth.with_columns(pl.lit(S.BINARY).alias(S.READOUT_TYPE)), values, train=truth)


# --------------------------------------------------------------------------- ratio to baseline


def _summary_by_model() -> pl.DataFrame:
    rows = [
        ("lpm", "pearson_delta", 0.6),
        ("mean", "pearson_delta", 0.3),
        ("linear", "pearson_delta", 0.4),
        ("lpm", "mse", 0.5),
        ("mean", "mse", 1.0),
        ("linear", "mse", 0.8),
        ("lpm", "discrimination", 0.9),
        ("mean", "discrimination", float("nan")),
        ("linear", "discrimination", 0.0),
    ]
    df = pl.DataFrame(rows, schema=["model", "metric", "mean"], orient="row")
    return df.with_columns(
        (pl.col("mean") - 0.1).alias("ci_low"),
        (pl.col("mean") + 0.1).alias("ci_high"),
        pl.lit(10).alias("n"),
    )


def test_ratio_to_baseline_both_directions() -> None:
    out = ratio_to_baseline(_summary_by_model(), baselines=["mean", "linear"])
    assert out.columns == [
        "model",
        "metric",
        "mean",
        "ci_low",
        "ci_high",
        "best_baseline",
        "ratio_to_best_baseline",
    ]
    got = {
        (m, k): (b, r)
        for m, k, b, r in out.select(
            "model", "metric", "best_baseline", "ratio_to_best_baseline"
        ).iter_rows()
    }
    assert HIGHER_IS_BETTER["pearson_delta"] and not HIGHER_IS_BETTER["mse"]
    assert got[("lpm", "pearson_delta")] == ("linear", pytest.approx(1.5))
    assert got[("mean", "pearson_delta")] == ("linear", pytest.approx(0.75))
    assert got[("lpm", "mse")] == ("linear", pytest.approx(0.625))
    assert got[("mean", "mse")] == ("linear", pytest.approx(1.25))
    # The NaN baseline is skipped; the remaining best is 0, so the ratio is undefined.
    best, ratio = got[("lpm", "discrimination")]
    assert best == "linear" and np.isnan(ratio)


def test_ratio_to_baseline_missing_baselines_and_bad_input() -> None:
    out = ratio_to_baseline(_summary_by_model(), baselines=["absent"])
    assert out["best_baseline"].null_count() == out.height
    assert out["ratio_to_best_baseline"].is_nan().all()
    bad = _summary_by_model().with_columns(pl.lit("accuracy").alias("metric"))
    with pytest.raises(LpmInputError, match="unknown metric"):
        ratio_to_baseline(bad, baselines=["mean"])
    with pytest.raises(LpmInputError, match="misses column"):
        ratio_to_baseline(_summary_by_model().drop("ci_low"), baselines=["mean"])


def test_metric_tables_are_consistent() -> None:
    # every metric a benchmark table holds has a direction: the panel's and the across scores
    assert set(HIGHER_IS_BETTER) == set(METRICS) | set(ACROSS_METRICS)
    assert list(ALL_METRICS) == [*METRICS, *ACROSS_METRICS]
    assert list(METRICS[: len(PER_CONDITION_METRICS)]) == list(PER_CONDITION_METRICS)

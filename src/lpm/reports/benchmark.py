"""Benchmark reports: Markdown made only from a benchmark's written tables (``results.csv``,
``coverage.csv``, ``comparisons.csv``, ``not_applicable.csv``, ``run.json``); the metric panel
is :func:`lpm.pl.benchmark.plot_benchmark_panel`.

The report claims no more than its numbers support: a model "beats" the best baseline only
where the paired difference has a 95% interval above 0 (``comparisons.csv``, see
:mod:`lpm.evaluation.compare`); a ratio to a baseline is printed only where that baseline's
interval lies above 0; coverage counts only the seeds whose test part holds the group; a model
that could not be fitted on the data is listed as not applicable with its reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import polars as pl

from lpm.evaluation.compare import ACROSS_KEY_METRICS, BINARY_KEY_METRICS, KEY_METRICS
from lpm.evaluation.panel import ratio_to_baseline
from lpm.models.registry import BASELINES
from lpm.pl.benchmark import defined_metrics

FIGURE: Final = "results.png"
#: Paired comparisons of each model with the best baseline (written by ``lpm.runs.benchmark``).
COMPARISONS: Final = "comparisons.csv"
#: Models not applicable to the data: ``seed, model, stage, reason``.
NOT_APPLICABLE: Final = "not_applicable.csv"
#: How a verdict names each key metric.
METRIC_NAMES: Final = {
    "pearson_delta_vs_mean": "corrected Pearson (`pearson_delta_vs_mean`)",
    "discrimination": "discrimination (`discrimination`)",
    "auroc": "AUROC (`auroc`)",
    "auprc": "AUPRC (`auprc`)",
    "spearman_per_perturbation": "per-perturbation Spearman (`spearman_per_perturbation`)",
    "auroc_top10_per_perturbation": "per-perturbation top-10 % AUROC (`auroc_top10_per_perturbation`)",
    "spearman_per_context": "per-context Spearman (`spearman_per_context`)",
    "auroc_top10_per_context": "per-context top-10 % AUROC (`auroc_top10_per_context`)",
}
#: What each verdict's pairs are.
_UNITS: Final = {"perturbation": "perturbations", "context": "contexts"}
_AGAINST: Final = {"beats": "", "loses": "to ", "ties": "with ", "untested": "against "}
NO_RATIO: Final = "×n/a\\*"  # escaped: two in a row would be emphasis
NO_RATIO_NOTE: Final = (
    "\\* n/a (baseline ≈ 0): no ratio is printed where the best baseline's 95% interval for "
    "that metric reaches 0 (or lies below it): a ratio to a value the data cannot tell from 0 "
    "means nothing. The verdicts' paired differences say how the models compare."
)


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−")


def _read(folder: Path, name: str) -> pl.DataFrame | None:
    """A table the benchmark wrote, or None for a folder written before lpm wrote it."""
    path = folder / name
    return pl.read_csv(path) if path.is_file() else None


def _ratio_cells(group_rows: pl.DataFrame, baselines: Sequence[str]) -> dict[tuple[str, str], str]:
    """``×ratio`` per (model, metric), or :data:`NO_RATIO` where the best baseline's interval
    does not lie above 0 (or the ratio is undefined)."""
    ratios = ratio_to_baseline(
        group_rows.select("model", "metric", "mean", "ci_low", "ci_high"), baselines=baselines
    )
    low = {(r["model"], r["metric"]): r["ci_low"] for r in group_rows.iter_rows(named=True)}
    cells = {}
    for r in ratios.iter_rows(named=True):
        base_low = low.get((r["best_baseline"], r["metric"]))
        ok = base_low is not None and not math.isnan(base_low) and base_low > 0
        ratio = r["ratio_to_best_baseline"]
        shown = ok and ratio is not None and not math.isnan(ratio)
        cells[(r["model"], r["metric"])] = f"×{_fmt(ratio, 2)}" if shown else NO_RATIO
    return cells


def _coverage_cell(coverage: pl.DataFrame, model: str, n_seeds: int) -> str:
    """Scored / held-out conditions, averaged over the seeds whose test part holds the group,
    and how many seeds that is."""
    cov = coverage.filter(pl.col("model") == model)
    if cov.height == 0:
        return "–"
    scored = round(float(cov["scored"].mean()))  # type: ignore[arg-type]
    total = round(float(cov["conditions"].mean()))  # type: ignore[arg-type]
    seeds = cov["seed"].n_unique() if "seed" in cov.columns else cov.height
    return f"{scored} / {total} conditions, {seeds} of {n_seeds} seeds"


def _table(
    group_rows: pl.DataFrame,
    coverage: pl.DataFrame,
    metrics: Sequence[str],
    *,
    baselines: Sequence[str],
    n_seeds: int,
) -> tuple[list[str], bool]:
    """The group's table, and whether a ratio was withheld (the footnote is needed)."""
    ratios = _ratio_cells(group_rows, baselines)
    head = "| model | coverage | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for m in sorted(group_rows["model"].unique().to_list()):
        cells = []
        for metric in metrics:
            r = group_rows.filter((pl.col("model") == m) & (pl.col("metric") == metric))
            if r.height == 0:
                cells.append("–")
                continue
            row = r.row(0, named=True)
            if row["mean"] is None or math.isnan(row["mean"]):
                cells.append("–")  # undefined (e.g. Pearson of a constant prediction)
                continue
            ci = f" [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
            cells.append(f"{_fmt(row['mean'])}{ci} {ratios.get((m, metric), NO_RATIO)}")
        lines.append(
            f"| {m} | {_coverage_cell(coverage, m, n_seeds)} | " + " | ".join(cells) + " |"
        )
    withheld = any(NO_RATIO in line for line in lines[2:])
    return lines, withheld


def _verdict_metrics(metrics: Sequence[str]) -> list[str]:
    """The key metrics of a table: on a single-readout table the scores across conditions;
    else continuous ones, binary ones, or both (mixed readouts)."""
    across = [m for m in ACROSS_KEY_METRICS if m in metrics]
    if across:
        return across
    out = [m for m in KEY_METRICS if any(x in metrics for x in KEY_METRICS)]
    return out + [m for m in BINARY_KEY_METRICS if any(x in metrics for x in BINARY_KEY_METRICS)]


def _verdict_lines(
    comparisons: pl.DataFrame | None, group: str, models: Sequence[str], metrics: Sequence[str]
) -> list[str]:
    """One line per model that is not a baseline, naming every key metric."""
    if comparisons is None:
        return ["No verdicts: this folder has no comparisons.csv (written by an older lpm)."]
    keys = _verdict_metrics(metrics)
    if not models or not keys:
        return []
    lines = [
        "Verdicts against the best baseline: the paired difference (model − baseline) over the "
        "same conditions and seeds, with its 95% bootstrap interval; **beats** only where the "
        "interval lies above 0, **loses** where below, **ties** where it spans 0.",
        "",
    ]
    g = comparisons.filter(pl.col("group") == group)
    for model in models:
        parts = []
        for metric in keys:
            r = g.filter((pl.col("model") == model) & (pl.col("metric") == metric))
            name = METRIC_NAMES[metric]
            if r.height == 0:
                parts.append(f"{name}: no verdict (no baseline or no paired condition)")
                continue
            c = r.row(0, named=True)
            interval = f"[{_signed(c['ci_low'])}, {_signed(c['ci_high'])}]"
            if c["verdict"] == "untested":
                interval = "(no interval)"
            seeds = f"{c['seeds']} seed" + ("s" if c["seeds"] != 1 else "")
            unit = _UNITS.get(metric.rpartition("_per_")[2], "conditions")
            parts.append(
                f"{name}: **{c['verdict']}** {_AGAINST[c['verdict']]}{c['baseline']}, "
                f"{_signed(c['difference'])} {interval} over {c['n_pairs']} {unit} in {seeds}"
            )
        lines.append(f"- **{model}** — " + "; ".join(parts) + ".")
    return [*lines, ""]


def _across_note(folder: Path, group: str, metrics: Sequence[str]) -> list[str]:
    """On a single-readout table: how many perturbations and contexts were held out and how many
    scored (the best model's count; each model's is ``n`` in ``results.csv``), from
    ``scores_per_seed.csv``."""
    if not any(m in ACROSS_KEY_METRICS for m in metrics):
        return []
    per_seed = _read(folder, "scores_per_seed.csv")
    if per_seed is None:
        return []
    parts = []
    for metric in ("spearman_per_perturbation", "spearman_per_context"):
        r = per_seed.filter((pl.col("group") == group) & (pl.col("metric") == metric))
        if r.height == 0:
            continue
        by_model = r.group_by("model").agg(
            pl.col("n").mean(), (pl.col("n") + pl.col("n_excluded")).mean().alias("t")
        )
        total, best = round(float(by_model["t"].max())), round(float(by_model["n"].max()))  # type: ignore[arg-type]
        unit = _UNITS[metric.rpartition("_per_")[2]]
        parts.append(f"{total} {unit} held out, up to {best} scored")
    return [
        "",
        "Single readout: also scored across conditions — per perturbation over its held-out "
        "contexts and per context over its held-out perturbations (Spearman, and AUROC for the "
        f"most sensitive 10 %; units with fewer than 3 items, or where a side is constant, are "
        f"not scored): {'; '.join(parts)} (means over seeds).",
    ]


def _not_applicable(na: pl.DataFrame | None, n_seeds: int) -> tuple[list[str], list[str]]:
    """The report's note on models that could not be fitted (a line for the top, a section)."""
    if na is None or na.height == 0:
        return [], []
    per = na.group_by("model").agg(
        pl.col("seed").sort(), pl.col("stage").first(), pl.col("reason").first()
    )
    lines = ["## Not applicable", "", "| model | seeds | stage | reason |", "|---|---|---|---|"]
    for model, seeds, stage, reason in per.sort("model").iter_rows():
        which = "all" if len(seeds) == n_seeds else ", ".join(str(s) for s in seeds)
        lines.append(f"| {model} | {which} | {stage} | {reason} |")
    names = ", ".join(per.sort("model")["model"].to_list())
    top = [
        f"**Not applicable:** {names}: could not be fitted on (or predict) these data in the seeds "
        "listed under *Not applicable* (with the reason); the benchmark went on with the other "
        "models, which are scored below.",
        "",
    ]
    return top, [*lines, ""]


def _header(run: dict[str, Any], title: str, stores: Sequence[str]) -> list[str]:
    spec = run["spec"]
    lines = [f"# {title}", ""]
    if run.get("command"):
        lines += ["Command:", "", "```", " ".join(["lpm", *run["command"][1:]]), "```", ""]
    joint = (
        f" Joint training: every training set also holds all rows of {', '.join(spec['extra_stores'])} (scoring stays on the split above)."
        if spec.get("extra_stores")
        else ""
    )
    return [
        *lines,
        f"Split `{spec['split']}`, seeds {spec['seeds']}, models {', '.join(spec['models'])}; stores: {', '.join(stores)}.{joint}",
        "",
        "Cells: mean over seeds of the per-condition average, [bootstrap 95% interval, averaged over seeds], "
        "×ratio to the best baseline for that metric (best = highest, or lowest for MSE; n/a\\* where that "
        "baseline cannot be told from 0). Coverage: scored / held-out conditions, averaged over the seeds "
        "whose test part holds the group, and how many seeds that is (a seed without the group counts for nothing). "
        "All models in a group are scored on the same held-out rows; a model that cannot predict a group is left out of it.",
        "",
    ]


def benchmark_markdown(folder: Path, *, title: str, stores: Sequence[str] = ()) -> str:
    """The Markdown report of the benchmark tables in ``folder`` (it links ``results.png``)."""
    results = pl.read_csv(folder / "results.csv")
    coverage = pl.read_csv(folder / "coverage.csv")
    run = json.loads((folder / "run.json").read_text())
    spec = run["spec"]
    comparisons = _read(folder, COMPARISONS)
    n_seeds = len(spec["seeds"])
    na_top, na_section = _not_applicable(_read(folder, NOT_APPLICABLE), n_seeds)
    lines = [*_header(run, title, stores), *na_top]
    baselines = [b for b in BASELINES if b in spec["models"]]
    if results.height == 0:
        lines.append("No model could predict any held-out row.")
    footnote = False
    for group in sorted(results["group"].unique().to_list()) if results.height else []:
        g = results.filter(pl.col("group") == group)
        metrics = defined_metrics(g)
        cov = coverage.filter(pl.col("group") == group)
        table, withheld = _table(g, cov, metrics, baselines=baselines, n_seeds=n_seeds)
        footnote |= withheld
        lines += [f"## Test group `{group}`", "", *table, *_across_note(folder, group, metrics)]
        na = sorted(set(spec["models"]) - set(g["model"].to_list()))
        if na:
            lines += [
                "",
                f"Not in this table: {', '.join(na)} (they predict none, or under "
                f"{100 * spec.get('min_coverage', 0.9):.0f}% of these rows, or are not applicable; a partial model has its own table of the rows it predicts).",
            ]
        models = sorted(set(g["model"].to_list()) - set(baselines))
        lines += ["", *_verdict_lines(comparisons, group, models, metrics)]
    if footnote:
        lines += [NO_RATIO_NOTE, ""]
    if run.get("checkpoints"):
        lines += [
            f"Checkpoints: `{run['checkpoints']}/seed<s>/<model>/best.ckpt`, the weights each "
            "Lightning-trained fit kept (its best epoch's by validation loss); `--no-checkpoints` "
            "writes none.",
            "",
        ]
    lines += [*na_section, f"![metric panel]({FIGURE})", ""]
    return "\n".join(lines)


__all__ = ["COMPARISONS", "FIGURE", "METRIC_NAMES", "NOT_APPLICABLE", "benchmark_markdown"]

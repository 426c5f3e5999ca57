"""benchmarks/results/design.md and its figures from the design benchmark's result tables.

Reads, per lane, the pooled per-round panel (benchmarks/results/design/<lane>_rounds.csv) and
context_mean on the same labelled sets (<lane>_context_mean.csv), both written by
benchmarks/design.py from its `lpm design loop` folders; so the page can be rebuilt from the
committed tables alone. Draws one learning-curve figure per lane. Called by benchmarks/design.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from _common import RESULTS, mean_sd, number, write_text
from lpm.design.loop import area_under_curve, summarise
from lpm.evaluation.compare import BEATS, LOSES, TIES, UNTESTED, Paired, paired_verdict
from lpm.pl.design import learning_curves_figure
from lpm.pl.save import save_png

FIGS = RESULTS / "design"
LANES = ("replogle", "replogle_linear", "sim_q1.00", "sim_q0.50", "sim_q0.00")
AUC = ("pearson_delta", "pearson_delta_vs_mean", "mse", "top_acquired")
TITLES = {
    "replogle": "Replogle K562 (2,000 CRISPRi knock-downs, 300 genes), gene_graph on the GO graph",
    "replogle_linear": "Replogle K562, linear model on a 32-dim GO embedding (Ahlmann-Eltze et al.)",
    "sim_q1.00": "Simulator, prior = the true network (oracle graph)",
    "sim_q0.50": "Simulator, prior = the true network with 50% of edges rewired",
    "sim_q0.00": "Simulator, prior = a random graph (every edge rewired)",
}


def lane_tables(lane: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A lane's rounds (every seed, ``seed`` column) and, per seed and strategy, the areas under
    its learning curves as the loop summarises them (``summary.csv`` of each run)."""
    rounds = pl.read_csv(FIGS / f"{lane}_rounds.csv")
    summary = pl.concat(
        summarise(part.drop("seed")).with_columns(pl.lit(seed).alias("seed"))
        for (seed,), part in rounds.group_by("seed", maintain_order=True)
    )
    return rounds, summary


def _over_seeds(values: np.ndarray, digits: int = 3) -> str:
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return mean_sd(values.mean(), sd, digits=digits)


#: (column in summary.csv, label, higher is better)
AUC_COLUMNS = (
    ("auc_pearson_delta", "Pearson Δ", True),
    ("auc_pearson_delta_vs_mean", "Pearson Δ vs mean", True),
    ("auc_mse", "MSE", False),
    ("auc_top_acquired", "strongest 5% acquired", True),
)


LABELS_SHORT = {
    "pearson_delta": "Pearson Δ",
    "pearson_delta_vs_mean": "Pearson Δ vs mean",
    "mse": "MSE",
    "top_acquired": "strongest 5% acquired",
}


def paired_gain(rounds: pl.DataFrame) -> pl.DataFrame:
    """Each metric minus random's at the same seed and round (for MSE: random's minus it, so
    above zero is better everywhere)."""
    metrics = list(LABELS_SHORT)
    random = rounds.filter(pl.col("strategy") == "random").select(
        "seed", "round", *(pl.col(m).alias(f"{m}_random") for m in metrics)
    )
    both = rounds.filter(pl.col("strategy") != "random").join(random, on=["seed", "round"])
    sign = {m: -1.0 if m == "mse" else 1.0 for m in metrics}
    return both.select(
        "strategy",
        "seed",
        "round",
        "n_labelled",
        *((sign[m] * (pl.col(m) - pl.col(f"{m}_random"))).alias(m) for m in metrics),
    )


#: Bootstrap resamples of a verdict's interval (as ``lpm benchmark``'s default).
N_BOOT = 1000
#: One verdict: the paired test, the seeds where the strategy is better, and the seeds.
Verdict = tuple[Paired, int, int]


def auc_table(summary: pl.DataFrame) -> tuple[list[str], dict[str, dict[str, Verdict]]]:
    """Markdown rows: AUC per strategy and metric, and the paired gain over random per seed
    (positive = better, whatever the metric's direction; in brackets the seeds where it is),
    with its verdict: the seeded bootstrap over seeds of :func:`paired_verdict`."""
    random = summary.filter(pl.col("strategy") == "random").sort("seed")
    head = " | ".join(f"AUC {label} | gain vs random" for _, label, _ in AUC_COLUMNS)
    lines = [f"| strategy | {head} |", "|---" * (1 + 2 * len(AUC_COLUMNS)) + "|"]
    verdict: dict[str, dict[str, Verdict]] = {}
    for (strategy,), part in summary.group_by("strategy", maintain_order=True):
        part = part.sort("seed")
        cells = []
        for col, _, higher in AUC_COLUMNS:
            values = part[col].to_numpy()
            gain = (values - random[col].to_numpy()) * (1 if higher else -1)
            digits = 5 if col == "auc_mse" else 3
            cells.append(_over_seeds(values, digits))
            if strategy == "random":
                cells.append("—")
                continue
            better = int((gain > 0).sum())
            verdict.setdefault(str(strategy), {})[col] = (
                paired_verdict(gain, n_boot=N_BOOT, seed=0),
                better,
                len(gain),
            )
            cells.append(f"{gain.mean():+.{digits + 1}f} ({better}/{len(gain)})")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return lines, verdict


def _gain_text(strategy: str, v: Verdict) -> str:
    """``kernel +0.012 [+0.004, +0.020], 4/5 seeds better``."""
    p, better, n = v
    interval = f"[{p.ci_low:+.4g}, {p.ci_high:+.4g}]" if np.isfinite(p.ci_low) else "(no interval)"
    return f"{strategy} {p.difference:+.4g} {interval}, {better}/{n} seeds better"


def round_table(rounds: pl.DataFrame, metric: str, digits: int = 3) -> list[str]:
    """Mean of a panel metric per strategy (rows) and round (columns)."""
    agg = (
        rounds.group_by("strategy", "round", maintain_order=True)
        .agg(pl.col(metric).mean(), pl.col("n_labelled").mean())
        .sort("round")
    )
    labelled = agg.group_by("round").agg(pl.col("n_labelled").first()).sort("round")
    head = " | ".join(str(int(n)) for n in labelled["n_labelled"])
    lines = [f"| {metric} \\ labelled | {head} |", "|---" * (labelled.height + 1) + "|"]
    for strategy in dict.fromkeys(rounds["strategy"].to_list()):
        vals = agg.filter(pl.col("strategy") == strategy).sort("round")[metric].to_numpy()
        lines.append(f"| {strategy} | " + " | ".join(number(v, digits) for v in vals) + " |")
    return lines


def reference_lines(rounds: pl.DataFrame, reference: pl.DataFrame, model: str) -> list[str]:
    """Model's AUC beside the AUC of context_mean on the same labelled sets."""
    both = rounds.join(reference, on=["seed", "strategy", "round"], how="inner")
    lines = [
        f"| strategy | AUC Pearson Δ, {model} | AUC Pearson Δ, context_mean on the same "
        f"labelled sets | {model} − context_mean |",
        "|---|---|---|---|",
    ]
    for (strategy,), part in both.group_by("strategy", maintain_order=True):
        model, mean = [], []
        for (_,), seed_part in part.sort("round").group_by("seed", maintain_order=True):
            x = seed_part["n_labelled"].to_list()
            model.append(area_under_curve(x, seed_part["pearson_delta"].to_list()))
            mean.append(area_under_curve(x, seed_part["mean_pearson_delta"].to_list()))
        a, b = np.array(model), np.array(mean)
        lines.append(
            f"| {strategy} | {_over_seeds(a)} | {_over_seeds(b)} | {_over_seeds(a - b, 4)} |"
        )
    return lines


def _verdict_lines(verdict: dict[str, dict[str, Verdict]]) -> list[str]:
    """Per metric: the informed strategies that beat random (95% interval of the paired gain
    over seeds above 0), those that tie with it and those that lose; or a plain statement
    that none beats it."""
    out = []
    for col, label, _ in AUC_COLUMNS:
        said: dict[str, list[str]] = {BEATS: [], TIES: [], LOSES: [], UNTESTED: []}
        for s, v in verdict.items():
            said[v[col][0].verdict].append(_gain_text(s, v[col]))
        head = (
            "beats random: " + "; ".join(said[BEATS])
            if said[BEATS]
            else ("**no informed strategy beats random**")
        )
        rest = [f"{w}: {'; '.join(said[w])}" for w in (TIES, LOSES, UNTESTED) if said[w]]
        out.append(f"- AUC of {label}: " + ". ".join([head, *rest]) + ".")
    return [
        "Verdict (per informed strategy, the paired gain in each AUC over random at the same "
        f"seed, mean over seeds with its 95% bootstrap interval over seeds ({N_BOOT} "
        "resamples, seeded): a strategy **beats** random only where the interval lies above 0, "
        "ties where it spans 0, loses where it lies below; for MSE the gain is random's minus "
        "the strategy's):",
        "",
        *out,
    ]


def lane_section(lane: str, runs: dict[str, dict[str, Any]]) -> list[str]:
    rounds, summary = lane_tables(lane)
    fig = save_png(
        learning_curves_figure(rounds, title=TITLES.get(lane, lane)), FIGS / f"{lane}.png"
    )
    gain = learning_curves_figure(
        paired_gain(rounds),
        title="gain over random, paired by seed (same held-out set)",
        labels={
            m: "random − MSE (above 0: lower error)"
            if m == "mse"
            else f"{LABELS_SHORT[m]} − random"
            for m in LABELS_SHORT
        },
    )
    gain_fig = save_png(gain, FIGS / f"{lane}_gain.png")
    lines, verdict = auc_table(summary)
    seeds = sorted(rounds["seed"].unique().to_list())
    out = [f"## {TITLES.get(lane, lane)}", "", f"![{lane}](design/{fig.name})", ""]
    out += [f"![{lane} gain](design/{gain_fig.name})", ""]
    out += [
        f"{len(seeds)} seeds. Areas are the trapezoid area over 100–600 labelled divided by the range (the curve's mean level).",
        "",
    ]
    out += [*lines, "", *_verdict_lines(verdict), ""]
    reference = pl.read_csv(FIGS / f"{lane}_context_mean.csv")
    out += [
        "How much of each curve is the mean profile: `context_mean` refitted on the same labelled "
        "perturbations each round and scored on the same held-out ones "
        f"(`design/{lane}_context_mean.csv`):",
        "",
        *reference_lines(
            rounds, reference, "linear" if lane == "replogle_linear" else "gene_graph"
        ),
        "",
    ]
    out += [
        "Panel after each round (mean over seeds; every metric per seed in "
        f"`design/{lane}_rounds.csv`):",
        "",
    ]
    out += [*round_table(rounds, "pearson_delta"), ""]
    out += [*round_table(rounds, "pearson_delta_vs_mean"), ""]
    out += [*round_table(rounds, "mse", 5), ""]
    out += [*round_table(rounds, "top_acquired", 2), ""]
    fit = rounds.group_by("strategy").agg(
        pl.col("fit_seconds").mean(), pl.col("select_seconds").mean()
    )
    out += [
        "Seconds per round (mean): "
        + ", ".join(
            f"{s} fit {f:.1f} / select {c:.1f}" for s, f, c in fit.sort("strategy").iter_rows()
        ),
        "",
    ]
    cmds = [v for k, v in runs.items() if k.startswith(f"{lane}/")]
    if cmds:
        out += ["```", str(cmds[0]["command"]).replace(" --seed 0 ", " --seed K "), "```", ""]
        total = sum(float(str(v["seconds"])) for v in cmds)
        out += [
            f"Wall time: {total:.0f} s for {len(cmds)} seeds (2-core CPU, two lanes at once).",
            "",
        ]
    else:
        out += recorded_run_block(lane)
    return out


def recorded_run_block(lane: str) -> list[str]:
    """The lane's command and wall time as the committed page recorded them, for a rebuild
    (``--report-only``) after the run folders (and their runs.json) are gone."""
    page = RESULTS / "design.md"
    if not page.is_file():
        return []
    found = re.search(
        r"```\n(lpm design loop [^\n]*design_runs/" + re.escape(lane) + r"/seed0[^\n]*)\n```\n\n"
        r"(Wall time: [^\n]*)\n",
        page.read_text(),
    )
    return ["```", found.group(1), "```", "", found.group(2), ""] if found else []


def prior_quality_section(lanes: list[str]) -> list[str]:
    sims = [lane for lane in lanes if lane.startswith("sim_q")]
    if not sims:
        return []
    verdicts = {lane: auc_table(lane_tables(lane)[1])[1] for lane in sims}
    strategies = list(dict.fromkeys(s for v in verdicts.values() for s in v))
    head = " | ".join(f"prior keeps {float(lane[5:]):.0%} of true edges" for lane in sims)
    out = ["## Advantage over random against prior quality (simulator)", ""]
    fig = prior_quality_figure(sims)
    out += [f"![prior quality](design/{fig.name})", ""]
    for col, label, _ in AUC_COLUMNS:
        out += [
            f"Paired gain in the AUC of {label} over random (seeds better, verdict from the "
            "95% interval over seeds):",
            "",
        ]
        out += [f"| strategy | {head} |", "|---" * (len(sims) + 1) + "|"]
        for s in strategies:
            cells = []
            for lane in sims:
                v = verdicts[lane].get(s, {}).get(col)
                cells.append(
                    "n/a"
                    if v is None
                    else f"{v[0].difference:+.4g} ({v[1]}/{v[2]}, {v[0].verdict})"
                )
            out.append(f"| {s} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def prior_quality_figure(sims: list[str]) -> Path:
    """Paired AUC gain over random (mean ± sd over seeds) against the prior's share of true edges."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lpm.design.strategies import STRATEGIES

    quality = [float(lane[5:]) for lane in sims]
    summaries = {lane: lane_tables(lane)[1] for lane in sims}
    fig, axes = plt.subplots(1, len(AUC_COLUMNS), figsize=(4.2 * len(AUC_COLUMNS), 3.5))
    strategies = [s for s in dict.fromkeys(summaries[sims[0]]["strategy"]) if s != "random"]
    colours = plt.get_cmap("tab10")
    for ax, (col, label, higher) in zip(axes, AUC_COLUMNS, strict=True):
        for strategy in strategies:
            means, sds = [], []
            for lane in sims:
                table = summaries[lane]
                random = table.filter(pl.col("strategy") == "random").sort("seed")[col]
                mine = table.filter(pl.col("strategy") == strategy).sort("seed")[col]
                gain = (mine.to_numpy() - random.to_numpy()) * (1 if higher else -1)
                means.append(gain.mean())
                sds.append(gain.std(ddof=1))
            ax.errorbar(quality, means, yerr=sds, marker="o", capsize=3, label=strategy,
                        color=colours(list(STRATEGIES).index(strategy) % 10))  # fmt: skip
        ax.axhline(0, color="black", linestyle="--", linewidth=1)
        ax.set_title(f"AUC gain over random: {label}", fontsize=10)
        ax.set_xlabel("share of true edges in the prior")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Simulator: advantage against prior quality (mean ± sd over seeds)", fontsize=11)
    fig.tight_layout()
    return save_png(fig, FIGS / "prior_quality.png")


def write_report(runs: dict[str, dict[str, Any]]) -> Path:
    """The page from every lane with result tables; ``runs`` (design.py's runs.json, empty
    when the run folders are gone) adds each lane's command and wall time."""
    lanes = [lane for lane in LANES if (FIGS / f"{lane}_rounds.csv").is_file()]
    text = [
        "# Which experiments to run next: design benchmark",
        "",
        "Made by `python benchmarks/design.py --seeds 5` (each lane also alone with "
        "`--only replogle` / `--only sim`; `--report-only` rebuilds this page).",
        "",
        "Protocol: per seed a fixed held-out 20% of the designable perturbations (single genetic "
        "ones whose gene is in the graph), 100 labelled in round 0, then 5 rounds of 100. After "
        "each round the model (`gene_graph`; on Replogle also `linear` over a GO embedding) is "
        "refitted on the labelled rows and scored on the held-out ones. Round 0 of `random`, "
        "`variance`, `coreset` and `kernel` is the same random draw; "
        "`coverage` and `spectral` start from their own one-shot selection. "
        '"Strongest 5%" = the 5% of the pool with the largest energy (Replogle: the data\'s '
        "`energy`; simulator: sum of squared effects); random acquires a share equal to the "
        "share labelled.",
        "",
    ]
    for lane in lanes:
        text += lane_section(lane, runs)
    text += prior_quality_section(lanes)
    speed = FIGS / "speed.md"
    if speed.is_file():
        text += ["## Selection speed", "", *speed.read_text().splitlines()[1:], ""]
    return write_text(RESULTS / "design.md", "\n".join(text) + "\n")

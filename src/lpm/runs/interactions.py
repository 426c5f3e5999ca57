"""``lpm interactions``: type every double of a store (measured, or a model's predicted doubles),
score the types against a truth and Norman et al.'s fits, write one output folder."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from lpm._utils.atomic import atomic_dir, check_output
from lpm.pl.interactions import plot_interactions
from lpm.pl.save import save_png
from lpm.runs._inputs import naming, read_rows
from lpm.tasks.base import fitted_model
from lpm.tasks.interactions import (
    DEFAULT_THRESHOLDS,
    TYPES,
    InteractionThresholds,
    score_types,
    split_skipped,
)
from lpm.tasks.norman import norman_comparison, norman_summary, read_norman_fits
from lpm.tasks.registry import get_task

if TYPE_CHECKING:
    from lpm.data.store import PerturbationStore


@dataclass
class InteractionsResult:
    """What :func:`run_interactions` wrote and measured."""

    out: Path
    table: pl.DataFrame
    skipped: pl.DataFrame
    summary: dict[str, Any]
    files: tuple[Path, ...]
    wall_s: float

    def __str__(self) -> str:
        s = self.summary
        counts = ", ".join(f"{k} {v}" for k, v in s["types"].items())
        lines = [
            f"{self.out}: {s['n_pairs']} pair(s) typed from {s['profiles']} "
            f"({s['method']}), {s['n_skipped']} double(s) skipped ({self.wall_s:.1f} s)",
            f"  types: {counts}",
        ]
        if "truth" in s:
            t = s["truth"]
            lines.append(
                f"  vs truth ({t['n_pairs']} pairs): accuracy {t['accuracy']:.3f}, "
                f"balanced accuracy {t['balanced_accuracy']:.3f}"
            )
        if "vs_measured" in s:
            t = s["vs_measured"]
            lines.append(
                f"  vs measured types ({t['n_pairs']} pairs): accuracy {t['accuracy']:.3f}"
            )
        if "norman" in s:
            n = s["norman"]
            rho, agree = n["spearman"]["magnitude"], n["type_agreement"]
            lines.append(
                f"  vs Norman et al. ({n['n_matched']} matched): Spearman magnitude "
                f"{'n/a' if rho is None else f'{rho:.3f}'}, type agreement "
                f"{'n/a' if agree is None else f'{agree:.3f}'}"
            )
        return "\n".join(lines)


def _jsonable(score: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in score.items() if k != "confusion"}
    conf: pl.DataFrame = score["confusion"]
    out["confusion"] = {r["truth"]: {t: r[t] for t in TYPES} for r in conf.iter_rows(named=True)}
    return out


def _typed(
    rows: pl.DataFrame, source: Path | None, params: dict[str, Any], model: Any
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``interactions`` task's typed and skipped doubles; its errors name the store."""
    with naming(source):
        return split_skipped(get_task("interactions", **params).run(rows, model=model))


def _write(
    tmp: Path,
    table: pl.DataFrame,
    skipped: pl.DataFrame,
    summary: dict[str, Any],
    *,
    thresholds: InteractionThresholds,
    comparison: pl.DataFrame | None,
    confusion: pl.DataFrame | None,
) -> None:
    table.write_csv(tmp / "interactions.csv")
    table.write_parquet(tmp / "interactions.parquet")
    skipped.write_csv(tmp / "skipped.csv")
    if comparison is not None:
        comparison.write_csv(tmp / "norman_comparison.csv")
    if confusion is not None:
        confusion.write_csv(tmp / "confusion.csv")
    fig = plot_interactions(table, thresholds=thresholds, confusion=confusion)
    save_png(fig, tmp / "interactions.png", dpi=120)
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def run_interactions(
    store: PerturbationStore | str | Path,
    *,
    out: Path,
    context: str | None = None,
    model: Any = None,
    truth: Path | None = None,
    norman: Path | None = None,
    method: str = "theil_sen",
    thresholds: InteractionThresholds = DEFAULT_THRESHOLDS,
    seed: int = 0,
    overwrite: bool = False,
) -> InteractionsResult:
    """Type every double of a store (measured, or the model's predicted doubles) and write files.

    ``out`` (written whole; an existing one is refused before any work unless ``overwrite``)
    gets interactions.csv/.parquet, skipped.csv, interactions.png and summary.json; with
    ``truth`` the accuracy and confusion matrix, with ``norman`` norman_comparison.csv.
    """
    from lpm.sim.truth import read_pair_types

    start = time.perf_counter()
    out = check_output(Path(out), kind="folder", overwrite=overwrite)
    truth_table = read_pair_types(truth) if truth is not None else None
    if norman is not None:
        read_norman_fits(norman)
    rows, source = read_rows(store)
    params = {"context": context, "method": method, "seed": seed, **asdict(thresholds)}
    summary: dict[str, Any] = {"method": method, "seed": seed, "context": context}
    summary["thresholds"] = thresholds.as_dict()
    measured = None
    if model is not None:
        model = fitted_model(model)
        measured, _ = _typed(rows, source, params, None)
        summary["profiles"] = "predicted doubles, measured singles"
    else:
        summary["profiles"] = "measured profiles"
    table, skipped = _typed(rows, source, params, model)
    if model is not None:
        unpredictable = skipped.filter(pl.col("reason").str.starts_with("model cannot predict"))
        summary["n_unpredictable_doubles"] = unpredictable.height
    counts = dict(table["type"].value_counts().iter_rows())
    summary.update(
        n_pairs=table.height,
        n_skipped=skipped.height,
        types={t: int(counts.get(t, 0)) for t in TYPES},
    )
    if measured is not None:
        summary["vs_measured"] = _jsonable(score_types(table, measured))
    score = score_types(table, truth_table) if truth_table is not None else None
    if score is not None:
        summary["truth"] = _jsonable(score)
    comparison = None
    if norman is not None:
        comparison = norman_comparison(table, norman, thresholds=thresholds)
        summary["norman"] = norman_summary(comparison)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        confusion = None if score is None else score["confusion"]
        _write(
            tmp,
            table,
            skipped,
            summary,
            thresholds=thresholds,
            comparison=comparison,
            confusion=confusion,
        )
        names = sorted(p.name for p in tmp.iterdir())
    return InteractionsResult(
        out=out,
        table=table,
        skipped=skipped,
        summary=summary,
        files=tuple(out / n for n in names),
        wall_s=time.perf_counter() - start,
    )


__all__ = ["InteractionsResult", "run_interactions"]

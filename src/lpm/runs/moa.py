"""``lpm moa``: rank every compound's candidates, score the rankings, write one output folder."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from lpm._utils.atomic import atomic_dir, check_output
from lpm.pl.moa import plot_moa
from lpm.pl.save import save_png
from lpm.reports.discovery import MOA_FIGURE_FILE, MOA_SCORES_FILE
from lpm.runs._inputs import naming, read_rows
from lpm.tasks.moa import METHODS, MIN_OVERLAP
from lpm.tasks.moa_scores import COMPOUND, score_moa, single_type
from lpm.tasks.registry import get_task

if TYPE_CHECKING:
    from lpm.models.base import PerturbationModel

#: File names written by :func:`run_moa`.
RANKING_FILE: Final = "moa_ranking.parquet"
SCORES_FILE: Final = MOA_SCORES_FILE
PER_QUERY_FILE: Final = "moa_per_query.csv"
FIGURE_FILE: Final = MOA_FIGURE_FILE
OPTIONS_FILE: Final = "moa_options.json"


@dataclass(frozen=True)
class MoaResult:
    """What :func:`run_moa` wrote and its scores (one row per method × ground truth)."""

    out: Path
    ranking: Path
    scores: pl.DataFrame
    figure: Path | None
    n_queries: int
    n_candidates: int
    methods: tuple[str, ...]
    seconds: float
    notes: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"{self.out}: {self.n_queries} compounds × {self.n_candidates} candidates, methods {', '.join(self.methods)}"
        ]
        for r in self.scores.iter_rows(named=True):
            lines.append(
                f"  {r['truth']:<28} {r['method']:<18} AUROC {r['auroc']:.3f}  MAP "
                f"{r['average_precision']:.3f}  recall@k {r['recall_at_k']:.3f}  "
                f"({r['n_queries']} queries, {r['n_pairs']} pairs)"
            )
        return "\n".join(lines)


def read_annotation_truths(
    ranking: pl.DataFrame, folder: Path, gene_info: str | Path | None
) -> tuple[dict[str, set[str]], dict[str, set[str]], int]:
    """Annotated targets and mechanisms of the ranking's compounds, and how many matched."""
    from lpm.priors import (
        compound_mechanisms,
        compound_targets,
        load_compound_annotations,
        load_compound_ids,
        match_compounds,
    )

    ann = load_compound_annotations(folder, gene_info=gene_info)
    names = sorted(c for c in set(ranking["query"].to_list()) if single_type(c) == COMPOUND)
    matched = match_compounds(names, ann, compound_ids=load_compound_ids(folder))
    return (
        compound_targets(ann, names=matched),
        compound_mechanisms(ann, names=matched),
        len(matched),
    )


def _rank(
    data: pl.DataFrame | str | Path,
    model: PerturbationModel | str | Path | None,
    params: dict[str, Any],
) -> pl.DataFrame:
    """The ``moa`` task's ranking of the data; its errors name the store, not "frame"."""
    frame, store = read_rows(data)
    with naming(store):
        return get_task("moa", **params).run(frame, model=model)


def _model_name(model: PerturbationModel | str | Path | None) -> str | None:
    if model is None or isinstance(model, str | Path):
        return None if model is None else str(model)
    return type(model).__name__


def _scores(
    ranking: pl.DataFrame,
    targets: dict[str, set[str]] | None,
    annotations: tuple[dict[str, set[str]], dict[str, set[str]], int] | None,
    *,
    k: int,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Scores against every truth given, and notes (compounds annotated, truths not scored)."""
    if annotations is None:
        return score_moa(ranking, targets=targets, k=k)
    tg, mech, n_matched = annotations
    scores, per_query, notes = score_moa(
        ranking, targets=targets, annotated_targets=tg, annotated_mechanisms=mech, k=k
    )
    return scores, per_query, {"n_compounds_annotated": n_matched, **notes}


def run_moa(
    data: pl.DataFrame | str | Path,
    *,
    out: str | Path,
    model: PerturbationModel | str | Path | None = None,
    context: str | None = None,
    truth: str | Path | None = None,
    compounds_folder: str | Path | None = None,
    gene_info: str | Path | None = None,
    k: int = 10,
    dose: str = "max",
    min_overlap: int = MIN_OVERLAP,
    figure: bool = True,
    overwrite: bool = False,
) -> MoaResult:
    """Rank every compound's candidates (the ``moa`` task), score the rankings and write them.

    Parameters
    ----------
    data, out
        A long table or a store folder; the output folder, written whole (refused before any
        work if it exists, unless ``overwrite``): :data:`RANKING_FILE`, :data:`SCORES_FILE`
        (a row per method × truth), :data:`PER_QUERY_FILE`, :data:`FIGURE_FILE`, options.
    model, context
        A fitted LPM or its folder (without one only the measured baseline is ranked); the
        shared context of its predicted profiles.
    truth
        A simulation's truth folder: scores the compounds' true (on-)targets.
    compounds_folder, gene_info
        Repurposing Hub + DrugCentral folder: scores shared mechanisms and targets between
        compounds, and annotated targets among the genetic perturbations (when any is one);
        a gene-info table mapping annotated targets to official symbols.
    k, dose, min_overlap
        Cut-off of ``recall_at_k``; of the measured baseline.

    Returns
    -------
    MoaResult
    """
    from lpm.sim.truth import read_compound_targets

    t0 = time.perf_counter()
    target = check_output(Path(out), kind="folder", overwrite=overwrite)
    true_targets = read_compound_targets(truth) if truth is not None else None
    params = {"context": context, "dose": dose, "min_overlap": min_overlap}
    ranking = _rank(data, model, params)
    annotations = (
        read_annotation_truths(ranking, Path(compounds_folder), gene_info)
        if compounds_folder is not None
        else None
    )
    scores, per_query, notes = _scores(ranking, true_targets, annotations, k=k)
    methods = tuple(m for m in METHODS if m in set(ranking["method"].to_list()))
    options = {
        "data": data if not isinstance(data, pl.DataFrame) else "<frame>",
        "model": _model_name(model),
        **{"context": context, "truth": truth, "compounds_folder": compounds_folder},
        **{"gene_info": gene_info, "k": k, "dose": dose, "min_overlap": min_overlap},
        "methods": list(methods),
        "notes": notes,
    }
    with atomic_dir(target, overwrite=overwrite) as tmp:
        ranking.write_parquet(tmp / RANKING_FILE)
        scores.write_csv(tmp / SCORES_FILE)
        per_query.write_csv(tmp / PER_QUERY_FILE)
        if figure:
            save_png(plot_moa(ranking, per_query), tmp / FIGURE_FILE, dpi=120)
        (tmp / OPTIONS_FILE).write_text(json.dumps(options, indent=1, default=str) + "\n")
    return MoaResult(
        out=target,
        ranking=target / RANKING_FILE,
        scores=scores,
        figure=target / FIGURE_FILE if figure else None,
        n_queries=ranking["query"].n_unique(),
        n_candidates=ranking["candidate"].n_unique(),
        methods=methods,
        seconds=time.perf_counter() - t0,
        notes=notes,
    )


__all__ = [
    "FIGURE_FILE",
    "OPTIONS_FILE",
    "PER_QUERY_FILE",
    "RANKING_FILE",
    "SCORES_FILE",
    "MoaResult",
    "read_annotation_truths",
    "run_moa",
]

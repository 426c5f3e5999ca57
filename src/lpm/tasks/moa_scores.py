"""Scores of mechanism-of-action rankings (:mod:`lpm.tasks.moa`) against known targets and
annotations. A pair a method could not score ranks last, tied with the other such pairs of its
query, so leaving pairs out never helps; ``n_scored`` and ``n_unscored`` say how many.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

import polars as pl

from lpm.data import schema as S
from lpm.data import symbols as Y
from lpm.errors import LpmInputError
from lpm.evaluation.ranking import QUERY_METRICS, per_query_scores

#: The similarity methods, in the order they are computed and shown.
METHODS: Final = ("embedding", "predicted_profile", "measured_profile")
#: The type of a compound perturbation (``compound:NAME``).
COMPOUND: Final = "compound"


def single_type(symbol: str) -> str | None:
    """The modality of a single perturbation; ``None`` for control, combinations, malformed."""
    if symbol == S.CONTROL or Y.is_combination(symbol):
        return None
    try:
        return Y.parse(symbol)[0].kind
    except LpmInputError:
        return None


def _target(symbol: str) -> str:
    return symbol.partition(Y.TYPE_SEPARATOR)[2]


# ---- scores -------------------------------------------------------------------------------------
def _grid(
    scored: pl.DataFrame, queries: Sequence[str], candidates: Collection[str], floor: float
) -> tuple[pl.DataFrame, int]:
    """Every (query, candidate) pair but self pairs; unscored ones get ``floor`` (tied last)."""
    grid = (
        pl.DataFrame({"query": list(queries)}, schema={"query": pl.String})
        .join(
            pl.DataFrame({"candidate": sorted(candidates)}, schema={"candidate": pl.String}),
            how="cross",
        )
        .filter(pl.col("query") != pl.col("candidate"))
        .join(scored.select("query", "candidate", "score"), on=["query", "candidate"], how="left")
    )
    n_unscored = int(grid["score"].null_count())
    return grid.with_columns(pl.col("score").fill_null(floor)), n_unscored


def _evaluate(
    ranking: pl.DataFrame,
    positives: Mapping[str, Collection[str]],
    candidates: Collection[str],
    *,
    truth: str,
    k: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-query and per-method scores of ``ranking`` over ``candidates`` (a grid per method)."""
    cands = set(candidates)
    table = ranking.filter(pl.col("candidate").is_in(list(cands)))
    queries = sorted(set(ranking["query"].to_list()))
    floor = float(table["score"].min()) - 1.0 if table.height else -2.0  # type: ignore[arg-type]
    n_pairs = sum(len(set(positives.get(q, ())) & (cands - {q})) for q in queries)
    per_query, summary = [], []
    for method in [m for m in METHODS if m in set(ranking["method"].to_list())]:
        scored = table.filter(pl.col("method") == method)
        grid, n_unscored = _grid(scored, queries, cands, floor)
        pq = per_query_scores(grid, positives, k=k)
        done = pq.filter(pl.col("auroc").is_not_null())
        row: dict[str, Any] = {"method": method, "truth": truth}
        for metric in QUERY_METRICS:
            row[metric] = float(done[metric].mean()) if done.height else float("nan")  # type: ignore[arg-type]
        row.update(
            n_queries=done.height,
            n_pairs=n_pairs,
            n_candidates=len(cands),
            n_scored=grid.height - n_unscored,
            n_unscored=n_unscored,
        )
        summary.append(row)
        per_query.append(pq.with_columns(method=pl.lit(method), truth=pl.lit(truth)))
    return pl.DataFrame(summary), pl.concat(per_query)


def _lookup(mapping: Mapping[str, Collection[str]], query: str) -> set[str]:
    found = mapping.get(query)
    if found is None:
        found = mapping.get(query.removeprefix(COMPOUND + Y.TYPE_SEPARATOR), ())
    return set(found)


def _target_scores(
    ranking: pl.DataFrame,
    targets: Mapping[str, Collection[str]],
    *,
    k: int,
    truth: str,
    genetic_types: Collection[str] | None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    types = set(Y.GENETIC_TYPES if genetic_types is None else genetic_types)
    genetic = ranking.filter(pl.col("candidate_type").is_in(list(types)))
    if genetic.height == 0:
        raise LpmInputError(
            "ranking", f"no genetic perturbation ({', '.join(sorted(types))}) among the candidates"
        )
    candidates = set(genetic["candidate"].to_list())
    positives = {}
    for q in ranking["query"].unique().to_list():
        genes = _lookup(targets, q)
        positives[q] = {c for c in candidates if _target(c) in genes}
    return _evaluate(ranking, positives, candidates, truth=truth, k=k)


def score_targets(
    ranking: pl.DataFrame,
    targets: Mapping[str, Collection[str]],
    *,
    k: int = 10,
    truth: str = "targets",
    genetic_types: Collection[str] | None = None,
) -> pl.DataFrame:
    """How high each compound ranks the genetic perturbations of its own targets.

    Parameters
    ----------
    ranking
        From :func:`rank_moa`.
    targets
        ``compound -> target genes`` (keys with or without ``compound:``); off-targets left out.
    k
        Cut-off of ``recall_at_k``.
    truth
        Label of the ground truth in the output.
    genetic_types
        Candidate types (default every genetic type); e.g. ``{"CRISPRi"}`` for knock-downs only.

    Returns
    -------
    polars.DataFrame
        One row per method: ``method, truth``, the means over evaluable queries of ``auroc``,
        ``average_precision`` (their mean is the MAP), ``recall_at_k`` and ``base_rate``;
        ``n_queries`` (evaluable compounds), ``n_pairs`` (compound, target perturbation pairs
        among the candidates), ``n_candidates``, ``n_scored`` and ``n_unscored`` (pairs ranked
        last, tied, because the method could not score them).

    Raises
    ------
    LpmInputError
        No genetic perturbation among the candidates.

    Example
    -------
    >>> r = pl.DataFrame({"method": ["measured_profile"] * 3, "query": ["compound:X"] * 3,
    ...     "candidate": ["CRISPRi:T", "CRISPRi:U", "CRISPRi:V"], "candidate_type": ["CRISPRi"] * 3,
    ...     "similarity": [0.9, 0.1, -0.5], "score": [0.9, 0.1, -0.5], "rank": [1, 2, 3]})
    >>> s = score_targets(r, {"X": {"T"}}, k=1)
    >>> s.select("auroc", "recall_at_k", "n_pairs").row(0)
    (1.0, 1.0, 1)
    """
    return _target_scores(ranking, targets, k=k, truth=truth, genetic_types=genetic_types)[0]


def score_shared_annotation(
    ranking: pl.DataFrame,
    annotations: Mapping[str, Collection[str]],
    *,
    truth: str = "mechanism",
    k: int = 10,
) -> pl.DataFrame:
    """Do compounds sharing an annotation (a mechanism, a target) rank each other high?

    Only annotated compounds are queries and candidates (an unannotated one is neither a known
    positive nor a known negative); positives of a query are the compounds sharing at least one
    of its labels.

    Returns
    -------
    polars.DataFrame
        As :func:`score_targets`; ``n_pairs`` counts ordered positive (query, candidate) pairs.

    Raises
    ------
    LpmInputError
        Fewer than two annotated compounds in the ranking.
    """
    labels = {
        q: lab
        for q in set(ranking["query"].to_list()) | set(ranking["candidate"].to_list())
        if single_type(q) == COMPOUND and (lab := _lookup(annotations, q))
    }
    if len(labels) < 2:
        raise LpmInputError(
            "annotations", f"{len(labels)} annotated compound(s) in the ranking; need at least 2"
        )
    table = ranking.filter(pl.col("query").is_in(list(labels)))
    positives = {q: {c for c in labels if c != q and labels[c] & labels[q]} for q in labels}
    return _evaluate(table, positives, set(labels), truth=truth, k=k)[0]


def cross_dataset_target_scores(
    ranking: pl.DataFrame,
    targets: Mapping[str, Collection[str]],
    frame: pl.DataFrame,
    *,
    query_context: str,
    candidate_context: str,
    k: int = 10,
    genetic_types: Collection[str] | None = None,
) -> pl.DataFrame:
    """:func:`score_targets` for compounds measured in one context against the genetic
    perturbations measured in another (e.g. L1000 A375 compounds and Replogle K562 knock-downs).

    ``n_pairs`` (compound, knock-down of one of its targets) is reported even when zero; the
    metrics are NaN then.
    """
    ctx = frame.group_by(S.CONTEXT).agg(pl.col(S.PERTURBATION).unique())
    by_ctx = dict(zip(ctx[S.CONTEXT].to_list(), ctx[S.PERTURBATION].to_list(), strict=True))
    for name in (query_context, candidate_context):
        if name not in by_ctx:
            raise LpmInputError("context", f"{name!r} is not a context of the data")
    sub = ranking.filter(
        pl.col("query").is_in(by_ctx[query_context])
        & pl.col("candidate").is_in(by_ctx[candidate_context])
    )
    if (
        sub.filter(pl.col("candidate_type").is_in(list(genetic_types or Y.GENETIC_TYPES))).height
        == 0
    ):
        raise LpmInputError(
            "ranking",
            f"no compound of {query_context} has a genetic candidate of {candidate_context}",
        )
    truth = f"targets:{query_context}->{candidate_context}"
    return score_targets(sub, targets, k=k, truth=truth, genetic_types=genetic_types)


def score_moa(
    ranking: pl.DataFrame,
    *,
    targets: Mapping[str, Collection[str]] | None = None,
    annotated_targets: Mapping[str, Collection[str]] | None = None,
    annotated_mechanisms: Mapping[str, Collection[str]] | None = None,
    k: int = 10,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, str]]:
    """Score a ranking against every ground truth given, as ``lpm moa`` reports it.

    Parameters
    ----------
    ranking
        From :func:`lpm.tasks.moa.rank_moa`.
    targets
        Known targets (e.g. a simulation's, :func:`lpm.sim.truth.read_compound_targets`):
        scored as ``sim_targets``.
    annotated_targets, annotated_mechanisms
        Annotations of the compounds (Repurposing Hub, DrugCentral): shared mechanisms and
        shared targets between compounds, and the annotated targets among the genetic
        perturbations when any of them is one.
    k
        Cut-off of ``recall_at_k``.

    Returns
    -------
    tuple
        The scores (one row per method × truth, as :func:`score_targets`; empty without a
        truth), the per-query scores of the target truths, and notes on the truths that
        could not be scored (truth → why).
    """
    scores: list[pl.DataFrame] = []
    per_query: list[pl.DataFrame] = []
    notes: dict[str, str] = {}
    if targets is not None:
        s, pq = _target_scores(ranking, targets, k=k, truth="sim_targets", genetic_types=None)
        scores.append(s)
        per_query.append(pq)
    if annotated_targets is not None and annotated_mechanisms is not None:
        shared = (("shared_mechanism", annotated_mechanisms), ("shared_target", annotated_targets))
        for label, ann in shared:
            try:
                scores.append(score_shared_annotation(ranking, ann, truth=label, k=k))
            except LpmInputError as err:
                notes[label] = str(err)
        try:
            s, pq = _target_scores(
                ranking, annotated_targets, k=k, truth="annotated_targets", genetic_types=None
            )
            if int(s["n_pairs"].sum()) > 0:
                scores.append(s)
                per_query.append(pq)
            else:
                notes["annotated_targets"] = "no annotated target among the genetic perturbations"
        except LpmInputError as err:
            notes["annotated_targets"] = str(err)
    table = pl.concat(scores, how="diagonal_relaxed") if scores else pl.DataFrame()
    done = [p for p in per_query if p.height]
    return table, pl.concat(done, how="diagonal_relaxed") if done else pl.DataFrame(), notes


__all__ = [
    "COMPOUND",
    "METHODS",
    "cross_dataset_target_scores",
    "score_moa",
    "score_shared_annotation",
    "score_targets",
    "single_type",
]

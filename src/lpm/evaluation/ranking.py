"""Scores for in-silico discovery: ranked edges against a reference network, ranked candidates
against known positives, and degree-preserving random networks for the lift over chance.

Ties are treated as one block everywhere: average precision is scikit-learn's step-wise sum over
distinct scores, AUROC gives a tied positive-negative pair half credit, and a cut at ``k`` through
a tied block counts the block's expected share of positives (its positive rate times the number
of places it fills), so a result never depends on the order rows came in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final

import numpy as np
import polars as pl

from lpm.data.validate import require_columns
from lpm.errors import LpmInputError

#: Cut-offs of :func:`edge_scores_auprc` unless given.
DEFAULT_K: Final = (10, 100, 1000)


# --- kernels ------------------------------------------------------------------------------------


def _check_finite(values: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise LpmInputError(
            where,
            f"{int(bad.sum())} score(s) are NaN or infinite; give finite scores (leave a pair out to rank it last)",
        )


def _tie_blocks(
    scores: np.ndarray, labels: np.ndarray, *, tail: int = 0, tail_positives: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sizes and positive counts of the blocks of equal score, best first.

    ``tail`` items (``tail_positives`` of them positive) form one more block, ranked last.
    """
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.int64)
    if len(s):
        ends = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
        starts = np.r_[0, ends[:-1] + 1]
        sizes = ends - starts + 1
        hits = np.add.reduceat(y, starts)
    else:
        sizes = hits = np.zeros(0, dtype=np.int64)
    if tail:
        sizes = np.r_[sizes, tail]
        hits = np.r_[hits, tail_positives]
    return sizes.astype(np.int64), hits.astype(np.int64)


def _average_precision(sizes: np.ndarray, hits: np.ndarray) -> float:
    """``sum_n (R_n - R_{n-1}) P_n`` over block ends (scikit-learn's definition)."""
    tp = np.cumsum(hits)
    n = np.cumsum(sizes)
    return float(np.sum(hits / tp[-1] * (tp / n)))


def _auroc(sizes: np.ndarray, hits: np.ndarray) -> float:
    """Share of positive-negative pairs ranked right, ties counting half (Mann-Whitney U)."""
    neg = sizes - hits
    pos_above = np.cumsum(hits) - hits
    n_pos, n_neg = hits.sum(), neg.sum()
    return float(np.sum(neg * (pos_above + 0.5 * hits)) / (n_pos * n_neg))


def _hits_at(sizes: np.ndarray, hits: np.ndarray, k: int) -> float:
    """Expected positives among the first ``k`` places (random order within a tied block)."""
    n = np.cumsum(sizes)
    tp = np.cumsum(hits)
    j = int(np.searchsorted(n, k))  # first block reaching k
    before_n = n[j - 1] if j else 0
    before_tp = tp[j - 1] if j else 0
    return float(before_tp + (k - before_n) * hits[j] / sizes[j])


def _check_k(ks: Iterable[int], where: str) -> list[int]:
    out = [int(k) for k in ks]
    if not out or any(k < 1 for k in out):
        raise LpmInputError(where, f"cut-offs k must be positive integers, got {out}")
    return out


# --- gene networks ------------------------------------------------------------------------------


def _pairs(df: pl.DataFrame, where: str, extra: Sequence[str] = ()) -> pl.DataFrame:
    require_columns(df, ("source", "target", *extra), where)
    out = df.select("source", "target", *extra).with_columns(
        pl.col("source", "target").cast(pl.String)
    )
    if out.select(pl.any_horizontal(pl.col("source", "target").is_null()).any()).item():
        raise LpmInputError(where, "an edge has a null source or target")
    return out


def edge_scores_auprc(
    scored_edges: pl.DataFrame,
    reference: pl.DataFrame,
    *,
    universe_sources: Iterable[str],
    universe_targets: Iterable[str],
    k: Sequence[int] = DEFAULT_K,
    score_column: str = "score",
) -> dict[str, float]:
    """Score a ranked list of predicted edges against a reference network.

    The evaluable universe is every ordered pair ``(s, t)`` with ``s`` in ``universe_sources``,
    ``t`` in ``universe_targets`` and ``s != t`` (e.g. the perturbed genes × the measured
    genes): only there could a model have found an edge. Scored pairs and reference edges outside
    it are ignored. A pair of the universe that was not scored ranks last, as one tied block
    (score ``-inf``), so leaving pairs out never helps. The universe is never materialised.

    Parameters
    ----------
    scored_edges
        Columns ``source, target`` and ``score_column`` (higher: more confident), one row per
        pair, finite scores.
    reference
        Columns ``source, target`` (as from :func:`lpm.priors.load_gene_network`); repeats count once.
    universe_sources, universe_targets
        Genes that may be sources and targets.
    k
        Cut-offs for ``precision_at_<k>``; NaN where ``k`` exceeds the universe.

    Returns
    -------
    dict
        ``auprc`` (average precision), ``auroc``, ``precision_at_<k>``, ``n_reference`` (reference
        edges in the universe), ``n_universe``, ``n_scored`` (scored pairs in it) and ``base_rate``
        (``n_reference / n_universe``, the AUPRC of a random ranking).

    Raises
    ------
    LpmInputError
        A missing column, a non-finite score, a pair scored twice, an empty universe, or no
        reference edge in the universe (AUPRC is undefined then).

    Example
    -------
    >>> ref = pl.DataFrame({"source": ["A", "A"], "target": ["B", "C"]})
    >>> pred = pl.DataFrame({"source": ["A", "A", "B"], "target": ["B", "C", "A"], "score": [3.0, 2.0, 1.0]})
    >>> r = edge_scores_auprc(pred, ref, universe_sources=["A", "B"], universe_targets=["A", "B", "C"], k=[2])
    >>> r["auprc"], r["precision_at_2"], r["n_universe"], r["base_rate"]
    (1.0, 1.0, 4, 0.5)
    """
    ks = _check_k(k, "k")
    scored, ref, n_universe = _in_universe(
        scored_edges, reference, universe_sources, universe_targets, score_column
    )
    n_ref = ref.height
    labels = (
        scored.join(ref, on=["source", "target"], how="left")["_pos"].fill_null(False).to_numpy()
    )
    sizes, hits = _tie_blocks(
        scored[score_column].cast(pl.Float64).to_numpy(),
        labels,
        tail=n_universe - scored.height,
        tail_positives=n_ref - int(labels.sum()),
    )
    out: dict[str, float] = {
        "auprc": _average_precision(sizes, hits),
        "auroc": _auroc(sizes, hits) if n_ref < n_universe else float("nan"),
    }
    for cut in ks:
        out[f"precision_at_{cut}"] = (
            _hits_at(sizes, hits, cut) / cut if cut <= n_universe else float("nan")
        )
    out.update(
        n_reference=n_ref,
        n_universe=n_universe,
        n_scored=scored.height,
        base_rate=n_ref / n_universe,
    )
    return out


def _in_universe(
    scored_edges: pl.DataFrame,
    reference: pl.DataFrame,
    universe_sources: Iterable[str],
    universe_targets: Iterable[str],
    score_column: str,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The scored pairs and the reference edges (flagged ``_pos``) of the evaluable universe,
    and its size; refuses what :func:`edge_scores_auprc` cannot score."""
    scored = _pairs(scored_edges, "scored_edges", [score_column])
    ref = _pairs(reference, "reference")
    _check_finite(scored[score_column].cast(pl.Float64).to_numpy(), "scored_edges")
    sources = set(universe_sources)
    targets = set(universe_targets)
    n_universe = len(sources) * len(targets) - len(sources & targets)
    if n_universe == 0:
        raise LpmInputError("universe", "no (source, target) pair: the universe is empty")

    def inside(df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(
            pl.col("source").is_in(list(sources))
            & pl.col("target").is_in(list(targets))
            & (pl.col("source") != pl.col("target"))
        )

    scored = inside(scored)
    if scored.select(pl.struct("source", "target").is_duplicated().any()).item():
        raise LpmInputError("scored_edges", "a (source, target) pair is scored more than once")
    ref = inside(ref).unique(["source", "target"]).with_columns(_pos=pl.lit(True))
    if ref.height == 0:
        raise LpmInputError(
            "reference", "no reference edge lies in the evaluable universe; AUPRC is undefined"
        )
    return scored, ref, n_universe


def degree_preserving_random(
    edges: pl.DataFrame, *, seed: int, n_swaps_per_edge: int = 10, keep: Sequence[str] = ()
) -> pl.DataFrame:
    """A random directed network with every node's out- and in-degree unchanged.

    Directed double-edge swaps (``a→b, c→d`` becomes ``a→d, c→b``), refused when they would
    make a self-loop or an edge that exists already. A network scored as well as such random
    copies found nothing beyond which genes are hubs (the lift over random). The swaps stop after
    ``n_swaps_per_edge × n_edges`` successful ones or ten times as many tries (a network with few
    possible swaps, such as a star, comes back little changed). Pure Python: CollecTRI (43k
    edges, 10 swaps per edge) takes about 2 s; a CausalBench ChIP-seq network (0.9 M edges on
    few, dense sources, so many swaps are refused) about 30 s per swap per edge.

    Parameters
    ----------
    edges
        Columns ``source, target``; no self-loops, no repeated edges.
    seed
        The same seed and edges give the same network.
    n_swaps_per_edge
        Successful swaps to aim for, per edge.
    keep
        Columns carried along: a swap moves targets only, so each edge keeps its source and
        these values (e.g. a score), and every source keeps its own values.

    Returns
    -------
    polars.DataFrame
        Columns ``source, target`` and ``keep``, as many edges as given, sorted.

    Example
    -------
    >>> e = pl.DataFrame({"source": ["A", "B", "C", "D"], "target": ["B", "C", "D", "A"]})
    >>> r = degree_preserving_random(e, seed=0)
    >>> sorted(r["source"]) == sorted(e["source"]), sorted(r["target"]) == sorted(e["target"])
    (True, True)
    """
    if n_swaps_per_edge < 0:
        raise LpmInputError("n_swaps_per_edge", f"must be >= 0, got {n_swaps_per_edge}")
    pairs = _pairs(edges, "edges", keep)
    if pairs.height == 0:
        raise LpmInputError("edges", "no edges to randomise")
    if (pairs["source"] == pairs["target"]).any():
        raise LpmInputError("edges", "self-loops present; drop them first")
    if pairs.select(pl.struct("source", "target").is_duplicated().any()).item():
        raise LpmInputError("edges", "repeated (source, target) edges; deduplicate first")
    nodes = sorted(set(pairs["source"].to_list()) | set(pairs["target"].to_list()))
    code = {n: i for i, n in enumerate(nodes)}
    src = [code[s] for s in pairs["source"].to_list()]
    tgt = [code[t] for t in pairs["target"].to_list()]
    _swap_targets(src, tgt, len(nodes), np.random.default_rng(seed), n_swaps_per_edge)
    names = np.asarray(nodes, dtype=object)
    return (
        pl.DataFrame(
            {"source": pairs["source"], "target": pl.Series(names[tgt].tolist(), dtype=pl.String)}
        )
        .with_columns(pairs.select(keep))
        .sort("source", "target")
    )


def _swap_targets(
    src: list[int], tgt: list[int], n_nodes: int, rng: np.random.Generator, per_edge: int
) -> None:
    """Directed double-edge swaps on ``tgt`` in place (see :func:`degree_preserving_random`)."""
    n_edges = len(src)
    present = {a * n_nodes + b for a, b in zip(src, tgt, strict=True)}
    goal, budget, done = per_edge * n_edges, 10 * per_edge * n_edges, 0
    while done < goal and budget > 0 and n_edges > 1:
        chunk = min(budget, max(1024, 2 * (goal - done)))
        budget -= chunk
        for i, j in rng.integers(0, n_edges, size=(chunk, 2)).tolist():
            a, b, c, d = src[i], tgt[i], src[j], tgt[j]
            if a == d or c == b:
                continue
            new1, new2 = a * n_nodes + d, c * n_nodes + b
            if new1 in present or new2 in present:
                continue
            present.difference_update((a * n_nodes + b, c * n_nodes + d))
            present.update((new1, new2))
            tgt[i], tgt[j] = d, b
            done += 1
            if done >= goal:
                return


# --- ranking candidates of one query ------------------------------------------------------------


def ranking_scores(
    scores: Mapping[str, float], positives: Collection[str], *, k: int = 10
) -> dict[str, float]:
    """How well one query's candidates are ranked, given its true positives.

    E.g. the genetic perturbations ranked by similarity to one compound, positives its known
    targets. Positives that are not candidates are left out (the model could not rank them).

    Parameters
    ----------
    scores
        ``candidate -> score`` (higher: more likely positive), finite.
    positives
        The query's true positives.
    k
        Cut-off for ``recall_at_k``.

    Returns
    -------
    dict
        ``auroc``, ``average_precision``, ``recall_at_k`` (expected share of the positives in
        the top ``k``), ``n_candidates``, ``n_positives`` (among the candidates) and
        ``base_rate`` (``n_positives / n_candidates``, the average precision of chance).

    Raises
    ------
    LpmInputError
        No candidates, a non-finite score, ``k < 1``, or no positive or no negative among the
        candidates (the metrics are undefined).

    Example
    -------
    >>> r = ranking_scores({"A": 0.9, "B": 0.5, "C": 0.1, "D": 0.0}, {"A", "B"}, k=1)
    >>> r["auroc"], r["average_precision"], r["recall_at_k"]
    (1.0, 1.0, 0.5)
    """
    (cut,) = _check_k([k], "k")
    if not scores:
        raise LpmInputError("scores", "no candidates to rank")
    names = list(scores)
    values = np.asarray([scores[n] for n in names], dtype=np.float64)
    _check_finite(values, "scores")
    pos = set(positives)
    labels = np.asarray([n in pos for n in names], dtype=bool)
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == len(names):
        raise LpmInputError(
            "positives",
            f"{n_pos} of {len(names)} candidates are positives; need at least one of each class",
        )
    sizes, hits = _tie_blocks(values, labels)
    return {
        "auroc": _auroc(sizes, hits),
        "average_precision": _average_precision(sizes, hits),
        "recall_at_k": _hits_at(sizes, hits, min(cut, len(names))) / n_pos,
        "n_candidates": len(names),
        "n_positives": n_pos,
        "base_rate": n_pos / len(names),
    }


QUERY_METRICS: Final = ("auroc", "average_precision", "recall_at_k", "base_rate")


def per_query_scores(
    scores: pl.DataFrame,
    positives: Mapping[str, Collection[str]],
    *,
    k: int = 10,
    columns: tuple[str, str, str] = ("query", "candidate", "score"),
) -> pl.DataFrame:
    """:func:`ranking_scores` for every query of a long table, one row per query.

    Parameters
    ----------
    scores
        Long table ``query, candidate, score`` (names set by ``columns``), one row per pair.
    positives
        ``query -> its true positives``; a query missing here has none.

    Returns
    -------
    polars.DataFrame
        ``query, n_candidates, n_positives`` and :data:`QUERY_METRICS`, sorted by query; the
        metrics are null for a query without a positive (or without a negative) among its
        candidates.
    """
    qcol, ccol, scol = columns
    require_columns(scores, columns, "scores")
    _check_finite(scores[scol].cast(pl.Float64).to_numpy(), "scores")
    if scores.select(pl.struct(qcol, ccol).is_duplicated().any()).item():
        raise LpmInputError("scores", f"a ({qcol}, {ccol}) pair appears more than once")
    rows = []
    for (query,), group in scores.group_by(qcol, maintain_order=True):
        cand = dict(zip(group[ccol].cast(pl.String), group[scol].cast(pl.Float64), strict=True))
        pos = set(positives.get(str(query), ())) & set(cand)
        row: dict[str, object] = {
            "query": str(query),
            "n_candidates": len(cand),
            "n_positives": len(pos),
        }
        if 0 < len(pos) < len(cand):
            r = ranking_scores(cand, pos, k=k)
            row.update({m: r[m] for m in QUERY_METRICS})
        rows.append(row)
    schema = {"query": pl.String, "n_candidates": pl.Int64, "n_positives": pl.Int64}
    schema.update(dict.fromkeys(QUERY_METRICS, pl.Float64))
    return pl.DataFrame(rows, schema=schema).sort("query")


def mean_over_queries(
    scores: pl.DataFrame,
    positives: Mapping[str, Collection[str]],
    *,
    k: int = 10,
    columns: tuple[str, str, str] = ("query", "candidate", "score"),
) -> dict[str, float]:
    """Mean of :func:`per_query_scores` over the queries where the metrics are defined.

    Returns
    -------
    dict
        The mean of each of :data:`QUERY_METRICS` (``base_rate``: what chance would score in
        average precision), ``n_queries`` (in the table), ``n_queries_with_positive`` (at least
        one positive among the candidates) and ``n_evaluated`` (also at least one negative;
        the means are over these). Means are NaN when no query is evaluable.

    Example
    -------
    >>> t = pl.DataFrame({"query": ["q1"] * 3 + ["q2"] * 3, "candidate": ["A", "B", "C"] * 2,
    ...                   "score": [3.0, 2.0, 1.0, 1.0, 2.0, 3.0]})
    >>> r = mean_over_queries(t, {"q1": {"A"}, "q2": {"A"}}, k=1)
    >>> r["auroc"], r["recall_at_k"], r["n_evaluated"]
    (0.5, 0.5, 2)
    """
    table = per_query_scores(scores, positives, k=k, columns=columns)
    done = table.filter(pl.col("auroc").is_not_null())
    out: dict[str, float] = {
        m: float(done[m].mean()) if done.height else float("nan")  # type: ignore[arg-type]
        for m in QUERY_METRICS
    }
    out.update(
        n_queries=table.height,
        n_queries_with_positive=int((table["n_positives"] > 0).sum()),
        n_evaluated=done.height,
    )
    return out


__all__ = [
    "DEFAULT_K",
    "QUERY_METRICS",
    "degree_preserving_random",
    "edge_scores_auprc",
    "mean_over_queries",
    "per_query_scores",
    "ranking_scores",
]

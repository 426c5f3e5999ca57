"""Gene→gene networks from perturbation data (``lpm grn``), and their scores against references.

Three ways to infer edges, each one tidy table ``source, target, score, ...`` (higher score: more
confident), best first:

- :func:`knockdown_edges`: the gene a single genetic perturbation targets → the readouts it
  moves, scored by a robust z of the measured effect.
- :func:`embedding_edges`: genes whose perturbations a trained LPM embeds alike (functional
  association, both directions emitted).
- :func:`imputed_edges`: as knock-down, on the complete perturbation × readout matrix an LPM
  predicts in one context, so pairs never measured there get a score too.

Knock-down direction. Effects are read as "the source goes down": the effects of gain-of-function
perturbations (CRISPRa, ORF) are negated before a gene's perturbations are averaged, so a
CRISPRi and a CRISPRa of one gene reinforce each other instead of cancelling. ``sign`` is the
regulation this implies: +1 (activation) when knocking the source down lowers the target.

Scoring (:func:`score_edges`): AUPRC and precision@k over the universe of every knocked-down gene
× every readout gene (:func:`lpm.evaluation.ranking.edge_scores_auprc`), plus the same for the
predicted network (its ``top`` edges) rewired at random with every node's out- and in-degree
kept (:func:`rewire_edges`), so that the lift over a network with the same hubs is visible.
:class:`GeneNetworkTask` is the registered task; ``lpm grn`` (:mod:`lpm.runs.grn`) writes the
networks and scores, and :mod:`lpm.pl.grn` draws the strongest module (:func:`strongest_module`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.symbols import COMBINATION_SEPARATOR, GENETIC_TYPES, TYPE_SEPARATOR
from lpm.errors import LpmInputError
from lpm.tasks.base import DiscoveryTask, fitted_model
from lpm.tasks.grn_scores import _ranked

if TYPE_CHECKING:
    import networkx as nx

    from lpm.models.base import PerturbationModel

Method = Literal["knockdown", "embedding", "imputed"]
#: Inference methods, in the order ``method="all"`` runs them.
METHODS: Final[tuple[Method, ...]] = ("knockdown", "embedding", "imputed")
#: Perturbations that raise their target's activity; their effects are negated (knock-down view).
GAIN_OF_FUNCTION: Final = frozenset({"CRISPRa", "ORF"})
#: 1.4826 × MAD estimates the standard deviation of normal data.
_MAD_SCALE: Final = 1.4826
#: A single perturbation ``TYPE:TARGET``: group 1 the type, group 2 the target.
_SINGLE: Final = (
    f"^([^{re.escape(TYPE_SEPARATOR + COMBINATION_SEPARATOR)}]+){re.escape(TYPE_SEPARATOR)}"
    f"([^{re.escape(COMBINATION_SEPARATOR)}]+)$"
)


# --- inputs -------------------------------------------------------------------------------------


def _check_frame(frame: pl.DataFrame, where: str) -> None:
    missing = [c for c in S.REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise LpmInputError(
            where, f"missing column(s) {', '.join(missing)}; found {', '.join(frame.columns)}"
        )


def _genetic_singles(frame: pl.DataFrame, where: str) -> pl.DataFrame:
    """Rows of single genetic perturbations, with ``_kind`` (CRISPRi, ...) and ``_gene``."""
    _check_frame(frame, where)
    out = (
        frame.with_columns(pl.col(S.PERTURBATION, S.READOUT, S.CONTEXT).cast(pl.String))
        .with_columns(
            _kind=pl.col(S.PERTURBATION).str.extract(_SINGLE, 1),
            _gene=pl.col(S.PERTURBATION).str.extract(_SINGLE, 2),
        )
        .filter(pl.col("_kind").is_in(sorted(GENETIC_TYPES)))
    )
    if out.height == 0:
        raise LpmInputError(
            where,
            f"no single genetic perturbation ({', '.join(sorted(GENETIC_TYPES))}) in column "
            f"{S.PERTURBATION}; gene networks need knock-downs (e.g. CRISPRi:GENE)",
        )
    return out


def _zscore(effects: pl.DataFrame) -> pl.DataFrame:
    """Add ``z``: each readout's effects standardised across perturbations (median and MAD).

    Per readout, so a readout that every perturbation moves (a stress gene) does not crowd the
    top of the list. The MAD is robust to the few perturbations that really move a readout; a
    readout whose MAD is 0 falls back to its standard deviation, and one that never varies gets
    ``z = 0``.
    """
    med = pl.col("effect").median().over(S.READOUT)
    mad = (pl.col("effect") - med).abs().median().over(S.READOUT) * _MAD_SCALE
    sd = pl.col("effect").std(ddof=0).over(S.READOUT)
    scale = pl.when(mad > 0).then(mad).when(sd > 0).then(sd).otherwise(None)
    return effects.with_columns(z=((pl.col("effect") - med) / scale).fill_null(0.0))


def _gene_edges(effects: pl.DataFrame) -> pl.DataFrame:
    """Per-perturbation effects (``_kind, _gene, readout, effect``) → per-gene scored edges."""
    flip = pl.when(pl.col("_kind").is_in(sorted(GAIN_OF_FUNCTION))).then(-1.0).otherwise(1.0)
    edges = (
        _zscore(effects)
        .with_columns(effect=pl.col("effect") * flip, z=pl.col("z") * flip)
        .group_by(pl.col("_gene").alias("source"), pl.col(S.READOUT).alias("target"))
        .agg(
            pl.col("effect").mean(),
            pl.col("z").mean(),
            pl.len().cast(pl.Int32).alias("n_perturbations"),
        )
        .filter(pl.col("source") != pl.col("target"))
    )
    return edges.with_columns(
        score=pl.col("z").abs(),
        sign=pl.when(pl.col("effect") < 0)
        .then(1)
        .when(pl.col("effect") > 0)
        .then(-1)
        .otherwise(None)
        .cast(pl.Int8),
    )


def _threshold(
    edges: pl.DataFrame, min_abs_z: float | None, min_abs_effect: float | None
) -> pl.DataFrame:
    if min_abs_z is not None:
        edges = edges.filter(pl.col("z").abs() >= min_abs_z)
    if min_abs_effect is not None:
        edges = edges.filter(pl.col("effect").abs() >= min_abs_effect)
    return edges


# --- inference ----------------------------------------------------------------------------------


def knockdown_edges(
    frame: pl.DataFrame,
    *,
    context: str | None = None,
    min_abs_z: float | None = None,
    min_abs_effect: float | None = None,
) -> pl.DataFrame:
    """Edges from measured knock-down effects: perturbed gene → readout genes it moves.

    Each single genetic perturbation's effect on a readout is its mean delta over the rows
    measuring it (contexts, replicates, doses, times); it is standardised per readout across
    perturbations (median/MAD z), turned to the knock-down direction and averaged over the
    gene's perturbations. Self edges (a knock-down lowering its own gene) are dropped: they
    say the guide works, not that a gene regulates another.

    Parameters
    ----------
    frame
        Long table ``context, perturbation, readout, value`` (values are deltas vs control).
        Combinations, compounds and the control are ignored.
    context
        Use only this context; default: pool every context.
    min_abs_z, min_abs_effect
        Keep only edges with ``|z|`` (a significance in robust standard units) or ``|effect|``
        at least this large; default keep all.

    Returns
    -------
    polars.DataFrame
        ``source, target, effect`` (mean delta of the target when the source goes down), ``z``,
        ``n_perturbations``, ``score`` (``|z|``) and ``sign`` (+1: the source activates the
        target), best first.

    Raises
    ------
    LpmInputError
        Missing columns, no single genetic perturbation, or an unknown ``context``.

    Example
    -------
    >>> f = pl.DataFrame({"context": "c", "perturbation": [f"CRISPRi:{g}" for g in "ABCD"] * 2,
    ...     "readout": ["R1"] * 4 + ["R2"] * 4,
    ...     "value": [-3.0, 0.1, -0.1, 0.0, 0.1, 0.2, -0.1, 0.0]})
    >>> knockdown_edges(f).select("source", "target", "sign").row(0)
    ('A', 'R1', 1)
    """
    singles = _genetic_singles(frame, "frame")
    if context is not None:
        singles = _in_context(singles, context)
    effects = singles.group_by("_kind", "_gene", S.PERTURBATION, S.READOUT).agg(
        pl.col(S.VALUE).cast(pl.Float64).mean().alias("effect")
    )
    edges = _gene_edges(effects).select(
        "source", "target", "effect", "z", "n_perturbations", "score", "sign"
    )
    return _ranked(_threshold(edges, min_abs_z, min_abs_effect))


def _in_context(singles: pl.DataFrame, context: str) -> pl.DataFrame:
    out = singles.filter(pl.col(S.CONTEXT) == context)
    if out.height == 0:
        known = sorted(singles[S.CONTEXT].unique().to_list())
        raise LpmInputError(
            S.CONTEXT,
            f"no single genetic perturbation measured in context {context!r}; "
            f"contexts with some: {', '.join(known[:10])}",
        )
    return out


def embedding_edges(
    model: PerturbationModel | str | Path, *, top_k: int | None = None, member: int = 0
) -> pl.DataFrame:
    """Association edges between genes whose perturbations a trained LPM embeds alike.

    Cosine similarity of the learned perturbation vectors
    (:func:`lpm.tasks.embeddings.perturbation_embeddings`), centred per modality (so the
    similarity is not the offset all CRISPRi share) and compared within a modality (a CRISPRi
    vector with CRISPRi vectors); a gene pair's score is the mean over the modalities both
    genes have (two genes never perturbed in a common modality get no edge, and so rank last
    when scored). Association has no direction: both ``A→B`` and ``B→A`` are emitted, so a
    directed reference can score them.

    Parameters
    ----------
    model
        A fitted ``lpm``/``lpm_fast`` model, or the folder it was saved to.
    top_k
        Keep each source's ``top_k`` most similar genes (a k-nearest-neighbour graph); default
        keep every pair.
    member
        Ensemble member whose embedding to read.

    Returns
    -------
    polars.DataFrame
        ``source, target, similarity, score`` (``= similarity``), best first.

    Raises
    ------
    LpmInputError
        Fewer than two genes with single genetic perturbations, or ``top_k < 1``.
    """
    from lpm.tasks.embeddings import perturbation_embeddings

    if top_k is not None and top_k < 1:
        raise LpmInputError("top_k", f"must be >= 1, got {top_k}")
    emb = perturbation_embeddings(fitted_model(model), member=member)
    obs = emb.obs
    kinds = obs["perturbation_type"].astype(str).to_numpy()
    targets = obs["target"].astype(str).to_numpy()
    x = np.asarray(emb.X, dtype=np.float64)
    keep = np.isin(kinds, sorted(GENETIC_TYPES))
    genes = sorted(set(targets[keep].tolist()))
    if len(genes) < 2:
        raise LpmInputError(
            "model", f"{len(genes)} gene(s) with single genetic perturbations; need at least two"
        )
    index = {g: i for i, g in enumerate(genes)}
    total = np.zeros((len(genes), len(genes)))
    count = np.zeros((len(genes), len(genes)))
    for kind in sorted(set(kinds[keep].tolist())):
        rows = np.flatnonzero(kinds == kind)
        if len(rows) < 2:
            continue
        v = x[rows] - x[rows].mean(axis=0)
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        v = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
        idx = np.asarray([index[g] for g in targets[rows]])
        total[np.ix_(idx, idx)] += v @ v.T
        count[np.ix_(idx, idx)] += 1.0
    np.fill_diagonal(count, 0.0)
    src, tgt = np.nonzero(count)
    sim = total[src, tgt] / count[src, tgt]
    names = np.asarray(genes, dtype=object)
    edges = pl.DataFrame(
        {"source": names[src], "target": names[tgt], "similarity": sim},
        schema={"source": pl.String, "target": pl.String, "similarity": pl.Float64},
    ).with_columns(score=pl.col("similarity"))
    edges = _ranked(edges)
    if top_k is not None:
        edges = _ranked(edges.group_by("source", maintain_order=True).head(top_k))
    return edges


def imputed_edges(
    model: PerturbationModel | str | Path,
    frame: pl.DataFrame,
    *,
    context: str,
    min_abs_z: float | None = None,
    min_abs_effect: float | None = None,
) -> pl.DataFrame:
    """Knock-down edges on the complete matrix an LPM predicts in one context.

    Every single genetic perturbation of ``frame`` (any context) × every readout of ``frame``
    is predicted in ``context``, measured pairs included (so all pairs are scored on one
    footing), then scored as :func:`knockdown_edges` does. Pairs the model cannot predict
    (a symbol never seen in training) are left out.

    Parameters
    ----------
    model
        A fitted model (``lpm_fast``, ``lpm``, or any with ``predict``), or its folder.
    frame
        The long table the perturbations and readouts come from, and that says which pairs
        were measured.
    context
        The context to complete; the model must know it.
    min_abs_z, min_abs_effect
        As in :func:`knockdown_edges`.

    Returns
    -------
    polars.DataFrame
        The columns of :func:`knockdown_edges` plus ``imputed`` (True: no perturbation of the
        source was measured on the target in ``context``), best first.

    Raises
    ------
    LpmInputError
        No single genetic perturbation, a context the model cannot predict, or no pair left.
    """
    fitted = fitted_model(model)
    singles = _genetic_singles(frame, "frame")
    perts = singles.select(S.PERTURBATION, "_kind", "_gene").unique().sort(S.PERTURBATION)
    readouts = pl.DataFrame({S.READOUT: sorted(frame[S.READOUT].cast(pl.String).unique())})
    grid = (
        perts.join(readouts, how="cross")
        .with_columns(pl.lit(context, dtype=pl.String).alias(S.CONTEXT))
        .select(S.CONTEXT, S.PERTURBATION, S.READOUT, "_kind", "_gene")
    )
    ok = np.asarray(fitted.supported(grid.select(S.CONTEXT, S.PERTURBATION, S.READOUT)))
    grid = grid.filter(pl.Series(ok))
    if grid.height == 0:
        raise LpmInputError(
            S.CONTEXT,
            f"the model predicts no (perturbation, readout) pair in context {context!r}; "
            "is the context one it was trained on?",
        )
    pred = fitted.predict(grid.select(S.CONTEXT, S.PERTURBATION, S.READOUT))
    effects = grid.with_columns(effect=pl.Series(np.asarray(pred, dtype=np.float64)))
    measured = (
        singles.filter(pl.col(S.CONTEXT) == context)
        .select(pl.col("_gene").alias("source"), pl.col(S.READOUT).alias("target"))
        .unique()
        .with_columns(imputed=pl.lit(False))
    )
    edges = (
        _gene_edges(effects)
        .join(measured, on=["source", "target"], how="left")
        .with_columns(pl.col("imputed").fill_null(True))
        .select("source", "target", "effect", "z", "n_perturbations", "score", "sign", "imputed")
    )
    return _ranked(_threshold(edges, min_abs_z, min_abs_effect))


# --- modules ------------------------------------------------------------------------------------


def top_edges(edges: pl.DataFrame, top: int) -> pl.DataFrame:
    """The ``top`` best edges (ties by name); an edge table lacking its columns is an error."""
    missing = [c for c in ("source", "target", "score") if c not in edges.columns]
    if missing:
        raise LpmInputError("edges", f"missing column(s) {', '.join(missing)}")
    if top < 1:
        raise LpmInputError("top", f"must be >= 1, got {top}")
    return edges.sort(["score", "source", "target"], descending=[True, False, False]).head(top)


def edge_graph(edges: pl.DataFrame) -> nx.DiGraph:
    """A directed graph whose edges carry every other column of ``edges`` as attributes."""
    import networkx as nx

    g = nx.DiGraph()
    attrs = [c for c in edges.columns if c not in ("source", "target")]
    for row in edges.iter_rows(named=True):
        # GraphML has no null: leave a missing attribute out of that edge
        data = {a: row[a] for a in attrs if row[a] is not None}
        g.add_edge(str(row["source"]), str(row["target"]), **data)
    return g


def strongest_module(edges: pl.DataFrame, *, top: int = 1000) -> list[str]:
    """Genes of the strongest module among the ``top`` edges.

    Communities come from greedy modularity on the undirected graph weighted by ``|score|``;
    the strongest is the one with the largest total weight of its internal edges (a big,
    dense, confident cluster beats a small one). Empty when no community has three genes.
    """
    import networkx as nx
    from networkx.algorithms.community import greedy_modularity_communities

    best = top_edges(edges, top)
    g = nx.Graph()
    for s, t, w in best.select("source", "target", "score").iter_rows():
        w = abs(float(w))
        if g.has_edge(s, t):
            g[s][t]["weight"] = max(g[s][t]["weight"], w)
        else:
            g.add_edge(s, t, weight=w)
    if g.number_of_edges() == 0:
        return []
    communities = [c for c in greedy_modularity_communities(g, weight="weight") if len(c) >= 3]
    if not communities:
        return []

    def strength(nodes: Any) -> float:
        return float(g.subgraph(nodes).size(weight="weight"))

    return sorted(max(communities, key=lambda c: (strength(c), sorted(c))))


# --- the task -----------------------------------------------------------------------------------


def perturbed_genes(frame: pl.DataFrame, *, where: str = "data") -> list[str]:
    """The genes a single genetic perturbation of ``frame`` targets (sorted): the sources an
    inferred network can have."""
    return sorted(set(_genetic_singles(frame, where)["_gene"].to_list()))


def widest_context(frame: pl.DataFrame) -> str:
    """The context measuring the most readouts (then the most rows, then by name)."""
    t = (
        _genetic_singles(frame, "frame")
        .group_by(S.CONTEXT)
        .agg(pl.col(S.READOUT).n_unique().alias("r"), pl.len().alias("n"))
        .sort(["r", "n", S.CONTEXT], descending=[True, True, False])
    )
    return str(t[S.CONTEXT][0])


class GeneNetworkTask(DiscoveryTask):
    """Gene→gene edges by one method: ``knockdown`` (no model), ``embedding`` or ``imputed``.

    ``context``: the knock-down context (default pool all) or the context the imputed matrix
    completes (default :func:`widest_context`); ``min_abs_z`` thresholds knock-down and imputed
    edges; ``top_k`` keeps each gene's nearest neighbours of the embedding (default all).
    """

    name = "grn"

    def __init__(
        self,
        *,
        method: str = "knockdown",
        context: str | None = None,
        min_abs_z: float | None = None,
        top_k: int | None = None,
    ):
        if method not in METHODS:
            raise LpmInputError(
                "method", f"unknown method {method!r}; expected one of {', '.join(METHODS)}"
            )
        self.method = method
        self.context = context
        self.min_abs_z = min_abs_z
        self.top_k = top_k

    def needs_model(self) -> bool:
        return self.method != "knockdown"

    def _needs(self) -> str:
        return f"method {self.method}"

    def _run(
        self, data: pl.DataFrame | None, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame:
        assert data is not None
        if self.method == "knockdown":
            return knockdown_edges(data, context=self.context, min_abs_z=self.min_abs_z)
        assert model is not None
        if self.method == "embedding":
            return embedding_edges(model, top_k=self.top_k)
        context = self.context or widest_context(data)
        return imputed_edges(model, data, context=context, min_abs_z=self.min_abs_z)


__all__ = [
    "GAIN_OF_FUNCTION",
    "METHODS",
    "GeneNetworkTask",
    "edge_graph",
    "embedding_edges",
    "imputed_edges",
    "knockdown_edges",
    "perturbed_genes",
    "strongest_module",
    "top_edges",
    "widest_context",
]

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
Writing files and the module figure: :mod:`lpm.pl.grn`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.symbols import COMBINATION_SEPARATOR, GENETIC_TYPES, TYPE_SEPARATOR
from lpm.errors import LpmInputError
from lpm.tasks.grn_scores import (
    DEFAULT_K,
    _in_universe,
    _ranked,
    load_reference,
    load_simulator_truth,
    rewire_edges,
    score_edges,
)

if TYPE_CHECKING:
    from lpm.data.store import PerturbationStore
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


def _fitted_lpm(model: PerturbationModel | str | Path) -> PerturbationModel:
    if isinstance(model, str | Path):
        from lpm.models.registry import load_model

        return load_model(model)
    return model


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
    emb = perturbation_embeddings(_fitted_lpm(model), member=member)
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
    fitted = _fitted_lpm(model)
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


# --- files and figure ---------------------------------------------------------------------------


def write_network(edges: pl.DataFrame, out_prefix: str | Path, *, top: int = 1000) -> list[Path]:
    """CSV and GraphML of the ``top`` best edges (:func:`lpm.pl.grn.write_network`)."""
    from lpm.pl import grn as _grn_figure

    return _grn_figure.write_network(edges, out_prefix, top=top)


def strongest_module(edges: pl.DataFrame, *, top: int = 1000) -> list[str]:
    """Genes of the strongest module of the ``top`` edges
    (:func:`lpm.pl.grn.strongest_module`)."""
    from lpm.pl import grn as _grn_figure

    return _grn_figure.strongest_module(edges, top=top)


def plot_strongest_module(
    edges: pl.DataFrame, path: str | Path, *, top: int = 1000, seed: int = 0, title: str = "module"
) -> Path | None:
    """PNG of the strongest module (:func:`lpm.pl.grn.plot_strongest_module`);
    None, and no file, when no module of three genes exists."""
    from lpm.pl import grn as _grn_figure

    return _grn_figure.plot_strongest_module(edges, path, top=top, seed=seed, title=title)


# --- the whole run ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GrnResult:
    """What :func:`run_grn` wrote: edge tables per method, files, and the scores table."""

    out: Path
    methods: tuple[str, ...]
    edges: dict[str, pl.DataFrame] = field(repr=False)
    scores: pl.DataFrame
    files: tuple[Path, ...]
    n_sources: int
    n_targets: int
    wall_s: float

    def __str__(self) -> str:
        lines = [
            f"{self.out}: {', '.join(self.methods)}; universe {self.n_sources} perturbed genes "
            f"× {self.n_targets} readouts ({self.wall_s:.1f} s)"
        ]
        wide = self.scores.filter(
            pl.col("metric").is_in(["auprc", "base_rate", "precision_at_100", "lift_auprc_top"])
        )
        for (m, ref), g in wide.group_by("method", "reference", maintain_order=True):
            vals = ", ".join(f"{r['metric']}={r['value']:.4g}" for r in g.iter_rows(named=True))
            lines.append(f"  {m} vs {ref}: {vals}")
        return "\n".join(lines)


def _read_data(data: pl.DataFrame | PerturbationStore | str | Path) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, str | Path):
        from lpm.data.store import open_store

        data = open_store(data)
    cols = [c for c in (*S.REQUIRED_COLUMNS,) if c in data.columns]
    return data.read(columns=cols)


def widest_context(frame: pl.DataFrame) -> str:
    """The context measuring the most readouts (then the most rows, then by name)."""
    t = (
        _genetic_singles(frame, "frame")
        .group_by(S.CONTEXT)
        .agg(pl.col(S.READOUT).n_unique().alias("r"), pl.len().alias("n"))
        .sort(["r", "n", S.CONTEXT], descending=[True, True, False])
    )
    return str(t[S.CONTEXT][0])


def run_grn(
    data: pl.DataFrame | PerturbationStore | str | Path,
    *,
    out: str | Path,
    method: Method | Literal["all"] = "knockdown",
    model: PerturbationModel | str | Path | None = None,
    context: str | None = None,
    reference: str | Path | Sequence[str | Path] | None = None,
    gene_info: str | Path | None = None,
    truth_context: str | None = None,
    seed: int = 0,
    top: int = 1000,
    k: Sequence[int] = DEFAULT_K,
    n_random: int = 3,
    min_abs_z: float | None = None,
    embedding_top_k: int | None = None,
    overwrite: bool = False,
) -> GrnResult:
    """Infer gene networks, export them, draw their strongest module and score them.

    Writes into the folder ``out`` (whole or not at all): per method ``edges_<method>.csv``
    and ``edges_<method>.graphml`` (the ``top`` best edges), ``module_<method>.png``; and
    ``scores.csv`` (``method, reference, metric, value``: :func:`score_edges` per method ×
    reference) when a reference is given, and ``grn.json`` (the resolved options and counts).

    Parameters
    ----------
    data
        A long table, a store, or a store's path.
    out
        Output folder.
    method
        ``knockdown``, ``embedding``, ``imputed`` or ``all`` (embedding and imputed need
        ``model``).
    model
        A fitted LPM or its folder.
    context
        Knock-down: one context (default pool all). Imputed: the context to complete (default
        the one measuring the most readouts).
    reference
        Reference network file(s), or a simulator folder / its truth folder.
    gene_info
        Gene-info table to harmonise reference symbols.
    truth_context
        Score against one context's simulator network instead of the union.
    seed
        Seed of the random rewirings and the figure layout.
    top
        Edges exported, drawn from and rewired for the random baseline.
    k
        Cut-offs for precision@k.
    n_random
        Random rewirings averaged per score.
    min_abs_z
        Threshold on ``|z|`` for the knock-down and imputed edges.
    embedding_top_k
        Neighbours kept per gene by the embedding method (default all pairs).
    overwrite
        Replace ``out`` if it exists.

    Returns
    -------
    GrnResult
        Edge tables, the scores table, files written and the universe size.
    """
    from lpm._utils.atomic import atomic_dir

    start = time.perf_counter()
    methods: tuple[str, ...] = METHODS if method == "all" else (method,)
    if any(m not in METHODS for m in methods):
        raise LpmInputError(
            "method", f"unknown method {method!r}; expected {', '.join(METHODS)} or all"
        )
    if model is None and any(m != "knockdown" for m in methods):
        raise LpmInputError("model", f"method {method!r} needs a trained LPM (pass a model)")
    out = Path(out)
    if out.exists() and not overwrite:
        raise LpmInputError(out, "already exists (pass --overwrite to replace it)")
    frame = _read_data(data)
    singles = _genetic_singles(frame, "data")
    sources = sorted(set(singles["_gene"].to_list()))
    targets = sorted(set(frame[S.READOUT].cast(pl.String).unique().to_list()))
    paths = [reference] if isinstance(reference, str | Path) else list(reference or [])
    references = {}
    for p in paths:
        ref = load_reference(p, gene_info=gene_info, context=truth_context)
        name = str(ref["resource"][0]) if ref.height else Path(p).name
        if not _in_universe(ref, set(sources), set(targets)).height:
            raise LpmInputError(
                p,
                f"no reference edge links a perturbed gene ({len(sources)}) to a readout "
                f"({len(targets)}); are the gene names the same kind (symbols vs ids)?",
            )
        references[name] = ref
    fitted = _fitted_lpm(model) if model is not None else None
    imputed_context = context or widest_context(frame)
    edges: dict[str, pl.DataFrame] = {}
    for m in methods:
        if m == "knockdown":
            edges[m] = knockdown_edges(frame, context=context, min_abs_z=min_abs_z)
        elif m == "embedding":
            assert fitted is not None
            edges[m] = embedding_edges(fitted, top_k=embedding_top_k)
        else:
            assert fitted is not None
            edges[m] = imputed_edges(fitted, frame, context=imputed_context, min_abs_z=min_abs_z)
    rows: list[dict[str, Any]] = []
    for m, e in edges.items():
        for name, ref in references.items():
            if e.height == 0:
                continue
            res = score_edges(
                e,
                ref,
                universe_sources=sources,
                universe_targets=targets,
                k=k,
                top=top,
                n_random=n_random,
                seed=seed,
            )
            rows += [
                {"method": m, "reference": name, "metric": key, "value": float(v)}
                for key, v in res.items()
            ]
    scores = pl.DataFrame(
        rows,
        schema={
            "method": pl.String,
            "reference": pl.String,
            "metric": pl.String,
            "value": pl.Float64,
        },
    )
    files: list[Path] = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for m, e in edges.items():
            written = write_network(e, tmp / f"edges_{m}", top=top)
            files += [out / p.name for p in written]
            png = plot_strongest_module(
                e, tmp / f"module_{m}.png", top=top, seed=seed, title=f"{m} edges"
            )
            if png is not None:
                files.append(out / png.name)
        if references:
            scores.write_csv(tmp / "scores.csv")
            files.append(out / "scores.csv")
        options = {
            "method": method,
            "methods": list(methods),
            "context": context,
            "imputed_context": imputed_context if "imputed" in methods else None,
            "reference": [str(p) for p in paths],
            "gene_info": str(gene_info) if gene_info else None,
            "truth_context": truth_context,
            "seed": seed,
            "top": top,
            "k": list(k),
            "n_random": n_random,
            "min_abs_z": min_abs_z,
            "embedding_top_k": embedding_top_k,
            "n_sources": len(sources),
            "n_targets": len(targets),
            "n_edges": {m: e.height for m, e in edges.items()},
        }
        (tmp / "grn.json").write_text(json.dumps(options, indent=2) + "\n")
        files.append(out / "grn.json")
    return GrnResult(
        out=out,
        methods=methods,
        edges=edges,
        scores=scores,
        files=tuple(files),
        n_sources=len(sources),
        n_targets=len(targets),
        wall_s=time.perf_counter() - start,
    )


__all__ = [
    "DEFAULT_K",
    "GAIN_OF_FUNCTION",
    "METHODS",
    "GrnResult",
    "embedding_edges",
    "imputed_edges",
    "knockdown_edges",
    "load_reference",
    "load_simulator_truth",
    "plot_strongest_module",
    "rewire_edges",
    "run_grn",
    "score_edges",
    "strongest_module",
    "widest_context",
    "write_network",
]

"""``lpm grn``: infer gene networks, score them against references, write one output folder."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from lpm._utils.atomic import atomic_dir, atomic_file, check_output
from lpm.data import schema as S
from lpm.errors import LpmInputError
from lpm.pl.grn import plot_strongest_module
from lpm.pl.save import save_png
from lpm.reports.discovery import GRN_OPTIONS_FILE, GRN_SCORES_FILE
from lpm.runs._inputs import read_rows
from lpm.tasks.base import fitted_model
from lpm.tasks.grn import METHODS, Method, edge_graph, perturbed_genes, top_edges, widest_context
from lpm.tasks.grn_scores import DEFAULT_K, in_universe, load_reference, score_edges
from lpm.tasks.registry import get_task

if TYPE_CHECKING:
    from lpm.data.store import PerturbationStore
    from lpm.models.base import PerturbationModel

_SCORES_SCHEMA = {
    "method": pl.String,
    "reference": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
}


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


def write_network(edges: pl.DataFrame, out_prefix: str | Path, *, top: int = 1000) -> list[Path]:
    """Write the ``top`` best edges as ``<out_prefix>.csv`` and ``<out_prefix>.graphml``.

    The GraphML is a directed graph whose edges carry every column of ``edges`` (score,
    effect, sign, ...) as attributes, for Cytoscape or networkx. Each file is written whole
    (replacing one of the same name: the caller writes into its own fresh folder).
    """
    import networkx as nx

    best = top_edges(edges, top)
    prefix = Path(out_prefix)
    csv = prefix.with_name(prefix.name + ".csv")
    graphml = prefix.with_name(prefix.name + ".graphml")
    with atomic_file(csv, overwrite=True) as tmp:
        best.write_csv(tmp)
    with atomic_file(graphml, overwrite=True) as tmp:
        nx.write_graphml(edge_graph(best), tmp)
    return [csv, graphml]


@dataclass(frozen=True)
class _Inputs:
    """The rows, their universe (perturbed genes × readouts) and the reference networks."""

    frame: pl.DataFrame
    sources: list[str]
    targets: list[str]
    paths: list[str | Path]
    references: dict[str, pl.DataFrame]


def _read_inputs(
    data: pl.DataFrame | PerturbationStore | str | Path,
    reference: str | Path | Sequence[str | Path] | None,
    gene_info: str | Path | None,
    truth_context: str | None,
) -> _Inputs:
    frame, _ = read_rows(data, columns=S.REQUIRED_COLUMNS)
    sources = perturbed_genes(frame)
    targets = sorted(set(frame[S.READOUT].cast(pl.String).unique().to_list()))
    paths = [reference] if isinstance(reference, str | Path) else list(reference or [])
    references = _references(paths, gene_info, truth_context, universe=(sources, targets))
    return _Inputs(frame, sources, targets, paths, references)


def _references(
    paths: Sequence[str | Path],
    gene_info: str | Path | None,
    truth_context: str | None,
    *,
    universe: tuple[list[str], list[str]],
) -> dict[str, pl.DataFrame]:
    """Each reference network by name; one linking no perturbed gene to a readout is an error."""
    sources, targets = universe
    references = {}
    for p in paths:
        ref = load_reference(p, gene_info=gene_info, context=truth_context)
        name = str(ref["resource"][0]) if ref.height else Path(p).name
        if not in_universe(ref, set(sources), set(targets)).height:
            raise LpmInputError(
                p,
                f"no reference edge links a perturbed gene ({len(sources)}) to a readout "
                f"({len(targets)}); are the gene names the same kind (symbols vs ids)?",
            )
        references[name] = ref
    return references


def _scores(
    edges: dict[str, pl.DataFrame],
    inputs: _Inputs,
    *,
    k: Sequence[int],
    top: int,
    n_random: int,
    seed: int,
) -> pl.DataFrame:
    """``method, reference, metric, value``: :func:`score_edges` per method × reference."""
    rows: list[dict[str, Any]] = []
    for m, e in edges.items():
        for name, ref in inputs.references.items():
            if e.height == 0:
                continue
            res = score_edges(
                e,
                ref,
                universe_sources=inputs.sources,
                universe_targets=inputs.targets,
                k=k,
                top=top,
                n_random=n_random,
                seed=seed,
            )
            rows += [
                {"method": m, "reference": name, "metric": key, "value": float(v)}
                for key, v in res.items()
            ]
    return pl.DataFrame(rows, schema=_SCORES_SCHEMA)


def _write(
    tmp: Path,
    out: Path,
    edges: dict[str, pl.DataFrame],
    scores: pl.DataFrame | None,
    options: dict[str, Any],
) -> list[Path]:
    files: list[Path] = []
    for m, e in edges.items():
        written = write_network(e, tmp / f"edges_{m}", top=options["top"])
        files += [out / p.name for p in written]
        fig = plot_strongest_module(e, top=options["top"], seed=options["seed"], title=f"{m} edges")
        if fig is not None:
            files.append(out / save_png(fig, tmp / f"module_{m}.png", dpi=110).name)
    if scores is not None:
        scores.write_csv(tmp / GRN_SCORES_FILE)
        files.append(out / GRN_SCORES_FILE)
    (tmp / GRN_OPTIONS_FILE).write_text(json.dumps(options, indent=2) + "\n")
    return [*files, out / GRN_OPTIONS_FILE]


def _methods(method: str, *, has_model: bool) -> tuple[str, ...]:
    methods: tuple[str, ...] = METHODS if method == "all" else (method,)
    if any(m not in METHODS for m in methods):
        raise LpmInputError(
            "method", f"unknown method {method!r}; expected {', '.join(METHODS)} or all"
        )
    if not has_model and any(m != "knockdown" for m in methods):
        raise LpmInputError("model", f"method {method!r} needs a trained LPM (pass a model)")
    return methods


def _options(
    *,
    method: str,
    methods: tuple[str, ...],
    context: str | None,
    imputed_context: str | None,
    inputs: _Inputs,
    gene_info: str | Path | None,
    truth_context: str | None,
    seed: int,
    top: int,
    k: Sequence[int],
    n_random: int,
    min_abs_z: float | None,
    embedding_top_k: int | None,
    edges: dict[str, pl.DataFrame],
) -> dict[str, Any]:
    """The options of a run as ``grn.json`` records them, defaults resolved, and its counts."""
    return {
        "method": method,
        "methods": list(methods),
        "context": context,
        "imputed_context": imputed_context,
        "reference": [str(p) for p in inputs.paths],
        "gene_info": str(gene_info) if gene_info else None,
        "truth_context": truth_context,
        "seed": seed,
        "top": top,
        "k": list(k),
        "n_random": n_random,
        "min_abs_z": min_abs_z,
        "embedding_top_k": embedding_top_k,
        "n_sources": len(inputs.sources),
        "n_targets": len(inputs.targets),
        "n_edges": {m: e.height for m, e in edges.items()},
    }


def _edges(
    frame: pl.DataFrame,
    methods: tuple[str, ...],
    model: PerturbationModel | str | Path | None,
    contexts: tuple[str | None, str | None],
    *,
    min_abs_z: float | None,
    top_k: int | None,
) -> dict[str, pl.DataFrame]:
    """The ``grn`` task's edges per method, in the (knock-down, imputed) ``contexts``."""
    fitted = fitted_model(model) if model is not None else None
    edges = {}
    for m in methods:
        context = contexts[1] if m == "imputed" else contexts[0]
        task = get_task("grn", method=m, context=context, min_abs_z=min_abs_z, top_k=top_k)
        edges[m] = task.run(frame, model=fitted)
    return edges


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
    """Infer gene networks (the ``grn`` task per method), score them, write them with a figure.

    Writes the folder ``out`` whole, refused before any work if it exists unless ``overwrite``:
    per method ``edges_<method>.csv``/``.graphml`` (the ``top`` best edges) and
    ``module_<method>.png``; ``scores.csv`` (``method, reference, metric, value``) with a
    reference; ``grn.json`` (the resolved options and counts). Returns a :class:`GrnResult`.

    Parameters
    ----------
    data
        A long table, a store, or a store's path.
    method, model
        ``knockdown``, ``embedding``, ``imputed`` or ``all``; all but knockdown need ``model``.
    context
        Knock-down: one context (default pool all). Imputed: the context to complete (default
        the one measuring the most readouts).
    reference, gene_info, truth_context
        Reference network file(s) or a simulator (truth) folder; a gene-info table for their
        symbols; one context's simulator network instead of the union.
    seed, top, k, n_random, min_abs_z, embedding_top_k
        Seed of rewirings and layout; edges exported, drawn and rewired; precision@k cut-offs;
        rewirings per score; ``|z|`` threshold of knock-down and imputed edges; neighbours kept
        per gene by the embedding method (default all pairs).
    """
    start = time.perf_counter()
    methods = _methods(method, has_model=model is not None)
    out = check_output(Path(out), kind="folder", overwrite=overwrite)
    inputs = _read_inputs(data, reference, gene_info, truth_context)
    imputed = (context or widest_context(inputs.frame)) if "imputed" in methods else None
    edges = _edges(
        inputs.frame, methods, model, (context, imputed), min_abs_z=min_abs_z, top_k=embedding_top_k
    )
    scores = _scores(edges, inputs, k=k, top=top, n_random=n_random, seed=seed)
    options = _options(
        method=method,
        methods=methods,
        context=context,
        imputed_context=imputed,
        inputs=inputs,
        gene_info=gene_info,
        truth_context=truth_context,
        seed=seed,
        top=top,
        k=k,
        n_random=n_random,
        min_abs_z=min_abs_z,
        embedding_top_k=embedding_top_k,
        edges=edges,
    )
    with atomic_dir(out, overwrite=overwrite) as tmp:
        files = _write(tmp, out, edges, scores if inputs.references else None, options)
    return GrnResult(
        out=out,
        methods=methods,
        edges=edges,
        scores=scores,
        files=tuple(files),
        n_sources=len(inputs.sources),
        n_targets=len(inputs.targets),
        wall_s=time.perf_counter() - start,
    )


__all__ = ["GrnResult", "run_grn", "write_network"]

"""The ground truth of a simulated world, written as small tables beside its store.

``truth/`` holds ``edges.parquet`` (per context), ``genes.parquet``, ``contexts.parquet``,
``baseline.parquet`` (basal log-expression per context), ``perturbations.parquet``,
``pair_types.parquet``, ``compound_targets.parquet`` and ``landmarks.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lpm.data.symbols import perturbation_type
from lpm.errors import LpmInputError, first_line
from lpm.sim.design import Design
from lpm.sim.network import ContextNetwork, Network

#: Column of ``perturbations.parquet`` saying whether a perturbation moves anything downstream.
DOWNSTREAM_FLAG = "has_downstream_effect"


@dataclass(frozen=True)
class Context:
    index: int
    cell_line: str
    dataset: str
    id: str
    landmarks_only: bool


@dataclass(frozen=True)
class World:
    """Everything the simulation drew, for writing the truth tables."""

    genes: list[str]
    network: Network
    networks: list[ContextNetwork]
    basals: list[np.ndarray]
    contexts: list[Context]
    landmarks: np.ndarray
    size: np.ndarray
    out_degree: np.ndarray  # summed over contexts
    design: Design
    effect_norms: dict[str, list[float]]


def _write(df: pl.DataFrame, path: Path) -> None:
    df.write_parquet(path, compression="zstd", statistics=False)


def _edges(w: World) -> pl.DataFrame:
    frames = []
    names = pl.Series(w.genes)
    for ctx, net in zip(w.contexts, w.networks, strict=True):
        e = net.edges
        frames.append(
            pl.DataFrame(
                {
                    "context": [ctx.id] * len(e),
                    "source": names.gather(e.source),
                    "target": names.gather(e.target),
                    "weight": e.weight,
                    "sign": np.sign(e.weight).astype(np.int8),
                }
            )
        )
    return pl.concat(frames)


def _genes(w: World) -> pl.DataFrame:
    rank = w.network.rank
    ref_degree = np.bincount(w.network.edges.source, minlength=len(w.genes))
    landmark = np.zeros(len(w.genes), dtype=bool)
    landmark[w.landmarks] = True
    return pl.DataFrame(
        {
            "gene": w.genes,
            "is_regulator": rank >= 0,
            "hub_rank": pl.Series(np.where(rank >= 0, rank, -1)).replace(-1, None),
            "out_degree": ref_degree.astype(np.int64),
            "is_leaf": w.out_degree == 0,
            "is_landmark": landmark,
            "dispersion": 1.0 / w.size,
        }
    )


def _contexts(w: World) -> pl.DataFrame:
    measured = [sum(ctx.index in cs for cs in w.design.contexts.values()) for ctx in w.contexts]
    return pl.DataFrame(
        {
            "context": [c.id for c in w.contexts],
            "dataset": [c.dataset for c in w.contexts],
            "cell_line": [c.cell_line for c in w.contexts],
            "readouts": ["landmarks" if c.landmarks_only else "transcriptome" for c in w.contexts],
            "n_perturbations": measured,
            "n_edges": [len(n.edges) for n in w.networks],
            "edges_dropped": [n.n_dropped for n in w.networks],
            "edges_sign_flipped": [n.n_flipped for n in w.networks],
            "edges_added": [n.n_added for n in w.networks],
            "feedback_scale": [n.scale for n in w.networks],
        }
    )


def _baseline(w: World) -> pl.DataFrame:
    n = len(w.genes)
    return pl.DataFrame(
        {
            "context": [c.id for c in w.contexts for _ in range(n)],
            "gene": w.genes * len(w.contexts),
            "log_expression": np.concatenate(w.basals),
        }
    )


def _perturbations(w: World) -> pl.DataFrame:
    d = w.design
    has_out = w.out_degree > 0
    rows: list[tuple[str, list[int], bool]] = []
    rows += [(g.symbol, [g.gene], bool(has_out[g.gene])) for g in d.singles]
    rows += [
        (
            p.symbol,
            [p.a.gene, p.b.gene],
            bool(has_out[[p.a.gene, p.b.gene]].any() or p.neo_gene >= 0),
        )
        for p in d.pairs
    ]
    rows += [
        (
            c.symbol,
            [b.gene for b in c.bindings if not b.off_target],
            bool(any(has_out[b.gene] for b in c.bindings)),
        )
        for c in d.compounds
    ]
    ctx_ids = [c.id for c in w.contexts]
    return pl.DataFrame(
        {
            "perturbation": [r[0] for r in rows],
            "type": [perturbation_type(r[0]) for r in rows],
            "targets": [[w.genes[g] for g in r[1]] for r in rows],
            DOWNSTREAM_FLAG: [r[2] for r in rows],
            "n_contexts": [len(d.contexts[r[0]]) for r in rows],
            "contexts": [sorted(ctx_ids[c] for c in d.contexts[r[0]]) for r in rows],
            "true_effect_norm": [float(np.mean(w.effect_norms[r[0]])) for r in rows],
        },
        schema_overrides={"targets": pl.List(pl.String), "contexts": pl.List(pl.String)},
    )


def _pairs(w: World) -> pl.DataFrame:
    d = w.design
    ctx = d.contexts
    return pl.DataFrame(
        {
            "perturbation": [p.symbol for p in d.pairs],
            "member_a": [p.a.symbol for p in d.pairs],
            "member_b": [p.b.symbol for p in d.pairs],
            "interaction": [p.interaction for p in d.pairs],
            "strength": [p.strength for p in d.pairs],
            "dominant": [p.dominant for p in d.pairs],
            "neomorphic_gene": [w.genes[p.neo_gene] if p.neo_gene >= 0 else None for p in d.pairs],
            "n_singles_in_design": [p.n_singles for p in d.pairs],
            "n_contexts": [len(ctx[p.symbol]) for p in d.pairs],
            "n_contexts_both_singles_measured": [
                sum(
                    c in ctx.get(p.a.symbol, ()) and c in ctx.get(p.b.symbol, ())
                    for c in ctx[p.symbol]
                )
                for p in d.pairs
            ],
        },
        schema_overrides={"dominant": pl.String, "neomorphic_gene": pl.String},
    )


def _compound_targets(w: World) -> pl.DataFrame:
    rows = [
        (c.symbol, w.genes[b.gene], b.ic50, b.hill, b.emax, b.off_target)
        for c in w.design.compounds
        for b in c.bindings
    ]
    return pl.DataFrame(
        rows,
        schema={
            "perturbation": pl.String,
            "target": pl.String,
            "ic50_um": pl.Float64,
            "hill": pl.Float64,
            "emax": pl.Float64,
            "is_off_target": pl.Boolean,
        },
        orient="row",
    )


def write_truth(w: World, folder: Path) -> None:
    folder.mkdir(parents=True)
    _write(_edges(w), folder / "edges.parquet")
    _write(_genes(w), folder / "genes.parquet")
    _write(_contexts(w), folder / "contexts.parquet")
    _write(_baseline(w), folder / "baseline.parquet")
    _write(_perturbations(w), folder / "perturbations.parquet")
    _write(_pairs(w), folder / "pair_types.parquet")
    _write(_compound_targets(w), folder / "compound_targets.parquet")
    (folder / "landmarks.txt").write_text("".join(f"{w.genes[i]}\n" for i in w.landmarks))


# ---- reading a truth folder back (the discovery tasks' ground truths) -------------------------
def _truth_file(path: str | Path, name: str) -> Path | None:
    """The truth file ``name`` of a simulation folder or of its ``truth/`` folder, or ``path``
    itself where it is a file; None where there is none."""
    path = Path(path)
    return next((p for p in (path, path / name, path / "truth" / name) if p.is_file()), None)


def read_true_network(path: str | Path, *, context: str | None = None) -> pl.DataFrame:
    """The simulator's true network as a reference: ``source, target, weight, sign, resource``.

    Parameters
    ----------
    path
        A simulation folder (``out`` of :func:`lpm.sim.simulate.simulate`), its ``truth/``
        folder, or ``truth/edges.parquet``.
    context
        One context's network; default the union over contexts (an edge true anywhere; weight
        and sign from the largest-weight instance).

    Raises
    ------
    LpmInputError
        No ``edges.parquet`` found, or no edge in ``context``.
    """
    found = _truth_file(path, "edges.parquet")
    if found is None:
        raise LpmInputError(path, "no simulator truth here (expected truth/edges.parquet)")
    edges = pl.read_parquet(found)
    if context is not None:
        edges = edges.filter(pl.col("context") == context)
        if edges.height == 0:
            raise LpmInputError(found, f"no true edge in context {context!r}")
    resource = "simulator_truth" + (f"_{context}" if context else "")
    return (
        edges.sort("weight", descending=True)
        .unique(["source", "target"], keep="first")
        .select(
            pl.col("source", "target").cast(pl.String),
            pl.col("weight").cast(pl.Float64),
            pl.col("sign").cast(pl.Int8),
            pl.lit(resource).alias("resource"),
        )
        .sort("source", "target")
    )


def read_pair_types(truth_dir: str | Path) -> pl.DataFrame:
    """The designed interaction type of every pair (``perturbation, type``), from a truth folder."""
    found = _truth_file(truth_dir, "pair_types.parquet")
    if found is None:
        raise LpmInputError(
            Path(truth_dir) / "pair_types.parquet",
            "no such file (a simulation truth folder has pair_types.parquet)",
        )
    df = pl.read_parquet(found)
    missing = [c for c in ("perturbation", "interaction") if c not in df.columns]
    if missing:
        raise LpmInputError(found, f"missing column(s) {', '.join(missing)}")
    return df.select("perturbation", pl.col("interaction").alias("type"))


def _on_targets(truth: str | Path) -> pl.DataFrame:
    """The on-target rows of a truth folder's ``compound_targets.parquet`` (or of that file)."""
    found = _truth_file(truth, "compound_targets.parquet")
    if found is None:
        raise LpmInputError(
            truth,
            "not a simulation truth folder: no compound targets (truth/compound_targets.parquet)",
        )
    try:
        table = pl.read_parquet(found)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LpmInputError(found, f"not a simulation truth folder: {first_line(exc)}") from None
    return table.filter(~pl.col("is_off_target"))


def read_compound_targets(truth: str | Path) -> dict[str, set[str]]:
    """``compound -> its on-target genes`` from ``truth/compound_targets.parquet`` (or the file)."""
    t = _on_targets(truth)
    out: dict[str, set[str]] = {}
    for comp, gene in t.select("perturbation", "target").iter_rows():
        out.setdefault(comp, set()).add(gene)
    return out


def read_target_mechanisms(truth: str | Path) -> dict[str, str]:
    """Mechanism labels of a simulated world: each compound's strongest on-target, shared with
    the genetic perturbations of that gene, so an embedding layout shows whether compounds land
    beside the knock-downs of their targets.

    Parameters
    ----------
    truth
        A simulation folder or its ``truth/`` folder (``compound_targets.parquet``).

    Returns
    -------
    dict
        Compound name (without ``compound:``) or gene → ``target <gene>``.
    """
    table = _on_targets(truth)
    strongest = (
        table.sort("ic50_um", "target").group_by("perturbation", maintain_order=True).first()
    )
    out: dict[str, str] = {}
    for compound, gene in strongest.select("perturbation", "target").iter_rows():
        label = f"target {gene}"
        out[str(compound).partition(":")[2] or str(compound)] = label
        out[str(gene)] = label
    return out


def read_downstream_effects(truth_dir: str | Path) -> pl.DataFrame:
    """Each perturbation's ``has_downstream_effect`` flag, from ``perturbations.parquet``."""
    found = _truth_file(truth_dir, "perturbations.parquet")
    if found is None:
        raise LpmInputError(Path(truth_dir) / "perturbations.parquet", "simulator truth not found")
    table = pl.read_parquet(found)
    if DOWNSTREAM_FLAG not in table.columns:
        raise LpmInputError(found, f"has no {DOWNSTREAM_FLAG!r} column")
    return table

"""Files and the figure of ``lpm grn``: CSV and GraphML of the top edges, the strongest module.

networkx and matplotlib load only here (called by :mod:`lpm.tasks.grn`), so importing the
inference code stays light. Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from lpm._utils.atomic import atomic_file
from lpm.errors import LpmInputError
from lpm.pl.save import save_png

if TYPE_CHECKING:
    import networkx as nx

#: Most nodes drawn: a larger module is cut to its strongest nodes so labels stay legible.
MAX_DRAWN = 40


def _top(edges: pl.DataFrame, top: int) -> pl.DataFrame:
    missing = [c for c in ("source", "target", "score") if c not in edges.columns]
    if missing:
        raise LpmInputError("edges", f"missing column(s) {', '.join(missing)}")
    if top < 1:
        raise LpmInputError("top", f"must be >= 1, got {top}")
    return edges.sort(["score", "source", "target"], descending=[True, False, False]).head(top)


def _graph(edges: pl.DataFrame) -> nx.DiGraph:
    import networkx as nx

    g = nx.DiGraph()
    attrs = [c for c in edges.columns if c not in ("source", "target")]
    for row in edges.iter_rows(named=True):
        # GraphML has no null: leave a missing attribute out of that edge
        data = {a: row[a] for a in attrs if row[a] is not None}
        g.add_edge(str(row["source"]), str(row["target"]), **data)
    return g


def write_network(edges: pl.DataFrame, out_prefix: str | Path, *, top: int = 1000) -> list[Path]:
    """Write the ``top`` best edges as ``<out_prefix>.csv`` and ``<out_prefix>.graphml``.

    The GraphML is a directed graph whose edges carry every column of ``edges`` (score,
    effect, sign, ...) as attributes, for Cytoscape or networkx.

    Returns
    -------
    list of Path
        The CSV and the GraphML file.
    """
    import networkx as nx

    best = _top(edges, top)
    prefix = Path(out_prefix)
    csv = prefix.with_name(prefix.name + ".csv")
    graphml = prefix.with_name(prefix.name + ".graphml")
    with atomic_file(csv, overwrite=True) as tmp:
        best.write_csv(tmp)
    with atomic_file(graphml, overwrite=True) as tmp:
        nx.write_graphml(_graph(best), tmp)
    return [csv, graphml]


def strongest_module(edges: pl.DataFrame, *, top: int = 1000) -> list[str]:
    """Genes of the strongest module among the ``top`` edges.

    Communities come from greedy modularity on the undirected graph weighted by ``|score|``;
    the strongest is the one with the largest total weight of its internal edges (a big,
    dense, confident cluster beats a small one). Empty when no community has three genes.
    """
    import networkx as nx
    from networkx.algorithms.community import greedy_modularity_communities

    best = _top(edges, top)
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


def plot_strongest_module(
    edges: pl.DataFrame,
    path: str | Path,
    *,
    top: int = 1000,
    seed: int = 0,
    title: str = "strongest module",
) -> Path | None:
    """Draw the strongest module (:func:`strongest_module`) of the ``top`` edges into a PNG.

    Nodes are labelled genes (at most :data:`MAX_DRAWN`, those with the largest weighted
    degree inside the module); arrows are edges, their width the score, red for activation and
    blue for repression where ``sign`` is known. The layout is seeded.

    Returns
    -------
    Path or None
        The PNG written, or None when no module of three genes exists (nothing is written).
    """
    import networkx as nx
    from matplotlib.figure import Figure

    nodes = strongest_module(edges, top=top)
    if not nodes:
        return None
    best = _top(edges, top)
    inside = best.filter(pl.col("source").is_in(nodes) & pl.col("target").is_in(nodes))
    g = _graph(inside)
    if g.number_of_nodes() > MAX_DRAWN:
        strength = dict(nx.Graph(g).degree(weight="score"))
        keep = sorted(strength, key=lambda n: (-abs(strength[n]), n))[:MAX_DRAWN]
        g = g.subgraph(keep).copy()
    pos = nx.spring_layout(g, seed=seed, weight=None)
    scores = [abs(float(d.get("score", 1.0))) for _, _, d in g.edges(data=True)]
    top_score = max(scores) if scores else 1.0
    colours = [
        {1: "tab:red", -1: "tab:blue"}.get(int(d["sign"]) if "sign" in d else 0, "0.5")
        for _, _, d in g.edges(data=True)
    ]
    fig = Figure(figsize=(7.5, 7.0), layout="constrained")
    ax = fig.add_subplot()
    nx.draw_networkx_edges(
        g,
        pos,
        ax=ax,
        width=[0.5 + 2.5 * s / top_score for s in scores],
        edge_color=colours,
        alpha=0.7,
        arrows=True,
        arrowsize=8,
        node_size=300,
    )
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=300, node_color="#fdd49e", edgecolors="0.3")
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=7)
    shown = f", {g.number_of_nodes()} shown" if g.number_of_nodes() < len(nodes) else ""
    ax.set_title(f"{title}: {len(nodes)} genes, {inside.height} edges{shown}", fontsize=10)
    ax.set_axis_off()
    return save_png(fig, path, dpi=110)

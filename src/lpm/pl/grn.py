"""The figure of ``lpm grn``: the strongest module of an inferred network.

networkx loads only here and in :func:`lpm.tasks.grn.strongest_module`, so importing the
inference code stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import polars as pl

from lpm.tasks.grn import edge_graph, strongest_module, top_edges

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Most nodes drawn: a larger module is cut to its strongest nodes so labels stay legible.
MAX_DRAWN: Final = 40


def plot_strongest_module(
    edges: pl.DataFrame, *, top: int = 1000, seed: int = 0, title: str = "strongest module"
) -> Figure | None:
    """The strongest module (:func:`lpm.tasks.grn.strongest_module`) of the ``top`` edges.

    Nodes are labelled genes (at most :data:`MAX_DRAWN`, those with the largest weighted
    degree inside the module); arrows are edges, their width the score, red for activation and
    blue for repression where ``sign`` is known. The layout is seeded.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no module of three genes exists (nothing to draw).
    """
    import networkx as nx
    from matplotlib.figure import Figure

    nodes = strongest_module(edges, top=top)
    if not nodes:
        return None
    best = top_edges(edges, top)
    inside = best.filter(pl.col("source").is_in(nodes) & pl.col("target").is_in(nodes))
    g = edge_graph(inside)
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
    return fig


__all__ = ["MAX_DRAWN", "plot_strongest_module"]

"""Figures (scanpy's ``pl``): functions that take result tables and return a matplotlib Figure.

They never write: :func:`lpm.pl.save.save_png` is the one writer, called by ``lpm.runs``.
"""

from lpm.pl.benchmark import plot_benchmark_panel
from lpm.pl.design import learning_curves_figure
from lpm.pl.embedding import plot_embedding_umap
from lpm.pl.explain import plot_importance
from lpm.pl.grn import plot_strongest_module
from lpm.pl.interactions import plot_interactions
from lpm.pl.moa import plot_moa
from lpm.pl.save import save_png

__all__ = [
    "learning_curves_figure",
    "plot_benchmark_panel",
    "plot_embedding_umap",
    "plot_importance",
    "plot_interactions",
    "plot_moa",
    "plot_strongest_module",
    "save_png",
]

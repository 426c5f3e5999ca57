"""Discovery tasks and their ground truth (reference gene networks, compound annotations)."""

from lpm.tasks.embeddings import (
    context_embeddings,
    embedding_layout,
    load_mechanism_annotations,
    perturbation_embeddings,
    plot_embedding_umap,
    readout_embeddings,
    write_embeddings,
)
from lpm.tasks.references import (
    compound_mechanisms,
    compound_targets,
    load_compound_annotations,
    load_compound_ids,
    load_gene_network,
    match_compounds,
)

__all__ = [
    "compound_mechanisms",
    "compound_targets",
    "context_embeddings",
    "embedding_layout",
    "load_compound_annotations",
    "load_compound_ids",
    "load_gene_network",
    "load_mechanism_annotations",
    "match_compounds",
    "perturbation_embeddings",
    "plot_embedding_umap",
    "readout_embeddings",
    "write_embeddings",
]

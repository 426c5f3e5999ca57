"""Discovery tasks and their ground truth (reference gene networks, compound annotations).

- :mod:`lpm.tasks.embeddings`: learned embeddings as AnnData, UMAP figure (``lpm embed``);
- :mod:`lpm.tasks.moa`: compounds' mechanisms by similarity to genetic perturbations and other
  compounds (``lpm moa``);
- :mod:`lpm.tasks.grn`: gene→gene networks from knock-downs, embeddings and imputed matrices
  (``lpm grn``);
- :mod:`lpm.tasks.explain`: which input drives a prediction (``lpm explain``).
"""

from lpm.priors import (
    compound_mechanisms,
    compound_targets,
    load_compound_annotations,
    load_compound_ids,
    load_gene_network,
    match_compounds,
)
from lpm.tasks.embeddings import (
    context_embeddings,
    embedding_layout,
    load_mechanism_annotations,
    perturbation_embeddings,
    plot_embedding_umap,
    readout_embeddings,
    write_embeddings,
)
from lpm.tasks.explain import posthoc_importance, run_explain, trained_importance
from lpm.tasks.grn import embedding_edges, imputed_edges, knockdown_edges, run_grn, score_edges
from lpm.tasks.moa import (
    embedding_similarity,
    measured_profile_similarity,
    predicted_profile_similarity,
    run_moa,
)

__all__ = [
    "compound_mechanisms",
    "compound_targets",
    "context_embeddings",
    "embedding_edges",
    "embedding_layout",
    "embedding_similarity",
    "imputed_edges",
    "knockdown_edges",
    "load_compound_annotations",
    "load_compound_ids",
    "load_gene_network",
    "load_mechanism_annotations",
    "match_compounds",
    "measured_profile_similarity",
    "perturbation_embeddings",
    "plot_embedding_umap",
    "posthoc_importance",
    "predicted_profile_similarity",
    "readout_embeddings",
    "run_explain",
    "run_grn",
    "run_moa",
    "score_edges",
    "trained_importance",
    "write_embeddings",
]

"""Discovery tasks and their ground truth (reference gene networks, compound annotations)."""

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
    "load_compound_annotations",
    "load_compound_ids",
    "load_gene_network",
    "match_compounds",
]

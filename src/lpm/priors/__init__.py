"""Prior knowledge: where it lives, GO, TF regulons, compound structures and annotations,
reference gene networks, mechanisms, and the features and gene graphs built from them."""

from lpm.priors.compounds import (
    compound_mechanisms,
    compound_targets,
    load_compound_annotations,
    load_compound_ids,
    match_compounds,
)
from lpm.priors.locations import cache_folder, priors_folder
from lpm.priors.networks import load_gene_network

__all__ = [
    "cache_folder",
    "compound_mechanisms",
    "compound_targets",
    "load_compound_annotations",
    "load_compound_ids",
    "load_gene_network",
    "match_compounds",
    "priors_folder",
]

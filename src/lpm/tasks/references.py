"""Ground truth for discovery tasks, read from public files in the formats they ship in.

Gene networks (:func:`load_gene_network`): CausalBench ChIP-seq, CollecTRI, DoRothEA, TRRUST,
Pathway Commons, as one edge table ``source, target, weight, sign, resource`` (formats, weights
and signs: :mod:`lpm.tasks._networks`). Compound annotations
(:func:`load_compound_annotations`): Drug Repurposing Hub and DrugCentral targets and mechanisms,
one row per ``compound, target, moa, source`` (names and matching: :mod:`lpm.tasks._compounds`).
Gene symbols are harmonised with :mod:`lpm.data.genes` when a gene-info table is given.
"""

from lpm.tasks._compounds import (
    COMPOUND_COLUMNS,
    compound_key,
    compound_mechanisms,
    compound_targets,
    load_compound_annotations,
    load_compound_ids,
    match_compounds,
)
from lpm.tasks._networks import (
    DOROTHEA_WEIGHT,
    NETWORK_COLUMNS,
    TRRUST_SIGN,
    load_gene_network,
    symbol_map,
)

__all__ = [
    "COMPOUND_COLUMNS",
    "DOROTHEA_WEIGHT",
    "NETWORK_COLUMNS",
    "TRRUST_SIGN",
    "compound_key",
    "compound_mechanisms",
    "compound_targets",
    "load_compound_annotations",
    "load_compound_ids",
    "load_gene_network",
    "match_compounds",
    "symbol_map",
]

"""Discovery tasks: each computes a tidy table from data and a model, and never writes or draws.

- :mod:`lpm.tasks.embeddings`: learned embeddings as tables and AnnData (``embed``);
- :mod:`lpm.tasks.moa`: compounds' mechanisms by similarity to genetic perturbations and other
  compounds (``moa``), scored by :mod:`lpm.tasks.moa_scores`;
- :mod:`lpm.tasks.grn`: gene→gene networks from knock-downs, embeddings and imputed matrices
  (``grn``), scored by :mod:`lpm.tasks.grn_scores`;
- :mod:`lpm.tasks.explain`: which input drives a prediction (``explain``);
- :mod:`lpm.tasks.interactions`: genetic interaction types of doubles (``interactions``), with
  :mod:`lpm.tasks.norman` comparing Norman et al.'s fits.

Tasks are found by name (:mod:`lpm.tasks.registry`); ``lpm.runs`` writes their outputs.
"""

from lpm.tasks.base import DiscoveryTask
from lpm.tasks.embeddings import (
    EmbeddingTask,
    context_embeddings,
    perturbation_embeddings,
    readout_embeddings,
)
from lpm.tasks.explain import InputImportanceTask, posthoc_importance, trained_importance
from lpm.tasks.grn import GeneNetworkTask, embedding_edges, imputed_edges, knockdown_edges
from lpm.tasks.grn_scores import score_edges
from lpm.tasks.interactions import InteractionTask, InteractionThresholds, interaction_table
from lpm.tasks.layout import embedding_layout
from lpm.tasks.moa import (
    MechanismTask,
    embedding_similarity,
    measured_profile_similarity,
    predicted_profile_similarity,
    rank_moa,
)
from lpm.tasks.registry import describe_task, get_task, list_tasks, register_task

__all__ = [
    "DiscoveryTask",
    "EmbeddingTask",
    "GeneNetworkTask",
    "InputImportanceTask",
    "InteractionTask",
    "InteractionThresholds",
    "MechanismTask",
    "context_embeddings",
    "describe_task",
    "embedding_edges",
    "embedding_layout",
    "embedding_similarity",
    "get_task",
    "imputed_edges",
    "interaction_table",
    "knockdown_edges",
    "list_tasks",
    "measured_profile_similarity",
    "perturbation_embeddings",
    "posthoc_importance",
    "predicted_profile_similarity",
    "rank_moa",
    "readout_embeddings",
    "register_task",
    "score_edges",
    "trained_importance",
]

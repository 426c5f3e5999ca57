"""The learned embeddings of a trained LPM, as tidy tables and as AnnData a scanpy user can open.

A trained LPM (``lpm`` or ``lpm_fast``) holds three embedding tables per ensemble member: one row
per single perturbation (``member.weight``), per context and per readout. This module reads them:

- :func:`perturbation_embeddings`: every perturbation the model can embed, combinations included
  (the mean, or with ``combine=sum`` the sum, of their members' rows, as the network computes it);
- :func:`context_embeddings` and :func:`readout_embeddings`;
- :class:`EmbeddingTask`: one kind as a tidy table (one row per point, its ``obs`` columns and an
  ``embedding`` array column), which :func:`embedding_anndata` turns into AnnData.

Ensembles. Each member is trained from its own seed, so the members' embedding spaces are not
aligned (any rotation or linear map of a space is absorbed by the MLP): the mean of two members'
vectors is meaningless. One member is therefore given, member 0 unless ``member=k``, and recorded
in ``uns["lpm_embedding"]``. Distances and neighbourhoods can be compared across members; raw
coordinates cannot.

``lpm embed`` writes the files (:mod:`lpm.runs.embed`); the layout is
:func:`lpm.tasks.layout.embedding_layout`, the figure :mod:`lpm.pl.embedding`, and mechanism
labels and how names match them :mod:`lpm.priors.mechanisms`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data import symbols as Y
from lpm.errors import LpmInputError
from lpm.priors.mechanisms import Annotations
from lpm.tasks.base import DiscoveryTask, fitted_model

if TYPE_CHECKING:
    import anndata as ad

    from lpm.models.base import PerturbationModel

#: Key of ``uns`` holding where an embedding comes from (model, mode, member, combine).
UNS_KEY: Final = "lpm_embedding"
#: The column of an embedding table that holds the learned vectors.
EMBEDDING: Final = "embedding"
#: What can be embedded, and the key column of each kind's table.
KINDS: Final = {"perturbation": S.PERTURBATION, "context": S.CONTEXT, "readout": S.READOUT}
_NOTE: Final = (
    "one ensemble member's embedding: members are trained from different seeds and their "
    "spaces are not aligned, so a mean over members would be meaningless"
)


@dataclass(frozen=True)
class EmbeddableModel:
    """A fitted LPM and the folder it was loaded from (empty for a model in memory)."""

    model: Any
    path: str


def embeddable(model: PerturbationModel | str | Path, *, member: int = 0) -> EmbeddableModel:
    """The fitted LPM behind ``model`` (a model or a saved folder), checked to have ``member``;
    other models are an error."""
    path = ""
    if isinstance(model, str | Path):
        path = str(model)
        model = fitted_model(model)
    if getattr(type(model), "family", "") != "lpm":  # the LPM's tables are what is embedded
        name = getattr(model, "name", "") or type(model).__name__
        raise LpmInputError(
            path or None,
            f"model {name!r} has no learned embeddings: only an LPM (lpm, lpm_fast) can be embedded",
        )
    model._check_fitted()
    source = EmbeddableModel(model, path)
    _state(source, member)  # a missing member fails here, before anything is computed
    return source


def _state(src: EmbeddableModel, member: int) -> dict[str, np.ndarray]:
    states = src.model.states_
    if not 0 <= member < len(states):
        raise LpmInputError(
            src.path or None,
            f"member {member} does not exist: the ensemble has {len(states)} member(s) "
            f"(0..{len(states) - 1})",
        )
    if src.model.network_config_.get("features"):  # featurised: learned + encoded features
        return src.model.baked_state(member)
    return {k: np.asarray(v) for k, v in states[member].items()}


def embedding_uns(src: EmbeddableModel, *, kind: str, member: int) -> dict[str, Any]:
    """``uns`` of an embedding AnnData: where it comes from (model, mode, member, combine)."""
    cfg = src.model.network_config_
    return {
        UNS_KEY: {
            "kind": kind,
            "model_name": getattr(src.model, "name", "") or type(src.model).__name__,
            "model_path": src.path,
            "mode": "fast" if cfg["fast"] else "exact",
            "member": member,
            "n_ensemble": len(src.model.states_),
            "combine": str(cfg["combine"]),
            "embedding_dim": int(cfg["embedding_dim"]),
            "note": _NOTE,
        }
    }


def _obs_column(column: pl.Series) -> Any:
    """Strings become categories (missing: NaN), as scanpy colours them; numbers stay numbers."""
    import pandas as pd

    if column.dtype == pl.String:
        return pd.Categorical([v if v is not None else math.nan for v in column.to_list()])
    return column.to_numpy()


def embedding_anndata(table: pl.DataFrame, *, uns: Mapping[str, Any]) -> ad.AnnData:
    """An embedding table (:class:`EmbeddingTask`) as AnnData: ``X`` the vectors (float32), the
    first column the index, the other columns ``obs`` (strings as categories)."""
    import anndata as ad
    import pandas as pd

    key = table.columns[0]
    obs = pd.DataFrame(
        {c: _obs_column(table[c]) for c in table.columns[1:] if c != EMBEDDING},
        index=pd.Index(table[key].to_list(), name=key),
    )
    x = np.ascontiguousarray(table[EMBEDDING].to_numpy(), dtype=np.float32)
    return ad.AnnData(X=x, obs=obs, uns=dict(uns))


def _table(key: str, names: Sequence[str], columns: dict[str, Any], x: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        [
            pl.Series(key, list(names), dtype=pl.String),
            *(pl.Series(c, v) for c, v in columns.items()),
            pl.Series(EMBEDDING, np.ascontiguousarray(x, dtype=np.float32)),
        ]
    )


# ---- perturbations ------------------------------------------------------------------------------
def _parsed(symbol: str) -> tuple[str, list[str]]:
    """Type and member targets of a symbol; a malformed one is kept as ``unknown``."""
    if symbol == S.CONTROL:
        return S.CONTROL, []
    try:
        members = Y.parse(symbol)
    except LpmInputError:
        return "unknown", [symbol]
    return Y.perturbation_type(symbol), [m.target for m in members]


def perturbation_embeddings(
    model: PerturbationModel | str | Path,
    *,
    member: int = 0,
    annotations: Mapping[str, str] | None = None,
) -> ad.AnnData:
    """One row per perturbation a trained LPM can embed, with its learned vector.

    Rows are the perturbations seen in training (combinations and ``control`` included) and every
    single member (a single seen only inside combinations is embeddable too). A combination's
    vector is the mean of its members' rows (the sum with ``combine=sum``), as the network
    computes it.

    Parameters
    ----------
    model
        A fitted ``lpm``/``lpm_fast`` model, or the folder it was saved to.
    member
        Ensemble member to read (default 0). Members' spaces are not aligned, so no mean over
        members is offered; the member used is recorded in ``uns["lpm_embedding"]``.
    annotations
        Optional mapping of a compound name or gene to a mechanism label; fills ``obs["mechanism"]``.
        Names match exactly, else ignoring case and punctuation. A combination gets its members'
        labels joined by ``+`` when every member is annotated.

    Returns
    -------
    anndata.AnnData
        ``X``: perturbations × embedding (float32). ``obs`` (index ``perturbation``):
        ``perturbation_type`` (CRISPRi, compound, ..., ``combination``, ``control``), ``target``
        (gene or compound name; members' targets joined by ``+``), ``n_members`` (member
        embeddings combined; 1 for a single and for ``control``), ``in_training`` (seen as such
        in training), and ``mechanism`` when ``annotations`` is given. ``uns["lpm_embedding"]``:
        model name and path, mode (exact/fast), member, ensemble size, combine rule.

    Example
    -------
    >>> import polars as pl
    >>> from lpm.models.registry import get_model
    >>> rows = pl.DataFrame({"context": ["toy/A"] * 4,
    ...     "perturbation": ["CRISPRi:G0", "CRISPRi:G1", "CRISPRi:G0+CRISPRi:G1", "compound:drugX"],
    ...     "readout": ["R0"] * 4, "value": [1.0, -1.0, 0.1, 2.0]})
    >>> model = get_model("lpm_fast", embedding_dim=4, hidden=[8], max_epochs=1, val_fraction=0)
    >>> emb = perturbation_embeddings(model.fit(rows), annotations={"drugX": "MEK inhibitor"})
    >>> emb.shape
    (4, 4)
    >>> emb.obs["perturbation_type"].tolist()
    ['CRISPRi', 'combination', 'CRISPRi', 'compound']
    >>> emb.obs.loc["compound:drugX", ["target", "mechanism"]].tolist()
    ['drugX', 'MEK inhibitor']
    """
    src = embeddable(model, member=member)
    table = _perturbations(src, member=member, annotations=annotations)
    return embedding_anndata(table, uns=embedding_uns(src, kind="perturbation", member=member))


def _perturbations(
    src: EmbeddableModel, *, member: int, annotations: Mapping[str, str] | None
) -> pl.DataFrame:
    state = _state(src, member)
    vocab = src.model.vocab_
    trained = set(vocab.perturbations)
    names = sorted(trained | set(vocab.members))
    table = state["member.weight"]
    combine = src.model.network_config_["combine"]
    x = np.zeros((len(names), table.shape[1]), dtype=np.float32)
    n_members = np.zeros(len(names), dtype=np.int64)
    for i, name in enumerate(names):
        parts = [S.CONTROL] if name == S.CONTROL else name.split(Y.COMBINATION_SEPARATOR)
        rows = table[[vocab.member_index[m] for m in parts]]
        x[i] = rows.sum(axis=0) / (len(parts) if combine == "mean" else 1)
        n_members[i] = len(parts)
    parsed = [_parsed(n) for n in names]
    obs: dict[str, Any] = {
        "perturbation_type": pl.Series([t for t, _ in parsed], dtype=pl.String),
        "target": pl.Series(
            [Y.COMBINATION_SEPARATOR.join(ts) if ts else None for _, ts in parsed], dtype=pl.String
        ),
        "n_members": n_members,
        "in_training": np.array([n in trained for n in names], dtype=bool),
    }
    if annotations is not None:
        known = Annotations.of(annotations)
        obs["mechanism"] = pl.Series([known.mechanism(ts) for _, ts in parsed], dtype=pl.String)
    return _table(S.PERTURBATION, names, obs, x)


def add_measurements(table: pl.DataFrame, data: pl.DataFrame) -> pl.DataFrame:
    """Add what was measured for each perturbation: ``n_contexts``, ``n_doses``, ``n_values``,
    ``dose_min`` and ``dose_max`` (NaN without doses; the LPM embeds a compound once, its dose
    is a separate input). Perturbations absent from ``data`` get zeros and NaN.

    Parameters
    ----------
    table
        A perturbation embedding table (:class:`EmbeddingTask`), first column ``perturbation``.
    data
        The long table the model was trained on (or any table of measurements).

    Returns
    -------
    polars.DataFrame
        ``table`` with the columns added before ``embedding``.
    """
    has_dose = S.DOSE in data.columns
    dose = pl.col(S.DOSE).cast(pl.Float64) if has_dose else pl.lit(None, dtype=pl.Float64)
    summary = (
        data.lazy()
        .select(pl.col(S.PERTURBATION).cast(pl.String), pl.col(S.CONTEXT), dose.alias("d"))
        .group_by(S.PERTURBATION)
        .agg(
            pl.col(S.CONTEXT).n_unique().alias("n_contexts"),
            pl.col("d").drop_nulls().n_unique().alias("n_doses"),
            pl.col("d").min().alias("dose_min"),
            pl.col("d").max().alias("dose_max"),
            pl.len().alias("n_values"),
        )
        .collect()
    )
    found = {r[S.PERTURBATION]: r for r in summary.iter_rows(named=True)}
    names = table[S.PERTURBATION].to_list()
    added = []
    for col, empty in (("n_contexts", 0), ("n_doses", 0), ("n_values", 0)):
        values = [found.get(n, {}).get(col) or empty for n in names]
        added.append(pl.Series(col, np.array(values, dtype=np.int64)))
    for col in ("dose_min", "dose_max"):
        values = [found.get(n, {}).get(col) for n in names]
        added.append(pl.Series(col, np.array([math.nan if v is None else v for v in values])))
    columns = [c for c in table.columns if c != EMBEDDING]
    return table.select(columns).with_columns(added).with_columns(table[EMBEDDING])


# ---- contexts and readouts ----------------------------------------------------------------------
def context_embeddings(model: PerturbationModel | str | Path, *, member: int = 0) -> ad.AnnData:
    """One row per context (``<dataset>/<cell line>``) with its learned vector.

    Parameters
    ----------
    model
        A fitted ``lpm``/``lpm_fast`` model, or the folder it was saved to.
    member
        Ensemble member to read (default 0); see :func:`perturbation_embeddings`.

    Returns
    -------
    anndata.AnnData
        ``X``: contexts × embedding. ``obs`` (index ``context``): ``dataset`` and ``cell_line``
        (the two halves of the id; a context id without ``/`` has no dataset).
        ``uns["lpm_embedding"]`` as for perturbations.
    """
    src = embeddable(model, member=member)
    table = _contexts(src, member=member)
    return embedding_anndata(table, uns=embedding_uns(src, kind="context", member=member))


def _contexts(src: EmbeddableModel, *, member: int) -> pl.DataFrame:
    state = _state(src, member)
    names = list(src.model.vocab_.contexts)
    halves = [n.partition(S.CONTEXT_SEPARATOR) for n in names]
    obs = {
        "dataset": pl.Series([d if sep else None for d, sep, _ in halves], dtype=pl.String),
        "cell_line": pl.Series([c if sep else d for d, sep, c in halves], dtype=pl.String),
    }
    return _table(S.CONTEXT, names, obs, state["context.weight"])


def readout_embeddings(model: PerturbationModel | str | Path, *, member: int = 0) -> ad.AnnData:
    """One row per readout (a gene, or a phenotype) with its learned vector.

    Parameters
    ----------
    model
        A fitted ``lpm``/``lpm_fast`` model, or the folder it was saved to.
    member
        Ensemble member to read (default 0); see :func:`perturbation_embeddings`.

    Returns
    -------
    anndata.AnnData
        ``X``: readouts × embedding. ``obs`` (index ``readout``): ``bias``, the learned readout
        bias of fast mode (absent in exact mode, which has none). ``uns["lpm_embedding"]`` as for
        perturbations.
    """
    src = embeddable(model, member=member)
    table = _readouts(src, member=member)
    return embedding_anndata(table, uns=embedding_uns(src, kind="readout", member=member))


def _readouts(src: EmbeddableModel, *, member: int) -> pl.DataFrame:
    state = _state(src, member)
    obs: dict[str, Any] = {}
    if "readout_bias" in state:
        obs["bias"] = state["readout_bias"].astype(np.float32)
    return _table(S.READOUT, list(src.model.vocab_.readouts), obs, state["readout.weight"])


# ---- the task -----------------------------------------------------------------------------------
class EmbeddingTask(DiscoveryTask):
    """A trained LPM's learned vectors of one kind, one row per point, as a tidy table.

    Columns: the kind's key (``perturbation``, ``context`` or ``readout``), the ``obs`` columns of
    :func:`perturbation_embeddings` (:func:`context_embeddings`, :func:`readout_embeddings`) and
    ``embedding`` (float32 array). Perturbations get ``annotations`` as ``mechanism`` and, with
    ``data``, what was measured of each (:func:`add_measurements`).
    """

    name = "embed"

    def __init__(
        self,
        *,
        kind: str = "perturbation",
        member: int = 0,
        annotations: Mapping[str, str] | None = None,
    ):
        if kind not in KINDS:
            raise LpmInputError(
                "kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}"
            )
        self.kind = kind
        self.member = member
        self.annotations = annotations

    def needs_model(self) -> bool:
        return True

    def needs_data(self) -> bool:
        return False

    def _run(
        self, data: pl.DataFrame | None, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame:
        assert model is not None
        src = embeddable(model, member=self.member)
        if self.kind == "context":
            return _contexts(src, member=self.member)
        if self.kind == "readout":
            return _readouts(src, member=self.member)
        table = _perturbations(src, member=self.member, annotations=self.annotations)
        return add_measurements(table, data) if data is not None else table


__all__ = [
    "EMBEDDING",
    "KINDS",
    "UNS_KEY",
    "EmbeddableModel",
    "EmbeddingTask",
    "add_measurements",
    "context_embeddings",
    "embeddable",
    "embedding_anndata",
    "embedding_uns",
    "perturbation_embeddings",
    "readout_embeddings",
]

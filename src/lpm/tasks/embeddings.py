"""The learned embeddings of a trained LPM, as AnnData a scanpy user can open.

A trained LPM (``lpm`` or ``lpm_fast``) holds three embedding tables per ensemble member: one row
per single perturbation (``member.weight``), per context and per readout. This module reads them
into one :class:`anndata.AnnData` per kind:

- :func:`perturbation_embeddings`: every perturbation the model can embed, combinations included
  (the mean, or with ``combine=sum`` the sum, of their members' rows, as the network computes it);
- :func:`context_embeddings` and :func:`readout_embeddings`;
- :func:`write_embeddings`: the three as ``F.h5ad``, ``F.contexts.h5ad`` and ``F.readouts.h5ad``.

Ensembles. Each member is trained from its own seed, so the members' embedding spaces are not
aligned (any rotation or linear map of a space is absorbed by the MLP): the mean of two members'
vectors is meaningless. One member is therefore given, member 0 unless ``member=k``, and recorded
in ``uns["lpm_embedding"]``. Distances and neighbourhoods can be compared across members; raw
coordinates cannot.

The layout and figure (UMAP, or PCA + t-SNE without ``umap-learn``) are in
:mod:`lpm.pl.embedding`; mechanism labels and how names match them in
:mod:`lpm.priors.mechanisms`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from lpm.data import schema as S
from lpm.data import symbols as Y
from lpm.errors import LpmInputError
from lpm.pl.embedding import LAYOUT_METHODS, embedding_layout, plot_embedding_umap
from lpm.priors.mechanisms import Annotations, load_mechanism_annotations

if TYPE_CHECKING:
    import anndata as ad
    import polars as pl

    from lpm.models.base import PerturbationModel

#: Key of ``uns`` holding where an embedding comes from (model, mode, member, combine).
UNS_KEY: Final = "lpm_embedding"
#: Suffixes of the context and readout files beside the perturbation file ``F.h5ad``.
CONTEXTS_SUFFIX: Final = ".contexts.h5ad"
READOUTS_SUFFIX: Final = ".readouts.h5ad"
_NOTE: Final = (
    "one ensemble member's embedding: members are trained from different seeds and their "
    "spaces are not aligned, so a mean over members would be meaningless"
)


@dataclass(frozen=True)
class _Source:
    """A fitted LPM with where it came from (a folder, or an in-memory object)."""

    model: Any
    path: str


def _lpm(model: PerturbationModel | str | Path) -> _Source:
    """The fitted LPM behind ``model`` (a model or a saved folder); other models are an error."""
    path = ""
    if isinstance(model, str | Path):
        from lpm.models.registry import load_model

        path = str(model)
        model = load_model(model)
    # an LPM instance means its module is loaded: other models never pay for importing torch
    lpm_module = sys.modules.get("lpm.models.lpm.model")
    if lpm_module is None or not isinstance(model, lpm_module.LPMModel):
        name = getattr(model, "name", "") or type(model).__name__
        raise LpmInputError(
            path or None,
            f"model {name!r} has no learned embeddings: only an LPM (lpm, lpm_fast) can be embedded",
        )
    model._check_fitted()
    return _Source(model, path)


def _state(src: _Source, member: int) -> dict[str, np.ndarray]:
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


def _uns(src: _Source, kind: str, member: int) -> dict[str, Any]:
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


def _anndata(x: np.ndarray, obs: Any, uns: dict[str, Any]) -> ad.AnnData:
    import anndata as ad

    return ad.AnnData(X=np.ascontiguousarray(x, dtype=np.float32), obs=obs, uns=uns)


def _categorical(values: Sequence[str | None]) -> Any:
    import pandas as pd

    return pd.Categorical([v if v is not None else math.nan for v in values])


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
    return _perturbations(_lpm(model), member=member, annotations=annotations)


def _perturbations(
    src: _Source, *, member: int, annotations: Mapping[str, str] | None
) -> ad.AnnData:
    import pandas as pd

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
        "perturbation_type": _categorical([t for t, _ in parsed]),
        "target": _categorical(
            [Y.COMBINATION_SEPARATOR.join(ts) if ts else None for _, ts in parsed]
        ),
        "n_members": n_members,
        "in_training": np.array([n in trained for n in names], dtype=bool),
    }
    if annotations is not None:
        known = Annotations.of(annotations)
        obs["mechanism"] = _categorical([known.mechanism(ts) for _, ts in parsed])
    frame = pd.DataFrame(obs, index=pd.Index(names, name=S.PERTURBATION))
    return _anndata(x, frame, _uns(src, "perturbation", member))


def annotate_measurements(adata: ad.AnnData, data: pl.DataFrame) -> ad.AnnData:
    """Add what was measured for each perturbation to ``obs``: ``n_contexts``, ``n_doses``,
    ``dose_min`` and ``dose_max`` (NaN without doses; the LPM embeds a compound once, its dose
    is a separate input), ``n_values``. Perturbations absent from ``data`` get zeros and NaN.

    Parameters
    ----------
    adata
        From :func:`perturbation_embeddings` (index: perturbation symbols).
    data
        The long table the model was trained on (or any table of measurements).

    Returns
    -------
    anndata.AnnData
        A copy with the columns added.
    """
    import polars as pl

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
    out = adata.copy()
    names = list(out.obs_names)
    for col, empty in (("n_contexts", 0), ("n_doses", 0), ("n_values", 0)):
        out.obs[col] = np.array([found.get(n, {}).get(col) or empty for n in names], dtype=np.int64)
    for col in ("dose_min", "dose_max"):
        values = [found.get(n, {}).get(col) for n in names]
        out.obs[col] = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return out


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
    return _contexts(_lpm(model), member=member)


def _contexts(src: _Source, *, member: int) -> ad.AnnData:
    import pandas as pd

    state = _state(src, member)
    names = list(src.model.vocab_.contexts)
    halves = [n.partition(S.CONTEXT_SEPARATOR) for n in names]
    frame = pd.DataFrame(
        {
            "dataset": _categorical([d if sep else None for d, sep, _ in halves]),
            "cell_line": _categorical([c if sep else d for d, sep, c in halves]),
        },
        index=pd.Index(names, name=S.CONTEXT),
    )
    return _anndata(state["context.weight"], frame, _uns(src, "context", member))


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
    return _readouts(_lpm(model), member=member)


def _readouts(src: _Source, *, member: int) -> ad.AnnData:
    import pandas as pd

    state = _state(src, member)
    obs: dict[str, Any] = {}
    if "readout_bias" in state:
        obs["bias"] = state["readout_bias"].astype(np.float32)
    frame = pd.DataFrame(obs, index=pd.Index(list(src.model.vocab_.readouts), name=S.READOUT))
    return _anndata(state["readout.weight"], frame, _uns(src, "readout", member))


# ---- annotations and files ----------------------------------------------------------------------
def embedding_paths(out_h5ad: str | Path) -> tuple[Path, Path, Path]:
    """The perturbation, context and readout files written for ``F.h5ad``."""
    out = Path(out_h5ad)
    if out.suffix != ".h5ad":
        raise LpmInputError(out, "output must end in .h5ad")
    stem = out.with_suffix("")
    return (
        out,
        stem.with_name(stem.name + CONTEXTS_SUFFIX),
        stem.with_name(stem.name + READOUTS_SUFFIX),
    )


@dataclass(frozen=True)
class EmbeddingFiles:
    """What :func:`write_embeddings` wrote: the files, and the sizes for a summary line."""

    perturbations: Path
    contexts: Path
    readouts: Path
    figure: Path | None
    n_perturbations: int
    n_contexts: int
    n_readouts: int
    dim: int
    member: int
    n_ensemble: int
    layout: str

    def paths(self) -> list[Path]:
        """Every file written, the figure last."""
        files = [self.perturbations, self.contexts, self.readouts]
        return files + ([self.figure] if self.figure is not None else [])


def write_embeddings(
    model: PerturbationModel | str | Path,
    out_h5ad: str | Path,
    *,
    member: int = 0,
    annotations: Mapping[str, str] | str | Path | None = None,
    figure: str | Path | None = None,
    seed: int = 0,
    method: str = "auto",
    data: pl.DataFrame | None = None,
) -> EmbeddingFiles:
    """Write a trained LPM's embeddings as one AnnData file per kind, each atomically.

    ``F.h5ad`` holds the perturbations (the file most analyses open), ``F.contexts.h5ad`` the
    contexts and ``F.readouts.h5ad`` the readouts: the kinds have different ``obs`` columns and
    are different things, so each is its own AnnData rather than one table with a ``kind`` column.
    With ``figure``, the perturbations are laid out (:func:`embedding_layout`), the coordinates
    are stored in ``obsm["X_umap"]`` (``X_tsne`` on the fallback) of ``F.h5ad`` so that
    ``scanpy.pl.embedding`` draws the same picture, and the figure is written. Each file is
    written to a temporary name and renamed, so none is ever half-written.

    Parameters
    ----------
    model
        A fitted ``lpm``/``lpm_fast`` model, or the folder it was saved to.
    out_h5ad
        The perturbation file ``F.h5ad``; the other two are written beside it.
    member
        Ensemble member to read (default 0).
    annotations
        Optional name → mechanism mapping, or a TSV read by :func:`load_mechanism_annotations`
        (its path is recorded in ``uns["lpm_embedding"]["annotations"]``).
    figure
        Optional PNG of the perturbation layout (see :func:`plot_embedding_umap`).
    seed
        Seed of the layout.
    method
        Layout method: ``auto`` (UMAP if ``umap-learn`` is installed, else PCA + t-SNE),
        ``umap`` or ``tsne``.
    data
        The measurements (e.g. the training store's rows): adds contexts, doses and values
        measured per perturbation to ``obs`` (:func:`annotate_measurements`).

    Returns
    -------
    EmbeddingFiles
        The paths written (``paths()``), the number of rows of each kind, the dimension, the
        member and the layout used (empty without a figure).
    """
    from lpm._utils.atomic import atomic_file

    paths = embedding_paths(out_h5ad)
    if figure is not None and method not in LAYOUT_METHODS:
        raise LpmInputError(
            None, f"unknown layout method {method!r}; expected one of {', '.join(LAYOUT_METHODS)}"
        )
    src = _lpm(model)
    _state(src, member)  # a missing member fails before anything is read or written
    mapping = (
        load_mechanism_annotations(annotations)
        if isinstance(annotations, str | Path)
        else annotations
    )
    perts = _perturbations(src, member=member, annotations=mapping)
    if isinstance(annotations, str | Path):
        perts.uns[UNS_KEY]["annotations"] = str(annotations)
    if data is not None:
        perts = annotate_measurements(perts, data)
    if figure is not None:
        perts = embedding_layout(perts, seed=seed, method=method)
    tables = (perts, _contexts(src, member=member), _readouts(src, member=member))
    for table, path in zip(tables, paths, strict=True):
        with atomic_file(path, overwrite=True) as tmp:
            table.write_h5ad(tmp)
    drawn = plot_embedding_umap(perts, figure) if figure is not None else None
    return EmbeddingFiles(
        perturbations=paths[0],
        contexts=paths[1],
        readouts=paths[2],
        figure=drawn,
        n_perturbations=perts.n_obs,
        n_contexts=tables[1].n_obs,
        n_readouts=tables[2].n_obs,
        dim=perts.n_vars,
        member=member,
        n_ensemble=len(src.model.states_),
        layout=str(perts.uns.get("lpm_layout", {}).get("label", "")),
    )

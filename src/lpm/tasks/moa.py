"""Mechanism of action by similarity: rank genetic perturbations and compounds for each compound.

Three ways to say how alike a compound and another perturbation are, one ``method`` each:

- ``embedding``: cosine similarity of their learned LPM embeddings (singles only);
- ``predicted_profile``: Pearson correlation of the profiles the model predicts for both in one
  shared context over one readout panel, so a pair never measured together (a K562 knock-down
  and an A375 compound) is compared on imputed profiles;
- ``measured_profile``: the no-model baseline, the correlation of the measured mean delta
  profiles over the readouts both were measured on (pooled over contexts; at least
  :data:`MIN_OVERLAP` shared readouts, else the pair is not scored).

Orientation. A knock-down lowers its target, so an inhibitor of that target should look like it
(positive similarity); an activation (CRISPRa, ORF) of the target should look like its mirror
image. The ``score`` of a gain-of-function genetic candidate is therefore its negated
``similarity``: higher ``score`` always means "acts like inhibiting this candidate's target". Raw
values are kept in ``similarity``.

Scores. :func:`score_targets` asks whether a compound's known targets rank high among the
genetic perturbations; :func:`score_shared_annotation` whether compounds sharing a mechanism (or
a target) rank each other high; :func:`cross_dataset_target_scores` restricts target scoring to
compounds of one context and knock-downs of another. A pair a method could not score (no
readout overlap, a symbol unknown to the model) ranks last, tied with every other such pair of
its query, so leaving pairs out never helps; ``n_scored`` and ``n_unscored`` say how many.

:class:`MechanismTask` is the registered task; ``lpm moa`` (:mod:`lpm.runs.moa`) scores its
table and writes it, and :mod:`lpm.pl.moa` draws it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data import symbols as Y
from lpm.data.profiles import mean_values
from lpm.errors import LpmInputError
from lpm.tasks.base import DiscoveryTask, fitted_model
from lpm.tasks.moa_scores import COMPOUND, METHODS, single_type

if TYPE_CHECKING:
    from lpm.models.base import PerturbationModel

#: Genetic types that raise their target: their similarity is negated into ``score``.
GAIN_OF_FUNCTION: Final = frozenset({"CRISPRa", "ORF"})
#: Fewest shared readouts for a measured-profile correlation.
MIN_OVERLAP: Final = 20
#: Readout types that are not expression deltas and stay out of profiles.
NON_PROFILE_TYPES: Final = frozenset({S.BINARY, "viability"})
#: Columns of every similarity table, and of the ranked table (plus ``method`` and ``rank``).
SIMILARITY_COLUMNS: Final = ("query", "candidate", "candidate_type", "similarity", "score")
RANKING_COLUMNS: Final = (
    "method",
    "query",
    "candidate",
    "candidate_type",
    "similarity",
    "score",
    "rank",
)

_SIM_SCHEMA: Final = {
    "query": pl.String,
    "candidate": pl.String,
    "candidate_type": pl.String,
    "similarity": pl.Float64,
    "score": pl.Float64,
}


# ---- symbols ------------------------------------------------------------------------------------
def _split(symbols: Iterable[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """Compounds, other singles, and every single's type (sorted, unique)."""
    kinds = {s: k for s in set(symbols) if (k := single_type(s)) is not None}
    compounds = sorted(s for s, k in kinds.items() if k == COMPOUND)
    return compounds, sorted(kinds), kinds


def _need_compounds(compounds: Sequence[str], where: str) -> None:
    if not compounds:
        raise LpmInputError(where, "no single compound (compound:NAME) to rank candidates for")


def _long(
    sim: np.ndarray, queries: Sequence[str], candidates: Sequence[str], kinds: Mapping[str, str]
) -> pl.DataFrame:
    """A queries × candidates similarity matrix as a long table; NaN and self pairs dropped."""
    q = np.repeat(np.asarray(queries, dtype=object), len(candidates))
    c = np.tile(np.asarray(candidates, dtype=object), len(queries))
    v = sim.reshape(-1).astype(np.float64)
    keep = np.isfinite(v) & (q != c)
    t = pl.DataFrame(
        {"query": q[keep].tolist(), "candidate": c[keep].tolist(), "similarity": v[keep]},
        schema={"query": pl.String, "candidate": pl.String, "similarity": pl.Float64},
    )
    gain = [k for k in GAIN_OF_FUNCTION]
    return (
        t.with_columns(
            candidate_type=pl.col("candidate").replace_strict(dict(kinds), return_dtype=pl.String)
        )
        .with_columns(
            score=pl.when(pl.col("candidate_type").is_in(gain))
            .then(-pl.col("similarity"))
            .otherwise(pl.col("similarity"))
        )
        .select(*SIMILARITY_COLUMNS)
    )


def _rows_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every row of ``a`` with every row of ``b`` (no missing values)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a @ b.T) / np.outer(na, nb)
    out[~np.isfinite(out)] = np.nan
    return np.clip(out, -1.0, 1.0)


# ---- model: embedding ---------------------------------------------------------------------------
def embedding_similarity(
    model: PerturbationModel | str | Path,
    *,
    member: int = 0,
    perturbations: Collection[str] | None = None,
) -> pl.DataFrame:
    """Cosine similarity of each compound's learned embedding to every other single's.

    Parameters
    ----------
    model
        A fitted ``lpm``/``lpm_fast`` model or its folder (other models have no embedding).
    member
        Ensemble member whose embedding is read (members' spaces are not aligned).
    perturbations
        Keep these singles only (e.g. those of the data being ranked); default all the model embeds.

    Returns
    -------
    polars.DataFrame
        :data:`SIMILARITY_COLUMNS`: one row per (compound, other single).

    Raises
    ------
    LpmInputError
        No single compound among the perturbations; a model without embeddings.
    """
    from lpm.tasks.embeddings import perturbation_embeddings

    emb = perturbation_embeddings(fitted_model(model), member=member)
    names = [str(n) for n in emb.obs_names]
    if perturbations is not None:
        wanted = set(perturbations)
        names = [n for n in names if n in wanted]
    compounds, singles, kinds = _split(names)
    _need_compounds(compounds, "model")
    index = {n: i for i, n in enumerate(emb.obs_names)}
    x = np.asarray(emb.X, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = x / norm
    qi = [index[n] for n in compounds]
    ci = [index[n] for n in singles]
    sim = unit[qi] @ unit[ci].T
    return _long(np.clip(sim, -1.0, 1.0), compounds, singles, kinds)


# ---- model: predicted profiles ------------------------------------------------------------------
def _profile_rows(frame: pl.DataFrame) -> pl.DataFrame:
    if S.READOUT_TYPE in frame.columns:
        frame = frame.filter(~pl.col(S.READOUT_TYPE).is_in(list(NON_PROFILE_TYPES)))
    return frame


def default_context(frame: pl.DataFrame) -> str:
    """The context where the most single compounds were measured (ties: most readouts, name)."""
    rows = _profile_rows(frame)
    counts = (
        rows.group_by(S.CONTEXT)
        .agg(
            n_compounds=pl.col(S.PERTURBATION)
            .filter(
                pl.col(S.PERTURBATION).map_elements(single_type, return_dtype=pl.String) == COMPOUND
            )
            .n_unique(),
            n_readouts=pl.col(S.READOUT).n_unique(),
        )
        .sort(["n_compounds", "n_readouts", S.CONTEXT], descending=[True, True, False])
    )
    if counts.height == 0 or counts["n_compounds"][0] == 0:
        raise LpmInputError("frame", "no single compound (compound:NAME) was measured")
    return str(counts[S.CONTEXT][0])


def reference_doses(frame: pl.DataFrame) -> dict[str, float]:
    """Each compound's highest measured dose (µM), over all contexts; compounds without one are left out."""
    if S.DOSE not in frame.columns:
        return {}
    t = (
        frame.filter(pl.col(S.PERTURBATION).str.starts_with(COMPOUND + Y.TYPE_SEPARATOR))
        .filter(pl.col(S.DOSE).is_not_null() & (pl.col(S.DOSE) > 0))
        .group_by(S.PERTURBATION)
        .agg(pl.col(S.DOSE).max())
    )
    return dict(zip(t[S.PERTURBATION].to_list(), map(float, t[S.DOSE].to_list()), strict=True))


def predicted_profile_similarity(
    model: PerturbationModel | str | Path,
    *,
    frame: pl.DataFrame | None = None,
    context: str | None = None,
    readouts: Sequence[str] | None = None,
    dose: float | Mapping[str, float] | None = None,
    perturbations: Collection[str] | None = None,
) -> pl.DataFrame:
    """Correlation of the model's predicted profiles of compounds and other singles in one context.

    Every single the model knows (or ``perturbations``) is predicted in ``context`` over the same
    readouts, measured there or not: the model imputes the unmeasured ones.

    Parameters
    ----------
    model
        A fitted model (any registered model that predicts rows) or its folder.
    frame
        The data the defaults come from: ``context`` (:func:`default_context`), ``readouts``
        (those measured in the context) and doses (:func:`reference_doses`).
    context
        The shared context; needed without ``frame`` unless the model knows only one.
    readouts
        Readouts of the profiles; default those measured in ``context`` (all the model knows
        without ``frame``).
    dose
        Compound dose (µM): one for all, or ``compound -> dose``; default each compound's highest
        measured dose in ``frame``. Needed without ``frame``.
    perturbations
        Keep these singles only.

    Returns
    -------
    polars.DataFrame
        :data:`SIMILARITY_COLUMNS`, one row per (compound, other single) with a finite correlation.

    Raises
    ------
    LpmInputError
        No compound; an unknown context; no readout; no dose for a compound.
    """
    fitted: Any = fitted_model(model)
    vocab = getattr(fitted, "vocab_", None)
    if vocab is None:
        raise LpmInputError("model", "the model records no vocabulary: fit it first")
    names = [m for m in vocab.members if single_type(m) is not None]
    if perturbations is not None:
        wanted = set(perturbations)
        names = [n for n in names if n in wanted]
    compounds, singles, kinds = _split(names)
    _need_compounds(compounds, "model")
    context = _shared_context(vocab, frame, context)
    readouts = _profile_readouts(vocab, frame, context, readouts)
    doses = _compound_doses(compounds, frame, dose)
    rows = _prediction_rows(singles, kinds, context, readouts, doses)
    pred = np.asarray(fitted.predict(rows), dtype=np.float64).reshape(len(singles), len(readouts))
    pos = {s: i for i, s in enumerate(singles)}
    sim = _rows_corr(pred[[pos[c] for c in compounds]], pred)
    return _long(sim, compounds, singles, kinds)


def _shared_context(vocab: Any, frame: pl.DataFrame | None, context: str | None) -> str:
    """``context``, else the frame's :func:`default_context`, else the model's only context."""
    if context is None:
        if frame is not None:
            context = default_context(frame)
        elif len(vocab.contexts) == 1:
            context = str(vocab.contexts[0])
        else:
            raise LpmInputError(
                "context", f"give one of the model's {len(vocab.contexts)} contexts"
            )
    if context not in set(vocab.contexts):
        raise LpmInputError("context", f"{context!r} is not a context the model was trained on")
    return context


def _profile_readouts(
    vocab: Any, frame: pl.DataFrame | None, context: str, readouts: Sequence[str] | None
) -> list[str]:
    """``readouts`` (default those measured in ``context``, or all the model knows) it knows."""
    if readouts is None:
        if frame is not None:
            readouts = sorted(
                _profile_rows(frame)
                .filter(pl.col(S.CONTEXT) == context)[S.READOUT]
                .unique()
                .to_list()
            )
        else:
            readouts = list(vocab.readouts)
    known = set(vocab.readouts)
    kept = [r for r in readouts if r in known]
    if len(kept) < 2:
        raise LpmInputError(
            "readouts", f"{len(kept)} readout(s) known to the model; need at least 2"
        )
    return kept


def _compound_doses(
    compounds: Sequence[str],
    frame: pl.DataFrame | None,
    dose: float | Mapping[str, float] | None,
) -> Mapping[str, float] | None:
    """Each compound's dose; None when the rows carry no dose (a frame without a dose column)."""
    if dose is None:
        if frame is None:
            raise LpmInputError("dose", "give a compound dose (µM) or the frame to take doses from")
        doses: Mapping[str, float] = reference_doses(frame)
    elif isinstance(dose, Mapping):
        doses = dose
    else:
        doses = dict.fromkeys(compounds, float(dose))
    if frame is not None and S.DOSE not in frame.columns:
        return None
    undosed = [c for c in compounds if c not in doses]
    if undosed:
        raise LpmInputError("dose", f"no dose for {len(undosed)} compound(s), e.g. {undosed[0]}")
    return doses


def _prediction_rows(
    singles: Sequence[str],
    kinds: Mapping[str, str],
    context: str,
    readouts: Sequence[str],
    doses: Mapping[str, float] | None,
) -> pl.DataFrame:
    """Every single × readout in ``context``; compounds at their dose where rows carry doses."""
    n_r = len(readouts)
    data: dict[str, Any] = {
        S.CONTEXT: [context] * (len(singles) * n_r),
        S.PERTURBATION: np.repeat(np.asarray(singles, dtype=object), n_r).tolist(),
        S.READOUT: list(readouts) * len(singles),
    }
    if doses is not None:
        data[S.DOSE] = np.repeat(
            np.asarray(
                [doses.get(s) if kinds[s] == COMPOUND else None for s in singles], dtype=object
            ),
            n_r,
        ).tolist()
    return pl.DataFrame(data, schema_overrides={S.DOSE: pl.Float32} if doses is not None else None)


# ---- the no-model baseline ----------------------------------------------------------------------
def measured_profiles(frame: pl.DataFrame, *, dose: str = "max") -> pl.DataFrame:
    """Each single's mean measured delta per readout, pooled over contexts and replicates.

    ``dose="max"``: a compound's rows at its highest dose in each context; ``"mean"``: all doses.
    Returns columns ``perturbation, readout, value``.
    """
    if dose not in ("max", "mean"):
        raise LpmInputError("dose", f"must be 'max' or 'mean', got {dose!r}")
    rows = _profile_rows(frame)
    rows = rows.filter(
        pl.col(S.PERTURBATION).map_elements(single_type, return_dtype=pl.String).is_not_null()
    )
    if dose == "max" and S.DOSE in rows.columns:
        top = pl.col(S.DOSE).max().over(S.CONTEXT, S.PERTURBATION)
        rows = rows.filter(pl.col(S.DOSE).is_null() | (pl.col(S.DOSE) == top))
    return mean_values(rows, by=(S.PERTURBATION,)).filter(pl.col(S.VALUE).is_finite())


def measured_profile_similarity(
    frame: pl.DataFrame,
    *,
    dose: str = "max",
    min_overlap: int = MIN_OVERLAP,
    perturbations: Collection[str] | None = None,
) -> pl.DataFrame:
    """The no-model baseline: correlation of measured profiles over the readouts both share.

    Parameters
    ----------
    frame
        Long table of deltas (``context, perturbation, readout, value[, dose]``).
    dose
        ``"max"`` (each compound at its highest dose; default) or ``"mean"`` (over doses); see
        :func:`measured_profiles`.
    min_overlap
        Fewest readouts both profiles must have; pairs with fewer are not scored (no row).
    perturbations
        Keep these singles only.

    Returns
    -------
    polars.DataFrame
        :data:`SIMILARITY_COLUMNS`, one row per scorable (compound, other single) pair.

    Raises
    ------
    LpmInputError
        No measured single compound.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> effect = rng.normal(size=30)
    >>> rows = [("toy/A", p, f"R{j}", float(s * effect[j] + 0.01 * k))
    ...         for k, (p, s) in enumerate([("compound:X", 1), ("CRISPRi:T", 1), ("CRISPRi:U", -1)])
    ...         for j in range(30)]
    >>> t = measured_profile_similarity(pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row"))
    >>> t.sort("score", descending=True)["candidate"].to_list()
    ['CRISPRi:T', 'CRISPRi:U']
    """
    prof = measured_profiles(frame, dose=dose)
    if perturbations is not None:
        prof = prof.filter(pl.col(S.PERTURBATION).is_in(list(perturbations)))
    compounds, singles, kinds = _split(prof[S.PERTURBATION].unique().to_list())
    _need_compounds(compounds, "frame")
    readouts = sorted(prof[S.READOUT].unique().to_list())
    p_ix = {s: i for i, s in enumerate(singles)}
    r_ix = {r: i for i, r in enumerate(readouts)}
    x = np.zeros((len(singles), len(readouts)))
    m = np.zeros_like(x)
    pi = np.fromiter((p_ix[p] for p in prof[S.PERTURBATION].to_list()), np.int64, prof.height)
    ri = np.fromiter((r_ix[r] for r in prof[S.READOUT].to_list()), np.int64, prof.height)
    x[pi, ri] = prof[S.VALUE].to_numpy()
    m[pi, ri] = 1.0
    q = [p_ix[c] for c in compounds]
    xq, mq = x[q], m[q]
    # pairwise sums over the readouts both measured, as matrix products
    n = mq @ m.T
    sx, sy = xq @ m.T, mq @ x.T
    sxy = xq @ x.T
    sxx, syy = (xq * xq) @ m.T, mq @ (x * x).T
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - sx * sy / n
        var = (sxx - sx * sx / n) * (syy - sy * sy / n)
        corr = cov / np.sqrt(var)
    corr[(n < max(min_overlap, 2)) | ~np.isfinite(corr) | (var <= 1e-24)] = np.nan
    return _long(np.clip(corr, -1.0, 1.0), compounds, singles, kinds)


# ---- the ranked table ---------------------------------------------------------------------------
def _ranked(sim: pl.DataFrame, method: str) -> pl.DataFrame:
    return (
        sim.with_columns(
            method=pl.lit(method),
            rank=pl.col("score").rank("min", descending=True).over("query").cast(pl.Int64),
        )
        .select(*RANKING_COLUMNS)
        .sort("query", "rank", "candidate")
    )


def rank_moa(
    frame: pl.DataFrame,
    *,
    model: PerturbationModel | str | Path | None = None,
    methods: Sequence[str] | None = None,
    context: str | None = None,
    dose: str = "max",
    min_overlap: int = MIN_OVERLAP,
) -> pl.DataFrame:
    """Every compound's candidates ranked by each method, in one long table.

    Parameters
    ----------
    frame
        The data: its single perturbations are the queries (compounds) and candidates; it gives
        the measured baseline and the defaults of :func:`predicted_profile_similarity`.
    model
        A fitted LPM (or folder). Without it only ``measured_profile`` is computed.
    methods
        Subset of :data:`METHODS`; default all that apply.
    context
        Shared context of the predicted profiles (default :func:`default_context`).
    dose, min_overlap
        Of the measured baseline (:func:`measured_profile_similarity`).

    Returns
    -------
    polars.DataFrame
        :data:`RANKING_COLUMNS`; ``rank`` 1 is the best candidate of a (method, query), ties
        sharing the smallest rank.
    """
    fitted: Any = fitted_model(model) if model is not None else None
    wanted = (
        list(methods)
        if methods is not None
        else [m for m in METHODS if fitted is not None or m == "measured_profile"]
    )
    bad = [m for m in wanted if m not in METHODS]
    if bad:
        raise LpmInputError("methods", f"unknown method(s) {bad}; choose from {list(METHODS)}")
    if fitted is None and any(m != "measured_profile" for m in wanted):
        raise LpmInputError("model", "embedding and predicted_profile need a fitted model")
    present = set(frame[S.PERTURBATION].unique().to_list())
    parts = []
    for method in wanted:
        if method == "embedding":
            sim = embedding_similarity(fitted, perturbations=present)
        elif method == "predicted_profile":
            sim = predicted_profile_similarity(
                fitted, frame=frame, context=context, perturbations=present
            )
        else:
            sim = measured_profile_similarity(frame, dose=dose, min_overlap=min_overlap)
        parts.append(_ranked(sim, method))
    return pl.concat(parts)


# ---- the task ----------------------------------------------------------------------------------
class MechanismTask(DiscoveryTask):
    """Every compound's candidates ranked by each method (:func:`rank_moa`); without a model only
    the measured-profile baseline."""

    name = "moa"

    def __init__(
        self,
        *,
        methods: Sequence[str] | None = None,
        context: str | None = None,
        dose: str = "max",
        min_overlap: int = MIN_OVERLAP,
    ):
        self.methods = methods
        self.context = context
        self.dose = dose
        self.min_overlap = min_overlap

    def _run(
        self, data: pl.DataFrame | None, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame:
        assert data is not None
        return rank_moa(
            data,
            model=model,
            methods=self.methods,
            context=self.context,
            dose=self.dose,
            min_overlap=self.min_overlap,
        )


__all__ = [
    "GAIN_OF_FUNCTION",
    "METHODS",
    "MIN_OVERLAP",
    "NON_PROFILE_TYPES",
    "RANKING_COLUMNS",
    "SIMILARITY_COLUMNS",
    "MechanismTask",
    "default_context",
    "embedding_similarity",
    "measured_profile_similarity",
    "measured_profiles",
    "predicted_profile_similarity",
    "rank_moa",
    "reference_doses",
]

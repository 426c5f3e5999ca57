"""The linear baseline of Ahlmann-Eltze, Huber & Anders (2025): Y ≈ G·W·Pᵀ + b.

G are readout embeddings (top principal components of the training profiles), P perturbation
embeddings (from the same PCA, or supplied: a table of vectors per single perturbation, or the
readout embedding of the perturbed gene), W a ridge fit and b the context's mean response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.io.symbol_tables import read_embedding_table
from lpm.data.members import has_member_values
from lpm.data.symbols import COMBINATION_SEPARATOR, TYPE_SEPARATOR
from lpm.errors import LpmInputError
from lpm.models.base import PerturbationModel
from lpm.models.params import COUNT, NON_NEGATIVE, Rule

if TYPE_CHECKING:
    from lpm.models.training import TrainerOptions

_PROFILE = "_profile"
EMBEDDING_MODES = ("training", "readout")


def _profile_id(df: pl.DataFrame) -> pl.Expr:
    """``perturbation@dose@time``, and ``@member_dose:1.5+6`` where doses are given per member
    (rows without them keep the id they had before per-member doses existed)."""
    parts: list[pl.Expr] = [pl.col(S.PERTURBATION)]
    for c in (S.DOSE, S.TIME):
        if c in df.columns:
            parts.append(pl.col(c).cast(pl.String).fill_null("-"))
    out = pl.concat_str(parts, separator="@")
    for c in S.MEMBER_COLUMNS:
        if c in df.columns and isinstance(df.schema[c], pl.List):
            text = pl.col(c).list.eval(pl.element().cast(pl.String)).list.join("+")
            out = out + pl.when(pl.col(c).is_not_null()).then(f"@{c}:" + text).otherwise(pl.lit(""))
    return out.alias(_PROFILE)


class LinearModel(PerturbationModel):
    """Ridge on PCA embeddings, Y ≈ G·W·Pᵀ + b (Ahlmann-Eltze et al. 2025)."""

    param_rules: ClassVar[Mapping[str, Rule]] = {"n_components": COUNT, "ridge": NON_NEGATIVE}
    memory_params = ("n_components",)
    #: Per-member doses are part of a profile's id (embedded from the training profiles).
    member_conditions = True

    def __init__(
        self,
        *,
        n_components: int = 10,
        ridge: float = 0.1,
        perturbation_embeddings: str = "training",
        pool_doses: bool = True,
    ) -> None:
        self.n_components = n_components
        self.ridge = ridge
        self.perturbation_embeddings = perturbation_embeddings
        self.pool_doses = pool_doses

    # ---- fitting ------------------------------------------------------------------------------
    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        data = train.filter(pl.col(S.PERTURBATION) != S.CONTROL)
        if data.height == 0:
            raise LpmInputError(None, "linear: no perturbed training rows")
        self._check_embedded_doses(data)
        self.readouts_ = sorted(data[S.READOUT].unique().to_list())
        self.profile_columns_ = [c for c in (S.DOSE, S.TIME) if c in data.columns]
        r_index = {r: i for i, r in enumerate(self.readouts_)}
        base = (
            data.group_by(S.CONTEXT, S.READOUT)
            .agg(pl.col(S.VALUE).mean().alias("b"))
            .sort(S.CONTEXT, S.READOUT)
        )
        self.contexts_ = sorted(base[S.CONTEXT].unique().to_list())
        c_index = {c: i for i, c in enumerate(self.contexts_)}
        global_mean = data.group_by(S.READOUT).agg(pl.col(S.VALUE).mean())
        b = np.tile(
            global_mean.sort(S.READOUT)[S.VALUE].to_numpy().astype(np.float64)[None, :],
            (len(self.contexts_), 1),
        )
        b[
            base[S.CONTEXT].replace_strict(c_index, return_dtype=pl.Int64).to_numpy(),
            base[S.READOUT].replace_strict(r_index, return_dtype=pl.Int64).to_numpy(),
        ] = base["b"].to_numpy()
        self.base_ = b
        # the mean residual profile of each perturbation (over contexts it was measured in)
        resid = data.with_columns(_profile_id(data)).join(
            base, on=[S.CONTEXT, S.READOUT], how="left"
        )
        resid = resid.with_columns((pl.col(S.VALUE) - pl.col("b")).alias("r"))
        prof = resid.group_by(_PROFILE, S.PERTURBATION, S.READOUT).agg(pl.col("r").mean())
        profiles = prof.select(_PROFILE, S.PERTURBATION).unique().sort(_PROFILE)
        self.profiles_ = profiles[_PROFILE].to_list()
        p_index = {p: i for i, p in enumerate(self.profiles_)}
        m = np.zeros((len(self.profiles_), len(self.readouts_)))
        m[
            prof[_PROFILE].replace_strict(p_index, return_dtype=pl.Int64).to_numpy(),
            prof[S.READOUT].replace_strict(r_index, return_dtype=pl.Int64).to_numpy(),
        ] = prof["r"].to_numpy()
        k = max(1, min(self.n_components, *m.shape))
        u, s, vt = _top_svd(m, k)
        self.readout_embedding_ = vt[:k].T  # G: readouts × k
        if self.perturbation_embeddings == "training":
            p_train = u[:, :k] * s[:k]
            self.embedding_symbols_ = list(self.profiles_)
            self.embedding_ = p_train
        else:
            self.embedding_symbols_, self.embedding_ = self._external_embeddings()
            p_train, ok = self._embed(profiles[S.PERTURBATION].to_list())
            m, p_train = m[ok], p_train[ok]
            if not ok.any():
                raise LpmInputError(
                    None, "linear: no training perturbation has a supplied embedding"
                )
        g = self.readout_embedding_
        lam = self.ridge
        # W = (GᵀG + λI)⁻¹ Gᵀ Mᵀ P (PᵀP + λI)⁻¹
        left = np.linalg.solve(g.T @ g + lam * np.eye(g.shape[1]), g.T @ m.T @ p_train)
        self.weights_ = np.linalg.solve(
            (p_train.T @ p_train + lam * np.eye(p_train.shape[1])).T, left.T
        ).T

    def _external_embeddings(self) -> tuple[list[str], np.ndarray]:
        if self.perturbation_embeddings == "readout":
            return list(self.readouts_), self.readout_embedding_.copy()
        table = read_embedding_table(self.perturbation_embeddings)
        symbols = table.to_series(0).to_list()
        values = table.drop(table.columns[0]).to_numpy().astype(np.float64)
        mu, sd = values.mean(0), values.std(0) + 1e-8
        return symbols, (values - mu) / sd

    def _embed(self, perturbations: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of perturbations from per-symbol (or per-gene) embeddings; combos sum members."""
        index = {s: i for i, s in enumerate(self.embedding_symbols_)}
        by_target = self.perturbation_embeddings == "readout" or not any(
            TYPE_SEPARATOR in s for s in index
        )
        out = np.zeros((len(perturbations), self.embedding_.shape[1]))
        ok = np.ones(len(perturbations), dtype=bool)
        for i, pert in enumerate(perturbations):
            for member in pert.split(COMBINATION_SEPARATOR):
                key = member.partition(TYPE_SEPARATOR)[2] if by_target else member
                j = index.get(key)
                if j is None:
                    ok[i] = False
                    break
                out[i] += self.embedding_[j]
        return out, ok

    def _check_embedded_doses(self, rows: pl.DataFrame) -> None:
        """Supplied embeddings are per symbol: they cannot tell member doses apart."""
        if self.perturbation_embeddings != "training" and has_member_values(rows):
            raise LpmInputError(
                None,
                f"linear: perturbation_embeddings={self.perturbation_embeddings!r} embeds symbols, "
                "not doses given per member; use perturbation_embeddings='training'",
            )

    # ---- prediction ---------------------------------------------------------------------------
    def _profile_vectors(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unique profiles in rows -> (row→profile index, vectors, ok mask per profile)."""
        # rows from a store without dose/time still name the profiles a joint fit saw with them
        self._check_embedded_doses(rows)
        absent = [c for c in self.profile_columns_ if c not in rows.columns]
        rows = rows.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in absent)
        ids = rows.select(_profile_id(rows), pl.col(S.PERTURBATION))
        uniq = ids.unique(maintain_order=True)
        where = ids.join(
            uniq.with_row_index("_u"),
            on=[_PROFILE, S.PERTURBATION],
            how="left",
            maintain_order="left",
        )["_u"].to_numpy()
        if self.perturbation_embeddings == "training":
            index = {p: i for i, p in enumerate(self.embedding_symbols_)}
            profiles = uniq[_PROFILE].to_list()
            pos = np.array([index.get(p, -1) for p in profiles], dtype=np.int64)
            ok = pos >= 0
            vec = np.where(ok[:, None], self.embedding_[np.maximum(pos, 0)], 0.0)
            if self.pool_doses and S.DOSE in rows.columns and not ok.all():
                self._pool_doses(profiles, vec, ok)
        else:
            vec, ok = self._embed(uniq[S.PERTURBATION].to_list())
        return where, vec, ok

    def _pool_doses(self, profiles: list[str], vec: np.ndarray, ok: np.ndarray) -> None:
        """A compound at a dose never trained on: the mean of its trained doses' vectors.

        Profile ids are ``perturbation@dose[@time]`` when rows have a dose column; a dose of
        ``-`` (none, e.g. a knock-down) is never pooled. Fills ``vec``/``ok`` in place.
        """
        groups: dict[tuple[str, ...], list[int]] = {}
        for j, symbol in enumerate(self.embedding_symbols_):
            parts = symbol.split("@")
            if len(parts) >= 2 and parts[1] != "-":
                groups.setdefault((parts[0], *parts[2:]), []).append(j)
        for i in np.flatnonzero(~ok):
            parts = profiles[i].split("@")
            if len(parts) < 2 or parts[1] == "-":
                continue
            members = groups.get((parts[0], *parts[2:]))
            if members:
                vec[i] = self.embedding_[members].mean(0)
                ok[i] = True

    def _indices(self, rows: pl.DataFrame, column: str, vocab: list[str]) -> np.ndarray:
        index = {v: i for i, v in enumerate(vocab)}
        return rows[column].replace_strict(index, default=-1, return_dtype=pl.Int64).to_numpy()

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        where, _, ok = self._profile_vectors(rows)
        c = self._indices(rows, S.CONTEXT, self.contexts_)
        r = self._indices(rows, S.READOUT, self.readouts_)
        return ok[where] & (c >= 0) & (r >= 0)

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        where, vec, _ = self._profile_vectors(rows)
        c = self._indices(rows, S.CONTEXT, self.contexts_)
        r = self._indices(rows, S.READOUT, self.readouts_)
        effect = vec @ (self.readout_embedding_ @ self.weights_).T  # profiles × readouts
        return effect[where, r] + self.base_[c, r]

    def _known(self) -> dict[str, set[str]]:
        known = {S.CONTEXT: set(self.contexts_), S.READOUT: set(self.readouts_)}
        if self.perturbation_embeddings == "training":
            known[S.PERTURBATION] = {p.split("@")[0] for p in self.profiles_}
        return known

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        arrays = {
            "base": self.base_,
            "readout_embedding": self.readout_embedding_,
            "weights": self.weights_,
            "embedding": self.embedding_,
        }
        vocab = {
            "readouts": self.readouts_,
            "contexts": self.contexts_,
            "profiles": self.profiles_,
            "embedding_symbols": self.embedding_symbols_,
            "profile_columns": self.profile_columns_,
        }
        return arrays, {}, vocab

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.base_ = arrays["base"]
        self.readout_embedding_ = arrays["readout_embedding"]
        self.weights_ = arrays["weights"]
        self.embedding_ = arrays["embedding"]
        self.readouts_ = list(extra["readouts"])
        self.contexts_ = list(extra["contexts"])
        self.profiles_ = list(extra["profiles"])
        self.embedding_symbols_ = list(extra["embedding_symbols"])
        self.profile_columns_ = list(extra.get("profile_columns", []))  # absent before 0.2


#: Above this many rows and columns, only the top components are computed (seeded randomized
#: SVD): a full SVD of a joint store's ~15,000 × 14,000 profile matrix takes minutes.
FULL_SVD_LIMIT = 2000


def _top_svd(m: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top ``k`` singular triplets of ``m`` (exact for small matrices)."""
    if min(m.shape) <= FULL_SVD_LIMIT:
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        return u[:, :k], s[:k], vt[:k]
    from sklearn.utils.extmath import randomized_svd

    u, s, vt = randomized_svd(m, k, n_oversamples=20, n_iter=7, random_state=0)
    return u, s, vt

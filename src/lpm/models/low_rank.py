"""Low-rank matrix completion with biases: the baseline a field expert brings to viability
screens (held-out compound × line pairs), and to any table of perturbations × contexts.

A value is modelled as ``a[c, r] + b[p, r] + U[p] · V[c, r]``: a context term per readout
(it absorbs the global mean μ), a perturbation term per readout, and a rank-``k`` interaction.
The table is completed as a whole, perturbations × (context, readout), with the biases per
readout: on one readout (PRISM) this is the classic per-readout completion; on many readouts
the interaction shares its perturbation factors ``U`` across readouts, so a pair's held-out
profile borrows strength from every readout (per-readout fits would need one rank per readout
and see 5 contexts where the simulator has them). It is also fast: a pair is observed or not
for all its readouts, so every normal equation is built from per-context Gram matrices with
one matrix product over the whole table.

Fitting is alternating ridge least squares on the observed pairs (ALS-WR: the ridge of a row
grows with its observed entries), seeded, with one exact backfitting sweep of the biases per
step; readouts missing inside an observed pair are filled with the current fit (EM), which is
the masked least-squares solution at convergence. Values are scaled per readout by their
training standard deviation, so ``ridge`` is on a unit scale. Rank 0 is the two-way additive
fit. The rank and ridge are chosen from ``ranks × ridges`` by standardised MSE on the
validation rows ``fit`` is given (the benchmark's), else on a seeded ``val_fraction`` of the
training pairs held out (then refitted on all of them); the final model is fitted on the
training rows only, so it sees no more data than the other baselines.

The row unit is a profile, ``perturbation@dose@time`` where doses or times exist: a dose
never trained on is not pooled with the others. A perturbation profile, context or readout
never seen in training is unsupported, never predicted as 0. Binary readouts are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.errors import LpmInputError
from lpm.models.base import PerturbationModel
from lpm.models.linear import _PROFILE, _profile_id
from lpm.models.params import COUNT, NON_NEGATIVE, POSITIVE, SEED, Range, Rule

if TYPE_CHECKING:
    from lpm.models.training import TrainerOptions

#: Largest rank the grid may hold (a typo beyond it, not a design).
MAX_RANK = 1024


class _Table:
    """Training values as a dense profiles × contexts × readouts array with a pair mask."""

    def __init__(self, rows: pl.DataFrame, profiles: list[str], contexts: list[str],
                 readouts: list[str], scale: np.ndarray | None = None) -> None:  # fmt: skip
        p, c, r = _codes(rows, profiles, contexts, readouts)
        shape = (len(profiles), len(contexts), len(readouts))
        total, count = np.zeros(shape), np.zeros(shape)
        values = rows[S.VALUE].to_numpy().astype(np.float64)
        if scale is not None:
            values = values / scale[r]
        np.add.at(total, (p, c, r), values)  # replicates averaged
        np.add.at(count, (p, c, r), 1.0)
        self.seen = count > 0
        self.y = np.where(self.seen, total / np.maximum(count, 1.0), 0.0)
        self.mask = self.seen.any(axis=2).astype(np.float64)  # pairs observed


def _codes(rows: pl.DataFrame, profiles: list[str], contexts: list[str],
           readouts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Indices of each row's profile, context and readout; -1 where unknown."""
    ids = rows.select(_profile_id(rows))[_PROFILE]
    out = []
    for col, vocab in ((ids, profiles), (rows[S.CONTEXT], contexts), (rows[S.READOUT], readouts)):
        index = {v: i for i, v in enumerate(vocab)}
        out.append(col.replace_strict(index, default=-1, return_dtype=pl.Int64).to_numpy())
    return out[0], out[1], out[2]


def _als(t: _Table, rank: int, ridge: float, *, max_iter: int, tol: float,
         seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Alternating ridge least squares of ``a[c,r] + b[p,r] + U[p]·V[c,r]`` on observed pairs.

    Returns (a: C × R, b: P × R, U: P × k, V: C × R × k)."""
    n_p, n_c, n_r = t.y.shape
    m: np.ndarray = np.asarray(t.mask)
    rng = np.random.default_rng(seed)
    u = rng.normal(scale=0.1, size=(n_p, rank))
    v = rng.normal(scale=0.1, size=(n_c, n_r, rank))
    a: np.ndarray = np.zeros((n_c, n_r))
    b: np.ndarray = np.zeros((n_p, n_r))
    uv = np.zeros_like(t.y)
    y = t.y.copy()
    fill = bool((t.seen != (m[:, :, None] > 0)).any())
    per_c: np.ndarray = np.maximum(m.sum(0), 1.0)[:, None]  # profiles observed in each context
    per_p: np.ndarray = np.maximum(m.sum(1), 1.0)[:, None]  # contexts observed for each profile
    eye = np.eye(rank)
    last = np.inf
    for _ in range(max_iter):
        a = np.einsum("pc,pcr->cr", m, y - uv - b[:, None, :]) / per_c
        b = np.einsum("pc,pcr->pr", m, y - uv - a[None]) / per_p
        if rank:
            z = ((y - a[None] - b[:, None, :]) * m[:, :, None]).reshape(n_p, -1)
            gram_v = np.einsum("cri,crj->cij", v, v).reshape(n_c, -1)
            lhs = (m @ gram_v).reshape(n_p, rank, rank) + ridge * n_r * per_p[:, :, None] * eye
            u = np.linalg.solve(lhs, (z @ v.reshape(-1, rank))[:, :, None])[:, :, 0]
            gram_u = m.T @ (u[:, :, None] * u[:, None, :]).reshape(n_p, -1)
            lhs = gram_u.reshape(n_c, rank, rank) + ridge * per_c[:, :, None] * eye
            rhs = (u.T @ z).reshape(rank, n_c, n_r).transpose(1, 0, 2)  # C × k × R
            v = np.linalg.solve(lhs, rhs).transpose(0, 2, 1)
            uv = (u @ v.reshape(-1, rank).T).reshape(n_p, n_c, n_r)
        pred = a[None] + b[:, None, :] + uv
        if fill:
            y = np.where(t.seen, t.y, pred)
        err = float(((y - pred) ** 2 * m[:, :, None]).sum())
        loss = err + ridge * (
            n_r * float((per_p * u**2).sum()) + float((per_c[:, :, None] * v**2).sum())
        )
        if last - loss <= tol * max(loss, 1e-12):
            break
        last = loss
    return a, b, u, v


class LowRankModel(PerturbationModel):
    """Matrix completion with biases, a[c,r] + b[p,r] + U[p]·V[c,r], rank chosen on validation."""

    param_rules: ClassVar[Mapping[str, Rule]] = {
        "ranks": Range(0, MAX_RANK),
        "ridges": NON_NEGATIVE,
        "max_iter": COUNT,
        "tol": POSITIVE,
        "val_fraction": Range(0, 1, low_open=True, high_open=True),
        "seed": SEED,
    }
    memory_params = ("ranks",)

    def __init__(
        self,
        *,
        ranks: list[int] = [0, 1, 2, 4, 8, 16, 32, 64],  # noqa: B006 (never mutated; saved as given)
        ridges: list[float] = [0.01, 0.1],  # noqa: B006
        max_iter: int = 100,
        tol: float = 1e-5,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.ranks = ranks
        self.ridges = ridges
        self.max_iter = max_iter
        self.tol = tol
        self.val_fraction = val_fraction
        self.seed = seed

    def check_params(self) -> None:
        """Types and ranges, and a grid with at least one rank and one ridge."""
        super().check_params()
        for name in ("ranks", "ridges"):
            if not getattr(self, name):
                raise LpmInputError(None, f"model {self.label!r}: parameter {name} is empty")

    # ---- fitting ------------------------------------------------------------------------------
    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        data = _usable(train, self.label)
        self.profile_columns_ = [c for c in (S.DOSE, S.TIME) if c in data.columns]
        self.profiles_ = sorted(data.select(_profile_id(data))[_PROFILE].unique().to_list())
        self.contexts_ = sorted(data[S.CONTEXT].unique().to_list())
        self.readouts_ = sorted(data[S.READOUT].unique().to_list())
        scale = data.group_by(S.READOUT).agg(pl.col(S.VALUE).std(ddof=0)).sort(S.READOUT)
        scale_ = scale[S.VALUE].fill_null(1.0).to_numpy().astype(np.float64)
        self.scale_ = np.where(scale_ > 0, scale_, 1.0)  # a constant readout stays unscaled
        vocab = (self.profiles_, self.contexts_, self.readouts_)
        table = _Table(data, *vocab, self.scale_)
        held = self._selection_rows(val)
        refit = held is None
        if refit:  # hold out a seeded share of training pairs, choose, refit on all
            inner, held = self._hold_out(data)
            grid = self._grid(_Table(inner, *vocab, self.scale_), held)
        else:
            assert held is not None
            grid = self._grid(table, held)
        scores = pl.DataFrame(
            [(k, lam, err) for k, lam, err, _ in grid],
            schema={"rank": pl.Int64, "ridge": pl.Float64, "val_mse": pl.Float64},
            orient="row",
        )
        best = min(range(len(grid)), key=lambda i: (grid[i][2], grid[i][0], grid[i][1]))
        self.rank_, self.ridge_ = int(grid[best][0]), float(grid[best][1])
        self.val_scores_ = scores
        fit = self._als(table, self.rank_, self.ridge_) if refit else grid[best][3]
        self.context_bias_: np.ndarray = fit[0]
        self.profile_bias_: np.ndarray = fit[1]
        self.u_: np.ndarray = fit[2]
        self.v_: np.ndarray = fit[3]

    def _als(self, table: _Table, rank: int, ridge: float) -> tuple[np.ndarray, ...]:
        return _als(table, rank, ridge, max_iter=self.max_iter, tol=self.tol, seed=self.seed)

    def _selection_rows(self, val: pl.DataFrame | None) -> pl.DataFrame | None:
        """Validation rows the model can score (known profile, context and readout), or None."""
        if val is None:
            return None
        rows = val.filter(pl.col(S.PERTURBATION) != S.CONTROL)
        if rows.height == 0:
            return None
        p, c, r = _codes(rows, self.profiles_, self.contexts_, self.readouts_)
        ok = (p >= 0) & (c >= 0) & (r >= 0)
        return rows.filter(pl.Series(ok)) if ok.any() else None

    def _hold_out(self, data: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """A seeded ``val_fraction`` of the training (profile, context) pairs, held out."""
        keyed = data.with_columns(_profile_id(data))
        pairs = keyed.select(_PROFILE, S.CONTEXT).unique().sort(_PROFILE, S.CONTEXT)
        if pairs.height < 2:
            raise LpmInputError(None, f"{self.label}: one training pair leaves none to choose on")
        rng = np.random.default_rng(self.seed)
        n_held = max(1, round(self.val_fraction * pairs.height))
        pick = np.zeros(pairs.height, dtype=bool)
        pick[rng.choice(pairs.height, size=min(n_held, pairs.height - 1), replace=False)] = True
        held_pairs = pairs.filter(pl.Series(pick))
        held = keyed.join(held_pairs, on=[_PROFILE, S.CONTEXT], how="semi").drop(_PROFILE)
        inner = keyed.join(held_pairs, on=[_PROFILE, S.CONTEXT], how="anti").drop(_PROFILE)
        return inner, held

    def _grid(self, table: _Table, held: pl.DataFrame) -> list[tuple[int, float, float, Any]]:
        """(rank, ridge, standardised validation MSE, fit) for every point of the grid."""
        p, c, r = _codes(held, self.profiles_, self.contexts_, self.readouts_)
        truth = held[S.VALUE].to_numpy().astype(np.float64) / self.scale_[r]
        out = []
        for rank in sorted(set(self.ranks)):
            for ridge in sorted(set(self.ridges)) if rank else [self.ridges[0]]:
                fit = self._als(table, rank, ridge)
                pred = _values(fit, p, c, r)
                err = float(np.mean((pred - truth) ** 2))
                out.append((rank, float(ridge), err, fit))
        return out

    # ---- prediction ---------------------------------------------------------------------------
    def _row_codes(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        absent = [c for c in self.profile_columns_ if c not in rows.columns]
        rows = rows.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in absent)
        return _codes(rows, self.profiles_, self.contexts_, self.readouts_)

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        p, c, r = self._shared("codes", rows, self._row_codes)
        return (p >= 0) & (c >= 0) & (r >= 0)

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        p, c, r = self._shared("codes", rows, self._row_codes)
        fit = (self.context_bias_, self.profile_bias_, self.u_, self.v_)
        return _values(fit, p, c, r) * self.scale_[r]

    def _known(self) -> dict[str, set[str]]:
        return {
            S.PERTURBATION: {p.split("@")[0] for p in self.profiles_},
            S.CONTEXT: set(self.contexts_),
            S.READOUT: set(self.readouts_),
        }

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        arrays = {
            "context_bias": self.context_bias_,
            "profile_bias": self.profile_bias_,
            "u": self.u_,
            "v": self.v_,
            "scale": self.scale_,
        }
        extra = {
            "profiles": self.profiles_,
            "contexts": self.contexts_,
            "readouts": self.readouts_,
            "profile_columns": self.profile_columns_,
            "rank": self.rank_,
            "ridge": self.ridge_,
        }
        return arrays, {"val_scores": self.val_scores_}, extra

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.context_bias_, self.profile_bias_ = arrays["context_bias"], arrays["profile_bias"]
        self.u_, self.v_, self.scale_ = arrays["u"], arrays["v"], arrays["scale"]
        self.profiles_ = list(extra["profiles"])
        self.contexts_ = list(extra["contexts"])
        self.readouts_ = list(extra["readouts"])
        self.profile_columns_ = list(extra["profile_columns"])
        self.rank_, self.ridge_ = int(extra["rank"]), float(extra["ridge"])
        self.val_scores_ = tables["val_scores"]
        shape = (len(self.profiles_), len(self.contexts_), len(self.readouts_), self.rank_)
        if (*self.u_.shape, *self.v_.shape) != (shape[0], shape[3], *shape[1:]):
            raise ValueError(f"factors {self.u_.shape}, {self.v_.shape} do not fit {shape}")


def _values(fit: tuple[np.ndarray, ...], p: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Standardised predictions at index triples (NaN where an index is -1)."""
    a, b, u, v = fit
    ok = (p >= 0) & (c >= 0) & (r >= 0)
    out = np.full(p.shape, np.nan)
    pi, ci, ri = p[ok], c[ok], r[ok]
    out[ok] = a[ci, ri] + b[pi, ri] + np.einsum("nk,nk->n", u[pi], v[ci, ri])
    return out


def _usable(train: pl.DataFrame, label: str) -> pl.DataFrame:
    """Perturbed training rows; binary readouts and empty tables refused in one line."""
    data = train.filter(pl.col(S.PERTURBATION) != S.CONTROL)
    if data.height == 0:
        raise LpmInputError(None, f"{label}: no perturbed training rows")
    if S.READOUT_TYPE in data.columns and (data[S.READOUT_TYPE].cast(pl.String) == S.BINARY).any():
        raise LpmInputError(
            None, f"{label}: binary readouts are not completed by least squares; leave them out"
        )
    return data

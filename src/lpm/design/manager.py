"""The model manager of the loop: any registered model, refitted on the labelled rows each round.

Member 0 is *the* model: it is fitted on every labelled row and alone is scored, so every
strategy is judged on the same kind of model. Strategies that need a spread (ensemble variance)
ask for more members; those are fitted on bootstrap resamples of the labelled perturbations
(bagging: a perturbation drawn twice counts once, so each member sees about 63% of them) with
their own seeds, and only then.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.profiles import profile_matrix
from lpm.errors import LpmInputError
from lpm.models.base import PerturbationModel
from lpm.models.registry import make_model


class ModelManager:
    """Fits and queries the loop's model(s) for one round."""

    def __init__(
        self, name: str, params: Mapping[str, Any] | None = None, *, seed: int = 0
    ) -> None:
        self.name = name
        self.params = dict(params or {})
        self.seed = seed
        self.members: list[PerturbationModel] = []
        self.fit_seconds = 0.0
        self._train: pl.DataFrame | None = None

    def _new(self, member: int) -> PerturbationModel:
        params = dict(self.params)
        if "seed" in params:
            params["seed"] = int(params["seed"]) + member
        return make_model(self.name, params, seed=self.seed + member)

    def fit(self, train: pl.DataFrame) -> None:
        """Fit member 0 on all labelled rows; extra members are dropped until asked for again."""
        start = time.perf_counter()
        self.members = [self._new(0).fit(train)]
        self.fit_seconds = time.perf_counter() - start
        self._train = train

    def ensure_members(self, k: int, *, round_: int) -> None:
        """Fit bagged members 1..k-1 on this round's labelled rows (seeded by round and member)."""
        if k < 2:
            raise LpmInputError(None, f"ensemble variance needs --ensemble of at least 2, got {k}")
        if self._train is None:
            raise LpmInputError(None, "the model manager has no fitted model yet")
        perts = sorted(self._train[S.PERTURBATION].cast(pl.String).unique().to_list())
        while len(self.members) < k:
            member = len(self.members)
            rng = np.random.default_rng([self.seed, round_, member])
            drawn = sorted({perts[i] for i in rng.integers(0, len(perts), len(perts))})
            rows = self._train.filter(pl.col(S.PERTURBATION).cast(pl.String).is_in(drawn))
            self.members.append(self._new(member).fit(rows))

    @property
    def model(self) -> PerturbationModel:
        if not self.members:
            raise LpmInputError(None, "the model manager has no fitted model yet")
        return self.members[0]

    def predict_members(self, rows: pl.DataFrame) -> np.ndarray:
        """Every member's predictions (members × rows)."""
        return np.stack([m.predict(rows) for m in self.members])

    def embedding(self, perturbations: Sequence[str], keys: pl.DataFrame) -> np.ndarray:
        """The model's own perturbation vectors where it has them (``perturbation_embedding``),
        else its predicted profiles over every (context, readout) of ``keys``."""
        if self.model.embeds_perturbations:
            return self.model.perturbation_embedding(list(perturbations))
        return predicted_profiles(keys, self.model.predict(keys), perturbations)


def predicted_profiles(
    keys: pl.DataFrame, values: np.ndarray, perturbations: Sequence[str]
) -> np.ndarray:
    """Predicted values pivoted to perturbations × (context, readout), in ``perturbations`` order;
    a readout a perturbation was not measured on is 0 (no predicted change asked for)."""
    frame = keys.select(
        pl.col(S.PERTURBATION).cast(pl.String),
        pl.concat_str(
            pl.col(S.CONTEXT).cast(pl.String), pl.lit("|"), pl.col(S.READOUT).cast(pl.String)
        ).alias(S.READOUT),
    ).with_columns(pl.Series(S.VALUE, np.asarray(values, dtype=np.float64)))
    found, matrix = profile_matrix(frame, by=(S.PERTURBATION,))
    row = {k[0]: i for i, k in enumerate(found)}
    out = np.zeros((len(perturbations), matrix.shape[1]))
    for i, p in enumerate(perturbations):
        if p in row:
            out[i] = matrix[row[p]]
    return np.nan_to_num(out)

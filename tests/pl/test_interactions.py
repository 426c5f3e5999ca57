"""The figure of ``lpm interactions`` (``lpm.pl.interactions``): types by position with the
thresholds drawn, the confusion matrix when given, n/a without a typed double."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.pl.interactions import plot_interactions
from lpm.tasks.interactions import TYPES
from tests.pl._figures import assert_labelled, texts


def _table() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "magnitude": [1.4, 2.5, 0.5, 1.0, 9.0],
            "fit_dcor": [0.95, 0.9, 0.9, 0.9, 0.5],
            "type": list(TYPES),
        }
    )


def test_types_and_the_confusion_matrix() -> None:
    confusion = pl.DataFrame(
        {"truth": list(TYPES), **{t: np.eye(5, dtype=int)[:, i] for i, t in enumerate(TYPES)}}
    )
    fig = plot_interactions(_table(), confusion=confusion)
    assert_labelled(fig)
    said = texts(fig)
    assert "5 double perturbations" in said and "types: truth × predicted" in said
    assert "additive (1)" in said and "neomorphic (1)" in said
    assert "model fit: dcor(c1·A + c2·B, AB)" in said


def test_n_a_without_a_typed_double_and_missing_columns_named() -> None:
    fig = plot_interactions(_table().head(0))
    assert_labelled(fig)
    assert "n/a: no typed double" in texts(fig)
    with pytest.raises(LpmInputError, match="missing column"):
        plot_interactions(_table().drop("fit_dcor"))

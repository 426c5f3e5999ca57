"""Similarity kernels of perturbations: features, graphs and priors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lpm.design.kernels import cosine_kernel, feature_kernel, graph_kernel, prior_kernel
from lpm.errors import LpmInputError


def test_kernels() -> None:
    k = cosine_kernel(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]))
    assert np.allclose(np.diag(k), 1.0) and k[0, 1] == pytest.approx(1.0) and k[0, 2] == 0.0
    table = pl.DataFrame({"symbol": ["A", "B"], "f0": [1.0, 0.0], "f1": [0.0, 1.0]})
    fk = feature_kernel(table, ["A", "B", "Z"])
    assert fk[0, 1] == pytest.approx(0.0) and fk[2, 0] == 0.0 and fk[2, 2] == 1.0
    chain = pl.DataFrame(
        {"source": ["A", "B", "C", "D"], "target": ["B", "C", "D", "E"], "weight": [1.0] * 4}
    )
    gk = graph_kernel(chain, ["A", "B", "E"], hops=2)
    assert gk[0, 1] > gk[0, 2]
    with pytest.raises(LpmInputError, match="needs a gene graph"):
        prior_kernel(["graph"], ["A"], graph=None, hops=2)
    with pytest.raises(LpmInputError, match="at least one"):
        prior_kernel([], ["A"], graph=chain, hops=2)

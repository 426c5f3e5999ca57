"""AnnData in and out: profiles per condition, NaN where unmeasured, extras in obs/var."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lpm.data.convert import from_anndata, to_anndata
from lpm.errors import LpmInputError


def test_anndata_round_trip(toy_rows: pl.DataFrame) -> None:
    adata = to_anndata(toy_rows)
    assert adata.shape == (24, 12)
    back = from_anndata(adata).sort("context", "perturbation", "readout")
    expected = toy_rows.sort("context", "perturbation", "readout")
    np.testing.assert_allclose(back["value"].to_numpy(), expected["value"].to_numpy(), rtol=1e-6)
    assert back["perturbation"].to_list() == expected["perturbation"].to_list()


def test_unmeasured_readouts_are_nan_and_dropped_on_the_way_back() -> None:
    rows = pl.DataFrame(
        {
            "context": ["a", "a", "b"],
            "perturbation": ["CRISPRi:X", "CRISPRi:X", "CRISPRi:X"],
            "readout": ["g1", "g2", "g1"],
            "value": [1.0, 2.0, 3.0],
            "dataset": ["d", "d", "d"],
        }
    )
    adata = to_anndata(rows)
    assert list(adata.var_names) == ["g1", "g2"]
    assert np.isnan(adata.X[1, 1]) and list(adata.obs["dataset"]) == ["d", "d"]
    back = from_anndata(adata).sort("context", "readout")
    assert back.select("context", "readout", "value").rows() == [
        ("a", "g1", 1.0),
        ("a", "g2", 2.0),
        ("b", "g1", 3.0),
    ]


def test_from_anndata_needs_context_and_perturbation() -> None:
    adata = to_anndata(
        pl.DataFrame(
            {"context": ["a"], "perturbation": ["CRISPRi:X"], "readout": ["g"], "value": [1.0]}
        )
    )
    adata.obs = adata.obs.drop(columns=["context"])
    with pytest.raises(LpmInputError, match="obs has no 'context' column"):
        from_anndata(adata, source="x.h5ad")

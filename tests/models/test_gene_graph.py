"""gene_graph: message passing over a gene graph places genes never perturbed by their
neighbours; combinations and errors; trained by the shared Lightning engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models import get_model
from tests.models.worlds import READOUTS, held_out

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _chain_world(seed: int = 0) -> tuple[pl.DataFrame, Path, dict[str, np.ndarray]]:
    """Genes on a chain graph whose knock-down effects vary smoothly along it."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i:02d}" for i in range(30)]
    basis = rng.normal(size=(3, len(READOUTS)))
    t = np.linspace(0, 2 * np.pi, len(genes))
    effect = {
        f"CRISPRi:{g}": np.cos(t[i]) * basis[0] + np.sin(t[i]) * basis[1]
        for i, g in enumerate(genes)
    }
    rows = [
        ("toy/A", p, r, float(v + 0.05 * rng.normal()))
        for p, e in effect.items()
        for r, v in zip(READOUTS, e, strict=True)
    ]
    return (
        pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row"),
        _chain(genes),
        effect,
    )


def _chain(genes: list[str]) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "chain.csv"
    pl.DataFrame({"source": genes[:-1], "target": genes[1:]}).write_csv(path)
    return path


def test_gene_graph_predicts_a_never_perturbed_gene_from_its_neighbours() -> None:
    rows, graph, effect = _chain_world()
    held = ["CRISPRi:G07", "CRISPRi:G15", "CRISPRi:G22"]
    train, test = held_out(rows, held)
    model = get_model(
        "gene_graph", graph=str(graph), epochs=150, hidden=8, batch_size=8, seed=0
    ).fit(train)
    pred = model.predict(test)
    y = test["value"].to_numpy()
    cm = get_model("context_mean").fit(train).predict(test)
    assert np.mean((pred - y) ** 2) < 0.5 * np.mean((cm - y) ** 2)
    for p in held:
        sel = (test["perturbation"] == p).to_numpy()
        assert np.corrcoef(pred[sel], effect[p])[0, 1] > 0.7, p
    # a gene in no graph and never trained is unknown, and compounds are not graph genes
    for novel in ("CRISPRi:NOT_IN_GRAPH", "compound:drug"):
        with pytest.raises(UnknownSymbolError):
            model.predict(test.with_columns(pl.lit(novel).alias("perturbation")))


def test_gene_graph_combination_and_errors() -> None:
    rows, graph, _ = _chain_world()
    model = get_model("gene_graph", graph=str(graph), epochs=5, hidden=4).fit(rows)
    pair = rows.filter(pl.col("perturbation") == "CRISPRi:G01").with_columns(
        pl.lit("CRISPRi:G01+CRISPRi:G05").alias("perturbation")
    )
    assert np.isfinite(model.predict(pair)).all()
    with pytest.raises(LpmInputError, match="no genetic"):
        get_model("gene_graph", graph=str(graph)).fit(
            rows.with_columns(pl.lit("compound:x").alias("perturbation"))
        )
    with pytest.raises(LpmInputError, match="not found"):
        get_model("gene_graph", graph="/no/such/edges.csv").fit(rows)

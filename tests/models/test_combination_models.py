"""Salt, Peper (learned correction with a flagged fallback), the gene-graph network, precomputed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models import get_model, load_model

READOUTS = [f"G{i:02d}" for i in range(30)]


def _world(seed: int = 0, shrink: float = 0.5) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """2 contexts; 16 singles; doubles of pairs of singles = shrink × (a + b) (buffering)."""
    rng = np.random.default_rng(seed)
    singles = [f"CRISPRi:G{i:02d}" for i in range(16)]
    effect = {s: rng.normal(size=len(READOUTS)) for s in singles}
    pairs = [
        f"{singles[i]}+{singles[j]}"
        for i in range(16)
        for j in range(i + 1, 16)
        if (i + j) % 3 == 0
    ]
    for p in pairs:
        a, b = p.split("+")
        effect[p] = shrink * (effect[a] + effect[b])
    rows = [
        (c, p, r, float(v + 0.01 * rng.normal()))
        for c in ("toy/A", "toy/B")
        for p, e in effect.items()
        for r, v in zip(READOUTS, e, strict=True)
    ]
    return pl.DataFrame(
        rows, schema=["context", "perturbation", "readout", "value"], orient="row"
    ), effect


def _held_out(rows: pl.DataFrame, perts: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    test = rows.filter(pl.col("perturbation").is_in(perts))
    return rows.join(test, on=["context", "perturbation", "readout"], how="anti"), test


def test_salt_sums_measured_singles_and_refuses_missing_ones() -> None:
    rows, effect = _world()
    doubles = sorted({p for p in rows["perturbation"].to_list() if "+" in p})
    train, test = _held_out(rows, doubles[:3])
    salt = get_model("salt").fit(train)
    a, b = doubles[0].split("+")
    one = test.filter((pl.col("perturbation") == doubles[0]) & (pl.col("context") == "toy/A"))
    np.testing.assert_allclose(salt.predict(one), effect[a] + effect[b], atol=0.05)
    train_no_a = train.filter(pl.col("perturbation") != a)
    with pytest.raises(UnknownSymbolError):
        get_model("salt").fit(train_no_a).predict(one)


def test_peper_learns_what_salt_misses() -> None:
    rows, _ = _world()
    doubles = sorted({p for p in rows["perturbation"].to_list() if "+" in p})
    train, test = _held_out(rows, doubles[:8])
    y = test["value"].to_numpy()
    salt = get_model("salt").fit(train).predict(test)
    peper = get_model("peper", epochs=150, seed=0).fit(train)
    pred = peper.predict(test)
    assert peper.n_train_doubles_ == 2 * (len(doubles) - 8)
    assert not peper.fallback(test).any()
    assert np.mean((pred - y) ** 2) < 0.25 * np.mean((salt - y) ** 2)


def test_peper_falls_back_to_salt_flagged_when_a_single_is_missing(tmp_path: Path) -> None:
    rows, _ = _world()
    doubles = sorted({p for p in rows["perturbation"].to_list() if "+" in p})
    a = doubles[0].split("+")[0]
    # a measured in toy/B only: in toy/A the double lacks a measured single
    train, test = _held_out(rows, [doubles[0]])
    train = train.filter(~((pl.col("perturbation") == a) & (pl.col("context") == "toy/A")))
    plain = get_model("peper", epochs=20).fit(train)
    in_a = test.filter(pl.col("context") == "toy/A")
    in_b = test.filter(pl.col("context") == "toy/B")
    assert not plain.supported(in_a).any() and plain.supported(in_b).all()
    with pytest.raises(UnknownSymbolError):
        plain.predict(in_a)  # never guessed
    backed = get_model("peper", epochs=20, single_model="perturbation_mean").fit(train)
    assert backed.fallback(in_a).all() and not backed.fallback(in_b).any()
    pm = get_model("perturbation_mean").fit(train)
    members = doubles[0].split("+")
    expected = sum(
        pm.predict(in_a.with_columns(pl.lit(m).alias("perturbation"))) if m == a else
        get_model("salt").fit(train).predict(in_a.with_columns(pl.lit(m).alias("perturbation")))
        for m in members
    )  # fmt: skip
    np.testing.assert_allclose(backed.predict(in_a), expected, rtol=1e-5, atol=1e-6)
    backed.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(in_a), backed.predict(in_a))
    assert again.fallback(in_a).all()


def test_peper_without_training_doubles_is_all_fallback() -> None:
    rows, _ = _world()
    singles_only = rows.filter(~pl.col("perturbation").str.contains("+", literal=True))
    doubles = rows.filter(pl.col("perturbation").str.contains("+", literal=True))
    peper = get_model("peper").fit(singles_only)
    assert peper.n_train_doubles_ == 0
    assert peper.fallback(doubles).all()
    np.testing.assert_allclose(
        peper.predict(doubles), get_model("salt").fit(singles_only).predict(doubles), atol=1e-6
    )


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
    train, test = _held_out(rows, held)
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


def test_precomputed_scores_another_tools_rows(tmp_path: Path) -> None:
    rows, _ = _world()
    some = rows.head(60)
    path = tmp_path / "p.parquet"
    pl.concat(
        [
            some.with_columns(pl.lit(0).alias("seed")),
            some.with_columns(pl.lit(1).alias("seed"), pl.col("value") + 1),
        ]
    ).write_parquet(path)
    m0 = get_model("precomputed", path=str(path), seed=0).fit(rows)
    m1 = get_model("precomputed", path=str(path), seed=1).fit(rows)
    np.testing.assert_allclose(m1.predict(some), m0.predict(some) + 1, atol=1e-5)
    assert not m0.supported(rows.tail(5)).any()
    dup = tmp_path / "dup.parquet"
    pl.concat([some, some]).write_parquet(dup)
    with pytest.raises(LpmInputError, match="duplicate"):
        get_model("precomputed", path=str(dup)).fit(rows)
    nan = tmp_path / "nan.parquet"
    some.with_columns(pl.lit(float("nan")).alias("value")).write_parquet(nan)
    with pytest.raises(LpmInputError, match="NaN"):
        get_model("precomputed", path=str(nan)).fit(rows)
    with pytest.raises(LpmInputError, match="not found"):
        get_model("precomputed", path=str(tmp_path / "none.parquet")).fit(rows)

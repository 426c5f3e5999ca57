"""Every registered model passes the same checks (scikit-learn's estimator checks, in spirit)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.base import CAPABILITIES, NotFittedError, PerturbationModel
from lpm.models.params import matches, out_of_range, param_types, wrong_value
from lpm.models.registry import (
    describe_model,
    expand_model_names,
    get_model,
    get_model_class,
    list_models,
    load_model,
    runnable_models,
)

MODELS = list_models()


@pytest.fixture
def make(tmp_path: Path, toy_rows: pl.DataFrame) -> Callable[[str], PerturbationModel]:
    """A new model by name, given the inputs a model needs beyond its defaults: the gene graph
    a ``gene_graph`` reads (a toy chain over the toy genes, so the tests need no GO files) and
    the file a ``precomputed`` model reads (the toy truth plus noise)."""
    edges = tmp_path / "edges.csv"
    pl.DataFrame(
        {"source": [f"G{i}" for i in range(11)], "target": [f"G{i + 1}" for i in range(11)]}
    ).write_csv(edges)
    predictions = tmp_path / "predictions.parquet"
    noise = np.random.default_rng(0).normal(size=toy_rows.height)
    toy_rows.with_columns(pl.col("value") + 0.1 * noise).write_parquet(predictions)
    params: dict[str, dict[str, Any]] = {
        "gene_graph": {"graph": str(edges), "epochs": 3},
        "peper": {"epochs": 5},
        "precomputed": {"path": str(predictions)},
    }
    return lambda name: get_model(name, **params.get(name, {}))


def _split(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    test = rows.filter(
        (pl.col("context") == "toy/A")
        & pl.col("perturbation").is_in(["CRISPRi:G4", "CRISPRi:G0+CRISPRi:G1"])
    )
    train = rows.join(test, on=["context", "perturbation", "readout"], how="anti")
    return train, test


@pytest.mark.parametrize("name", MODELS)
def test_builds_with_defaults_and_fit_returns_self(
    name: str, make: Callable[[str], PerturbationModel], toy_rows: pl.DataFrame
) -> None:
    model = make(name)
    train, _ = _split(toy_rows)
    assert model.fit(train) is model


@pytest.mark.parametrize("name", MODELS)
def test_predict_before_fit_is_an_error(
    name: str, make: Callable[[str], PerturbationModel], toy_rows: pl.DataFrame
) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        make(name).predict(toy_rows)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_gives_identical_predictions(
    name: str, make: Callable[[str], PerturbationModel], toy_rows: pl.DataFrame, tmp_path: Path
) -> None:
    train, test = _split(toy_rows)
    model = make(name).fit(train)
    ok = model.supported(test)
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert np.array_equal(again.supported(test), ok)
    if ok.any():
        rows = test.filter(pl.Series(ok))
        np.testing.assert_array_equal(model.predict(rows), again.predict(rows))


@pytest.mark.parametrize("name", MODELS)
def test_repeats_under_fixed_seed(
    name: str, make: Callable[[str], PerturbationModel], toy_rows: pl.DataFrame
) -> None:
    train, test = _split(toy_rows)
    a, b = make(name).fit(train), make(name).fit(train)
    ok = a.supported(test)
    if ok.any():
        rows = test.filter(pl.Series(ok))
        np.testing.assert_array_equal(a.predict(rows), b.predict(rows))


@pytest.mark.parametrize("name", [m for m in MODELS if m != "no_change"])
def test_unknown_perturbation_is_an_error_not_no_effect(
    name: str, make: Callable[[str], PerturbationModel], toy_rows: pl.DataFrame
) -> None:
    train, test = _split(toy_rows)
    model = make(name).fit(train)
    novel = test.with_columns(pl.lit("CRISPRi:NEVER_SEEN").alias("perturbation"))
    if name == "context_mean":
        novel = novel.with_columns(pl.lit("toy/NEW").alias("context"))
    with pytest.raises(UnknownSymbolError, match="unknown"):
        model.predict(novel)


@pytest.mark.parametrize("name", [m for m in MODELS if get_model_class(m).needs_inputs])
def test_model_that_needs_inputs_says_which_when_they_are_missing(
    name: str, toy_rows: pl.DataFrame
) -> None:
    needs = get_model_class(name).needs_inputs
    with pytest.raises(LpmInputError, match="|".join(needs)):
        get_model(name).fit(toy_rows)


def test_all_means_every_model_that_runs_without_user_inputs() -> None:
    runnable = runnable_models()
    assert "precomputed" not in runnable and "precomputed" in MODELS
    assert set(runnable) == {m for m in MODELS if not get_model_class(m).needs_inputs}
    assert expand_model_names(["linear", "all"]) == [
        "linear",
        *[m for m in runnable if m != "linear"],
    ]


# ---- parameters -----------------------------------------------------------------------------
def _params() -> list[tuple[str, str]]:
    return [(m, p) for m in MODELS for p in get_model_class(m).param_names()]


@pytest.mark.parametrize(("name", "param"), _params())
def test_every_parameter_has_a_type_and_refuses_a_wrong_one(name: str, param: str) -> None:
    from typing import Any as AnyType

    hint = param_types(get_model_class(name))[param]
    assert hint is not AnyType, f"{name}.{param} has no annotation: its type cannot be checked"
    with pytest.raises(LpmInputError, match=f"model {name!r}: parameter {param} must be"):
        get_model(name, **{param: wrong_value(hint)})


@pytest.mark.parametrize(
    ("name", "param"), [(m, p) for m, p in _params() if p in get_model_class(m).param_rules]
)
def test_a_value_out_of_range_is_refused_when_the_model_is_made(name: str, param: str) -> None:
    cls = get_model_class(name)
    bad = out_of_range(cls.param_rules[param])
    value = [bad] if "list" in str(param_types(cls)[param]) and not isinstance(bad, str) else bad
    with pytest.raises(LpmInputError, match=f"model {name!r}: parameter {param} must be"):
        get_model(name, **{param: value})


@pytest.mark.parametrize("name", MODELS)
def test_every_numeric_parameter_has_a_range(name: str) -> None:
    cls = get_model_class(name)
    numeric = [
        p
        for p, hint in param_types(cls).items()
        if matches(1.5, hint) or (matches(2, hint) and not matches(True, hint))
    ]
    assert set(numeric) <= set(cls.param_rules), (
        f"{name}: no range for {set(numeric) - set(cls.param_rules)}"
    )


# ---- capabilities ---------------------------------------------------------------------------
#: Capability -> the hook a model that declares it implements.
HOOKS = {
    "streams": "_fit_source",
    "gives_spread": "_predict_with_spread",
    "flags_fallback": "_fallback",
}


@pytest.mark.parametrize("name", MODELS)
def test_declared_capabilities_have_their_hooks_and_others_refuse(
    name: str, make: Callable[[str], PerturbationModel], toy_rows: pl.DataFrame
) -> None:
    cls = get_model_class(name)
    for capability, hook in HOOKS.items():
        overridden = getattr(cls, hook) is not getattr(PerturbationModel, hook)
        assert overridden == bool(getattr(cls, capability)), f"{name}: {capability} vs {hook}"
    if cls.resumes or cls.data_parallel:
        assert cls.uses_trainer, f"{name}: resumes or data_parallel without uses_trainer"
    train, test = _split(toy_rows)
    model = make(name).fit(train)
    if not cls.gives_spread:
        with pytest.raises(LpmInputError, match="gives no spread"):
            model.predict_with_spread(test)
    if not cls.flags_fallback:
        with pytest.raises(LpmInputError, match="has no fallback"):
            model.fallback(test)


@pytest.mark.parametrize("name", MODELS)
def test_describe_reports_capabilities(name: str) -> None:
    described = describe_model(name)
    caps = described["capabilities"]
    assert set(caps) == {*CAPABILITIES, "needs_inputs", "family"}
    assert caps["uses_trainer"] == get_model_class(name).uses_trainer
    assert caps["family"] == get_model_class(name).family
    assert described["needs_inputs"] == list(get_model_class(name).needs_inputs)


@pytest.mark.parametrize("name", MODELS)
def test_perturbation_embedding_exactly_where_declared(
    name: str, make: Callable[[str], PerturbationModel], toy_rows: pl.DataFrame
) -> None:
    model = make(name)
    train, _ = _split(toy_rows)
    model.fit(train)
    perts = ["CRISPRi:G0", "CRISPRi:G1"]
    if model.embeds_perturbations:
        vectors = model.perturbation_embedding(perts)
        assert vectors.shape[0] == 2 and np.isfinite(vectors).all()
    else:
        with pytest.raises(LpmInputError, match="has no perturbation embedding"):
            model.perturbation_embedding(perts)


@pytest.mark.parametrize("name", MODELS)
def test_a_row_without_a_symbol_is_one_line_not_a_crash(
    name: str, make: Callable[[str], PerturbationModel], toy_rows: pl.DataFrame
) -> None:
    train, test = _split(toy_rows)
    model = make(name).fit(train)
    for col in ("perturbation", "context", "readout"):
        rows = test.with_columns(
            pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col(col)).alias(col)
        )
        with pytest.raises(LpmInputError, match=f"have no {col}"):
            model.predict(rows)

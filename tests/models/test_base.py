"""The model contract: what a model cannot do is a one-line error (never an AttributeError),
parameters are checked when a model is made, and running out of memory names the sizes to lower."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.models.linear import LinearModel
from lpm.models.registry import get_model
from lpm.models.source import RowSource
from tests.conftest import boring_rows


def test_asking_a_model_for_what_it_does_not_declare_is_one_line() -> None:
    rows = boring_rows()
    model = get_model("linear").fit(rows)
    assert not (model.streams or model.gives_spread or model.flags_fallback or model.uses_trainer)
    with pytest.raises(LpmInputError, match="'linear' does not stream from stores"):
        get_model("linear").fit_source(RowSource(frame=rows))
    with pytest.raises(LpmInputError, match="'linear' gives no spread"):
        model.predict_with_spread(rows)
    with pytest.raises(LpmInputError, match="'linear' has no fallback"):
        model.fallback(rows)


def test_trainer_options_go_only_to_models_the_engine_trains() -> None:
    pytest.importorskip("lightning")
    from lpm.models.training import TrainerOptions

    rows = boring_rows()
    with pytest.raises(LpmInputError, match="'linear' is not trained by the Lightning engine"):
        get_model("linear").fit(rows, trainer=TrainerOptions())
    with pytest.raises(LpmInputError, match="'peper' trains in one process"):
        get_model("peper").fit(rows, trainer=TrainerOptions(devices=2, strategy="ddp"))
    with pytest.raises(LpmInputError, match="'lpm_ame' trains on the CPU"):
        get_model("lpm_ame").check_trainer(TrainerOptions(accelerator="gpu"))
    with pytest.raises(LpmInputError, match="'gene_graph' keeps no checkpoints"):
        get_model("gene_graph").check_trainer(TrainerOptions(checkpoint_dir="ck"))
    auto = get_model("peper").check_trainer(TrainerOptions(accelerator="auto"))
    assert auto.accelerator == "cpu"  # "auto" on a CPU-only model means the CPU
    lpm = get_model("lpm_fast").check_trainer(TrainerOptions(devices=2, strategy="ddp"))
    assert lpm.devices == 2


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("linear", {"n_components": -5}, r"n_components must be ≥ 1, got -5"),
        ("lpm_fast", {"max_epochs": 0}, r"max_epochs must be ≥ 1, got 0"),
        ("lpm_fast", {"max_epochs": -3}, r"max_epochs must be ≥ 1, got -3"),
        ("lpm", {"embedding_dim": "8"}, r"embedding_dim must be a whole number or null, got '8'"),
        ("lpm", {"hidden": [1e12]}, r"hidden must be a list of \(a whole number\) or null"),
        ("lpm", {"hidden": [10**12]}, r"hidden must be in \[1, 65536\]"),
        ("lpm", {"preset": "k562"}, r"preset must be one of 'lincs', 'replogle'"),
        ("lpm_ame", {"granger_weight": -1.0}, r"granger_weight must be ≥ 0"),
        ("peper", {"lr": 0}, r"lr must be > 0"),
        ("gene_graph", {"self_dropout": 1.5}, r"self_dropout must be in \[0, 1\]"),
    ],
)
def test_a_bad_parameter_is_refused_when_the_model_is_made(
    name: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(LpmInputError, match=message) as err:
        get_model(name, **params)
    assert f"model {name!r}" in str(err.value) and "\n" not in str(err.value)


def test_the_class_itself_checks_too_and_fit_checks_again() -> None:
    with pytest.raises(LpmInputError, match="n_components must be ≥ 1"):
        LinearModel(n_components=0)
    model = LinearModel()
    model.n_components = 0  # set after construction: fit refuses it before any work
    with pytest.raises(LpmInputError, match="n_components must be ≥ 1"):
        model.fit(boring_rows())


def test_settings_moved_out_of_the_parameters_say_where_they_went() -> None:
    pytest.importorskip("lightning")
    with pytest.raises(
        LpmInputError, match=r"devices is now a trainer option \(lpm train --devices"
    ):
        get_model("lpm_fast", devices=2)


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: 8 GB"),
    ],
)
def test_running_out_of_memory_names_the_sizes_to_lower(
    error: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("lightning")
    import lpm.models.peper as peper

    def out_of_memory(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(peper.PeperNet, "__init__", out_of_memory)
    with pytest.raises(
        LpmInputError, match=r"'peper' ran out of memory; lower width=8, hidden=32"
    ) as err:
        get_model("peper").fit(boring_rows())
    assert "\n" not in str(err.value)


def test_other_runtime_errors_are_not_taken_for_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import lpm.models.linear as linear

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("something else")

    monkeypatch.setattr(linear, "_top_svd", broken)
    with pytest.raises(RuntimeError, match="something else"):
        get_model("linear").fit(boring_rows())


def test_rows_without_a_key_column_are_refused() -> None:
    model = get_model("linear").fit(boring_rows())
    with pytest.raises(LpmInputError, match="miss column"):
        model.predict(pl.DataFrame({"context": ["toy/A"], "readout": ["G0"]}))

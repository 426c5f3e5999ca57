"""Which input drives a prediction (``lpm.tasks.explain``, ``lpm.models.ame``): post-hoc
importance of an LPM and the attention of a Granger-causal attentive mixture on tables whose
values depend only on the context or only on the perturbation; the Granger loss numerics; the
AME's model contract; the registered task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.base import NotFittedError
from lpm.models.registry import get_model, list_models, load_model
from tests.conftest import SMALL_LPM

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from lpm.models.ame import (  # noqa: E402
    AttentiveMixtureModel,
    granger_kl,
    granger_targets,
    leave_one_out,
    mixture,
)
from lpm.tasks.explain import (  # noqa: E402
    InputImportanceTask,
    importance_by,
    posthoc_importance,
    sanity_check,
    trained_importance,
)
from lpm.tasks.registry import get_task  # noqa: E402

#: The AME without a validation carve, a fixed number of epochs (the tiny tables have few
#: profiles, so early stopping on two of them is noise).
AME: dict[str, Any] = {"val_fraction": 0.0, "max_epochs": 40, "seed": 0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frame(driver: str, seed: int = 0) -> pl.DataFrame:
    """4 contexts × 8 perturbations × 12 readouts; values follow only the context or only the
    perturbation (a readout-specific profile each), plus a little noise."""
    rng = np.random.default_rng(seed)
    contexts = [f"toy/C{i}" for i in range(4)]
    perts = [f"CRISPRi:G{i}" for i in range(8)]
    readouts = [f"R{i}" for i in range(12)]
    by_ctx = {c: rng.normal(size=12) for c in contexts}
    by_pert = {p: rng.normal(size=12) for p in perts}
    rows = []
    for c in contexts:
        for p in perts:
            v = (by_ctx[c] if driver == "context" else by_pert[p]) + 0.05 * rng.normal(size=12)
            rows += [(c, p, r, float(x)) for r, x in zip(readouts, v, strict=True)]
    return pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")


def _shares(table: pl.DataFrame) -> dict[str, float]:
    agg = importance_by(table, by=None)
    return dict(zip(agg["input"].to_list(), agg["share"].to_list(), strict=True))


@pytest.fixture(scope="module")
def context_frame() -> pl.DataFrame:
    return _frame("context")


@pytest.fixture(scope="module")
def perturbation_frame() -> pl.DataFrame:
    return _frame("perturbation")


@pytest.fixture(scope="module")
def ame_context(context_frame: pl.DataFrame) -> AttentiveMixtureModel:
    return AttentiveMixtureModel(**AME).fit(context_frame)


@pytest.fixture(scope="module")
def ame_perturbation(perturbation_frame: pl.DataFrame) -> AttentiveMixtureModel:
    return AttentiveMixtureModel(**AME).fit(perturbation_frame)


# ---- post-hoc ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lpm_fast", "lpm"])
def test_posthoc_context_driven_values_give_the_context_the_importance(
    name: str, context_frame: pl.DataFrame
) -> None:
    model = get_model(name, max_epochs=15, seed=0, **SMALL_LPM).fit(context_frame)
    table = posthoc_importance(model, context_frame)
    shares = _shares(table)
    assert shares["perturbation"] < 0.02
    assert shares["context"] > 0.3
    mean = table["importance_perturbation"].mean()
    assert isinstance(mean, float) and abs(mean) < 0.01
    ctx = table["importance_context"].mean()
    assert isinstance(ctx, float) and ctx > 0.2


@pytest.mark.parametrize("name", ["lpm_fast", "lpm"])
def test_posthoc_perturbation_driven_values_give_the_perturbation_the_importance(
    name: str, perturbation_frame: pl.DataFrame
) -> None:
    model = get_model(name, max_epochs=15, seed=0, **SMALL_LPM).fit(perturbation_frame)
    shares = _shares(posthoc_importance(model, perturbation_frame))
    assert shares["context"] < 0.02
    assert shares["perturbation"] > 0.3
    by_pert = importance_by(posthoc_importance(model, perturbation_frame), by="perturbation")
    assert set(by_pert["perturbation"]) == set(perturbation_frame["perturbation"])
    sums = by_pert.group_by("perturbation").agg(pl.col("share").sum())["share"].to_numpy()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)


def test_posthoc_control_form_is_value_squared_minus_error(
    perturbation_frame: pl.DataFrame,
) -> None:
    model = get_model("lpm_fast", max_epochs=3, seed=0, **SMALL_LPM).fit(perturbation_frame)
    table = posthoc_importance(model, perturbation_frame, perturbation_neutral="control")
    expected = table["value"].to_numpy() ** 2 - table["error"].to_numpy()
    np.testing.assert_allclose(table["importance_perturbation"].to_numpy(), expected)
    np.testing.assert_allclose(table["perturbation_vs_control"].to_numpy(), expected)
    np.testing.assert_allclose(
        table["prediction"].to_numpy(), model.predict(perturbation_frame), rtol=1e-5, atol=1e-6
    )


# ---- the trained attentive mixture -------------------------------------------------------------
def test_ame_attention_follows_the_driving_input(
    ame_context: AttentiveMixtureModel,
    ame_perturbation: AttentiveMixtureModel,
    context_frame: pl.DataFrame,
    perturbation_frame: pl.DataFrame,
) -> None:
    ctx = _shares(trained_importance(ame_context, context_frame))
    assert ctx["context"] == max(ctx.values()) and ctx["context"] > 0.4
    assert ctx["perturbation"] < 0.3
    pert = _shares(trained_importance(ame_perturbation, perturbation_frame))
    assert pert["perturbation"] == max(pert.values()) and pert["perturbation"] > 0.4
    assert pert["context"] < 0.3
    # the leave-one-out (post-hoc) form agrees on the driver
    loo = _shares(posthoc_importance(ame_perturbation, perturbation_frame))
    assert loo["perturbation"] > loo["context"]


def test_ame_attention_rows_sum_to_one_and_predicts_well(
    ame_perturbation: AttentiveMixtureModel, perturbation_frame: pl.DataFrame
) -> None:
    a = ame_perturbation.attention(perturbation_frame)
    assert a.shape == (perturbation_frame.height, 3)
    assert ame_perturbation.experts_ == ["perturbation", "context", "readout"]
    np.testing.assert_allclose(a.sum(1), 1.0, rtol=1e-5)
    pred = ame_perturbation.predict(perturbation_frame)
    mse = float(np.mean((pred - perturbation_frame["value"].to_numpy()) ** 2))
    assert mse < 0.5 * float(perturbation_frame["value"].var())  # type: ignore[arg-type]


def test_granger_numerics_on_a_tiny_example() -> None:
    y = torch.tensor([[1.0, 2.0, 4.0]])
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    assert float(mixture(y, logits)) == pytest.approx(0.5 + 0.5 + 1.0)
    loo = leave_one_out(y, logits)[0]
    # without expert 0: (0.25*2 + 0.25*4) / 0.5 = 3; without 1: (0.5 + 1) / 0.75 = 2;
    # without 2: (0.5 + 0.5) / 0.75
    np.testing.assert_allclose(loo.numpy(), [3.0, 2.0, 1.0 / 0.75], rtol=1e-6)
    value = torch.tensor([2.0])
    err = (mixture(y, logits) - value) ** 2  # 0
    err_wo = (loo - value) ** 2  # [1, 0, ...]
    omega = granger_targets(err, err_wo.unsqueeze(0))
    delta = np.clip(err_wo.numpy() - err.numpy(), 0, None)
    np.testing.assert_allclose(omega[0].numpy(), delta / delta.sum(), rtol=1e-6)
    kl = granger_kl(omega, logits)
    assert float(kl) >= 0
    assert float(granger_kl(torch.softmax(logits, -1), logits)) == pytest.approx(0.0, abs=1e-6)
    # no expert helps: uniform targets, not a division by zero
    flat = granger_targets(torch.tensor([1.0]), torch.tensor([[0.5, 1.0, 0.2]]))
    np.testing.assert_allclose(flat.numpy(), [[1 / 3, 1 / 3, 1 / 3]])


def test_ame_contract_save_load_seed_and_unknown(
    perturbation_frame: pl.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        AttentiveMixtureModel().predict(perturbation_frame)
    params: dict[str, Any] = {"max_epochs": 3, "seed": 1}
    a = AttentiveMixtureModel(**params)
    assert a.fit(perturbation_frame) is a
    b = AttentiveMixtureModel(**params).fit(perturbation_frame)
    np.testing.assert_array_equal(a.predict(perturbation_frame), b.predict(perturbation_frame))
    a.save(tmp_path / "ame")
    again = _load(tmp_path / "ame")
    np.testing.assert_array_equal(a.predict(perturbation_frame), again.predict(perturbation_frame))
    np.testing.assert_array_equal(
        a.attention(perturbation_frame),
        again.attention(perturbation_frame),
    )
    novel = perturbation_frame.head(3).with_columns(pl.lit("CRISPRi:NEVER").alias("perturbation"))
    with pytest.raises(UnknownSymbolError, match="unknown"):
        a.predict(novel)
    combo = perturbation_frame.head(3).with_columns(
        pl.lit("CRISPRi:G0+CRISPRi:G1").alias("perturbation")
    )
    assert np.isfinite(a.predict(combo)).all()  # an unseen pair of known members


def test_ame_uses_dose_and_time_experts_where_present() -> None:
    rows = _frame("perturbation").with_columns(
        pl.lit(1.0).alias("dose"), pl.lit(24.0).alias("time")
    )
    model = AttentiveMixtureModel(max_epochs=1, val_fraction=0.0).fit(rows)
    assert model.experts_ == ["perturbation", "context", "readout", "dose", "time"]
    table = trained_importance(model, rows)
    assert {"importance_dose", "importance_time"} <= set(table.columns)


def _load(path: Path) -> Any:
    """``load_model`` once ``lpm_ame`` is registered; the class's own loader until then."""
    if "lpm_ame" in list_models():
        return load_model(path)
    config = json.loads((path / "model.json").read_text())
    assert config["model"] == "lpm_ame"
    return AttentiveMixtureModel._from_saved(path, config)


def test_the_registered_task_explains_posthoc_or_by_attention(
    perturbation_frame: pl.DataFrame, ame_perturbation: AttentiveMixtureModel
) -> None:
    model = get_model("lpm_fast", **SMALL_LPM, max_epochs=3, val_fraction=0).fit(perturbation_frame)
    task = get_task("explain", perturbation_neutral="control")
    assert isinstance(task, InputImportanceTask) and task.needs_model()
    expected = posthoc_importance(model, perturbation_frame, perturbation_neutral="control")
    assert task.run(perturbation_frame, model=model).equals(expected)
    attention = get_task("explain", method="attention").run(
        perturbation_frame, model=ame_perturbation
    )
    assert attention.equals(trained_importance(ame_perturbation, perturbation_frame))
    with pytest.raises(LpmInputError, match="unknown method 'shap'"):
        get_task("explain", method="shap")


def test_bad_input_is_an_input_error(perturbation_frame: pl.DataFrame) -> None:
    model = get_model("context_mean").fit(perturbation_frame)
    with pytest.raises(LpmInputError, match="cannot be explained"):
        posthoc_importance(model, perturbation_frame)


def test_sanity_check_numbers() -> None:
    scores = pl.DataFrame({"perturbation": ["a", "b", "c", "d"], "s": [0.0, 0.1, 1.0, 2.0]})
    truth = pl.DataFrame(
        {"perturbation": ["a", "b", "c", "d"], "has_downstream_effect": [False, False, True, True]}
    )
    out = sanity_check(scores, truth)["s"]
    assert out["auroc"] == 1.0
    assert out["mean_no_effect"] == pytest.approx(0.05) and out["mean_effect"] == pytest.approx(1.5)


def test_rows_without_a_dose_give_the_dose_expert_no_attention() -> None:
    """Knock-downs beside dosed compounds: the dose expert is masked out of undosed rows (it
    would otherwise act as a bias and take their attention), and the loss stays finite."""
    frame = _frame("perturbation")
    dosed = pl.col("perturbation").is_in(["CRISPRi:G0", "CRISPRi:G1"])
    frame = frame.with_columns(
        perturbation=pl.when(dosed)
        .then(pl.col("perturbation").str.replace("CRISPRi:", "compound:"))
        .otherwise(pl.col("perturbation")),
        dose=pl.when(dosed).then(pl.lit(1.0)).otherwise(pl.lit(None, dtype=pl.Float64)),
    )
    ame = AttentiveMixtureModel(**{**AME, "max_epochs": 5}).fit(frame)
    assert "dose" in ame.experts_
    att = ame.attention(frame)
    j = ame.experts_.index("dose")
    has_dose = frame["dose"].is_not_null().to_numpy()
    assert np.all(att[~has_dose, j] == 0.0)
    assert np.all(att[has_dose, j] > 0.0)
    np.testing.assert_allclose(att.sum(axis=1), 1.0, rtol=1e-5)
    logits = torch.tensor([[0.0, float("-inf"), 1.0]])
    omega = torch.tensor([[0.5, 0.0, 0.5]])
    assert torch.isfinite(granger_kl(omega, logits))


def test_group_means_sum_in_row_order_so_repeated_runs_give_the_same_bits() -> None:
    """Means over large groups are summed in row order (numpy), not split across threads."""
    from lpm.tasks.explain import group_means

    rng = np.random.default_rng(0)
    n = 300_000
    t = pl.DataFrame({"g": rng.integers(0, 3, n).astype(str), "v": rng.normal(size=n) * 1e3})
    got = group_means(t, ["g"], {"v": "mean_v"})
    for g, mean_v, count in got.iter_rows():
        values = t.filter(pl.col("g") == g)["v"].to_numpy()
        assert count == len(values)
        assert mean_v == np.add.reduceat(values, [0])[0] / len(values)  # bit for bit
    assert got.equals(group_means(t, ["g"], {"v": "mean_v"}))
    expected = t.group_by("g").agg(pl.col("v").mean()).sort("g")["v"].to_numpy()
    np.testing.assert_allclose(got["mean_v"].to_numpy(), expected, rtol=1e-12)
    overall = group_means(t, [], {"v": "m"})
    assert overall["n"][0] == n

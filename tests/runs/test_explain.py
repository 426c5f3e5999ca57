"""``lpm explain`` as a run (``lpm.runs.explain``): the models fitted, held-out rows explained,
tables, figure and summary written as one folder; bad input refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.models.registry import get_model

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from lpm.runs.explain import FILES, run_explain  # noqa: E402
from tests.conftest import SMALL_LPM  # noqa: E402
from tests.tasks.test_explain import _frame  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def perturbation_frame() -> pl.DataFrame:
    return _frame("perturbation")


# ---- the run ------------------------------------------------------------------------
def test_run_explain_writes_its_files(perturbation_frame: pl.DataFrame, tmp_path: Path) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    perts = sorted(set(perturbation_frame["perturbation"]))
    pl.DataFrame(
        {"perturbation": perts, "has_downstream_effect": [i % 2 == 0 for i in range(len(perts))]}
    ).write_parquet(truth / "perturbations.parquet")
    res = run_explain(
        perturbation_frame,
        out=tmp_path / "out",
        truth=truth,
        lpm_params={**SMALL_LPM, "max_epochs": 3},
        ame_params={"max_epochs": 2},
        test_fraction=0.25,
    )
    for f in res.files:
        assert f.is_file() and f.stat().st_size > 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["shares"]) == {"posthoc", "ame_attention"}
    assert summary["test_mse"]["lpm"] >= 0 and summary["test_mse"]["ame"] >= 0
    assert "auroc" in summary["sanity_check"]["posthoc_vs_control"]
    rows = pl.read_parquet(tmp_path / "out" / "importance_rows.parquet")
    assert set(rows["method"]) == {"posthoc", "ame_attention"}
    assert (tmp_path / "out" / "importance.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(LpmInputError, match="already exists"):
        run_explain(perturbation_frame, out=tmp_path / "out", train_ame=False)


def test_bad_input_is_an_input_error(perturbation_frame: pl.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(LpmInputError, match="no rows"):
        run_explain(perturbation_frame.head(0), out=tmp_path / "a")
    nan = perturbation_frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(float("nan"))
        .otherwise(pl.col("value"))
        .alias("value")
    )
    with pytest.raises(LpmInputError, match="non-finite"):
        run_explain(nan, out=tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    model = get_model("context_mean").fit(perturbation_frame)
    with pytest.raises(LpmInputError, match="cannot be explained"):
        run_explain(perturbation_frame, out=tmp_path / "c", model=model, train_ame=False)
    assert not (tmp_path / "c").exists()
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    with pytest.raises(LpmInputError, match="is a file"):
        run_explain(tmp_path / "no_store", out=a_file, overwrite=True)
    assert a_file.read_text() == "mine"


def test_the_files_are_the_ones_listed(perturbation_frame: pl.DataFrame, tmp_path: Path) -> None:
    res = run_explain(
        perturbation_frame,
        out=tmp_path / "out",
        train_ame=False,
        lpm_params={**SMALL_LPM, "max_epochs": 2},
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)
    assert "posthoc: share of importance by input" in str(res)


def test_a_seed_among_the_model_params_is_the_models_seed(
    perturbation_frame: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--param lpm_ame.seed=1`` (or ``lpm_fast.seed``) overrides the run's seed for that model
    instead of failing with two values for one parameter."""
    from lpm.models import registry

    made: dict[str, int] = {}
    make_model = registry.make_model

    def spy(name: str, params: object = None, *, seed: int) -> object:
        model = make_model(name, params, seed=seed)  # type: ignore[arg-type]
        made[name] = model.get_params()["seed"]
        return model

    monkeypatch.setattr(registry, "make_model", spy)
    run_explain(
        perturbation_frame,
        out=tmp_path / "out",
        lpm_params={**SMALL_LPM, "max_epochs": 1, "seed": 3},
        ame_params={"max_epochs": 1, "seed": 1},
        seed=0,
    )
    assert made == {"lpm_fast": 3, "lpm_ame": 1}
    options = json.loads((tmp_path / "out" / "summary.json").read_text())["options"]
    assert options["ame_params"] == {"max_epochs": 1, "seed": 1} and options["seed"] == 0

"""The registry: one seed rule for every run, capabilities in descriptions, and a damaged model
folder is one line naming the file at fault, never an internal error."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lpm.errors import LpmInputError
from lpm.models.registry import describe_model, get_model, load_model, make_model
from tests.conftest import boring_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---- the seed rule ------------------------------------------------------------------------------
def test_a_run_seed_goes_to_models_that_take_one_unless_given() -> None:
    assert make_model("lpm_ame", seed=7).get_params()["seed"] == 7
    assert make_model("lpm_ame", {"seed": 3}, seed=7).get_params()["seed"] == 3
    assert make_model("linear", {"n_components": 2}, seed=7).get_params() == {
        "n_components": 2, "ridge": 0.1, "perturbation_embeddings": "training", "pool_doses": True,
    }  # fmt: skip
    with pytest.raises(LpmInputError, match="no parameter"):
        make_model("linear", {"seed": 1}, seed=7)


def test_describe_lists_capabilities() -> None:
    lpm = describe_model("lpm_fast")["capabilities"]
    assert lpm["streams"] and lpm["gives_spread"] and lpm["uses_trainer"] and lpm["resumes"]
    assert describe_model("peper")["capabilities"]["flags_fallback"]
    assert describe_model("precomputed")["capabilities"]["needs_inputs"] == ["path"]


# ---- damaged folders ----------------------------------------------------------------------------
SMALL: dict[str, Any] = {"embedding_dim": 4, "hidden": [8], "max_epochs": 2, "val_fraction": 0}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("lightning")
    path = tmp_path_factory.mktemp("saved") / "m"
    get_model("lpm_fast", **SMALL).fit(boring_rows()).save(path)
    return path


@pytest.fixture
def damaged(saved: Path, tmp_path: Path) -> Path:
    path = tmp_path / "m"
    shutil.copytree(saved, path)
    return path


def _edit_config(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    config = json.loads((path / "model.json").read_text())
    change(config)
    (path / "model.json").write_text(json.dumps(config))


def _refused(path: Path, where: str, problem: str) -> None:
    with pytest.raises(LpmInputError, match=problem) as err:
        load_model(path)
    assert str(err.value).startswith(where) and "\n" not in str(err.value)


def test_the_intact_folder_loads(saved: Path) -> None:
    rows = boring_rows()
    assert np.isfinite(load_model(saved).predict(rows)).all()


def test_a_renamed_model_names_the_config(damaged: Path) -> None:
    _edit_config(damaged, lambda c: c.update(model="lpm_turbo"))
    _refused(
        damaged, str(damaged / "model.json"), "names model 'lpm_turbo', which is not registered"
    )


def test_a_corrupt_config_names_it(damaged: Path) -> None:
    (damaged / "model.json").write_text('{"model": "lpm_fast", "params": ')
    _refused(damaged, str(damaged / "model.json"), "corrupt model config")


def test_an_edited_parameter_names_the_config(damaged: Path) -> None:
    _edit_config(damaged, lambda c: c["params"].update(bogus=1))
    _refused(damaged, str(damaged / "model.json"), "has no parameter")
    _edit_config(damaged, lambda c: (c["params"].pop("bogus"), c["params"].update(max_epochs=-1)))
    _refused(damaged, str(damaged / "model.json"), "max_epochs must be ≥ 1")


def test_deleted_arrays_name_the_file(damaged: Path) -> None:
    (damaged / "arrays.npz").unlink()
    _refused(damaged, str(damaged / "arrays.npz"), "missing")


def test_truncated_arrays_name_the_file(damaged: Path) -> None:
    data = (damaged / "arrays.npz").read_bytes()
    (damaged / "arrays.npz").write_bytes(data[: len(data) // 2])
    _refused(damaged, str(damaged / "arrays.npz"), "truncated or corrupt")


def test_arrays_of_another_network_shape_are_refused_at_load(damaged: Path) -> None:
    _edit_config(damaged, lambda c: c["state"]["network"].update(embedding_dim=16))
    _refused(damaged, str(damaged), "do not match model.json")


def test_a_deleted_vocabulary_table_is_named(damaged: Path) -> None:
    (damaged / "tables" / "vocab_readouts.parquet").unlink()
    _refused(damaged, str(damaged), "vocab_readouts")


def test_a_truncated_table_is_named(damaged: Path) -> None:
    table = damaged / "tables" / "vocab_readouts.parquet"
    table.write_bytes(table.read_bytes()[:20])
    _refused(damaged, str(damaged / "tables"), "cannot be read")


def test_a_damaged_folder_is_exit_2_in_one_line_from_the_cli(damaged: Path, tmp_path: Path) -> None:
    from tests.conftest import error_line, lpm

    (damaged / "arrays.npz").unlink()
    boring_rows().head(5).write_csv(tmp_path / "rows.csv")
    proc = lpm("predict", "--model", str(damaged), "--rows", str(tmp_path / "rows.csv"),
               "--out", str(tmp_path / "p.parquet"))  # fmt: skip
    assert proc.returncode == 2
    assert "arrays.npz: missing" in error_line(proc)


def test_lpm_models_prints_each_model_readably() -> None:
    from tests.conftest import lpm

    proc = lpm("models")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) < 200  # not one long line per model
    start = lines.index(next(x for x in lines if x.startswith("lpm_fast (model):")))
    block = lines[start + 1 : start + 4]
    assert block[0].startswith("  can: streams, gives spread, uses trainer, resumes, data parallel")
    assert "  preset = \"replogle\"  (text; one of 'lincs', 'replogle')" in lines[start:]
    assert any(x.startswith("precomputed (model)") for x in lines)
    assert "  can: needs path" in lines

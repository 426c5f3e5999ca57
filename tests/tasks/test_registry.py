"""Conformance of every discovery task (``lpm.tasks.registry``), as for models: builds with
defaults, refuses unknown parameters, gives a non-empty tidy table, the same table twice, and a
clear error when it needs a model and gets none."""

from __future__ import annotations

import doctest

import polars as pl
import pytest

from lpm.errors import LpmError, LpmInputError
from lpm.models.registry import get_model
from lpm.sim.simulate import simulate
from lpm.tasks import registry
from lpm.tasks.base import DiscoveryTask
from lpm.tasks.registry import describe_task, get_task, list_tasks, register_task

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

#: Every task, with the parameter sets exercised (each grn method is its own case).
CASES = [
    ("moa", {}),
    ("grn", {}),
    ("grn", {"method": "embedding"}),
    ("grn", {"method": "imputed"}),
    ("explain", {}),
    ("embed", {}),
    ("embed", {"kind": "context"}),
    ("interactions", {"min_abs_z": 2.0}),
]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None
) -> tuple[pl.DataFrame, object]:
    out = tmp_path_factory.mktemp("sim") / "w"
    rows = simulate(out, n_genes=60, n_perturbations=30, n_contexts=2, seed=0).open().read()
    small = {"embedding_dim": 8, "hidden": [32, 32], "batch_size": 64, "lr": 1e-2}
    model = get_model("lpm_fast", max_epochs=3, seed=0, **small).fit(rows)
    return rows, model


@pytest.mark.parametrize(("name", "params"), CASES, ids=lambda c: str(c))
def test_every_task_gives_the_same_nonempty_table_twice(
    world: tuple[pl.DataFrame, object], name: str, params: dict[str, str]
) -> None:
    rows, model = world
    task = get_task(name, **params)
    assert isinstance(task, DiscoveryTask) and task.get_params().items() >= params.items()
    assert repr(task).startswith(type(task).__name__ + "(")
    data = rows.sample(n=min(rows.height, 3000), seed=0) if name == "explain" else rows
    first = task.run(data, model=model)  # type: ignore[arg-type]
    assert isinstance(first, pl.DataFrame) and first.height > 0
    assert first.equals(task.run(data, model=model)), "the same inputs give the same table"  # type: ignore[arg-type]
    if task.needs_model():
        with pytest.raises(LpmInputError, match="needs a fitted model"):
            task.run(data)
    with pytest.raises(LpmInputError, match="must be a long table"):
        task.run(data.to_pandas(), model=model)  # type: ignore[arg-type]


def test_every_task_builds_with_defaults_and_refuses_unknown_names() -> None:
    assert list_tasks() == ["embed", "explain", "grn", "interactions", "moa"]
    for name in list_tasks():
        task = get_task(name)
        assert task.get_params() == describe_task(name)["params"]
        assert describe_task(name)["needs_model"] == task.needs_model()
        with pytest.raises(LpmInputError, match="has no parameter"):
            get_task(name, bogus=1)
    with pytest.raises(LpmInputError, match="unknown task 'nope'"):
        get_task("nope")
    with pytest.raises(LpmInputError, match="unknown method"):
        get_task("grn", method="nope")


class _Echo(DiscoveryTask):
    """The data it was given."""

    def __init__(self, *, n: int = 1):
        self.n = n

    def _run(self, data: pl.DataFrame | None, model: object) -> pl.DataFrame:
        assert data is not None
        return data.head(self.n)


def test_a_registered_task_is_found_by_name_and_a_taken_name_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry._TASKS, "_registered", {})
    register_task("echo", _Echo)
    assert "echo" in list_tasks() and describe_task("echo")["summary"] == "The data it was given."
    rows = pl.DataFrame({"context": ["a", "b"]})
    assert get_task("echo", n=1).run(rows).height == 1
    with pytest.raises(LpmError, match="already registered"):
        register_task("echo", _Echo)
    with pytest.raises(LpmError, match="already registered"):
        register_task("moa", _Echo)
    with pytest.raises(LpmError, match="not a DiscoveryTask"):
        register_task("other", dict)  # type: ignore[arg-type]
    with pytest.raises(LpmInputError, match="needs data"):
        get_task("echo").run()


def test_importing_a_task_module_registers_nothing() -> None:
    import subprocess
    import sys

    code = (
        "import lpm.tasks.moa, lpm.tasks.grn, lpm.tasks.explain, lpm.tasks.embeddings, "
        "lpm.tasks.interactions, lpm.tasks.registry as r; print(r._TASKS._registered)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "{}"


def test_docstring_examples() -> None:
    result = doctest.testmod(registry, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

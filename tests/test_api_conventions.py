"""House API rules over every public name: data first, at most three positional parameters,
no positional booleans (scanpy's check, in spirit); and `import lpm` stays light."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

PUBLIC = [
    "lpm.data",
    "lpm.data.io",
    "lpm.models",
    "lpm.evaluation",
    "lpm.tasks",
    "lpm.design",
    "lpm.pl",
    "lpm.sim",
    "lpm.priors",
    "lpm.reports",
]


def _functions() -> list[tuple[str, object]]:
    out = []
    for mod_name in PUBLIC:
        mod = importlib.import_module(mod_name)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                out.append((f"{mod_name}.{name}", obj))
    return out


@pytest.mark.parametrize(("name", "func"), _functions(), ids=[n for n, _ in _functions()])
def test_at_most_three_positional_and_no_positional_booleans(name: str, func: object) -> None:
    sig = inspect.signature(func)  # type: ignore[arg-type]
    positional = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert len(positional) <= 3, f"{name} has {len(positional)} positional parameters"
    for p in positional:
        assert "bool" not in str(p.annotation), (
            f"{name}: boolean parameter {p.name} must be keyword-only"
        )


def test_import_lpm_is_light() -> None:
    code = "import sys, lpm; heavy = [m for m in ('torch', 'anndata', 'matplotlib', 'polars', 'sklearn') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "old", ["lpm.data.simulate", "lpm.tasks.references", "lpm.models.workflow"]
)
def test_a_module_moved_in_0_2_0_says_where_it_went(old: str) -> None:
    from lpm._utils.moved import MOVED

    with pytest.raises(ModuleNotFoundError, match=rf"{old} moved in lpm 0\.2\.0: use "):
        importlib.import_module(old)
    assert MOVED[old].split()[0].startswith("lpm.")


def test_every_moved_module_points_at_one_that_exists() -> None:
    from lpm._utils.moved import MOVED

    for old, new in MOVED.items():
        with pytest.raises(ModuleNotFoundError, match=r"moved in lpm 0\.2\.0"):
            importlib.import_module(old)
        importlib.import_module(new.split()[0])

"""The house stays as built: modules split before 600 lines, functions under 80 (import layers
are checked by ``lint-imports`` in ``make test``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCES = sorted((REPO / "src" / "lpm").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(REPO)) for p in SOURCES])
def test_modules_under_600_lines_and_functions_under_80(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 600, "split the module by what its parts are"
    functions = [
        (node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    long = [f"{name} ({n} lines)" for name, n in functions if n > 80]
    assert not long, f"functions over 80 lines: {', '.join(long)}"

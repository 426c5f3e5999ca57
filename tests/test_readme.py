"""The README's Python tour runs as written (on a toy store where it says ``stores/mine``), and
needs no private module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lpm.data.store import write_store
from tests.conftest import REPO, boring_rows


def _python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_python_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _python_blocks()
    assert blocks, "the README shows the Python API"
    write_store(boring_rows(), tmp_path / "stores" / "mine")
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        assert not re.search(r"lpm(\.\w+)*\._", code), "the tour uses public names only"
        namespace: dict[str, object] = {}
        exec(compile(code, "README.md", "exec"), namespace)
        assert namespace["edges"].height > 0  # type: ignore[attr-defined]

"""The one figure writer (``lpm.pl.save``): a whole PNG, an existing one kept unless asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from lpm.errors import LpmInputError
from lpm.pl.save import save_png


def test_a_png_is_written_whole_and_replaced_only_when_asked(tmp_path: Path) -> None:
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().set_title("t")
    out = save_png(fig, tmp_path / "f.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(LpmInputError, match="already exists"):
        save_png(fig, out, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"], "no temporary file left"

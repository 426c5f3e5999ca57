"""The one writer of figures: a PNG appears whole or not at all, and its memory is freed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lpm._utils.atomic import atomic_file


def save_png(fig: Any, path: str | Path, *, dpi: int = 110, overwrite: bool = True) -> Path:
    """Write ``fig`` as PNG beside ``path`` then rename it onto ``path``.

    ``overwrite`` is the caller's: ``True`` inside a fresh output folder, the user's flag for a
    figure the user named. A figure pyplot manages is closed (pyplot keeps every figure alive).
    """
    out = Path(path)
    try:
        with atomic_file(out, overwrite=overwrite) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close(fig)
    return out


__all__ = ["save_png"]

"""Figures appear whole or not at all, and free their memory once written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lpm._utils.atomic import atomic_file


def save_png(fig: Any, path: str | Path, *, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG beside ``path`` then rename onto it; close it (pyplot keeps figures)."""
    import matplotlib.pyplot as plt

    out = Path(path)
    try:
        with atomic_file(out, overwrite=True) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return out

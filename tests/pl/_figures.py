"""What a drawn figure says: its titles, axis labels and texts, for the figure tests."""

from __future__ import annotations

from typing import Any


def texts(fig: Any) -> list[str]:
    """Every title, axis label, tick label, legend entry and text drawn in ``fig``."""
    out = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts]
        out += [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
    return [t for t in out if t]


def assert_labelled(fig: Any) -> None:
    """A Figure (not saved, not managed by pyplot) whose every panel has a title."""
    import sys

    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    assert fig.axes, "nothing drawn"
    titled = [ax for ax in fig.axes if ax.get_title() or ax.get_label() == "<colorbar>"]
    assert len(titled) == len(fig.axes) or fig._suptitle is not None
    if "matplotlib.pyplot" in sys.modules:  # pyplot would keep it alive: it must not know it
        assert fig not in [
            m.canvas.figure
            for m in sys.modules["matplotlib._pylab_helpers"].Gcf.get_all_fig_managers()
        ]

"""``lpm``: a thin command line over the Python API. Each command parses its options, makes one
``lpm.runs`` call and prints a short summary; no logic lives only here.

Errors lpm raises on purpose print as one line (``error: FILE: problem``) and exit 2; Ctrl-C
prints what was kept and exits 130; anything else exits 1 with a one-line summary.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from lpm.cli import data, design, discovery, models
from lpm.cli._shared import console
from lpm.errors import Interrupted, LpmError, first_line

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="lpm: in-silico perturbation biology."
)
for _commands in (data, models, discovery, design):
    _commands.register(app)

#: What Ctrl-C outside a run that keeps something prints (outputs are written whole or not at all).
INTERRUPTED = "interrupted; nothing written"


def _interrupted(exc: BaseException) -> bool:
    """Whether an exit came from Ctrl-C (typer and click turn it into an exit of their own)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


def main() -> None:
    """Console entry point (``lpm``); set LPM_DEBUG=1 for the traceback of an internal error."""
    try:
        app()
    except Interrupted as exc:
        _say(escape(str(exc)))
        sys.exit(130)
    except LpmError as exc:
        _say(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        _say(INTERRUPTED)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code not in (0, None) and _interrupted(exc):
            _say(INTERRUPTED)
            sys.exit(130)
        raise
    except Exception as exc:
        if os.environ.get("LPM_DEBUG"):
            raise
        first = first_line(exc) if str(exc).strip() else ""
        name = type(exc).__name__
        _say(
            f"[bold red]internal error:[/] {name}: {escape(first)} (LPM_DEBUG=1 shows the traceback)"
        )
        sys.exit(1)


__all__ = ["INTERRUPTED", "app", "main"]

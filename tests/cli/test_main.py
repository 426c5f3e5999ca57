"""Ctrl-C at the command line: one line, exit 130; a run that kept a checkpoint says where."""

from __future__ import annotations

import pytest
import typer

import lpm.cli as cli
from lpm.errors import Interrupted


def _app_raising(error: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def run() -> None:
        raise error

    @app.command()
    def other() -> None:  # two commands: typer takes the command's name
        pass

    return app


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (KeyboardInterrupt(), "interrupted; nothing written"),
        (
            Interrupted("interrupted; checkpoint kept at m.checkpoints"),
            "interrupted; checkpoint kept at m.checkpoints",
        ),
    ],
)
def test_ctrl_c_is_one_line_and_exit_130(
    error: BaseException,
    line: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "app", _app_raising(error))
    monkeypatch.setattr("sys.argv", ["lpm", "run"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == line


def test_other_exits_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "app", _app_raising(SystemExit(3)))
    monkeypatch.setattr("sys.argv", ["lpm", "run"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 3

"""The `gameplane` command as a newcomer meets it: -h, --version, and help that fits 80 columns."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from gameplane.cli.main import app

runner = CliRunner()


def _command_paths() -> list[list[str]]:
    root = get_command(app)
    paths: list[list[str]] = [[]]

    def walk(cmd: object, prefix: list[str]) -> None:
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def test_every_command_is_discovered() -> None:
    # negative control for the parametrised checks below: they must see the nested commands
    assert ["up"] in _command_paths() and ["wallet", "reconcile"] in _command_paths()


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "gameplane")
def test_help_fits_80_columns_on_a_wide_terminal_without_truncation(path: list[str]) -> None:
    out = runner.invoke(app, [*path, "-h"], env={"COLUMNS": "200"}, prog_name="gameplane")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("Usage: gameplane")
    assert max(len(line) for line in lines) <= 80, out.output
    # click cuts a too-long summary with "..." at the end of the line; rich would with "…"
    assert "…" not in out.output and not any(ln.endswith("...") for ln in lines[1:]), out.output


def test_version_prints_the_distribution_version() -> None:
    for flag in ("--version", "-V"):
        out = runner.invoke(app, [flag], prog_name="gameplane")
        assert out.exit_code == 0
        assert out.output.strip() == f"gameplane {version('gameplane')}"

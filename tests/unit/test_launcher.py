"""`python -m gameplane <service>`: the service image's entrypoint picks a service from the catalogue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gameplane import __main__ as launcher
from gameplane import catalog


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Modules the launcher would run (nothing is started)."""
    calls: list[str] = []
    monkeypatch.setattr(launcher.runpy, "run_module", lambda module, **kw: calls.append(module))
    monkeypatch.delenv("GP_SERVICE", raising=False)
    return calls


def test_runs_the_named_service_module(ran: list[str]) -> None:
    assert launcher.main(["wallet"]) == 0
    assert ran == ["gameplane.wallet"]


def test_simulators_are_services_too(ran: list[str]) -> None:
    assert launcher.main(["rgs"]) == 0
    assert ran == [catalog.get("rgs").module] == ["gameplane.simulators.rgs"]


def test_env_fallback_and_argument_precedence(ran: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GP_SERVICE", "sessions")
    assert launcher.main([]) == 0
    assert launcher.main(["games"]) == 0  # the argument wins over the environment
    assert ran == ["gameplane.sessions", "gameplane.games"]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["nope"], None, "unknown service 'nope'"),
        (["backoffice"], None, "service 'backoffice' is not built"),
        ([], None, "no service given"),
        ([], "backoffice", "service 'backoffice' is not built"),
        ([], "", "no service given"),
    ],
)
def test_refuses_with_one_line_and_exit_2(
    ran: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    argv: list[str], env: str | None, expected: str, backoffice_unbuilt: str,
) -> None:  # fmt: skip
    if env is not None:
        monkeypatch.setenv("GP_SERVICE", env)
    assert launcher.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m gameplane: ") and expected in err, err
    assert "gateway" in err  # says what would have worked
    assert ran == []


def test_reload_needs_a_directory(ran: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher.main(["--reload", "/nonexistent-dir", "gateway"]) == 2
    assert capsys.readouterr().err == "python -m gameplane: --reload /nonexistent-dir: not a directory\n"
    assert ran == []


@pytest.mark.parametrize("release", ["this", "without the back office"])
def test_every_built_service_resolves_and_no_unbuilt_one_does(release: str, request: pytest.FixtureRequest) -> None:
    if release != "this":
        request.getfixturevalue("backoffice_unbuilt")
    for s in catalog.SERVICES:
        if s.built:
            assert launcher.resolve(s.name) is s
        else:
            with pytest.raises(launcher.UsageError, match="not built"):
                launcher.resolve(s.name)


def test_real_process_exit_code_and_stderr(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "gameplane", "poker"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=60)  # fmt: skip
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines() == [r.stderr.strip()] and "unknown service 'poker'" in r.stderr

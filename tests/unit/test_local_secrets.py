"""The local platform's secrets file: readable by its user alone, replaced whole, absent means {}."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gameplane.devtools import localsecrets


def test_the_file_is_written_0600_whatever_the_umask_and_read_back(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive a shell could have
    try:
        path = localsecrets.write(tmp_path, {"service_token_secret": "s" * 32, "providers": {"rgs": {"secret": "k"}}})
    finally:
        os.umask(old)
    assert path == tmp_path / "secrets.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert localsecrets.read(tmp_path)["providers"]["rgs"]["secret"] == "k"


def test_a_readable_older_file_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    stale = tmp_path / "secrets.json"
    stale.write_text('{"service_token_secret": "old"}')
    stale.chmod(0o644)
    localsecrets.write(tmp_path, {"service_token_secret": "new"})
    assert stale.stat().st_mode & 0o777 == 0o600 and localsecrets.read(tmp_path) == {"service_token_secret": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]  # no temporary file left behind


def test_no_platform_means_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert localsecrets.read(tmp_path) == {}
    (tmp_path / "secrets.json").write_text("not json")
    assert localsecrets.read(tmp_path) == {}
    monkeypatch.setenv(localsecrets.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert localsecrets.path() == tmp_path / "elsewhere" / "secrets.json"


def test_a_local_run_gives_payments_and_the_psp_simulator_the_same_fresh_credentials() -> None:
    psps = localsecrets.psp_credentials("http://127.0.0.1:8101")
    again = localsecrets.psp_credentials("http://127.0.0.1:8101")
    assert set(psps) == {"simpsp", "cardgw"}
    for name, cfg in psps.items():
        assert cfg["base_url"] == "http://127.0.0.1:8101"
        assert len(cfg["secret"]) == 64 and cfg["secret"] != again[name]["secret"]  # fresh per run
        assert cfg["api_key"] != again[name]["api_key"]
    assert psps["simpsp"]["secret"] != psps["cardgw"]["secret"]  # a body signed for one PSP fails the other

    env = localsecrets.psp_env(psps, "http://127.0.0.1:8000")
    payments, simulator = env["payments"], env["psp"]
    assert json.loads(payments["GP_PAYMENTS_PSPS"]) == psps
    assert payments["GP_PAYMENTS_DEV_MODE"] == "true" and payments["GP_PAYMENTS_PUBLIC_URL"] == "http://127.0.0.1:8000"
    assert json.loads(simulator["GP_PSP_SECRETS"]) == {
        n: {"secret": c["secret"], "api_key": c["api_key"]} for n, c in psps.items()}
    assert simulator["GP_PSP_WEBHOOK_URL_BASE"] == "http://127.0.0.1:8000"
    assert simulator["GP_PSP_SIMPSP_SECRET"] == psps["simpsp"]["secret"]
    assert simulator["GP_PSP_CARDGW_API_KEY"] == psps["cardgw"]["api_key"]
    assert not any("DEV_MODE" in k for k in simulator)

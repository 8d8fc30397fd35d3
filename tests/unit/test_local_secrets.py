"""The local platform's secrets file: readable by its user alone, replaced whole, absent means {}."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gameplane.devtools import localsecrets
from gameplane.payments.settings import PaymentsSettings
from gameplane.simulators.psp.settings import PspSettings


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


def test_a_local_run_gives_payments_and_the_psp_simulator_the_same_fresh_credentials(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    psps = localsecrets.psp_credentials("http://127.0.0.1:8101")
    again = localsecrets.psp_credentials("http://127.0.0.1:8101")
    assert set(psps) == {"simpsp", "cardgw"}
    for name, cfg in psps.items():
        assert len(cfg["secret"]) == 64 and cfg["secret"] != again[name]["secret"]  # fresh per run
        assert cfg["api_key"] != again[name]["api_key"]
    assert psps["simpsp"]["secret"] != psps["cardgw"]["secret"]  # a body signed for one PSP fails the other

    env = localsecrets.psp_env(psps, "http://127.0.0.1:8000")
    # What each process makes of its environment, read by its own settings class.
    for key in [k for k in os.environ if k.startswith(("GP_PSP_", "GP_PAYMENTS_"))]:
        monkeypatch.delenv(key)
    for key, value in {**env["payments"], **env["psp"]}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GP_PSP_SECRETS_DIR", str(tmp_path))  # no mounted Secret to fall back on
    monkeypatch.setenv("GP_PSP_ENDPOINTS", json.dumps({"gateway": "http://127.0.0.1:8000"}))
    simulator, payments = PspSettings(), PaymentsSettings()
    assert simulator.enabled() == ("simpsp", "cardgw")
    assert set(payments.psps) == {"simpsp", "cardgw"} and not payments.dev_mode  # fresh keys: no dev exception
    for name in ("simpsp", "cardgw"):
        assert payments.psps[name].secret == simulator.secret(name)  # what the simulator signs with
        assert payments.psps[name].api_key == simulator.api_key(name)  # what the simulator checks
        assert simulator.webhook_url(name) == f"http://127.0.0.1:8000/webhooks/payments/{name}"  # the gateway
    # each adapter talks to its own dialect's API on the simulator
    assert payments.psps["simpsp"].base_url == "http://127.0.0.1:8101/simpsp"
    assert payments.psps["cardgw"].base_url == "http://127.0.0.1:8101/cardgw"
    assert payments.public_url == "http://127.0.0.1:8000"
    # one form only: the per-dialect variables the simulator documents
    assert sorted(env["psp"]) == ["GP_PSP_CARDGW_API_KEY", "GP_PSP_CARDGW_SECRET",
                                  "GP_PSP_SIMPSP_API_KEY", "GP_PSP_SIMPSP_SECRET"]

"""The games service reads provider keys the way the Helm chart hands them over."""

import json

import pytest
from pydantic import ValidationError

from gameplane.games.settings import GamesSettings


def test_chart_provider_list_reads_keys_from_the_mounted_secrets(tmp_path, monkeypatch):
    acme = tmp_path / "acme"
    acme.mkdir()
    (acme / "secret").write_text("acme-hmac-key-0123456789abcdef\n")
    agg = tmp_path / "agg"
    agg.mkdir()
    (agg / "dialect").write_text("aggregator")
    (agg / "public_key_pem").write_text("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----")
    (agg / "unrelated").write_text("ignored")
    monkeypatch.setenv("GP_GAMES_PROVIDERS_DIR", str(tmp_path))
    monkeypatch.setenv("GP_GAMES_PROVIDERS", json.dumps([
        {"name": "acme", "baseUrl": "https://rgs.acme.example", "secretName": "acme-credentials"},
        {"name": "agg", "baseUrl": "https://agg.example", "secretName": "agg-credentials"}]))
    providers = GamesSettings().providers
    assert providers["acme"].dialect == "canonical"
    assert providers["acme"].secret == "acme-hmac-key-0123456789abcdef"
    assert providers["agg"].dialect == "aggregator" and providers["agg"].public_key_pem.startswith("-----BEGIN")


def test_a_provider_whose_secret_is_missing_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("GP_GAMES_PROVIDERS_DIR", str(tmp_path))
    monkeypatch.setenv("GP_GAMES_PROVIDERS", json.dumps([{"name": "ghost", "baseUrl": "x", "secretName": "s"}]))
    with pytest.raises(ValidationError, match=r"no `secret` or `public_key_pem` in .*ghost"):
        GamesSettings()


def test_the_json_map_form_still_works(monkeypatch):
    monkeypatch.setenv("GP_GAMES_PROVIDERS", json.dumps({"rgs": {"secret": "k" * 32}}))
    assert GamesSettings().providers["rgs"].secret == "k" * 32


def test_no_provider_is_configured_unless_one_is_named(monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("GP_GAMES_")]:
        monkeypatch.delenv(key)
    assert GamesSettings().providers == {}
    assert GamesSettings().dev_mode is False


def test_the_published_development_secret_is_refused_outside_dev_mode(tmp_path, monkeypatch):
    from gameplane.contracts.games import DEV_PROVIDER_SECRET

    monkeypatch.setenv("GP_GAMES_PROVIDERS", json.dumps({"rgs": {"secret": DEV_PROVIDER_SECRET}}))
    with pytest.raises(ValidationError, match="published development secret"):
        GamesSettings()
    # ... also when it comes from a mounted Secret (the chart's form) ...
    (tmp_path / "rgs").mkdir()
    (tmp_path / "rgs" / "secret").write_text(DEV_PROVIDER_SECRET + "\n")
    monkeypatch.setenv("GP_GAMES_PROVIDERS_DIR", str(tmp_path))
    monkeypatch.setenv("GP_GAMES_PROVIDERS", json.dumps([{"name": "rgs", "baseUrl": "x", "secretName": "s"}]))
    with pytest.raises(ValidationError, match="published development secret"):
        GamesSettings()
    # ... and accepted only when a development run says so.
    monkeypatch.setenv("GP_GAMES_DEV_MODE", "true")
    assert GamesSettings().providers["rgs"].secret == DEV_PROVIDER_SECRET

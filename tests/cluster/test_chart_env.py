"""The environment the charts render is the environment the services accept.

kwok runs no containers, so a setting the chart writes but a service cannot parse (a value outside
an enum, a list where a map is expected) would only show on a real kubelet as a crash loop. Here
each rendered Deployment's env (literal values, ConfigMap envFrom, Secret refs with stand-in
values, `$(VAR)` expansion, provider Secrets "mounted" into a temp dir) is fed to the settings
class of the service that the container runs.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import container_env
from clusterlib import Run

from gameplane import catalog
from gameplane.kit.app import load_identity, load_trusted_keys
from gameplane.kit.settings import ServiceSettings

PROVIDERS = ["--set", "games.providers[0].name=acme", "--set", "games.providers[0].baseUrl=https://acme.example",
             "--set", "games.providers[0].secretName=acme-credentials"]


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _settings_class(module: str) -> type[ServiceSettings] | None:
    try:
        mod = importlib.import_module(f"{module}.settings")
    except ModuleNotFoundError:
        return None  # a service the charts know but whose code is not built yet
    found = [c for _, c in inspect.getmembers(mod, inspect.isclass)
             if issubclass(c, ServiceSettings) and c is not ServiceSettings and c.__module__ == mod.__name__]
    assert len(found) == 1, f"{module}.settings should define one settings class, found {found}"
    return found[0]


def _container_env(container: dict[str, Any], configmaps: dict[str, dict[str, str]]) -> dict[str, str]:
    return container_env(container, configmaps, lambda key: (
        "postgresql+asyncpg://gameplane:pw@p-postgres.ns.svc:5432" if "database" in key
        else f"stand-in-for-{key}-0123456789abcdefghijklmnop"))


@pytest.mark.parametrize("jurisdiction", ["none", "ukgc", "mga"])
def test_every_built_service_accepts_the_environment_the_chart_renders(
        helm: Run, jurisdiction: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = _docs(helm("template", "p", "charts/gameplane", "--set", f"global.jurisdiction={jurisdiction}",
                          "--set", "rgs.enabled=true", *PROVIDERS).stdout)
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in rendered if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in rendered if d["kind"] == "Secret"}
    # The public key set as the kubelet would mount it.
    (tmp_path / "public-keys").mkdir()
    (tmp_path / "public-keys" / "public-keys.json").write_text(configmaps["p-public-keys"]["public-keys.json"])
    # The provider Secret as the kubelet would mount it.
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "secret").write_text("acme-hmac-key-0123456789abcdefghij")
    checked = []
    for dep in (d for d in rendered if d["kind"] == "Deployment"):
        container = dep["spec"]["template"]["spec"]["containers"][0]
        # The image's launcher (`python -m gameplane <service>`) runs the catalogue's module.
        args = container.get("args") or []
        if not args or args[-1] not in catalog.BY_NAME:
            continue  # nats
        module = catalog.get(args[-1]).module
        cls = _settings_class(module)
        if cls is None:
            continue
        env = _container_env(container, configmaps)
        prefix = next(iter(k for k in env if k.endswith("_PORT"))).removesuffix("PORT")
        env[prefix + "PROVIDERS_DIR"] = str(tmp_path)
        for key in [k for k in list(__import__("os").environ) if k.startswith("GP_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        if prefix + "SERVICE_KEY_FILE" in env:
            # its own identity Secret, mounted: the key Helm generated loads, and the public set
            # (Helm's certificates) binds that key to this service
            own = tmp_path / args[-1]
            own.mkdir()
            (own / "key.pem").write_text(secrets[f"p-{args[-1]}-identity"]["key.pem"])
            monkeypatch.setenv(prefix + "SERVICE_KEY_FILE", str(own / "key.pem"))
            monkeypatch.setenv(prefix + "PUBLIC_KEYS_FILE", str(tmp_path / "public-keys" / "public-keys.json"))
        settings = cls()
        if catalog.get(args[-1]).kind == "service":
            key = load_identity(args[-1], settings)
            assert load_trusted_keys(args[-1], settings).keys[key.kid].owner == args[-1]
        else:
            assert settings.service_key_file is None  # a simulator (third party) holds no identity
        assert settings.port == 8000 and settings.host == "0.0.0.0"
        assert settings.endpoints_file == Path("/etc/gameplane/endpoints/endpoints.json")
        checked.append(module)
    assert {"gameplane.gateway", "gameplane.players", "gameplane.wallet", "gameplane.games",
            "gameplane.sessions"} <= set(checked), checked

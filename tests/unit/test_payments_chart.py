"""What the charts render for payments and the PSP simulator (`helm template`, the real binary): each
PSP's Secret mounted at /etc/gameplane/psps/<name>/, its name and URL (never a key) in the
environment, no development mode and no development secret in any deployment; the simulator holds
only the Secrets of the dialects it speaks. Payments' own refusal of the published development
secret is checked against this rendered environment once payments' code is present."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import helm

from gameplane import catalog
from gameplane.devtools import localsecrets
from gameplane_operator.values import PSP_SIMULATOR_DIALECTS

REPO = Path(__file__).resolve().parents[2]
RELEASE = "p"
PSPS = [("payfast", "https://api.payfast.example", "payfast-keys"), ("simpsp", "http://p-psp:8000", "simpsp-keys")]


def render(*sets: str, enable: tuple[str, ...] = ("payments", "psp")) -> tuple[str, list[dict[str, Any]]]:
    # until their code lands the umbrella's schema refuses enabling them (the catalogue's `built`)
    skip = ["--skip-schema-validation"] if not all(catalog.get(n).built for n in enable) else []
    args = [a for n in enable for a in ("--set", f"{n}.enabled=true")]
    for s in sets:
        args += ["--set", s]
    out = subprocess.run([str(helm()), "template", RELEASE, "charts/gameplane", "-n", "casino", *skip, *args],
                         capture_output=True, text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout, [d for d in yaml.safe_load_all(out.stdout) if d]


def psp_sets(service: str, entries: list[tuple[str, str, str]]) -> list[str]:
    out = []
    for i, (name, url, secret) in enumerate(entries):
        out += [f"{service}.paymentProviders[{i}].name={name}", f"{service}.paymentProviders[{i}].baseUrl={url}",
                f"{service}.paymentProviders[{i}].secretName={secret}"]
    return out


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def pod_spec(docs: list[dict[str, Any]], service: str) -> dict[str, Any]:
    return find(docs, "Deployment", f"{RELEASE}-{service}")["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def mounts(docs: list[dict[str, Any]], service: str) -> dict[str, tuple[str, str]]:
    """mountPath -> (volume name, Secret name) of the service container's Secret volumes under psps/."""
    spec = pod_spec(docs, service)
    secrets = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    (container,) = [c for c in spec["containers"] if c["name"] == service] or spec["containers"][:1]
    return {m["mountPath"]: (m["name"], secrets[m["name"]]) for m in container["volumeMounts"]
            if m["mountPath"].startswith("/etc/gameplane/psps/")}


def test_each_psp_secret_is_mounted_into_payments_and_only_its_name_and_url_are_in_the_environment() -> None:
    _, docs = render(*psp_sets("payments", PSPS))
    assert mounts(docs, "payments") == {"/etc/gameplane/psps/payfast": ("psp-payfast", "payfast-keys"),
                                        "/etc/gameplane/psps/simpsp": ("psp-simpsp", "simpsp-keys")}
    spec = pod_spec(docs, "payments")
    container = spec["containers"][0]
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["name"].startswith("psp-"))
    data = find(docs, "ConfigMap", f"{RELEASE}-payments")["data"]
    assert json.loads(data["GP_PAYMENTS_PSPS"]) == [{"name": n, "baseUrl": u, "secretName": s} for n, u, s in PSPS]
    # no PSP Secret is read into an environment variable
    refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "secretKeyRef" in
            e.get("valueFrom", {})]
    assert not {"payfast-keys", "simpsp-keys"} & set(refs), refs
    # payment providers are payments' alone
    assert "GP_GAMES_PSPS" not in find(docs, "ConfigMap", f"{RELEASE}-games")["data"]
    assert mounts(docs, "games") == {} and mounts(docs, "wallet") == {}


def test_the_simulator_holds_only_the_secrets_of_its_own_dialects_as_the_operator_hands_them_over() -> None:
    from gameplane_operator.values import chart_values

    spec = {"version": "0.1.0", "services": [{"name": "payments", "enabled": True}, {"name": "psp", "enabled": True}],
            "paymentProviders": [{"name": n, "baseUrl": u, "secretRef": {"name": s}} for n, u, s in PSPS]}
    values = chart_values(RELEASE, spec, {"postgres-password": "pw"})
    sets = psp_sets("payments", [(p["name"], p["baseUrl"], p["secretName"]) for p in values["payments"]
                                 ["paymentProviders"]])
    sets += psp_sets("psp", [(p["name"], p["baseUrl"], p["secretName"]) for p in values["psp"]["paymentProviders"]])
    _, docs = render(*sets)
    assert mounts(docs, "psp") == {"/etc/gameplane/psps/simpsp": ("psp-simpsp", "simpsp-keys")}
    assert len(mounts(docs, "payments")) == 2


def test_no_development_mode_and_no_psp_key_reach_a_deployment() -> None:
    for sets in ((), tuple(psp_sets("payments", PSPS) + psp_sets("psp", PSPS[1:]))):
        text, docs = render(*sets)
        assert "DEV_MODE" not in text
        for service in ("payments", "psp"):
            data = find(docs, "ConfigMap", f"{RELEASE}-{service}")["data"]
            assert not any(k.endswith("_SECRET") or k.endswith("_API_KEY") for k in data), data
    # Negative control: without payment providers nothing of them is rendered at all
    text, docs = render()
    assert "GP_PAYMENTS_PSPS" not in text and "/etc/gameplane/psps" not in text
    assert mounts(docs, "payments") == {}


def test_the_schema_refuses_an_inline_key() -> None:
    out = subprocess.run([str(helm()), "template", RELEASE, "charts/gameplane-service", "--set", "name=payments",
                          "--set", "paymentProviders[0].name=payfast", "--set", "paymentProviders[0].baseUrl=https://x",
                          "--set", "paymentProviders[0].secretName=payfast-keys",
                          "--set", "paymentProviders[0].secret=0123456789abcdef0123"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert out.returncode != 0 and "secret" in out.stderr, out.stderr


def test_the_operator_and_the_local_run_name_the_simulators_dialects_alike() -> None:
    assert PSP_SIMULATOR_DIALECTS == localsecrets.PSP_DIALECTS
    try:
        from gameplane.simulators.psp.settings import DIALECTS
    except ImportError:
        return  # the simulator's code is another branch's until it lands
    assert tuple(DIALECTS) == PSP_SIMULATOR_DIALECTS


def test_payments_started_from_the_rendered_environment_refuses_the_published_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_mod = pytest.importorskip("gameplane.payments.settings", reason="payments' code is another branch's")
    contracts = pytest.importorskip("gameplane.contracts.payments")
    _, docs = render(*psp_sets("payments", PSPS[:1]))
    data = find(docs, "ConfigMap", f"{RELEASE}-payments")["data"]
    folder = tmp_path / "payfast"
    folder.mkdir()
    (folder / "base_url").write_text("https://api.payfast.example")
    (folder / "api_key").write_text("pk_live_0123456789")
    monkeypatch.setenv("GP_PAYMENTS_PSPS", data["GP_PAYMENTS_PSPS"])
    monkeypatch.setenv("GP_PAYMENTS_PSPS_DIR", str(tmp_path))
    (folder / "secret").write_text(next(iter(contracts.KNOWN_DEV_PSP_SECRETS)))
    with pytest.raises(ValueError, match="published development secret"):
        settings_mod.PaymentsSettings()
    own = "f" * 64
    (folder / "secret").write_text(own)
    assert settings_mod.PaymentsSettings().psps["payfast"].secret == own


@pytest.mark.parametrize("name", ["GP_PAYMENTS_DEV_MODE", "gp_games_dev_mode"])
def test_no_deployment_can_be_put_in_development_mode(name: str) -> None:
    service = "payments" if "PAYMENTS" in name.upper() else "games"
    args = [str(helm()), "template", RELEASE, "charts/gameplane-service", "--set", f"name={service}",
            "--set", f"extraEnv[0].name={name}", "--set-string", "extraEnv[0].value=true"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode != 0 and f"extraEnv may not set {name}" in out.stderr, out.stderr
    # negative control: other extra variables are fine
    args[-4:] = ["--set", f"extraEnv[0].name=GP_{service.upper()}_LOG_JSON", "--set-string", "extraEnv[0].value=true"]
    ok = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert ok.returncode == 0, ok.stderr

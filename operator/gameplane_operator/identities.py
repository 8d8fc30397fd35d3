"""The service identities of a platform: each enabled service's Ed25519 key pair, read back from
its Secret (<platform>-<service>-identity, rendered by the umbrella chart) or generated once.

The operator renders the charts with `helm template`, where Helm's `lookup` sees nothing: left to
the chart, every reconcile would generate new keys. So the operator reads the keys back itself
and passes them as values (secrets.serviceKeys), and a re-render never rotates a key. A key
rotation (docs/runbooks/service-key-rotation.md) edits the Secret: `previous.pem` holds public keys
still trusted, and a Secret without `key.pem` gets a new pair.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gameplane import catalog

from .kube import Kube

SUFFIX = "-identity"
_PEM = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----\s*", re.DOTALL)


def secret_name(platform: str, service: str) -> str:
    return f"{platform}-{service}{SUFFIX}"


def with_identity(services: list[str]) -> list[str]:
    """The services among `services` that hold an identity: services, not simulators (third parties)."""
    return [s for s in services if catalog.get(s).kind == "service"]


def new_pair() -> dict[str, str]:
    private = Ed25519PrivateKey.generate()
    return {
        "privateKey": private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode(),
        "publicKey": private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    }


def from_secret_data(data: dict[str, str] | None) -> dict[str, Any] | None:
    """The pair a Secret's `data` holds (base64), or None when it holds no complete pair."""
    data = data or {}
    if "key.pem" not in data or "public.pem" not in data:
        return None
    out: dict[str, Any] = {"privateKey": base64.b64decode(data["key.pem"]).decode(),
                           "publicKey": base64.b64decode(data["public.pem"]).decode()}
    if "previous.pem" in data:
        out["previousPublicKeys"] = [m.group(0) for m in _PEM.finditer(base64.b64decode(data["previous.pem"]).decode())]
    return out


TRUSTED_SUFFIX = "-trusted-keys"


async def trusted_keys(kube: Kube, namespace: str, platform: str) -> dict[str, list[str]]:
    """secrets.trustedKeys: public keys of callers outside the platform (the back office, a test
    client), from the ConfigMap <platform>-trusted-keys, one `<caller>.pem` entry per caller (a
    file of one or more PEMs). Read at each reconcile; absent means none."""
    live = await kube.get("v1", "ConfigMap", namespace, platform + TRUSTED_SUFFIX)
    out: dict[str, list[str]] = {}
    for key, text in ((live or {}).get("data") or {}).items():
        if key.endswith(".pem"):
            out[key.removesuffix(".pem")] = [m.group(0) for m in _PEM.finditer(text)]
    return out


async def service_keys(kube: Kube, namespace: str, platform: str, services: list[str]) -> dict[str, dict[str, Any]]:
    """secrets.serviceKeys for the chart: each service's pair as in its Secret, or a new one."""
    out: dict[str, dict[str, Any]] = {}
    for service in with_identity(services):
        live = await kube.get("v1", "Secret", namespace, secret_name(platform, service))
        pair = from_secret_data((live or {}).get("data"))
        if pair is None:
            pair = new_pair()
            if live is not None and "previous.pem" in (live.get("data") or {}):
                # a rotation: the new pair, and the old public keys kept as the admin left them
                kept = from_secret_data({**live["data"], "key.pem": "", "public.pem": ""})
                pair["previousPublicKeys"] = (kept or {}).get("previousPublicKeys", [])
        out[service] = pair
    return out

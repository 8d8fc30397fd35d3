"""The Secrets a GamingPlatform references, and which of them are missing. Pure functions.

A platform whose Pods would read a Secret that does not exist is not ready, whatever its Pods
say (kwok, or a kubelet still retrying `CreateContainerConfigError`): the check is on the spec's
references, against the Secrets the operator sees (a kopf index of names and keys, never values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# Condition SecretsResolved: its reasons.
ALL_FOUND = "AllSecretsFound"
NONE_REFERENCED = "NoSecretsReferenced"
NOT_FOUND = "SecretNotFound"
KEY_NOT_FOUND = "SecretKeyNotFound"


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str | None  # a key that must be in the Secret; None: the Secret is mounted whole
    field: str  # where the spec names it, for the message


@dataclass(frozen=True)
class Resolution:
    ok: bool
    reason: str
    message: str


def secret_refs(spec: dict[str, Any]) -> list[SecretRef]:
    """Every Secret the platform's Pods (or its Ingress) would use, in spec order."""
    refs: list[SecretRef] = []
    db = spec.get("database") or {}
    if db.get("mode") == "external":
        ref = (db.get("external") or {}).get("secretRef") or {}
        if ref.get("name"):
            refs.append(SecretRef(ref["name"], ref.get("key", "url"), "spec.database.external.secretRef"))
    msg = spec.get("messaging") or {}
    creds = msg.get("credentialsSecretRef") or {}
    if msg.get("mode") == "external" and creds.get("name"):
        refs.append(SecretRef(creds["name"], creds.get("key", "nats.creds"), "spec.messaging.credentialsSecretRef"))
    # A PSP's Secret must hold its webhook key (`secret`): payments refuses to start without it.
    for field, key in (("providers", None), ("paymentProviders", "secret")):
        for i, provider in enumerate(spec.get(field) or []):
            name = (provider.get("secretRef") or {}).get("name")
            if name:
                refs.append(SecretRef(name, key, f"spec.{field}[{i}].secretRef ({provider.get('name', '?')})"))
    gw = spec.get("gateway") or {}
    ingress = gw.get("ingress") or {}
    if ingress.get("enabled") and ingress.get("tlsSecretName"):
        refs.append(SecretRef(ingress["tlsSecretName"], "tls.crt", "spec.gateway.ingress.tlsSecretName"))
    for site_name, site in (spec.get("sites") or {}).items():
        site_ingress = (site or {}).get("ingress") or {}
        if site_ingress.get("enabled") and site_ingress.get("tlsSecretName"):
            refs.append(SecretRef(site_ingress["tlsSecretName"], "tls.crt",
                                  f"spec.sites.{site_name}.ingress.tlsSecretName"))
    return refs


def referenced_names(spec: dict[str, Any]) -> set[str]:
    return {r.name for r in secret_refs(spec)}


def resolve(refs: Iterable[SecretRef], namespace: str, keys_of: Callable[[str], frozenset[str] | None]) -> Resolution:
    """Check each reference; `keys_of(name)` gives the keys of a Secret, or None when it does not exist."""
    refs = list(refs)
    if not refs:
        return Resolution(True, NONE_REFERENCED, "the platform references no Secret of its own")
    missing, keyless = [], []
    for ref in refs:
        keys = keys_of(ref.name)
        if keys is None:
            missing.append(f"Secret {ref.name} not found in namespace {namespace} ({ref.field})")
        elif ref.key is not None and ref.key not in keys:
            keyless.append(f"Secret {ref.name} in namespace {namespace} has no key {ref.key} ({ref.field})")
    if missing or keyless:
        return Resolution(False, NOT_FOUND if missing else KEY_NOT_FOUND, "; ".join(missing + keyless))
    names = sorted({r.name for r in refs})
    return Resolution(True, ALL_FOUND, f"{len(names)} referenced Secrets found: {', '.join(names)}")

"""When the certificates a platform references expire. Pure functions.

The only dated thing a platform depends on is a certificate the owner brings: the gateway
Ingress's (`spec.gateway.ingress.tlsSecretName`, key `tls.crt`). The operator already watches the
Secrets a platform references (names and keys, for SecretsResolved); of a `*.crt` key it also keeps
the certificate's notAfter, a public fact (every TLS client is shown the certificate), and nothing
else of the value. Exported as gameplane_operator_certificate_expiry_timestamp_seconds; alert:
GameplaneCertificateExpiringSoon (observability/prometheus/rules/operator-rules.yaml).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cryptography import x509

from .refs import SecretRef


@dataclass(frozen=True)
class SecretSeen:
    """What the operator keeps of a Secret: its keys, and when the certificates in it expire."""

    keys: frozenset[str]
    expiries: Mapping[str, float] = field(default_factory=dict)  # *.crt key -> notAfter (Unix seconds)


def not_after(value_b64: str) -> float | None:
    """The notAfter of the first certificate of a base64-encoded PEM value (the leaf of a chain, by
    the kubernetes.io/tls convention); None when it holds no readable certificate."""
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(value_b64, validate=True))
    except (ValueError, TypeError, binascii.Error):
        return None
    return cert.not_valid_after_utc.timestamp()


def seen(data: Mapping[str, str] | None) -> SecretSeen:
    data = data or {}
    expiries = {k: t for k, v in data.items() if k.endswith(".crt") and (t := not_after(v)) is not None}
    return SecretSeen(frozenset(data), expiries)


def expiries(refs: Iterable[SecretRef], lookup: Callable[[str], SecretSeen | None]) -> dict[tuple[str, str], float]:
    """(Secret, key) -> notAfter of each referenced certificate key the operator could read."""
    out = {}
    for ref in refs:
        if ref.key is None or not ref.key.endswith(".crt"):
            continue
        found = lookup(ref.name)
        if found is not None and ref.key in found.expiries:
            out[(ref.name, ref.key)] = found.expiries[ref.key]
    return out

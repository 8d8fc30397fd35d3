"""Service identities: each service's own Ed25519 signing key and the public keys it trusts.

A service signs its tokens with its private key (`SigningKey`); every other service holds only
public keys, each bound to the service that owns it (`KeySet`). A key is named by its `kid`, the
RFC 7638 JWK thumbprint of its public key, so no one has to choose or configure key ids and the
same key has the same id everywhere.

Rotation: publish the new public key next to the old one (the key set lists both under the
owner), switch the owner to the new private key, and drop the old public key once every token
signed with it has expired (service tokens live 60 s, player access tokens 15 min).

Formats, one each: a private key is a PKCS#8 PEM; a public key is an SPKI PEM (or an X.509
certificate PEM, what Helm can derive from a key it generated); a key set is JSON
`{"<service>": ["<public PEM>", ...], ...}`; what players publishes is a JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"


class InvalidKey(ValueError):
    """A key or key set that cannot be used (wrong format, wrong type)."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(public: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of the key's JWK: its `kid` everywhere."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw(public))},
                           separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(_raw(public)), "kid": thumbprint(public),
            "alg": ALGORITHM, "use": "sig"}


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public(text: str) -> Ed25519PublicKey:
    """An SPKI public key PEM, or an X.509 certificate PEM (its subject's key)."""
    data = text.strip().encode()
    try:
        key: Any = x509.load_pem_x509_certificate(data).public_key() if b"CERTIFICATE" in data \
            else serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise InvalidKey(f"not a PEM public key or certificate: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidKey(f"public key is {type(key).__name__}, not Ed25519")
    return key


def load_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise InvalidKey("not an Ed25519 JWK")
    x = jwk["x"]
    try:
        return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    except ValueError as exc:
        raise InvalidKey(f"bad Ed25519 JWK: {exc}") from None


@dataclass(frozen=True)
class SigningKey:
    """A service's own private key. `kid` goes in the header of every token it signs."""

    private: Ed25519PrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        return cls(private, thumbprint(private.public_key()))

    @classmethod
    def from_pem(cls, text: str) -> SigningKey:
        try:
            private = serialization.load_pem_private_key(text.strip().encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidKey(f"not a PEM private key: {exc}") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise InvalidKey(f"private key is {type(private).__name__}, not Ed25519")
        return cls(private, thumbprint(private.public_key()))

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def pem(self) -> str:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()

    def public_pem(self) -> str:
        return public_pem(self.public)


@dataclass(frozen=True)
class TrustedKey:
    owner: str  # the only issuer a token verified with this key may claim
    public: Ed25519PublicKey


@dataclass
class KeySet:
    """Public keys by kid, each bound to its owner. Also holds the verified-token cache of the
    tokens checked against it, so a key set replaced (a key removed) forgets them too."""

    keys: dict[str, TrustedKey] = field(default_factory=dict)
    verified: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, owned: Mapping[str, Iterable[Ed25519PublicKey]]) -> KeySet:
        out = cls()
        for owner, publics in owned.items():
            for public in publics:
                kid = thumbprint(public)
                known = out.keys.get(kid)
                if known is not None and known.owner != owner:
                    raise InvalidKey(f"one public key is listed for both {known.owner!r} and {owner!r}")
                out.keys[kid] = TrustedKey(owner, public)
        return out

    @classmethod
    def from_pems(cls, document: Mapping[str, Iterable[str] | str]) -> KeySet:
        """`{"<service>": ["<PEM>", ...]}` (a single PEM string is accepted for one key)."""
        owned: dict[str, list[Ed25519PublicKey]] = {}
        for owner, pems in document.items():
            items = [pems] if isinstance(pems, str) else list(pems)
            try:
                owned[owner] = [load_public(p) for p in items]
            except InvalidKey as exc:
                raise InvalidKey(f"public key of {owner!r}: {exc}") from None
        return cls.of(owned)

    @classmethod
    def from_jwks(cls, owner: str, jwks: Mapping[str, Any]) -> KeySet:
        """A JWKS all of whose Ed25519 keys belong to `owner` (other key types are skipped)."""
        publics = []
        for jwk in jwks.get("keys") or []:
            try:
                publics.append(load_jwk(jwk))
            except InvalidKey:
                continue
        return cls.of({owner: publics})

    def owned_by(self, owner: str) -> KeySet:
        return KeySet({k: v for k, v in self.keys.items() if v.owner == owner})

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(k.public) for k in self.keys.values()]}

    def pems(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k in self.keys.values():
            out.setdefault(k.owner, []).append(public_pem(k.public))
        return out

    def owners(self) -> set[str]:
        return {k.owner for k in self.keys.values()}


def read_key_set(inline: Mapping[str, Any] | None, path: Path | None) -> KeySet:
    """The key set of the settings: the file's document, then the inline one on top."""
    document: dict[str, Any] = {}
    if path is not None:
        try:
            document.update(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise InvalidKey(f"cannot read the public key set {path}: {exc}") from None
    document.update(inline or {})
    return KeySet.from_pems(document)

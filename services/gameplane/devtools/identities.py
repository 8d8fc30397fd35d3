"""Service identities for a laptop and for tests: one fresh Ed25519 key pair per identity, and the
settings that wire them (each service its own private key, everyone the set of public keys).

The identities are the catalogue's services (not its simulators) plus the client-layer callers that are not services
of the catalogue (the back office), so a test or a local tool can act as any of them. Nothing
here reaches a pod: in Kubernetes the keys come from per-service Secrets (see charts/gameplane).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from gameplane import catalog
from gameplane.kit.auth import issue_player_token, issue_service_token
from gameplane.kit.keys import KeySet, SigningKey

# Callers that are not catalogue services but have identities of their own (none since the back
# office became a catalogue service; kept so that such a caller is named, not guessed).
CLIENTS: tuple[str, ...] = ()
# Simulators stand for third parties (a studio, a PSP): they get no identity.
NAMES: tuple[str, ...] = (*(s.name for s in catalog.SERVICES if s.kind == "service"), *CLIENTS)
FILE_NAME = "identities.json"


@dataclass(frozen=True)
class Identities:
    keys: dict[str, SigningKey]

    @classmethod
    def generate(cls, names: tuple[str, ...] = NAMES) -> Identities:
        return cls({n: SigningKey.generate() for n in names})

    def key(self, name: str) -> SigningKey:
        return self.keys[name]

    def public_keys(self) -> dict[str, list[str]]:
        return {n: [k.public_pem()] for n, k in self.keys.items()}

    def key_set(self) -> KeySet:
        return KeySet.of({n: [k.public] for n, k in self.keys.items()})

    def settings(self, name: str) -> dict[str, object]:
        """Settings fields of service `name`: its own key and every public key."""
        return {"service_key": self.keys[name].pem(), "public_keys": self.public_keys()}

    def env(self, name: str) -> dict[str, str]:
        p = f"GP_{name.upper()}_"
        return {f"{p}SERVICE_KEY": self.keys[name].pem(), f"{p}PUBLIC_KEYS": json.dumps(self.public_keys())}

    def export(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Every identity's settings into the environment (default: this process's)."""
        target = os.environ if environ is None else environ
        for name in self.keys:
            target.update(self.env(name))

    def token(self, caller: str, audience: str, ttl: int = 60) -> str:
        return issue_service_token(self.keys[caller], caller, audience, ttl)

    def bearer(self, caller: str, audience: str, ttl: int = 60) -> dict[str, str]:
        return {"authorization": "Bearer " + self.token(caller, audience, ttl)}

    def player_token(self, player_id: object, **claims: object) -> str:
        return issue_player_token(self.keys["players"], str(player_id), **claims)  # type: ignore[arg-type]

    def save(self, path: Path) -> None:
        """Private keys to a file only its owner can read (a local platform's data directory)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({n: k.pem() for n, k in self.keys.items()}, f)
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, path: Path) -> Identities:
        return cls({n: SigningKey.from_pem(pem) for n, pem in json.loads(path.read_text()).items()})


@functools.cache
def dev_identities() -> Identities:
    """The identities of this process (tests): generated once, shared by every fixture."""
    return Identities.generate()

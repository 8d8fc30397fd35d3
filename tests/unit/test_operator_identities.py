"""The operator keeps each service's key pair: read back from its Secret, generated only when the
Secret has none, passed to the chart so `helm template` never rotates a key."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from gameplane.kit.keys import SigningKey, load_public, thumbprint
from gameplane_operator import identities
from gameplane_operator.values import chart_values


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Secrets:
    """The one call identities.service_keys makes, answered from a dict (the API server's part is
    covered by the cluster tier)."""

    def __init__(self, data: dict[str, dict[str, str]]) -> None:
        self.data = data

    async def get(self, api: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        assert (api, kind, namespace) == ("v1", "Secret", "ns")
        return {"data": self.data[name]} if name in self.data else None


def test_a_new_pair_is_a_matching_ed25519_pair() -> None:
    pair = identities.new_pair()
    key = SigningKey.from_pem(pair["privateKey"])
    assert thumbprint(load_public(pair["publicKey"])) == key.kid


def test_keys_are_read_back_generated_when_missing_and_only_for_services() -> None:
    kept = identities.new_pair()
    old = identities.new_pair()["publicKey"]
    live = {"p-wallet-identity": {"key.pem": b64(kept["privateKey"]), "public.pem": b64(kept["publicKey"]),
                                  "previous.pem": b64(old)},
            "p-games-identity": {"previous.pem": b64(old)}}  # rotation: pair removed, old key kept
    keys = asyncio.run(identities.service_keys(Secrets(live), "ns", "p", ["wallet", "games", "players", "rgs"]))  # type: ignore[arg-type]
    assert set(keys) == {"wallet", "games", "players"}  # the simulator is a third party
    assert keys["wallet"] == {**kept, "previousPublicKeys": [old]}
    assert keys["games"]["privateKey"] != kept["privateKey"] and keys["games"]["previousPublicKeys"] == [old]
    assert "previousPublicKeys" not in keys["players"]
    again = asyncio.run(identities.service_keys(Secrets(live), "ns", "p", ["wallet"]))  # type: ignore[arg-type]
    assert again["wallet"] == keys["wallet"]  # read back, never rotated


def test_chart_values_carry_the_pairs() -> None:
    pair = identities.new_pair()
    values = chart_values("p", {"version": "0.1.0"}, {"postgres-password": "pw"}, None, {"wallet": pair})
    assert values["secrets"]["serviceKeys"] == {"wallet": pair}
    assert "serviceTokenSecret" not in values["secrets"]

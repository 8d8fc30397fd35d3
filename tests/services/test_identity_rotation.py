"""Key rotation, as docs/runbooks/service-key-rotation.md describes it: while both keys are
published a token signed with either is accepted; once the old key is removed it is refused.
For service tokens (the wallet trusting games' keys) and for player tokens (the gateway reading
players' JWKS, fetching again when a token names a key it has not seen)."""

from __future__ import annotations

import json
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.testing import running
from gameplane.gateway.app import build_app as gateway_app
from gameplane.gateway.settings import GatewaySettings
from gameplane.kit.auth import issue_player_token, issue_service_token
from gameplane.kit.keys import SigningKey, public_pem
from gameplane.players.app import build_app as players_app
from gameplane.players.settings import PlayersSettings
from gameplane.wallet.app import build_app as wallet_app
from gameplane.wallet.settings import WalletSettings


def bet(key: SigningKey) -> dict[str, Any]:
    return {"headers": {"authorization": "Bearer " + issue_service_token(key, "games", "wallet")}, "json": {}}


async def test_service_key_rotation_old_and_new_accepted_while_both_published_then_only_new(
        service_settings: Any) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    others = {k: v for k, v in dev_identities().public_keys().items() if k != "games"}
    settings = service_settings(WalletSettings)
    during = wallet_app(settings.model_copy(update={"public_keys": {**others, "games": [
        public_pem(old.public), public_pem(new.public)]}}))
    async with running(during) as client:
        for key in (old, new):  # 422: past the identity check, to the (empty) body
            assert (await client.post("/internal/wallet/bets", **bet(key))).status_code == 422
            assert (await client.post("/internal/wallet/rollbacks", **bet(key))).status_code == 422
    after = wallet_app(settings.model_copy(update={"public_keys": {**others, "games": [public_pem(new.public)]}}))
    async with running(after) as client:
        for path in ("/internal/wallet/bets", "/internal/wallet/rollbacks"):  # fast route and FastAPI route
            refused = await client.post(path, **bet(old))
            assert refused.status_code == 401 and refused.json()["type"].endswith("/unauthenticated")
            assert (await client.post(path, **bet(new))).status_code == 422


async def test_player_key_rotation_through_players_jwks(service_settings: Any, tmp_path: Path) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    base = service_settings(PlayersSettings, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1)

    def players(signing: SigningKey, published: list[SigningKey]) -> Any:
        keys = {**dev_identities().public_keys(), "players": [public_pem(k.public) for k in published]}
        return players_app(base.model_copy(update={"service_key": SecretStr(signing.pem()), "public_keys": keys}))

    endpoints = tmp_path / "endpoints.json"
    async with AsyncExitStack() as stack:
        before = await stack.enter_async_context(served(players(old, [old]), listener()))
        during = await stack.enter_async_context(served(players(new, [old, new]), listener()))
        after = await stack.enter_async_context(served(players(new, [new]), listener()))
        endpoints.write_text(json.dumps({"players": before}))
        gw_app = gateway_app(GatewaySettings(endpoints_file=endpoints, endpoints_refresh_seconds=0.05,
                                             jwks_min_refresh_seconds=0, jwks_max_age_seconds=3600,
                                             rate_limit_ip_rate=0, rate_limit_player_rate=0, log_level="WARNING"))
        gw = await stack.enter_async_context(httpx.AsyncClient(
            base_url=await stack.enter_async_context(served(gw_app, listener())), timeout=15))

        async def status(key: SigningKey) -> int:
            # a fresh token each time: a verified one is remembered until it expires, whatever the keys
            token = issue_player_token(key, uuid.uuid4())
            # /v1/players/me: the player does not exist, so players answers 404 once the gateway let it in
            return (await gw.get("/v1/players/me", headers={"authorization": f"Bearer {token}"})).status_code

        assert await status(old) == 404 and await status(new) == 401  # only the old key so far
        async with httpx.AsyncClient() as http:
            published = (await http.get(during + "/.well-known/jwks.json")).json()
        assert {k["kid"] for k in published["keys"]} == {old.kid, new.kid}
        endpoints.write_text(json.dumps({"players": during}))
        fetches = gw_app.state.gateway.players_keys.fetches
        # the new kid is unknown to the gateway's cached set: it fetches players' keys again
        assert await status(new) == 404
        assert gw_app.state.gateway.players_keys.fetches == fetches + 1
        assert await status(old) == 404  # both accepted while both are published

        endpoints.write_text(json.dumps({"players": after}))
        gw_app.state.gateway.players_keys.max_age = 0  # as when the cached set has aged out
        assert await status(old) == 401
        assert await status(new) == 404

"""Service-token and player-token caches of the gateway."""

from __future__ import annotations

import asyncio
import uuid

import jwt
import pytest

from gameplane.gateway.tokens import PlayerTokens, ServiceTokens
from gameplane.kit.auth import issue_player_token, verify_service_token
from gameplane.kit.jwks import StaticKeys
from gameplane.kit.keys import KeySet, SigningKey
from gameplane.kit.problems import Problem

GATEWAY, PLAYERS = SigningKey.generate(), SigningKey.generate()
TRUSTED = KeySet.of({"gateway": [GATEWAY.public]})
PLAYERS_KEYS = StaticKeys(KeySet.of({"players": [PLAYERS.public]}))


def verify(cache: PlayerTokens, token: str) -> dict:
    return asyncio.run(cache.verify(token))


def test_service_token_per_audience_and_renewed_before_expiry() -> None:
    now = [1_000_000.0]
    tokens = ServiceTokens(GATEWAY, clock=lambda: now[0])
    a = tokens.header("players")
    assert a.startswith("Bearer ")
    assert tokens.header("players") is a  # cached
    claims = verify_service_token(TRUSTED, a[7:], "players")
    assert claims["iss"] == "gateway"
    with pytest.raises(Problem) as wrong:
        verify_service_token(TRUSTED, tokens.header("wallet")[7:], "players")
    assert wrong.value.status == 403
    now[0] += 41  # two thirds of the 60 s lifetime
    assert tokens.header("players") is not a  # minted anew (same bytes within the same second)


def test_player_token_verified_and_cached_until_expiry() -> None:
    pid = uuid.uuid4()
    token = issue_player_token(PLAYERS, pid, ttl=60)
    now = [0.0]
    cache = PlayerTokens(PLAYERS_KEYS, clock=lambda: now[0])
    now[0] = jwt.decode(token, options={"verify_signature": False})["exp"] - 30
    assert verify(cache, token)["sub"] == str(pid)
    assert verify(cache, token)["sub"] == str(pid)
    now[0] += 31  # past exp: the cache no longer vouches; the kit decides (and it says expired)
    with pytest.raises(Problem):
        verify(cache, issue_player_token(PLAYERS, pid, ttl=-60))


@pytest.mark.parametrize("token", ["garbage", issue_player_token(SigningKey.generate(), uuid.uuid4()),
                                   issue_player_token(GATEWAY, uuid.uuid4()),
                                   issue_player_token(PLAYERS, uuid.uuid4(), ttl=-60)])
def test_bad_tokens_are_refused_and_never_cached(token: str) -> None:
    cache = PlayerTokens(PLAYERS_KEYS)
    for _ in range(2):
        with pytest.raises(Problem) as exc:
            verify(cache, token)
        assert exc.value.status == 401
    assert not cache._cache


def test_cache_is_bounded() -> None:
    cache = PlayerTokens(PLAYERS_KEYS, size=10)
    for _ in range(50):
        verify(cache, issue_player_token(PLAYERS, uuid.uuid4()))
    assert len(cache._cache) <= 10

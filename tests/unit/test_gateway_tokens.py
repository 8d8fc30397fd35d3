"""Service-token and player-token caches of the gateway."""

from __future__ import annotations

import asyncio
import uuid

import jwt
import pytest
import time_machine

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


def test_player_token_cached_until_expiry_then_the_same_token_is_refused(
        time_machine: time_machine.TimeMachineFixture) -> None:
    """Past `exp` the cache no longer vouches: the very token it holds is verified anew, and refused.
    time-machine moves the one clock both the cache and the token check read."""
    time_machine.move_to(1_900_000_000, tick=False)
    pid = uuid.uuid4()
    token = issue_player_token(PLAYERS, pid, ttl=60)
    cache = PlayerTokens(PLAYERS_KEYS)
    first = verify(cache, token)
    assert first["sub"] == str(pid)
    time_machine.shift(59)
    assert verify(cache, token) is first  # served from the cache, not verified again
    time_machine.shift(1 + 6)  # past exp and the verifier's 5 s of leeway
    with pytest.raises(Problem) as expired:
        verify(cache, token)
    assert expired.value.status == 401
    assert token not in cache._cache  # and it is forgotten
    time_machine.shift(-10)  # negative control: within its lifetime the same token is good again
    assert verify(cache, token)["sub"] == str(pid)


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


def _signed(**claims: object) -> str:
    # iat is required by the kit's check: every claim but the one under test is present
    claims = {"iat": 1_000_000_000, **claims}
    return jwt.encode({"typ": "access", "iss": "players", **claims}, PLAYERS.private, algorithm="EdDSA",
                      headers={"kid": PLAYERS.kid})


@pytest.mark.parametrize("claims", [
    {"sub": str(uuid.uuid4())},  # no exp
    {"sub": str(uuid.uuid4()), "exp": 10**400},  # too large for a float
    {"sub": str(uuid.uuid4()), "exp": True},
    {"exp": 4_000_000_000},  # no sub
    {"sub": "bob\x00", "exp": 4_000_000_000},  # not a player id (would become X-Player-Id)
], ids=["no-exp", "huge-exp", "bool-exp", "no-sub", "sub-not-uuid"])
def test_correctly_signed_tokens_missing_claims_are_401(claims: dict[str, object]) -> None:
    cache = PlayerTokens(PLAYERS_KEYS)
    for _ in range(2):  # and never cached
        with pytest.raises(Problem) as exc:
            verify(cache, _signed(**claims))
        assert exc.value.status == 401


def test_a_complete_token_passes_the_claims_check() -> None:
    # Negative control for the test above: the same construction with every claim present is accepted.
    pid = str(uuid.uuid4())
    assert verify(PlayerTokens(PLAYERS_KEYS), _signed(sub=pid, exp=4_000_000_000))["sub"] == pid

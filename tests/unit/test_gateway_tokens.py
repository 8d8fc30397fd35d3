"""Service-token and player-token caches of the gateway."""

from __future__ import annotations

import uuid

import jwt
import pytest

from gameplane.gateway.tokens import PlayerTokens, ServiceTokens
from gameplane.kit.auth import issue_player_token, verify_service_token
from gameplane.kit.problems import Problem

SECRET = "s" * 32


def test_service_token_per_audience_and_renewed_before_expiry() -> None:
    now = [1_000_000.0]
    tokens = ServiceTokens(SECRET, clock=lambda: now[0])
    a = tokens.header("players")
    assert a.startswith("Bearer ")
    assert tokens.header("players") is a  # cached
    claims = verify_service_token(SECRET, a[7:], "players")
    assert claims["iss"] == "gateway"
    with pytest.raises(Problem) as wrong:
        verify_service_token(SECRET, tokens.header("wallet")[7:], "players")
    assert wrong.value.status == 403
    now[0] += 41  # two thirds of the 60 s lifetime
    assert tokens.header("players") is not a  # minted anew (same bytes within the same second)


def test_player_token_verified_and_cached_until_expiry() -> None:
    pid = uuid.uuid4()
    token = issue_player_token(SECRET, pid, ttl=60)
    now = [0.0]
    cache = PlayerTokens(SECRET, clock=lambda: now[0])
    now[0] = jwt.decode(token, options={"verify_signature": False})["exp"] - 30
    assert cache.verify(token)["sub"] == str(pid)
    assert cache.verify(token)["sub"] == str(pid)
    now[0] += 31  # past exp: the cache no longer vouches; the kit decides (and it says expired)
    with pytest.raises(Problem):
        cache.verify(issue_player_token(SECRET, pid, ttl=-60))


@pytest.mark.parametrize("token", ["garbage", issue_player_token("x" * 32, uuid.uuid4()),
                                   issue_player_token(SECRET, uuid.uuid4(), ttl=-60)])
def test_bad_tokens_are_refused_and_never_cached(token: str) -> None:
    cache = PlayerTokens(SECRET)
    for _ in range(2):
        with pytest.raises(Problem) as exc:
            cache.verify(token)
        assert exc.value.status == 401
    assert not cache._cache


def test_cache_is_bounded() -> None:
    cache = PlayerTokens(SECRET, size=10)
    for _ in range(50):
        cache.verify(issue_player_token(SECRET, uuid.uuid4()))
    assert len(cache._cache) <= 10


def _signed(**claims: object) -> str:
    return jwt.encode({"typ": "access", "iss": "players", **claims}, SECRET, algorithm="HS256")


@pytest.mark.parametrize("claims", [
    {"sub": str(uuid.uuid4())},  # no exp
    {"sub": str(uuid.uuid4()), "exp": 10**400},  # too large for a float
    {"sub": str(uuid.uuid4()), "exp": True},
    {"exp": 4_000_000_000},  # no sub
    {"sub": "bob\x00", "exp": 4_000_000_000},  # not a player id (would become X-Player-Id)
], ids=["no-exp", "huge-exp", "bool-exp", "no-sub", "sub-not-uuid"])
def test_correctly_signed_tokens_missing_claims_are_401(claims: dict[str, object]) -> None:
    cache = PlayerTokens(SECRET)
    for _ in range(2):  # and never cached
        with pytest.raises(Problem) as exc:
            cache.verify(_signed(**claims))
        assert exc.value.status == 401


def test_a_complete_token_passes_the_claims_check() -> None:
    # Negative control for the test above: the same construction with every claim present is accepted.
    pid = str(uuid.uuid4())
    assert PlayerTokens(SECRET).verify(_signed(sub=pid, exp=4_000_000_000))["sub"] == pid

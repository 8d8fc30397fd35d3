"""Service tokens signed with each service's own Ed25519 key; tokens signed by players."""

import time
import uuid

import jwt
import pytest

from gameplane.kit.auth import (
    check_caller,
    issue_player_token,
    issue_service_token,
    verify_player_token,
    verify_service_token,
)
from gameplane.kit.keys import KeySet, SigningKey
from gameplane.kit.problems import Problem

GAMES, PAYMENTS, PLAYERS = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
TRUSTED = {"games": [GAMES.public], "payments": [PAYMENTS.public], "players": [PLAYERS.public]}


def keys() -> KeySet:
    return KeySet.of(TRUSTED)


def test_service_token_round_trip_names_the_caller_and_its_key():
    token = issue_service_token(GAMES, "games", "wallet")
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": GAMES.kid, "typ": "JWT"}
    claims = verify_service_token(keys(), token, "wallet")
    assert claims["iss"] == "games" and claims["aud"] == "wallet"


def test_service_token_for_another_audience_is_forbidden():
    with pytest.raises(Problem) as info:
        verify_service_token(keys(), issue_service_token(GAMES, "games", "players"), "wallet")
    assert info.value.status == 403 and info.value.slug == "forbidden"


def test_a_service_cannot_sign_in_another_services_name():
    # payments' own, valid key, claiming to be games: the key is bound to payments.
    forged = issue_service_token(PAYMENTS, "games", "wallet")
    with pytest.raises(Problem) as info:
        verify_service_token(keys(), forged, "wallet")
    assert info.value.status == 401 and "key of 'payments'" in str(info.value.detail)
    # negative control: the same claims with games' key pass
    assert verify_service_token(keys(), issue_service_token(GAMES, "games", "wallet"), "wallet")["iss"] == "games"


def test_a_key_that_is_not_trusted_is_refused_even_with_a_known_kid():
    stranger = SigningKey.generate()
    impostor = SigningKey(stranger.private, GAMES.kid)  # names games' kid, signs with its own key
    for token in (issue_service_token(stranger, "games", "wallet"), issue_service_token(impostor, "games", "wallet")):
        with pytest.raises(Problem) as info:
            verify_service_token(keys(), token, "wallet")
        assert info.value.status == 401


@pytest.mark.parametrize("token", [
    issue_service_token(GAMES, "games", "wallet", ttl=-60),  # expired
    jwt.encode({"iss": "games", "aud": "wallet", "exp": int(time.time()) + 60, "iat": 0, "typ": "service"},
               "s" * 32, algorithm="HS256", headers={"kid": GAMES.kid}),  # the old shared-secret kind
    jwt.encode({"iss": "games", "aud": "wallet", "typ": "service"}, GAMES.private, algorithm="EdDSA",
               headers={"kid": GAMES.kid}),  # no exp
    "not-a-jwt",
])
def test_bad_service_tokens_are_unauthenticated(token):
    with pytest.raises(Problem) as info:
        verify_service_token(keys(), token, "wallet")
    assert info.value.status == 401


def test_a_player_token_is_not_a_service_token():
    token = issue_player_token(PLAYERS, uuid.uuid4())
    with pytest.raises(Problem) as info:
        verify_service_token(keys(), token, "wallet")
    assert info.value.status == 401


def test_verified_claims_are_remembered_per_key_set_and_forgotten_with_it():
    rotated = keys()
    token = issue_service_token(GAMES, "games", "wallet")
    verify_service_token(rotated, token, "wallet")
    assert token in rotated.verified
    without_games = KeySet.of({"payments": [PAYMENTS.public]})
    with pytest.raises(Problem) as info:
        verify_service_token(without_games, token, "wallet")
    assert info.value.status == 401


def test_rotation_old_and_new_key_both_verify_while_both_are_published_then_only_the_new():
    old, new = SigningKey.generate(), SigningKey.generate()
    before = issue_service_token(old, "games", "wallet")
    during = KeySet.of({"games": [old.public, new.public]})
    assert verify_service_token(during, before, "wallet")["iss"] == "games"
    assert verify_service_token(during, issue_service_token(new, "games", "wallet"), "wallet")["iss"] == "games"
    after = KeySet.of({"games": [new.public]})
    with pytest.raises(Problem) as info:
        verify_service_token(after, before, "wallet")
    assert info.value.status == 401
    assert verify_service_token(after, issue_service_token(new, "games", "wallet"), "wallet")["iss"] == "games"


def test_check_caller_names_the_rule():
    claims = {"iss": "gateway"}
    with pytest.raises(Problem) as info:
        check_caller(claims, frozenset({"games"}), "POST /internal/wallet/bets")
    p = info.value
    assert p.status == 403 and p.slug == "caller-not-allowed"
    assert p.detail == "POST /internal/wallet/bets accepts calls from games only; not from 'gateway'"
    assert p.extensions == {"caller": "gateway", "allowed": ["games"]}
    assert check_caller({"iss": "games"}, frozenset({"games"}), "x") == "games"


def test_player_token_expiry_and_type():
    pid = uuid.uuid4()
    assert verify_player_token(keys(), issue_player_token(PLAYERS, pid))["sub"] == str(pid)
    with pytest.raises(Problem) as info:
        verify_player_token(keys(), issue_player_token(PLAYERS, pid, ttl=-30))
    assert info.value.slug == "token-expired"
    refresh = issue_player_token(PLAYERS, pid, typ="refresh")
    with pytest.raises(Problem):
        verify_player_token(keys(), refresh)
    assert verify_player_token(keys(), refresh, typ="refresh")["typ"] == "refresh"


def test_player_tokens_signed_by_any_key_but_players_are_refused():
    pid = uuid.uuid4()
    for key in (GAMES, PAYMENTS, SigningKey.generate()):
        with pytest.raises(Problem) as info:
            verify_player_token(keys(), issue_player_token(key, pid))
        assert info.value.status == 401 and info.value.slug == "unauthenticated"


@pytest.mark.parametrize("missing", ["exp", "sub", "iat", "iss", "typ"])
def test_player_token_without_a_required_claim_is_401(missing):
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "iat": now, "exp": now + 60, "iss": "players", "typ": "access"}
    del claims[missing]
    token = jwt.encode(claims, PLAYERS.private, algorithm="EdDSA", headers={"kid": PLAYERS.kid})
    with pytest.raises(Problem) as info:
        verify_player_token(keys(), token)
    assert info.value.status == 401

import time
import uuid

import jwt
import pytest

from gameplane.kit.auth import (
    issue_player_token,
    issue_service_token,
    verify_player_token,
    verify_service_token,
)
from gameplane.kit.problems import Problem

SECRET = "s" * 32


def test_service_token_round_trip_names_the_caller():
    claims = verify_service_token(SECRET, issue_service_token(SECRET, "games", "wallet"), "wallet")
    assert claims["iss"] == "games"


def test_service_token_for_another_audience_is_forbidden():
    with pytest.raises(Problem) as info:
        verify_service_token(SECRET, issue_service_token(SECRET, "games", "players"), "wallet")
    assert info.value.status == 403 and info.value.slug == "forbidden"


@pytest.mark.parametrize("token", [
    issue_service_token("x" * 32, "games", "wallet"),  # wrong key
    issue_service_token(SECRET, "games", "wallet", ttl=-60),  # expired
    "not-a-jwt",
])
def test_bad_service_tokens_are_unauthenticated(token):
    with pytest.raises(Problem) as info:
        verify_service_token(SECRET, token, "wallet")
    assert info.value.status == 401


def test_a_player_token_is_not_a_service_token():
    token = issue_player_token(SECRET, uuid.uuid4())
    with pytest.raises(Problem) as info:
        verify_service_token(SECRET, token, "wallet")
    assert info.value.status == 401


def test_player_token_expiry_and_type():
    pid = uuid.uuid4()
    assert verify_player_token(SECRET, issue_player_token(SECRET, pid))["sub"] == str(pid)
    with pytest.raises(Problem) as info:
        verify_player_token(SECRET, issue_player_token(SECRET, pid, ttl=-30))
    assert info.value.slug == "token-expired"
    forged = jwt.encode({"sub": str(pid), "exp": int(time.time()) + 60, "iss": "players", "typ": "refresh"},
                        SECRET, algorithm="HS256")
    with pytest.raises(Problem):
        verify_player_token(SECRET, forged)

"""Postback signatures and retry delays, against values worked out outside the code."""

from __future__ import annotations

import pytest

from gameplane.affiliates.postbacks import backoff, signature


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # printf '%s' '1700000000.{"kind":"registration"}' | openssl dgst -sha256 -hmac 'shh-its-a-secret'
    assert signature("shh-its-a-secret", 1_700_000_000, b'{"kind":"registration"}') == (
        "sha256=51dbb6cac81a795e23102d5ef1ad2158762f1245151f91b04a61aa708ee8490a")


def test_a_changed_body_or_timestamp_changes_the_signature() -> None:
    base = signature("shh-its-a-secret", 1_700_000_000, b'{"kind":"registration"}')
    assert signature("shh-its-a-secret", 1_700_000_001, b'{"kind":"registration"}') != base
    assert signature("shh-its-a-secret", 1_700_000_000, b'{"kind":"registratioN"}') != base


@pytest.mark.parametrize(("attempts", "rand", "seconds"), [
    (1, 0.0, 2.5),       # 5 s after the first failure, jitter down to half
    (1, 0.5, 3.75),
    (3, 0.0, 10.0),      # 5 × 2² = 20, half of it
    (3, 1.0, 20.0),      # the top of the jitter (rand is < 1 in practice)
    (20, 0.0, 1800.0),   # capped at 3600, half of it
])
def test_backoff_doubles_per_failure_with_jitter_and_a_cap(attempts: int, rand: float, seconds: float) -> None:
    assert backoff(attempts, 5.0, 3600.0, rand) == seconds

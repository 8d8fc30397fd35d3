"""The staff second factor: RFC 6238 codes (the RFC's own SHA-1 test vectors, last six digits),
one step of clock drift either way, and a step taken once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gameplane.players.staff import totp

# RFC 6238 appendix B: the ASCII secret "12345678901234567890", in base32.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize("unix,code", [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"),
                                       (1234567890, "005924"), (2000000000, "279037")])
def test_rfc_6238_vectors_are_accepted(unix: int, code: str) -> None:
    assert totp.check(RFC_SECRET, code, at(unix), None) == ("ok", unix // 30)


def test_one_step_of_drift_either_way_and_no_more() -> None:
    code = "005924"  # the code of step 1234567890 // 30
    step = 1234567890 // 30
    assert totp.check(RFC_SECRET, code, at(1234567890 + 30), None) == ("ok", step)
    assert totp.check(RFC_SECRET, code, at(1234567890 - 30), None) == ("ok", step)
    assert totp.check(RFC_SECRET, code, at(1234567890 + 60), None) == ("wrong", None)
    assert totp.check(RFC_SECRET, code, at(1234567890 - 60), None) == ("wrong", None)


def test_a_step_is_taken_once_and_never_an_older_one() -> None:
    step = 1234567890 // 30
    assert totp.check(RFC_SECRET, "005924", at(1234567890), step) == ("replayed", step)
    assert totp.check(RFC_SECRET, "005924", at(1234567890), step + 1) == ("replayed", step)
    assert totp.check(RFC_SECRET, "005924", at(1234567890), step - 1) == ("ok", step)


def test_the_provisioning_uri_names_the_issuer_and_account() -> None:
    uri = totp.provisioning_uri(RFC_SECRET, "alice", "gameplane")
    assert uri.startswith("otpauth://totp/gameplane:alice?") and "issuer=gameplane" in uri
    assert f"secret={RFC_SECRET}" in uri

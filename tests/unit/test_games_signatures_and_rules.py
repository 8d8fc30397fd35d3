"""Pure rules of the provider API: signatures first, clock skew, fingerprints, round rules, and the
translation of the aggregator dialect into the canonical core."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gameplane.contracts.games import (
    MAX_AMOUNT_MINOR,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BetCall,
    ProviderAnswer,
    RollbackCall,
    WinCall,
    sign,
    signature_valid,
    signed_headers,
    signing_string,
    unix_timestamp,
)
from gameplane.games import aggregator, canonical, rules
from gameplane.games.rules import ProviderError, RoundState

SECRET = "unit-test-provider-secret"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PLAYER = uuid.uuid4()
BET_PATH = "/providers/rgs/bet"


class UntouchableCore:
    """Any use of the core means the adapter did work before checking the signature."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"core.{name} used before the signature was checked")


def bet_body(**over: Any) -> bytes:
    payload = {"request_id": "r1", "token": "tok", "transaction_id": "t1", "round_id": "R1",
               "game_id": "fruit-fives", "amount": 100, "currency": "EUR"}
    return json.dumps({**payload, **over}).encode()


def stamp(offset: float = 0) -> str:
    return str(int(time.time() + offset))


# ---- signatures ---------------------------------------------------------------------------------

def test_the_signing_string_is_method_path_timestamp_and_body() -> None:
    # Written out by hand, as docs/integration/providers.md shows it to integrators.
    assert signing_string("post", "/providers/acme/bet", "1764633600", b'{"a":1}') == \
        b'POST\n/providers/acme/bet\n1764633600\n{"a":1}'
    expected = hmac.new(SECRET.encode(), b'POST\n/providers/acme/bet\n1764633600\n{"a":1}',
                        hashlib.sha256).hexdigest()
    assert sign(SECRET, "POST", "/providers/acme/bet", "1764633600", b'{"a":1}') == expected


def test_the_worked_example_in_the_integration_guide_is_right() -> None:
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "integration" / "providers.md").read_text()
    documented = guide.split("X-Gameplane-Signature: ", 1)[1][:64]
    assert documented == sign("k3y-0f-acme-0123456789abcdef", "POST", "/providers/acme/bet", "1764633600",
                              b'{"request_id":"req-81"}')
    assert "signs the 59 bytes" in guide
    assert len(signing_string("POST", "/providers/acme/bet", "1764633600", b'{"request_id":"req-81"}')) == 59


def test_hmac_signature_covers_method_path_timestamp_and_every_byte_of_the_body() -> None:
    body, ts = bet_body(), stamp()
    sig = sign(SECRET, "POST", BET_PATH, ts, body)
    assert signature_valid(SECRET, "POST", BET_PATH, ts, body, sig)
    assert not signature_valid(SECRET, "POST", BET_PATH, ts, body + b" ", sig)
    assert not signature_valid(SECRET, "POST", "/providers/rgs/win", ts, body, sig)
    assert not signature_valid(SECRET, "PUT", BET_PATH, ts, body, sig)
    assert not signature_valid(SECRET, "POST", BET_PATH, str(int(ts) + 1), body, sig)
    assert not signature_valid("another-secret-of-length", "POST", BET_PATH, ts, body, sig)
    assert not signature_valid(SECRET, "POST", BET_PATH, ts, body, None)
    assert not signature_valid(SECRET, "POST", BET_PATH, ts, body, "")


@pytest.mark.parametrize("body", [bet_body(), b"not json at all", b"{}"])
async def test_canonical_adapter_refuses_a_bad_signature_before_anything_else(body: bytes) -> None:
    adapter = canonical.CanonicalAdapter("rgs", SECRET, timedelta(minutes=5))
    headers = {TIMESTAMP_HEADER: stamp(), SIGNATURE_HEADER: "ab" * 32}
    resp = await adapter.handle(UntouchableCore(), "bet", body, headers, BET_PATH)  # type: ignore[arg-type]
    assert resp.status_code == 401
    assert json.loads(resp.body)["code"] == "invalid-signature"


async def test_a_signed_bet_is_refused_at_another_endpoint_before_the_core() -> None:
    adapter = canonical.CanonicalAdapter("rgs", SECRET, timedelta(minutes=5))
    body = bet_body()
    headers = signed_headers(SECRET, BET_PATH, body)
    for op in ("win", "rollback"):
        resp = await adapter.handle(UntouchableCore(), op, body, headers, f"/providers/rgs/{op}")  # type: ignore[arg-type]
        assert resp.status_code == 401 and json.loads(resp.body)["code"] == "invalid-signature", op


@pytest.mark.parametrize("offset", [-301, 301, -86400])
async def test_canonical_adapter_refuses_stale_requests_before_the_core(offset: int) -> None:
    adapter = canonical.CanonicalAdapter("rgs", SECRET, timedelta(minutes=5))
    body = bet_body()
    headers = signed_headers(SECRET, BET_PATH, body, timestamp=stamp(offset))
    resp = await adapter.handle(UntouchableCore(), "bet", body, headers, BET_PATH)  # type: ignore[arg-type]
    assert resp.status_code == 401
    assert json.loads(resp.body)["code"] == "stale-request"


@pytest.mark.parametrize("bad", ["", "   ", "1.5e9", "-5", "2026-11-24T10:00:00Z", None])
async def test_a_missing_or_malformed_timestamp_is_refused_even_when_signed(bad: str | None) -> None:
    adapter = canonical.CanonicalAdapter("rgs", SECRET, timedelta(minutes=5))
    body = bet_body()
    # The attacker signs exactly what is sent (an empty timestamp included): the signature holds.
    headers = {SIGNATURE_HEADER: sign(SECRET, "POST", BET_PATH, bad or "", body)}
    if bad is not None:
        headers[TIMESTAMP_HEADER] = bad
    resp = await adapter.handle(UntouchableCore(), "bet", body, headers, BET_PATH)  # type: ignore[arg-type]
    assert resp.status_code == 401
    out = json.loads(resp.body)
    assert out["code"] == "invalid-signature" and TIMESTAMP_HEADER in out["detail"]


def test_the_window_holds_both_ways_and_its_edges() -> None:
    window = timedelta(seconds=300)
    now = 1_764_633_600.0
    rules.check_clock(int(now) - 300, now, window, TIMESTAMP_HEADER)
    rules.check_clock(int(now) + 300, now, window, TIMESTAMP_HEADER)
    for off in (301, -301, 86400):
        with pytest.raises(ProviderError) as err:
            rules.check_clock(int(now) + off, now, window, TIMESTAMP_HEADER)
        assert err.value.code == "stale-request"
    with pytest.raises(ProviderError) as err:
        rules.check_clock(None, now, window, TIMESTAMP_HEADER)
    assert err.value.code == "invalid-signature"
    assert unix_timestamp("1764633600") == 1764633600
    assert [unix_timestamp(v) for v in (None, "", " 1", "1e9", "0x10", "1" * 13)] == [None] * 6


async def test_canonical_adapter_refuses_malformed_signed_bodies_as_validation_errors() -> None:
    adapter = canonical.CanonicalAdapter("rgs", SECRET, timedelta(minutes=5))
    bad_bodies = (bet_body(amount=-1), bet_body(amount=1.5), bet_body(amount=2**63), bet_body(amount=10**30),
                  b"[1,2]", bet_body(token="to\u0000k"), bet_body(request_id="r\u00001"),
                  bet_body(transaction_id="t 1"), bet_body(round_id="\u00e9"), bet_body(currency="E\u0000R"),
                  bet_body(request_id="r" * 101))
    for body in bad_bodies:
        resp = await adapter.handle(UntouchableCore(), "bet", body, signed_headers(SECRET, BET_PATH, body),  # type: ignore[arg-type]
                                    BET_PATH)
        assert resp.status_code == 422, body
        assert json.loads(resp.body)["code"] == "validation-error"
        assert resp.headers["content-type"] == "application/problem+json"


def test_rsa_signatures_of_the_aggregator_dialect_cover_the_same_string() -> None:
    private, public = aggregator.new_key_pair()
    other_private, _ = aggregator.new_key_pair()
    adapter = aggregator.AggregatorAdapter("agg", public, timedelta(minutes=5))
    path = "/providers/agg/transaction/bet"
    body = b'{"user":"u"}'
    adapter.verify("POST", path, body, aggregator.signed_headers(private, path, body))
    ts = stamp()
    for bad in (aggregator.sign(other_private, "POST", path, ts, body), "not base64!", "", None):
        headers = {aggregator.TIMESTAMP_HEADER: ts}
        if bad is not None:
            headers[aggregator.SIGNATURE_HEADER] = bad
        with pytest.raises(ProviderError) as err:
            adapter.verify("POST", path, body, headers)
        assert err.value.code == "invalid-signature"
    good = aggregator.signed_headers(private, path, body)
    for method, where, what in (("POST", path, body + b" "), ("POST", "/providers/agg/transaction/win", body),
                                ("GET", path, body)):
        with pytest.raises(ProviderError) as err:
            adapter.verify(method, where, what, good)
        assert err.value.code == "invalid-signature"
    stale = aggregator.signed_headers(private, path, body, timestamp=stamp(-301))
    with pytest.raises(ProviderError) as err:
        adapter.verify("POST", path, body, stale)
    assert err.value.code == "stale-request"
    unstamped = {aggregator.SIGNATURE_HEADER: aggregator.sign(private, "POST", path, "", body)}
    with pytest.raises(ProviderError) as err:
        adapter.verify("POST", path, body, unstamped)
    assert err.value.code == "invalid-signature"


async def test_aggregator_adapter_answers_a_bad_signature_in_its_own_dialect() -> None:
    _, public = aggregator.new_key_pair()
    adapter = aggregator.AggregatorAdapter("agg", public, timedelta(minutes=5))
    resp = await adapter.handle(UntouchableCore(), "transaction/bet", b"{}", {},  # type: ignore[arg-type]
                                "/providers/agg/transaction/bet")
    assert resp.status_code == 200
    assert json.loads(resp.body)["status"] == "RS_ERROR_INVALID_SIGNATURE"


# ---- fingerprints ---------------------------------------------------------------------------------

def _bet(**over: Any) -> BetCall:
    base = {"request_id": "r1", "token": "tok", "transaction_id": "t1", "round_id": "R1",
            "game_id": "g", "amount": 100, "currency": "EUR"}
    return BetCall(**{**base, **over})


def test_request_fingerprint_is_the_whole_request() -> None:
    a = rules.request_fingerprint("bet", _bet())
    assert a == rules.request_fingerprint("bet", _bet())
    assert a != rules.request_fingerprint("bet", _bet(amount=101))
    assert a != rules.request_fingerprint("win", _bet())


def test_transaction_fingerprint_is_the_money_movement() -> None:
    a = rules.transaction_fingerprint("bet", PLAYER, _bet())
    assert a == rules.transaction_fingerprint("bet", PLAYER, _bet(request_id="r2", token="tok2"))
    assert a != rules.transaction_fingerprint("bet", PLAYER, _bet(amount=200))
    assert a != rules.transaction_fingerprint("bet", PLAYER, _bet(round_id="R2"))
    assert a != rules.transaction_fingerprint("bet", uuid.uuid4(), _bet())


# ---- rounds ---------------------------------------------------------------------------------------

def test_round_rules() -> None:
    other = uuid.uuid4()
    open_round = RoundState(PLAYER, "g", "open", 0)
    closed = RoundState(PLAYER, "g", "closed", 1)
    assert rules.bet_round_refusal(None, PLAYER, "g") is None
    assert rules.bet_round_refusal(open_round, PLAYER, "g") is None
    assert rules.bet_round_refusal(closed, PLAYER, "g") == "round-closed"
    assert rules.bet_round_refusal(open_round, other, "g") == "round-mismatch"
    assert rules.bet_round_refusal(open_round, PLAYER, "h") == "round-mismatch"
    assert rules.win_round_refusal(None, PLAYER) is None
    assert rules.win_round_refusal(open_round, PLAYER) is None
    assert rules.win_round_refusal(closed, PLAYER) == "round-closed"
    assert rules.rollback_round_refusal(None) is None
    assert rules.rollback_round_refusal(open_round) is None
    assert rules.rollback_round_refusal(RoundState(PLAYER, "g", "open", 1)) == "round-settled"
    assert rules.rollback_round_refusal(RoundState(PLAYER, "g", "closed", 0)) == "round-settled"


def test_wins_of_a_round_are_capped_by_its_stakes_times_the_maximum_multiplier() -> None:
    staked = RoundState(PLAYER, "g", "open", 0, bet_total=100, win_total=0)
    assert rules.win_cap_refusal(staked, 50_000, 500) is None            # exactly 500 x 100
    assert rules.win_cap_refusal(staked, 50_001, 500) is not None
    paid = RoundState(PLAYER, "g", "open", 1, bet_total=100, win_total=49_000)
    assert rules.win_cap_refusal(paid, 1_000, 500) is None               # wins add up to the cap
    assert rules.win_cap_refusal(paid, 1_001, 500) is not None
    # A round without any stake caps every win at zero; a round never seen goes on to the wallet.
    assert rules.win_cap_refusal(RoundState(PLAYER, "g", "open", 0), 1, 500) is not None
    assert rules.win_cap_refusal(RoundState(PLAYER, "g", "open", 0), 0, 500) is None
    assert rules.win_cap_refusal(None, 10**12, 500) is None


def test_amounts_above_the_currency_maximum_are_refused() -> None:
    assert MAX_AMOUNT_MINOR["EUR"] == 100_000_000_000 and MAX_AMOUNT_MINOR["JPY"] == 1_000_000_000
    assert MAX_AMOUNT_MINOR["KWD"] == 1_000_000_000_000
    assert rules.amount_refusal(100_000_000_000, "EUR") is None
    assert rules.amount_refusal(100_000_000_001, "eur") is not None
    assert rules.amount_refusal(1_000_000_001, "JPY") is not None
    assert all(limit < 2**63 // 1_000_000 for limit in MAX_AMOUNT_MINOR.values())  # a round's sums stay storable


def test_provider_errors_are_typed_and_round_trip() -> None:
    err = ProviderError("insufficient-funds", "short", balance=42, currency="EUR")
    assert err.status == 402 and not err.transient
    again = ProviderError.from_dict(err.to_dict())
    assert (again.code, again.balance, again.currency) == ("insufficient-funds", 42, "EUR")
    assert ProviderError("dependency-unavailable").transient
    with pytest.raises(ValueError):
        ProviderError("made-up-code")
    body = canonical.problem_body(err, "r9", "/providers/rgs/bet")
    assert body["type"].endswith("/insufficient-funds") and body["balance"] == 42 and body["request_id"] == "r9"


# ---- aggregator translation -------------------------------------------------------------------------

def test_aggregator_amounts_convert_exactly() -> None:
    assert aggregator.to_minor(1_000_000, "EUR") == 1000          # 10.00 EUR
    assert aggregator.to_minor(100_000, "JPY") == 1               # 1 JPY
    assert aggregator.to_minor(100, "KWD") == 1                   # 0.001 KWD
    assert aggregator.from_minor(1000, "EUR") == 1_000_000
    with pytest.raises(ProviderError) as err:
        aggregator.to_minor(1_000_001, "EUR")                     # finer than a cent
    assert err.value.code == "validation-error"
    with pytest.raises(ProviderError) as err:
        aggregator.to_minor(100, "XXX")
    assert err.value.code == "currency-mismatch"


def test_aggregator_bet_translates_field_by_field() -> None:
    op, call = aggregator.parse("transaction/bet", json.dumps({
        "user": str(PLAYER), "token": "tok", "request_uuid": "q1", "transaction_uuid": "t1", "round": "R1",
        "game_code": "fruit-fives", "currency": "eur", "amount": 250_000}).encode())
    canon = aggregator.translate(op, call)
    assert op == "bet" and isinstance(canon, BetCall) and not isinstance(canon, WinCall)
    assert (canon.request_id, canon.token, canon.transaction_id, canon.round_id, canon.game_id, canon.amount,
            canon.currency) == ("q1", "tok", "t1", "R1", "fruit-fives", 250, "EUR")


def test_aggregator_win_and_rollback_translate() -> None:
    op, call = aggregator.parse("transaction/win", json.dumps({
        "user": "u", "token": "tok", "request_uuid": "q2", "transaction_uuid": "t2", "round": "R1",
        "game_code": "g", "currency": "EUR", "amount": 0, "round_closed": False,
        "reference_transaction_uuid": "t1"}).encode())
    win = aggregator.translate(op, call)
    assert isinstance(win, WinCall) and win.amount == 0 and win.round_closed is False
    op, call = aggregator.parse("transaction/rollback", json.dumps({
        "user": "u", "token": "tok", "request_uuid": "q3", "transaction_uuid": "t3",
        "reference_transaction_uuid": "t1", "round": "R1"}).encode())
    rb = aggregator.translate(op, call)
    assert isinstance(rb, RollbackCall) and rb.bet_transaction_id == "t1" and rb.transaction_id == "t3"
    with pytest.raises(ProviderError):
        aggregator.parse("transaction/refund", b"{}")
    with pytest.raises(ProviderError):
        aggregator.parse("transaction/bet", b'{"user": "u"}')


def test_aggregator_renders_answers_and_errors_in_its_units_and_codes() -> None:
    _, call = aggregator.parse("user/balance", b'{"user":"u","token":"t","request_uuid":"q"}')
    answer = ProviderAnswer(request_id="q", player_id=PLAYER, currency="EUR", balance=1234)
    assert aggregator.render_answer(answer, call) == {"status": "RS_OK", "request_uuid": "q", "user": "u",
                                                      "currency": "EUR", "balance": 1_234_000}
    err = aggregator.render_error(ProviderError("insufficient-funds", balance=5, currency="EUR"), call)
    assert err["status"] == "RS_ERROR_NOT_ENOUGH_MONEY" and err["balance"] == 5000
    from gameplane.contracts.games import ERROR_CODES
    assert set(ERROR_CODES) - {"unknown-provider"} <= set(aggregator.STATUS)


def test_a_regulated_jurisdiction_offers_only_games_certified_for_it() -> None:
    from gameplane.contracts.jurisdiction import game_allowed

    assert game_allowed(["ukgc", "mga"], "ukgc") and game_allowed(["ukgc", "mga"], "MGA")
    assert not game_allowed(["mga"], "ukgc") and not game_allowed([], "mga")


def test_no_jurisdiction_has_no_certification_list_to_enforce() -> None:
    # The CRD's default profile: a platform without a regulator offers every enabled game (a
    # real node showed the opposite rule refusing every launch of the minimal sample).
    from gameplane.contracts.jurisdiction import game_allowed

    assert game_allowed(["ukgc"], "none") and game_allowed([], "none")

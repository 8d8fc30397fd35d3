"""Pure rules of the provider API: signatures first, clock skew, fingerprints, round rules, and the
translation of the aggregator dialect into the canonical core."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gameplane.contracts.games import (
    SIGNATURE_HEADER,
    BetCall,
    ProviderAnswer,
    RollbackCall,
    WinCall,
    sign,
    signature_valid,
)
from gameplane.games import aggregator, canonical, rules
from gameplane.games.rules import ProviderError, RoundState

SECRET = "unit-test-provider-secret"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PLAYER = uuid.uuid4()


class UntouchableCore:
    """Any use of the core means the adapter did work before checking the signature."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"core.{name} used before the signature was checked")


def bet_body(**over: Any) -> bytes:
    payload = {"request_id": "r1", "timestamp": datetime.now(UTC).isoformat(), "token": "tok",
               "transaction_id": "t1", "round_id": "R1", "game_id": "fruit-fives", "amount": 100, "currency": "EUR"}
    return json.dumps({**payload, **over}).encode()


# ---- signatures ---------------------------------------------------------------------------------

def test_hmac_signature_covers_every_byte_of_the_body() -> None:
    body = bet_body()
    sig = sign(SECRET, body)
    assert signature_valid(SECRET, body, sig)
    assert not signature_valid(SECRET, body + b" ", sig)
    assert not signature_valid("another-secret-of-length", body, sig)
    assert not signature_valid(SECRET, body, None)
    assert not signature_valid(SECRET, body, "")


@pytest.mark.parametrize("body", [bet_body(), b"not json at all", b"{}"])
async def test_canonical_adapter_refuses_a_bad_signature_before_anything_else(body: bytes) -> None:
    adapter = canonical.CanonicalAdapter("rgs", SECRET, timedelta(minutes=5))
    resp = await adapter.handle(UntouchableCore(), "bet", body, {SIGNATURE_HEADER: "ab" * 32})  # type: ignore[arg-type]
    assert resp.status_code == 401
    assert json.loads(resp.body)["code"] == "invalid-signature"


async def test_canonical_adapter_refuses_stale_requests_before_the_core() -> None:
    adapter = canonical.CanonicalAdapter("rgs", SECRET, timedelta(minutes=5))
    body = bet_body(timestamp=(datetime.now(UTC) - timedelta(minutes=6)).isoformat())
    resp = await adapter.handle(UntouchableCore(), "bet", body, {SIGNATURE_HEADER: sign(SECRET, body)})  # type: ignore[arg-type]
    assert resp.status_code == 401
    out = json.loads(resp.body)
    assert out["code"] == "stale-request" and out["request_id"] == "r1"


async def test_canonical_adapter_refuses_malformed_signed_bodies_as_validation_errors() -> None:
    adapter = canonical.CanonicalAdapter("rgs", SECRET, timedelta(minutes=5))
    for body in (bet_body(amount=-1), bet_body(amount=1.5), b"[1,2]"):
        resp = await adapter.handle(UntouchableCore(), "bet", body, {SIGNATURE_HEADER: sign(SECRET, body)})  # type: ignore[arg-type]
        assert resp.status_code == 422, body
        assert json.loads(resp.body)["code"] == "validation-error"


def test_rsa_signatures_of_the_aggregator_dialect() -> None:
    private, public = aggregator.new_key_pair()
    other_private, _ = aggregator.new_key_pair()
    adapter = aggregator.AggregatorAdapter("agg", public)
    body = b'{"user":"u"}'
    adapter.verify(body, {aggregator.SIGNATURE_HEADER: aggregator.sign(private, body)})
    for bad in (aggregator.sign(other_private, body), "not base64!", "", None):
        headers = {} if bad is None else {aggregator.SIGNATURE_HEADER: bad}
        with pytest.raises(ProviderError) as err:
            adapter.verify(body, headers)
        assert err.value.code == "invalid-signature"
    with pytest.raises(ProviderError):
        adapter.verify(body + b" ", {aggregator.SIGNATURE_HEADER: aggregator.sign(private, body)})


async def test_aggregator_adapter_answers_a_bad_signature_in_its_own_dialect() -> None:
    _, public = aggregator.new_key_pair()
    adapter = aggregator.AggregatorAdapter("agg", public)
    resp = await adapter.handle(UntouchableCore(), "transaction/bet", b"{}", {})  # type: ignore[arg-type]
    assert resp.status_code == 200
    assert json.loads(resp.body)["status"] == "RS_ERROR_INVALID_SIGNATURE"


# ---- clock skew ---------------------------------------------------------------------------------

def test_clock_skew_window_both_ways() -> None:
    window = timedelta(seconds=300)
    rules.check_clock(NOW - timedelta(seconds=299), NOW, window)
    rules.check_clock(NOW + timedelta(seconds=300), NOW, window)
    for off in (timedelta(seconds=301), timedelta(seconds=-301), timedelta(days=1)):
        with pytest.raises(ProviderError) as err:
            rules.check_clock(NOW + off, NOW, window)
        assert err.value.code == "stale-request"
    with pytest.raises(ProviderError) as err:
        rules.check_clock(NOW.replace(tzinfo=None), NOW, window)
    assert err.value.code == "validation-error"


# ---- fingerprints ---------------------------------------------------------------------------------

def _bet(**over: Any) -> BetCall:
    base = {"request_id": "r1", "timestamp": NOW, "token": "tok", "transaction_id": "t1", "round_id": "R1",
            "game_id": "g", "amount": 100, "currency": "EUR"}
    return BetCall(**{**base, **over})


def test_request_fingerprint_ignores_only_the_timestamp() -> None:
    a = rules.request_fingerprint("bet", _bet())
    assert a == rules.request_fingerprint("bet", _bet(timestamp=NOW + timedelta(seconds=9)))
    assert a != rules.request_fingerprint("bet", _bet(amount=101))
    assert a != rules.request_fingerprint("win", _bet())


def test_transaction_fingerprint_is_the_money_movement() -> None:
    a = rules.transaction_fingerprint("bet", PLAYER, _bet())
    assert a == rules.transaction_fingerprint("bet", PLAYER, _bet(request_id="r2", token="tok2",
                                                                  timestamp=NOW + timedelta(seconds=5)))
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

"""Request hashing (what makes a replay a replay) and history cursors."""

from __future__ import annotations

import uuid

import pytest

from gameplane.contracts.wallet import BetRequest, WithdrawalPostRequest
from gameplane.kit.problems import Problem
from gameplane.wallet.queries import decode_cursor, encode_cursor
from gameplane.wallet.store import request_hash

P = uuid.UUID("00000000-0000-0000-0000-00000000000a")


def bet(**kw: object) -> BetRequest:
    fields: dict[str, object] = {"idempotency_key": "k", "player_id": P, "currency": "EUR", "amount": 10,
                                 "round_id": "r", "game_id": "g", "provider": "rgs", **kw}
    return BetRequest.model_validate(fields)


def test_same_request_same_hash() -> None:
    assert request_hash("bet", bet()) == request_hash("bet", bet())
    # field order on the wire does not matter, the parsed request does
    assert request_hash("bet", BetRequest.model_validate_json(bet().model_dump_json())) == request_hash("bet", bet())


@pytest.mark.parametrize("change", [{"amount": 11}, {"round_id": "r2"}, {"currency": "USD"},
                                   {"player_id": uuid.UUID(int=7)}, {"session_id": uuid.UUID(int=1)}])
def test_any_difference_changes_the_hash(change: dict[str, object]) -> None:
    assert request_hash("bet", bet(**change)) != request_hash("bet", bet())


def test_kind_and_path_parameters_are_part_of_the_request() -> None:
    body = WithdrawalPostRequest(idempotency_key="k", amount=5)
    assert request_hash("withdrawal_post", body, hold_id=uuid.UUID(int=1)) != request_hash(
        "withdrawal_post", body, hold_id=uuid.UUID(int=2))
    assert request_hash("bet", bet()) != request_hash("win", bet())


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    for bad in ("garbage", encode_cursor(1)[:-2] + "!!", "c2VxOng"):  # last: "seq:x"
        with pytest.raises(Problem) as exc:
            decode_cursor(bad)
        assert exc.value.slug == "invalid-cursor"

import uuid
from datetime import UTC, datetime

import pytest

from gameplane.contracts.wallet import BetPlaced
from gameplane.kit.events import Envelope, Event


def test_envelope_round_trip_restores_the_versioned_model():
    ev = BetPlaced(transaction_id=uuid.uuid4(), player_id=uuid.uuid4(), currency="EUR", amount=100, cash=60,
                   bonus=40, occurred_at=datetime.now(UTC), round_id="r1", game_id="g1", provider="p")
    env = Envelope.wrap(ev, "wallet")
    assert env.subject == "gameplane.wallet.bet_placed"
    again = Envelope.model_validate_json(env.model_dump_json()).open()
    assert again == ev


def test_a_new_version_is_a_distinct_model():
    class Thing(Event):
        event_type = "test.thing"
        a: int

    class ThingV2(Event):
        event_type = "test.thing"
        event_version = 2
        a: int
        b: str

    v1 = Envelope.wrap(Thing(a=1), "test")
    v2 = Envelope.wrap(ThingV2(a=1, b="x"), "test")
    assert type(v1.open()) is Thing and type(v2.open()) is ThingV2


def test_unknown_event_types_are_refused():
    env = Envelope(type="nobody.knows", version=1, producer="x", data={})
    with pytest.raises(LookupError):
        env.open()

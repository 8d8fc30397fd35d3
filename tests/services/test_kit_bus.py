"""Bus listeners: every process hears every message, and knows when it may have missed some."""

import asyncio
import uuid

import nats

from gameplane.kit.bus import Bus


async def _wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def _publish(url: str, subject: str, payload: bytes) -> None:
    nc = await nats.connect(url)
    try:
        await nc.publish(subject, payload)
        await nc.flush()
    finally:
        await nc.close()


async def test_every_replica_hears_every_message_on_a_listened_subject(nats_server) -> None:
    subject = f"gameplane.kittest.{uuid.uuid4().hex}"
    buses = [Bus(nats_server.url, "kittest") for _ in range(2)]  # two replicas of one service
    heard: list[list[bytes]] = [[], []]
    try:
        for i, bus in enumerate(buses):
            async def handler(msg, sink=heard[i]) -> None:  # type: ignore[no-untyped-def]
                sink.append(msg.data)
            bus.listen(subject, handler)
            bus.start()
        await _wait_for(lambda: all(b.listening_epoch is not None for b in buses))
        for n in range(3):
            await _publish(nats_server.url, subject, str(n).encode())
        await _wait_for(lambda: all(len(h) == 3 for h in heard))
        assert heard == [[b"0", b"1", b"2"]] * 2
    finally:
        for bus in buses:
            await bus.close()


async def test_a_listener_added_after_connecting_is_subscribed_too(nats_server) -> None:
    bus = Bus(nats_server.url, "kittest")
    bus.start()
    subject = f"gameplane.kittest.{uuid.uuid4().hex}"
    heard: list[bytes] = []
    try:
        await asyncio.wait_for(bus.ready.wait(), 10)

        async def handler(msg) -> None:  # type: ignore[no-untyped-def]
            heard.append(msg.data)
        bus.listen(subject, handler)
        assert bus.listening_epoch is None  # not subscribed yet: nothing may be trusted
        await _wait_for(lambda: bus.listening_epoch is not None)
        await _publish(nats_server.url, subject, b"late")
        await _wait_for(lambda: heard == [b"late"])
    finally:
        await bus.close()


async def test_the_epoch_changes_across_a_nats_restart_and_listeners_hear_again(isolated_nats) -> None:
    bus = Bus(isolated_nats.url, "kittest")
    subject = f"gameplane.kittest.{uuid.uuid4().hex}"
    heard: list[bytes] = []

    async def handler(msg) -> None:  # type: ignore[no-untyped-def]
        heard.append(msg.data)
    bus.listen(subject, handler)
    bus.start()
    try:
        await _wait_for(lambda: bus.listening_epoch is not None)
        before = bus.listening_epoch
        isolated_nats.stop()
        await _wait_for(lambda: bus.listening_epoch is None)  # down: whatever is published is missed
        isolated_nats.start()
        await _wait_for(lambda: bus.listening_epoch is not None)
        assert bus.listening_epoch != before
        await _publish(isolated_nats.url, subject, b"after")
        await _wait_for(lambda: heard == [b"after"])
    finally:
        await bus.close()

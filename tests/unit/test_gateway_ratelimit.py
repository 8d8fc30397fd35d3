"""Token buckets with an injected clock."""

from __future__ import annotations

import pytest

from gameplane.gateway.ratelimit import TokenBuckets, retry_after


def test_burst_then_refusal_with_wait() -> None:
    b = TokenBuckets(rate=2.0, burst=3)
    assert [b.take("p", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = b.take("p", 0.0)
    assert wait == pytest.approx(0.5)  # one token at 2 per second
    assert b.take("p", 0.25) == pytest.approx(0.25)  # refusals spend nothing
    assert b.take("p", 0.5) == 0.0
    assert b.take("p", 0.5) > 0


def test_refill_is_capped_at_burst() -> None:
    b = TokenBuckets(rate=10.0, burst=2)
    b.take("p", 0.0)
    b.take("p", 0.0)
    allowed = sum(1 for _ in range(5) if b.take("p", 1000.0) == 0.0)
    assert allowed == 2


def test_keys_are_independent() -> None:
    b = TokenBuckets(rate=1.0, burst=1)
    assert b.take("a", 0.0) == 0.0
    assert b.take("a", 0.0) > 0
    assert b.take("b", 0.0) == 0.0


def test_rate_zero_disables() -> None:
    b = TokenBuckets(rate=0.0, burst=1)
    assert not b.enabled
    assert all(b.take("a", 0.0) == 0.0 for _ in range(100))
    assert len(b) == 0


def test_memory_is_bounded_and_idle_buckets_go_first() -> None:
    b = TokenBuckets(rate=1.0, burst=5, max_keys=100)
    b.take("busy", 0.0)
    for _ in range(4):
        b.take("busy", 0.0)  # empty now
    for i in range(99):
        b.take(f"idle{i}", 0.0)
    # 1000 s later every idle bucket has refilled; "busy" spends again so it is not idle
    assert b.take("busy", 1000.0) == 0.0
    for _ in range(4):
        b.take("busy", 1000.0)
    b.take("newcomer", 1000.0)
    assert len(b) <= 100
    assert b.take("busy", 1000.0) > 0  # its state survived the sweep


def test_eviction_when_everyone_is_busy_keeps_the_bound() -> None:
    b = TokenBuckets(rate=0.001, burst=1, max_keys=100)
    for i in range(1000):
        b.take(f"k{i}", 0.0)
        assert len(b) <= 100


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(rate=-1, burst=1)
    with pytest.raises(ValueError):
        TokenBuckets(rate=1, burst=0)


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")])
def test_retry_after_rounds_up(wait: float, header: str) -> None:
    assert retry_after(wait) == header

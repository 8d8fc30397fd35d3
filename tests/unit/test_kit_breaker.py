import pytest

from gameplane.kit.breaker import CircuitBreaker, CircuitOpen, State


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_threshold_and_recovers_after_a_successful_probe():
    clock = Clock()
    b = CircuitBreaker("wallet", failure_threshold=3, reset_timeout=5, clock=clock)
    for _ in range(2):
        b.before_call()
        b.failure()
    assert b.state is State.CLOSED
    b.before_call()
    b.failure()
    assert b.state is State.OPEN
    with pytest.raises(CircuitOpen) as info:
        b.before_call()
    assert 0 < info.value.retry_in <= 5

    clock.t += 5
    assert b.state is State.HALF_OPEN
    b.before_call()  # the single probe is let through
    with pytest.raises(CircuitOpen):
        b.before_call()  # a second caller waits for the probe's verdict
    b.success()
    assert b.state is State.CLOSED
    b.before_call()


def test_failed_probe_reopens_for_a_full_timeout():
    clock = Clock()
    b = CircuitBreaker("wallet", failure_threshold=1, reset_timeout=2, clock=clock)
    b.before_call()
    b.failure()
    clock.t += 2
    b.before_call()
    b.failure()
    assert b.state is State.OPEN
    clock.t += 1.9
    with pytest.raises(CircuitOpen):
        b.before_call()


def test_success_resets_the_failure_count():
    b = CircuitBreaker("x", failure_threshold=2, clock=Clock())
    b.failure()
    b.success()
    b.failure()
    assert b.state is State.CLOSED

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


def _circuit_open(caller: str, target: str) -> float | None:
    from prometheus_client import REGISTRY
    return REGISTRY.get_sample_value("gameplane_circuit_open", {"service": caller, "target": target})


def test_breaker_reports_its_state_in_gameplane_circuit_open():
    clock = Clock()
    b = CircuitBreaker("unit-target", failure_threshold=2, reset_timeout=5, clock=clock, caller="unit-caller")
    assert _circuit_open("unit-caller", "unit-target") == 0
    b.failure()
    assert _circuit_open("unit-caller", "unit-target") == 0  # below the threshold: still closed
    b.failure()
    assert _circuit_open("unit-caller", "unit-target") == 1
    clock.t += 5
    b.before_call()  # half-open probe: calls are still refused, the gauge stays up
    assert _circuit_open("unit-caller", "unit-target") == 1
    b.success()
    assert _circuit_open("unit-caller", "unit-target") == 0


def test_breaker_without_a_caller_reports_nothing():
    b = CircuitBreaker("anonymous-target", failure_threshold=1)
    b.failure()
    assert _circuit_open("", "anonymous-target") is None

"""kit.periodic: a job runs on its interval, a failed run is counted and the next one still runs,
a job that says it did nothing is counted as skipped, and 0 seconds turns a job off."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY

from gameplane.kit.periodic import Job, schedule


def count(job: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("gameplane_background_runs_total",
                                     {"service": "unit", "task": job, "outcome": outcome}) or 0.0


async def test_a_failed_run_is_counted_and_the_next_one_runs() -> None:
    calls: list[int] = []

    async def flaky(rt: Any) -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("database unreachable")

    async def busy(rt: Any) -> bool:
        return False  # another replica holds the lock

    before = {o: count("flaky", o) for o in ("ok", "failed")}
    skipped = count("busy", "skipped")
    start, stop = schedule(Job("flaky", lambda s: s.every, flaky), Job("busy", lambda s: s.every, busy),
                           Job("off", lambda s: 0, flaky))
    rt = SimpleNamespace(name="unit", settings=SimpleNamespace(every=0.01), state={})
    await start(rt)  # type: ignore[arg-type]
    assert {n: t.get_name() for n, t in rt.state["jobs"].items()} == {"flaky": "unit-flaky", "busy": "unit-busy"}
    for _ in range(200):
        if len(calls) >= 3 and count("busy", "skipped") > skipped:
            break
        await asyncio.sleep(0.01)
    await stop(rt)  # type: ignore[arg-type]
    assert len(calls) >= 3
    assert count("flaky", "failed") - before["failed"] == 1
    assert count("flaky", "ok") - before["ok"] >= 2
    assert count("busy", "skipped") > skipped and count("busy", "ok") == 0
    assert rt.state["jobs"] == {}

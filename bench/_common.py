"""Helpers shared by the benchmarks in bench/ (files starting with `_` are not benchmarks).

    from _common import bench_seconds, infra, platform, result_line

    with infra() as (pg, nats):            # a real Postgres + NATS in a temp dir
        url = pg.dsn("gp_bench") ...        # (pg.create_database("gp_bench") first)
    with platform() as p:                   # `gameplane up` in a subprocess, stopped afterwards
        p.gateway, p.url("wallet") ...
    result_line("gateway", rps=1234.5, p50_ms=1.2)   # prints: RESULT gateway rps=1234.500 p50_ms=1.200
    meter = CpuMeter([p.proc.pid]); meter.start(); ...; meter.stop()  # CPU seconds by component

Every benchmark prints its RESULT line last; `BENCH_SECONDS` (see `bench_seconds`) is the time
budget a benchmark may spend measuring.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import psutil

from gameplane.devtools.harness import Platform, launch
from gameplane.devtools.infra import PG_TEMPLATE_CACHE, EmbeddedPostgres, NatsServer


def bench_seconds(default: float) -> float:
    """The measuring budget in seconds: $BENCH_SECONDS if set, else `default`."""
    raw = os.environ.get("BENCH_SECONDS")
    return float(raw) if raw else default


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, in their unit; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def result_line(name: str, **values: float | int | str) -> str:
    """Print (and return) `RESULT <name> k=v ...`; floats with 3 decimals. Call it last."""
    parts = [f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()]
    line = " ".join(["RESULT", name, *parts])
    print(line, flush=True)
    return line


@contextlib.contextmanager
def infra(data_dir: Path | None = None) -> Iterator[tuple[EmbeddedPostgres, NatsServer]]:
    """A real PostgreSQL and NATS (JetStream) on free ports, stopped on exit."""
    with contextlib.ExitStack() as stack:
        root = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gp-bench-")))
        pg = stack.enter_context(EmbeddedPostgres(root / "postgres", template_cache=PG_TEMPLATE_CACHE))
        nats = stack.enter_context(NatsServer(root / "nats"))
        yield pg, nats


@contextlib.contextmanager
def platform(data_dir: Path | None = None, extra_args: list[str] | None = None) -> Iterator[Platform]:
    """`gameplane up` in a subprocess (all built services), shut down cleanly on exit."""
    with contextlib.ExitStack() as stack:
        root = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gp-bench-")))
        running = launch(root, extra_args=extra_args)
        try:
            yield running
        finally:
            running.shutdown()


T = TypeVar("T")


async def open_loop(items: Sequence[T], rate: float, queue: asyncio.Queue[tuple[float, T] | None],
                    workers: Sequence[asyncio.Task[None]]) -> float:
    """Open loop: item i goes on `queue` with its due time t0 + i/rate, whatever happened to
    earlier ones (the workers count latency from it, so a stall shows in the tail instead of
    silently lowering the rate); then the workers are told to stop and awaited. Returns the
    seconds from t0 to the last answer."""
    # The load generator's own collector paused it for 4-60 ms every second or so under this load
    # (measured with gc.callbacks): calls it sent late counted as the platform's latency. It
    # allocates little during a run, so collection waits until the run is over.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return await _paced(items, rate, queue, workers)
    finally:
        gc.enable()
        gc.unfreeze()


async def _paced(items: Sequence[T], rate: float, queue: asyncio.Queue[tuple[float, T] | None],
                 workers: Sequence[asyncio.Task[None]]) -> float:
    t0 = time.perf_counter() + 0.05
    for i, item in enumerate(items):
        due = t0 + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, item))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return time.perf_counter() - t0


def log(message: str) -> None:
    """Progress for humans, on stderr so the RESULT line stays last on stdout."""
    print(message, file=sys.stderr, flush=True)


def component(proc: psutil.Process) -> str:
    """What a process is, for CPU accounting: postgres, nats, the gameplane service it runs, bench."""
    name = proc.name()
    if name.startswith("postgres"):
        return "postgres"
    if name.startswith("nats-server"):
        return "nats"
    cmdline = proc.cmdline()
    for i, arg in enumerate(cmdline):
        if arg == "-m" and i + 1 < len(cmdline) and cmdline[i + 1].startswith("gameplane."):
            return cmdline[i + 1].removeprefix("gameplane.").split(".")[0]
        if arg.startswith("gameplane.") and ":" in arg:  # uvicorn gameplane.wallet.app:build_app
            return arg.removeprefix("gameplane.").split(".")[0]
        if "multiprocessing" in arg:  # a uvicorn worker: named after its parent
            parent = proc.parent()
            return component(parent) if parent is not None else "other"
    return "other"


class CpuMeter:
    """CPU seconds (user + system) spent over a phase by the process trees under `roots` and by
    this process ("bench"), summed per component. Machine speed moves latency a lot on a shared
    2-core box; CPU per operation moves much less, so it says whether a change made the work cheaper."""

    def __init__(self, roots: Iterable[int]) -> None:
        self.roots = list(roots)
        self._start: dict[int, tuple[psutil.Process, str, float]] = {}

    def _snapshot(self) -> dict[int, tuple[psutil.Process, str, float]]:
        procs = [psutil.Process()]
        for pid in self.roots:
            try:
                root = psutil.Process(pid)
                procs += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        out = {}
        for proc in procs:
            try:
                times = proc.cpu_times()
                label = "bench" if proc.pid == os.getpid() else component(proc)
                out[proc.pid] = (proc, label, times.user + times.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> dict[str, float]:
        """Seconds of CPU per component since start() (processes born meanwhile count whole)."""
        totals: dict[str, float] = {}
        for pid, (_proc, label, cpu) in self._snapshot().items():
            before = self._start.get(pid)
            totals[label] = totals.get(label, 0.0) + cpu - (before[2] if before else 0.0)
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def cpu_report(totals: dict[str, float], operations: int, unit: str) -> float:
    """Log CPU ms per operation by component; return the total ms per operation."""
    per = {k: v * 1000 / max(1, operations) for k, v in totals.items()}
    log(f"CPU per {unit}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in per.items() if v >= 0.005)
        + f"; total {sum(per.values()):.2f} ms")
    return sum(per.values())


def stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM each measured process, SIGKILL what has not exited after 10 s."""
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

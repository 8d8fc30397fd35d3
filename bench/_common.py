"""Helpers shared by the benchmarks in bench/ (files starting with `_` are not benchmarks).

    from _common import bench_seconds, infra, platform, result_line

    with infra() as (pg, nats):            # a real Postgres + NATS in a temp dir
        url = pg.dsn("gp_bench") ...        # (pg.create_database("gp_bench") first)
    with platform() as p:                   # `gameplane up` in a subprocess, stopped afterwards
        p.gateway, p.url("wallet") ...
    result_line("gateway", rps=1234.5, p50_ms=1.2)   # prints: RESULT gateway rps=1234.500 p50_ms=1.200

Every benchmark prints its RESULT line last; `BENCH_SECONDS` (see `bench_seconds`) is the time
budget a benchmark may spend measuring.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gameplane.cli.harness import Platform, launch
from gameplane.kit.devinfra import PG_TEMPLATE_CACHE, EmbeddedPostgres, NatsServer


def bench_seconds(default: float) -> float:
    """The measuring budget in seconds: $BENCH_SECONDS if set, else `default`."""
    raw = os.environ.get("BENCH_SECONDS")
    return float(raw) if raw else default


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


def log(message: str) -> None:
    """Progress for humans, on stderr so the RESULT line stays last on stdout."""
    print(message, file=sys.stderr, flush=True)

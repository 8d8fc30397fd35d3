"""The CPU cost of tracing on the provider path: signed `bet` + `win` calls of the canonical
seamless-wallet API through the real games, sessions and wallet services (real Postgres and NATS),
with tracing off and on at the default sampling (1 %), in one run.

The three services run in this process (gameplane.devtools.inprocess, each behind its own uvicorn
listener), so tracing can be switched between phases without restarting anything; the phases
alternate off, on, on, off, ... (BENCH_INSTRUMENTATION_PHASES, default 4: ABBA, so that a steady
drift of the shared machine's speed or of the warming caches falls on both sides alike). Each phase is an open loop of
BENCH_INSTRUMENTATION_RATE bet+win pairs per second (default 60) for BENCH_SECONDS / phases.

    .venv/bin/python bench/instrumentation.py
    RESULT instrumentation cpu_ms_per_call_off=... cpu_ms_per_call_on=... overhead_pct=... calls=...

"On" is what a platform with `spec.monitoring.tracing` runs: the sampler of kit.telemetry for an
OTLP endpoint at ratio 0.01, the asyncpg statement instrumentation, and a BatchSpanProcessor
exporting to an OTLP/HTTP sink (a subprocess standing in for the collector, not measured). "Off"
is a platform without an endpoint: nothing sampled, no statement instrumentation. The kit's
metrics (RED, pool, statement durations, business counters) are on in both: they cannot be
switched off, so the overhead is that of tracing on top of them.

cpu_ms_per_call: CPU of this process (the three services and the load generator: the same work in
both modes), Postgres and NATS, per provider call (a bet or a win), split by component in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence

import httpx
from _common import CpuMeter, bench_seconds, cpu_report, infra, log, open_loop, result_line
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from providers import signed_request

from gameplane.devtools.infra import free_port
from gameplane.devtools.inprocess import LocalPlatform, launch, local_platform, new_player
from gameplane.kit import telemetry

RATE = float(os.environ.get("BENCH_INSTRUMENTATION_RATE", "60"))  # bet+win pairs per second
PHASES = int(os.environ.get("BENCH_INSTRUMENTATION_PHASES", "4"))
PLAYERS = int(os.environ.get("BENCH_INSTRUMENTATION_PLAYERS", "32"))
CONNECTIONS = 16
SECRET = "bench-instrumentation-provider-secret"
STAKE = 10

# A stand-in collector: answers every OTLP/HTTP export with 200 and an empty protobuf body.
SINK = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SINK, str(port)])
    try:
        for _ in range(100):
            try:
                httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=b"", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def set_tracing(on: bool, endpoint: str) -> None:
    """Switch the process between the two configurations a pod can run with. kit.telemetry sets
    its provider once per process and keeps its sampler in one switchable object (tests' `recording`
    switches it the same way); the statement instrumentation is installed or removed with it."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    telemetry._sampler.inner = telemetry.sampler_for(endpoint if on else None, telemetry.DEFAULT_SAMPLING_RATIO)
    instrumentor = AsyncPGInstrumentor()
    if on and not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=telemetry._provider)
    elif not on and instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


async def setup(p: LocalPlatform, nats_url: str) -> list[str]:
    tokens: list[str] = []
    for start in range(0, PLAYERS, 8):
        players = await asyncio.gather(*(new_player(p, nats_url, 10_000_000) for _ in range(start, start + 8)))
        tokens += [s["token"] for s in await asyncio.gather(*(launch(p, player) for player in players))]
    return tokens


def pairs(host: str, tokens: list[str], n: int) -> list[tuple[bytes, bytes]]:
    """n signed bet+win pairs (one round each), stamped now: built before the clock starts."""
    stamp = str(int(time.time()))
    out = []
    for i in range(n):
        common = {"token": tokens[i % len(tokens)], "round_id": uuid.uuid4().hex, "game_id": "fruit-fives",
                  "currency": "EUR"}
        bet = {"request_id": uuid.uuid4().hex, "transaction_id": uuid.uuid4().hex, "amount": STAKE, **common}
        win = {"request_id": uuid.uuid4().hex, "transaction_id": uuid.uuid4().hex, "amount": 2 * STAKE,
               "round_closed": True, **common}
        out.append((signed_request(SECRET, host, "/providers/rgs/bet", stamp, json.dumps(bet).encode()),
                    signed_request(SECRET, host, "/providers/rgs/win", stamp, json.dumps(win).encode())))
    return out


async def _worker(host: str, port: int, queue: asyncio.Queue[tuple[float, tuple[bytes, bytes]] | None],
                  statuses: dict[str, int]) -> None:
    """One keep-alive connection: the bet, then its round's win (a win needs its bet first)."""
    reader, writer = await asyncio.open_connection(host, port)
    while (item := await queue.get()) is not None:
        for request in item[1]:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            status = head.split(b" ", 2)[1].decode()
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
    writer.close()


async def phase(target: str, tokens: list[str], seconds: float) -> tuple[int, dict[str, int]]:
    url = httpx.URL(target)
    work = pairs(url.host, tokens, int(RATE * seconds))
    queue: asyncio.Queue[tuple[float, tuple[bytes, bytes]] | None] = asyncio.Queue()
    statuses: dict[str, int] = {}
    workers = [asyncio.create_task(_worker(url.host, url.port or 80, queue, statuses)) for _ in range(CONNECTIONS)]
    await open_loop(work, RATE, queue, workers)
    return 2 * len(work), statuses


class SpanCount(SpanExporter):
    """Counts the spans the process samples (kit.telemetry hands each to its tap's exporters): the
    phases with tracing on must have some, those with tracing off none."""

    count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


spans = SpanCount()


async def run(pg_pids: list[int], nats_url: str, databases: dict[str, str], endpoint: str) -> dict[str, float]:
    seconds = bench_seconds(20.0)
    async with local_platform(databases, nats_url, provider_secret=SECRET) as p:
        log(f"setting up {PLAYERS} players with sessions")
        tokens = await setup(p, nats_url)
        log("warm-up (both modes)")
        for on in (False, True):
            set_tracing(on, endpoint)
            await phase(p.urls["games"], tokens, 3.0)
        cpu = {False: 0.0, True: 0.0}
        calls = {False: 0, True: 0}
        sampled = 0
        per_phase = seconds / PHASES
        for i in range(PHASES):
            on = i % 4 in (1, 2)
            set_tracing(on, endpoint)
            spans.count = 0
            meter = CpuMeter(pg_pids)
            meter.start()
            n, statuses = await phase(p.urls["games"], tokens, per_phase)
            totals = meter.stop()
            bad = n - statuses.get("200", 0)
            log(f"phase {i + 1}/{PHASES} tracing {'on' if on else 'off'}: {n} calls, answers {statuses}, "
                f"{spans.count} spans sampled")
            if not on and spans.count:
                raise SystemExit("a phase with tracing off sampled spans: the two modes are not what they say")
            sampled += spans.count
            if bad:
                raise SystemExit(f"{bad} calls were not answered 200: the comparison would not be fair")
            cpu[on] += cpu_report(totals, n, "call") * n
            calls[on] += n
        set_tracing(False, endpoint)
    if not sampled:  # at 1 % of some hundreds of calls: a few traces expected, none is a broken setup
        raise SystemExit("no span was sampled with tracing on: the comparison measured nothing")
    off, on_ = cpu[False] / calls[False], cpu[True] / calls[True]
    return {"cpu_ms_per_call_off": off, "cpu_ms_per_call_on": on_, "overhead_pct": (on_ - off) / off * 100,
            "calls": calls[False] + calls[True]}


def main() -> None:
    with infra() as (pg, nats), otlp_sink() as endpoint:
        # The process's tracer provider, as a service with an OTLP endpoint sets it; the services
        # built next find it configured (one per process) and share it.
        telemetry.configure("bench", endpoint, telemetry.DEFAULT_SAMPLING_RATIO)
        telemetry._tap.exporters.append(spans)
        databases = {}
        for name in ("wallet", "sessions", "games"):
            pg.create_database(f"gp_bench_{name}")
            databases[name] = pg.dsn(f"gp_bench_{name}")
        pids = [pid for pid in (pg.pid, nats.pid) if pid is not None]
        out = asyncio.run(run(pids, nats.url, databases, endpoint))
    result_line("instrumentation", cpu_ms_per_call_off=out["cpu_ms_per_call_off"],
                cpu_ms_per_call_on=out["cpu_ms_per_call_on"], overhead_pct=out["overhead_pct"],
                calls=int(out["calls"]))


if __name__ == "__main__":
    main()

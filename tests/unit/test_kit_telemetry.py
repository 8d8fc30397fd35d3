"""Head sampling (gameplane.kit.telemetry) and the trace and span ids in the logs (gameplane.kit.logs)."""

from __future__ import annotations

import io
import json
import logging
import random

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from gameplane.kit import logs, telemetry
from gameplane.kit.settings import ServiceSettings


def sampled_share(sampler: object, n: int = 20_000, kind: SpanKind = SpanKind.SERVER) -> float:
    rng = random.Random(17)
    kept = sum(sampler.should_sample(None, rng.getrandbits(128), "GET /x", kind).decision  # type: ignore[attr-defined]
               == Decision.RECORD_AND_SAMPLE for _ in range(n))
    return kept / n


def test_the_default_ratio_is_one_percent() -> None:
    assert ServiceSettings().trace_sampling_ratio == 0.01 == telemetry.DEFAULT_SAMPLING_RATIO
    share = sampled_share(telemetry.sampler_for("http://collector:4318", ServiceSettings().trace_sampling_ratio))
    assert 0.007 < share < 0.013  # 20 000 draws: 1 % +- 3 standard deviations


@pytest.mark.parametrize("ratio", [0.25, 1.0])
def test_a_ratio_keeps_that_share_of_new_traces(ratio: float) -> None:
    assert abs(sampled_share(telemetry.sampler_for("http://collector:4318", ratio)) - ratio) < 0.02


def test_without_an_endpoint_or_with_ratio_zero_nothing_is_recorded() -> None:
    assert sampled_share(telemetry.sampler_for(None, 1.0), 1000) == 0
    assert sampled_share(telemetry.sampler_for("http://collector:4318", 0.0), 1000) == 0


def test_a_statement_outside_any_request_starts_no_trace() -> None:
    """The outbox relay's polling issues statements with no request around them."""
    sampler = telemetry.sampler_for("http://collector:4318", 1.0)
    assert sampled_share(sampler, 1000, SpanKind.CLIENT) == 0
    assert sampled_share(sampler, 1000, SpanKind.CONSUMER) == 1  # negative control: other kinds are kept


@pytest.mark.parametrize("sampled", [True, False])
def test_a_call_follows_its_caller_s_decision(sampled: bool) -> None:
    """Whatever the ratio, on every trace id: a trace is kept whole or not at all."""
    sampler = telemetry.sampler_for("http://collector:4318", 0.01)
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    rng = random.Random(3)
    decisions = set()
    for _ in range(200):
        trace_id = rng.getrandbits(128)
        parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(trace_id, 9, is_remote=True,
                                                                        trace_flags=flags)))
        decisions.add(sampler.should_sample(parent, trace_id, "POST /internal/wallet/bets", SpanKind.SERVER).decision)
    assert decisions == {Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP}


def log_line(json_logs: bool, tracer: trace.Tracer | None) -> tuple[str, trace.SpanContext | None]:
    logs.configure("wallet", "INFO", json_logs)
    out = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.setStream(out)  # type: ignore[attr-defined]
    if tracer is None:
        logging.getLogger("t").info("hello")
        return out.getvalue(), None
    with tracer.start_as_current_span("request") as span:
        logging.getLogger("t").info("hello")
    return out.getvalue(), span.get_span_context()


@pytest.fixture
def tracer() -> trace.Tracer:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield TracerProvider(sampler=ALWAYS_ON).get_tracer("test")  # type: ignore[misc]
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_json_logs_carry_the_trace_and_span_ids(tracer: trace.Tracer) -> None:
    line, ctx = log_line(True, tracer)
    record = json.loads(line)
    assert ctx is not None and record["message"] == "hello"
    assert record["trace_id"] == f"{ctx.trace_id:032x}" and record["span_id"] == f"{ctx.span_id:016x}"
    outside, _ = log_line(True, None)
    assert json.loads(outside)["trace_id"] is None and json.loads(outside)["span_id"] is None


def test_text_logs_carry_them_too(tracer: trace.Tracer) -> None:
    line, ctx = log_line(False, tracer)
    assert ctx is not None
    assert f"trace={ctx.trace_id:032x} span={ctx.span_id:016x}" in line


async def test_a_consumed_batch_continues_the_first_event_s_trace_and_links_the_others() -> None:
    """kit.consumer: one span per fetched batch, under the trace that published its first event."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from gameplane.contracts.wallet import BetPlaced
    from gameplane.kit.consumer import _Registration

    seen: list[trace.SpanContext] = []

    async def handler(_s: object, events: list[object]) -> None:
        seen.append(trace.get_current_span().get_span_context())

    producers = [SpanContext(random.getrandbits(128), random.getrandbits(64), is_remote=True,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED)) for _ in range(3)]
    items = [(None, None, trace.set_span_in_context(NonRecordingSpan(p))) for p in producers]
    with telemetry.recording(InMemorySpanExporter()) as exported:
        await _Registration(BetPlaced, batch_handler=handler).run(None, items)  # type: ignore[arg-type]
    (span,) = [s for s in exported.get_finished_spans()  # type: ignore[attr-defined]
               if s.name == "consume wallet.bet_placed x3"]
    assert span.context == seen[0] and span.context.trace_id == producers[0].trace_id
    assert span.parent.span_id == producers[0].span_id
    assert [link.context for link in span.links] == producers[1:]

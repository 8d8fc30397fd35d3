"""OpenTelemetry tracing: W3C trace context everywhere, OTLP export only when configured.

One tracer provider per process (OpenTelemetry allows one): the first service configured in a
process sets it. Head sampling happens where a trace starts (the gateway, or a service called
from outside); every later hop follows the parent's decision (ParentBased), so a trace is kept
whole or not at all. Database statements get client spans from the asyncpg instrumentation
(SQLAlchemy's asyncpg dialect and the services' bare asyncpg pools alike)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

DEFAULT_SAMPLING_RATIO = 0.01


class _RequestRoots(Sampler):
    """Decides for spans that start a trace: a trace starts at a request or an event a service
    handles, never at a client span of its own (a statement of the outbox relay's polling, say,
    which would otherwise be a trace of one span every poll)."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: trace.TraceState | None = None
                      ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"RequestRoots{{{self.inner.get_description()}}}"


class _Switchable(Sampler):
    """The process's sampler. SDK tracers keep the sampler they were made with, so a later change
    (`recording`) must happen inside this one object rather than by installing another."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: trace.TraceState | None = None
                      ) -> SamplingResult:
        return self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return self.inner.get_description()


_sampler = _Switchable(ALWAYS_OFF)
_provider: TracerProvider | None = None


def sampler_for(otlp_endpoint: str | None, ratio: float) -> Sampler:
    """Without an exporter nothing would read the spans: sample none, so each request costs an id
    and a context switch only; trace ids still flow through headers and into the logs."""
    if not otlp_endpoint or ratio <= 0:
        return ALWAYS_OFF
    return ParentBased(_RequestRoots(ALWAYS_ON if ratio >= 1 else TraceIdRatioBased(ratio)))


def configure(service: str, otlp_endpoint: str | None, sampling_ratio: float = DEFAULT_SAMPLING_RATIO) -> None:
    global _provider
    if _provider is not None:
        return
    _sampler.inner = sampler_for(otlp_endpoint, sampling_ratio)
    provider = TracerProvider(resource=Resource.create({"service.name": f"gameplane-{service}"}), sampler=_sampler)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")))
    provider.add_span_processor(_tap)
    trace.set_tracer_provider(provider)
    _provider = provider
    if otlp_endpoint and sampling_ratio > 0:
        _instrument_statements()


def _instrument_statements() -> None:
    """Client spans for asyncpg's calls. Only in a process that may record spans: the wrapper
    costs on every statement of the hot paths even when its span is not sampled."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=_provider)


class _Tap(SpanProcessor):
    """Hands finished spans to the exporters `recording` adds for a while (tests): a provider's
    processors cannot be removed once added, so this one stays and its list changes."""

    def __init__(self) -> None:
        self.exporters: list[SpanExporter] = []

    def on_end(self, span: ReadableSpan) -> None:
        for exporter in self.exporters:
            exporter.export((span,))


_tap = _Tap()


@contextmanager
def recording(exporter: SpanExporter, service: str = "test") -> Iterator[SpanExporter]:
    """Within the block, sample every trace that starts in this process and hand each finished
    span to `exporter` at once (tests, a debugging session); afterwards the configured sampling
    applies again. Configures the process first if no service did yet."""
    configure(service, None)
    _instrument_statements()
    before = _sampler.inner
    _sampler.inner = ParentBased(_RequestRoots(ALWAYS_ON))
    _tap.exporters.append(exporter)
    try:
        yield exporter
    finally:
        _tap.exporters.remove(exporter)
        _sampler.inner = before


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write traceparent/tracestate of the current span into outgoing headers."""
    propagate.inject(headers)
    return headers


def extract(headers: Mapping[str, str]) -> context.Context:
    return propagate.extract(headers)


__all__ = ["DEFAULT_SAMPLING_RATIO", "configure", "extract", "inject", "recording", "sampler_for", "tracer"]

"""OpenTelemetry tracing: W3C trace context everywhere, OTLP export only when configured."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

_configured = False


def configure(service: str, otlp_endpoint: str | None) -> None:
    global _configured
    if _configured:
        return
    # Without an exporter nothing would read the spans: sample none, so each request costs an id
    # and a context switch only; trace ids still flow through headers and into the logs.
    sampler = None if otlp_endpoint else ALWAYS_OFF
    provider = TracerProvider(resource=Resource.create({"service.name": f"gameplane-{service}"}),
                              **({"sampler": sampler} if sampler else {}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write traceparent/tracestate of the current span into outgoing headers."""
    propagate.inject(headers)
    return headers


def extract(headers: Mapping[str, str]) -> context.Context:
    return propagate.extract(headers)

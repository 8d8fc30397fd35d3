"""JSON logs carrying the request id, trace id and span id of the current request."""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = request_id_var.get()
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else None
        return True


def configure(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    if json_logs:
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s %(trace_id)s %(span_id)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-5s [" + service + "] %(name)s %(message)s rid=%(request_id)s "
            "trace=%(trace_id)s span=%(span_id)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "nats", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

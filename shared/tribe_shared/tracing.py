"""Optional OpenTelemetry traces: an API request, the broker hop of its jobs and the worker's
provider call, as one trace.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and then free: no tracer, no exporter (its
module is not even imported), no tracing middleware, :func:`span` is a ``nullcontext`` and no
trace context travels in messages. When set,
:func:`configure_tracing` builds a tracer provider of this process (not the global one, so tests
and the one-process dev runner can turn it on and off) exporting over OTLP/HTTP in batches to
``<endpoint>/v1/traces``; the SDK's own ``OTEL_*`` variables (headers, sampler) apply.

The context crosses the broker in the message's options (``trace_context``: W3C
``traceparent``/``tracestate``), written by the outbox when it sends and read by the worker's
:class:`~tribe_worker.middleware.Tracing` middleware around each message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext

#: The message option that carries the trace context across the broker.
MESSAGE_OPTION = "trace_context"

_provider = None  # the SDK's TracerProvider while tracing is on
_tracer = None


def configure_tracing(endpoint: str | None, service_name: str, *, exporter=None):
    """Turn tracing on for this process when ``endpoint`` is set (else leave it off); return the
    tracer provider (``force_flush`` it before a short-lived process exits) or None.

    ``exporter`` replaces the OTLP/HTTP exporter (tests)."""
    global _provider, _tracer
    if endpoint is None and exporter is None:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("tribe")
    return provider


def disable_tracing() -> None:
    """Turn tracing off again (flushing what was recorded)."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def enabled() -> bool:
    return _tracer is not None


def span(name: str, *, kind: str = "internal", parent: Mapping | None = None, **attributes):
    """A span around a block (a context manager yielding it), or nothing when tracing is off.

    ``kind``: ``server``, ``client``, ``producer``, ``consumer`` or ``internal``; ``parent``: a
    carrier of W3C headers (a request's, a message's options) to continue a trace from."""
    if _tracer is None:
        return nullcontext()
    return _started(name, kind, parent, attributes)


@contextmanager
def _started(name: str, kind: str, parent: Mapping | None, attributes: dict) -> Iterator:
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract(parent) if parent else None
    values = {k: v for k, v in attributes.items() if v is not None}
    with _tracer.start_as_current_span(
        name, context=context, kind=SpanKind[kind.upper()], attributes=values
    ) as current:
        yield current


def current_context() -> dict[str, str]:
    """The current span's W3C headers, to send along (empty when tracing is off)."""
    if _tracer is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier

"""OpenTelemetry spans: run -> node -> model call / fetch / engine query (``pip install 'mindsearch[otel]'``).

Spans are made with the OpenTelemetry API when it is installed, and are no-ops until a tracer provider
is set: by ``configure_from_env`` (the ``otel`` extra and ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set: spans go out over OTLP/HTTP), by
``opentelemetry-instrument``, by the embedding application, or by ``use_tracer_provider`` (tests).
Without the package every function here does nothing.

Spans are started and ended explicitly with their parent given, never made "current": a run's steps
are asyncio tasks and async generators, where attaching and detaching a context would cross tasks.
They carry ids, names, counts and hosts, never a question, a page's full URL or a key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the API is optional: no spans at all without it
    _trace = None  # type: ignore[assignment]

log = logging.getLogger("mindsearch.telemetry")

_provider: Any = None  # a provider chosen for mindsearch alone (tests, embedding); else the global one
_tracers: dict[int, Any] = {}

Attributes = Mapping[str, str | int | float | bool | None]


def available() -> bool:
    return _trace is not None


def use_tracer_provider(provider: Any) -> None:
    """Make mindsearch's spans with ``provider`` (``None``: the global provider again)."""
    global _provider
    _provider = provider
    _tracers.clear()


def _tracer() -> Any:
    if _trace is None:
        return None
    provider = _provider if _provider is not None else _trace.get_tracer_provider()
    tracer = _tracers.get(id(provider))
    if tracer is None:
        from .. import __version__

        tracer = _tracers[id(provider)] = provider.get_tracer("mindsearch", __version__)
    return tracer


def start(name: str, parent: Any, attributes: Attributes, *, client: bool = False) -> Any:
    """A started span (child of ``parent``, or of the current context when ``parent`` is None); None
    without OpenTelemetry."""
    tracer = _tracer()
    if tracer is None:
        return None
    context = _trace.set_span_in_context(parent) if parent is not None else None
    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    return tracer.start_span(name, context=context, kind=kind, attributes=_clean(attributes))


def end(span: Any, attributes: Attributes | None = None, *, error: str | None = None) -> None:
    """Set the last attributes and the status (an error's short, redacted reason), and end the span."""
    if span is None:
        return
    if attributes and span.is_recording():
        span.set_attributes(_clean(attributes))
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


def _clean(attributes: Attributes) -> dict[str, str | int | float | bool]:
    return {key: value for key, value in attributes.items() if value is not None}


def configure_from_env() -> bool:
    """Export spans over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is
    set and no tracer provider is set yet (``opentelemetry-instrument`` sets its own). True when this
    call set one up."""
    if _trace is None or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return False
    if not isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
        return False  # the application (or opentelemetry-instrument) chose one already
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK or exporter is missing: "
            "pip install 'mindsearch[otel]'"
        )
        return False
    name = os.environ.get("OTEL_SERVICE_NAME") or "mindsearch"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _trace.set_tracer_provider(provider)
    return True

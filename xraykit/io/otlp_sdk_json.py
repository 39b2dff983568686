"""The OpenTelemetry Python SDK's own span JSON, read as OTLP span objects.

``ConsoleSpanExporter`` prints each finished span as ``ReadableSpan.to_json()`` writes it: one
pretty-printed object per span, one after the other (not an OTLP request)::

    {"name": "GET /", "context": {"trace_id": "0x5759...", "span_id": "0x5399...",
     "trace_state": "[]"}, "kind": "SpanKind.SERVER", "parent_id": null,
     "start_time": "2016-06-10T16:19:20.000000Z", "end_time": "...",
     "status": {"status_code": "ERROR", "description": "..."}, "attributes": {...},
     "events": [{"name": "exception", "timestamp": "...", "attributes": {...}}],
     "links": [{"context": {...}, "attributes": {...}}],
     "resource": {"attributes": {"service.name": "web"}, "schema_url": ""}}

:func:`span_object` rewrites such a span as the span object of :mod:`xraykit.io.otlp`
(``traceId``, ``startTimeUnixNano``, attributes as a plain object, ...), which is then read
and translated like any other; anything it cannot rewrite is passed on as it came, so that
the OTLP reader reports it where it is. The SDK writes times as ISO text with microseconds
(rounded from nanoseconds), which is X-Ray's own precision.

>>> span = span_object({"name": "GET /", "kind": "SpanKind.SERVER", "parent_id": None,
...     "context": {"trace_id": "0x5759e988bd862e3fe1be46a994272793",
...                 "span_id": "0x53995c3f42cd8ad8"},
...     "start_time": "2016-06-10T16:19:20.250000Z", "status": {"status_code": "UNSET"}})
>>> span["traceId"], span["kind"], span["startTimeUnixNano"], span["parentSpanId"]
('5759e988bd862e3fe1be46a994272793', 'SERVER', '1465575560250000000', '')
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

__all__ = ["is_sdk_span", "span_object"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MICROSECOND = _dt.timedelta(microseconds=1)
_KIND_PREFIX = "SpanKind."


def is_sdk_span(value: Any) -> bool:
    """Whether a decoded JSON value is a span as the SDK's ``to_json`` writes it."""
    if type(value) is not dict or "traceId" in value or "resourceSpans" in value:
        return False
    context = value.get("context")
    return type(context) is dict and "span_id" in context and "trace_id" in context


def span_object(span: dict[str, Any]) -> dict[str, Any]:
    """The OTLP span object of a span the SDK's ``to_json`` wrote (see the module's text)."""
    context = span.get("context") or {}
    status = span.get("status")
    out: dict[str, Any] = {
        "traceId": _hex(context.get("trace_id")),
        "spanId": _hex(context.get("span_id")),
        "parentSpanId": _hex(span.get("parent_id")) if span.get("parent_id") is not None else "",
        "name": span.get("name"),
        "kind": _kind(span.get("kind")),
        "startTimeUnixNano": _nanos(span.get("start_time")),
        "endTimeUnixNano": _nanos(span.get("end_time")),
        "attributes": span.get("attributes"),
        "resource": span.get("resource"),
    }
    if type(status) is dict:
        out["status"] = {"code": status.get("status_code"), "message": status.get("description")}
    events = span.get("events")
    if type(events) is list:
        out["events"] = [_event(e) if type(e) is dict else e for e in events]
    links = span.get("links")
    if type(links) is list:
        out["links"] = [_link(link) if type(link) is dict else link for link in links]
    return out


def _hex(value: Any) -> Any:
    """``0x``-prefixed hex as OTLP's plain hex; anything else unchanged."""
    if type(value) is str and value[:2] in ("0x", "0X"):
        return value[2:]
    return value


def _kind(value: Any) -> Any:
    """``SpanKind.SERVER`` as OTLP's enum name ``SERVER``; anything else unchanged."""
    if type(value) is str and value.startswith(_KIND_PREFIX):
        return value[len(_KIND_PREFIX) :]
    return value


def _nanos(value: Any) -> Any:
    """ISO text (``2016-06-10T16:19:20.250000Z``) as epoch nanoseconds in digits; None stays
    None and text that is not a time is passed on (and reported by the OTLP reader)."""
    if type(value) is not str:
        return value
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return str((moment - _EPOCH) // _MICROSECOND * 1000)


def _event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": event.get("name"),
        "timeUnixNano": _nanos(event.get("timestamp")),
        "attributes": event.get("attributes"),
    }


def _link(link: dict[str, Any]) -> dict[str, Any]:
    context = link.get("context")
    if type(context) is not dict:
        context = {}
    return {
        "traceId": _hex(context.get("trace_id")),
        "spanId": _hex(context.get("span_id")),
        "attributes": link.get("attributes"),
    }

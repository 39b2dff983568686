"""OpenTelemetry trace data (OTLP) read into X-Ray segment documents.

Four shapes of span data are read, each into :class:`Span` records and then, by the rules of
:mod:`xraykit.io.otlp_translate`, into segment documents that the ordinary document reader
loads (so every frame, map and analysis works on them unchanged):

* an OTLP/JSON export request, ``{"resourceSpans": [{"resource": ..., "scopeSpans":
  [{"scope": ..., "spans": [...]}]}]}`` — what an OTLP/HTTP exporter posts with
  ``application/json`` and what the collector's file exporter writes, one request per line;
  ``instrumentationLibrarySpans`` (the name before OTLP 0.15) is read too;
* one span as one JSON object with its ``resource`` inside, attributes as a plain
  ``{"key": value}`` object: the OTEL format of Transaction Search (``ListRetrievedTraces``
  with ``TraceFormat="OTEL"``, the ``aws/spans`` log group);
* one span as the OpenTelemetry Python SDK writes it (``ConsoleSpanExporter``, with a
  ``context``), rewritten as such a span object by :mod:`xraykit.io.otlp_sdk_json`;
* a list of these.

Encoding, as the OTLP/JSON specification has it: trace and span ids are hex strings (32 and
16 digits; base64, which protobuf's own JSON mapping would give, is refused with a hint);
64-bit integers (``startTimeUnixNano``, ``intValue``) may be strings or numbers; ``kind``
and ``status.code`` may be enum names (``SPAN_KIND_SERVER``, ``STATUS_CODE_ERROR``, or the
short ``SERVER`` / ``ERROR`` of the span log group) or numbers. Attribute values
(``AnyValue``) become Python values: arrays lists, key-value lists dicts, bytes their base64
text; nesting deeper than :data:`MAX_DEPTH` levels is cut and reported.

Hostile input never raises: a span that cannot be read is skipped and ``report(location,
reason)`` is told why; everything else of the request still loads.

>>> request = {"resourceSpans": [{
...     "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
...     "scopeSpans": [{"spans": [{
...         "traceId": "5759e988bd862e3fe1be46a994272793", "spanId": "53995c3f42cd8ad8",
...         "name": "GET /", "kind": 2, "startTimeUnixNano": "1465575560000000000",
...         "endTimeUnixNano": "1465575560250000000"}]}]}]}
>>> [(s.name, s.kind, s.start_ns, s.resource["service.name"]) for s in spans(request, print)]
[('GET /', 2, 1465575560000000000, 'web')]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from xraykit.io import otlp_sdk_json as _sdk_json

__all__ = [
    "KIND_CLIENT",
    "KIND_CONSUMER",
    "KIND_INTERNAL",
    "KIND_PRODUCER",
    "KIND_SERVER",
    "MAX_DEPTH",
    "STATUS_ERROR",
    "Report",
    "Span",
    "any_value",
    "enum_number",
    "is_otlp",
    "nanos",
    "spans",
]

Report = Callable[[str, str], Any]

KIND_UNSPECIFIED, KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = range(6)
STATUS_UNSET, STATUS_OK, STATUS_ERROR = range(3)
#: attribute values nested deeper than this (arrays in arrays, ...) are cut
MAX_DEPTH = 32
_MAX_NS = 10**11 * 10**9  # epoch nanoseconds X-Ray could have recorded (as the reader's bound)

_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5, "UNSPECIFIED": 0}
_STATUSES = {"UNSET": 0, "OK": 1, "ERROR": 2}
_HEX32 = re.compile(r"[0-9a-fA-F]{32}\Z")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}\Z")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+=*\Z")
_SCALARS = ("stringValue", "intValue", "doubleValue", "boolValue")


@dataclass(slots=True)
class Span:
    """One span, decoded: ids as lowercase hex (``parent_id`` "" for a root), times in epoch
    nanoseconds (``end_ns`` None when it has not ended), ``kind`` and ``status_code`` as the
    OTLP numbers, attributes as a dict of Python values."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int = STATUS_UNSET
    status_message: str = ""
    flags: int = 0
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class _Bad(Exception):
    """A span that cannot be read (the message says why)."""


def is_otlp(value: Any) -> bool:
    """Whether a decoded JSON value is OTLP span data (a request, one span with ids, or one
    span as the SDK's ``to_json`` writes it)."""
    return type(value) is dict and (
        "resourceSpans" in value
        or ("traceId" in value and "spanId" in value)
        or _sdk_json.is_sdk_span(value)
    )


def spans(value: Any, report: Report, location: str = "<otlp>") -> Iterator[Span]:
    """The spans of an export request, a span object or a list of them; what cannot be read
    is told to ``report(location, reason)`` and skipped."""
    stack: list[tuple[Any, str]] = [(value, location)]
    while stack:
        item, where = stack.pop()
        if type(item) is list:
            stack.extend(reversed([(v, f"{where}[{i}]") for i, v in enumerate(item)]))
        elif type(item) is dict and "resourceSpans" in item:
            yield from _request(item, report, where)
        elif _sdk_json.is_sdk_span(item):
            stack.append((_sdk_json.span_object(item), where))
        elif type(item) is dict and "traceId" in item:
            attrs = _resource_attributes(item.get("resource"), report, where)
            try:
                yield _span(item, attrs, report, where)
            except _Bad as bad:
                report(where, str(bad))
        else:
            report(
                where,
                'expected OTLP span data: an export request ({"resourceSpans": [...]}), a span '
                "object with traceId and spanId (or as the SDK's console exporter prints it, "
                f"with a context), or a list of them; got {_short(item)}",
            )


def _request(request: dict[str, Any], report: Report, location: str) -> Iterator[Span]:
    resource_spans = request.get("resourceSpans")
    if type(resource_spans) is not list:
        report(location, f"'resourceSpans' must be a list, got {_short(resource_spans)}")
        return
    for i, rs in enumerate(resource_spans):
        where = f"{location} resourceSpans[{i}]"
        if type(rs) is not dict:
            report(where, f"expected a ResourceSpans object, got {_short(rs)}")
            continue
        attrs = _resource_attributes(rs.get("resource"), report, where)
        scopes = rs.get("scopeSpans", rs.get("instrumentationLibrarySpans"))
        if scopes is None:
            continue
        if type(scopes) is not list:
            report(where, f"'scopeSpans' must be a list, got {_short(scopes)}")
            continue
        for j, scope in enumerate(scopes):
            items = scope.get("spans") if type(scope) is dict else None
            if items is None and type(scope) is dict:
                continue
            if type(items) is not list:
                report(f"{where}.scopeSpans[{j}]", f"expected a 'spans' list, got {_short(scope)}")
                continue
            for k, item in enumerate(items):
                try:
                    yield _span(item, attrs, report, f"{where}.scopeSpans[{j}].spans[{k}]")
                except _Bad as bad:
                    report(f"{where}.scopeSpans[{j}].spans[{k}]", str(bad))


def _span(item: Any, resource: dict[str, Any], report: Report, where: str) -> Span:
    if type(item) is not dict:
        raise _Bad(f"expected a span object, got {_short(item)}")
    trace_id = _id(item.get("traceId"), _HEX32, "traceId", 32)
    span_id = _id(item.get("spanId"), _HEX16, "spanId", 16)
    parent = item.get("parentSpanId")
    parent_id = "" if parent in (None, "") else _id(parent, _HEX16, "parentSpanId", 16)
    if parent_id == "0" * 16:
        parent_id = ""
    start = item.get("startTimeUnixNano")
    if type(start) is str and start.isdecimal() and 0 < len(start) < 21:
        start = int(start)  # the common case, inline
    else:
        start = nanos(start, "startTimeUnixNano")
    if not start or start >= _MAX_NS:
        start = nanos(start, "startTimeUnixNano")
        raise _Bad(f"span {span_id}: 'startTimeUnixNano' is missing or 0")
    end = nanos(item.get("endTimeUnixNano"), "endTimeUnixNano") or None
    name = item.get("name")
    status = item.get("status")
    code, message = STATUS_UNSET, ""
    if type(status) is dict:
        code = enum_number(status.get("code"), _STATUSES, "STATUS_CODE_", "status.code")
        text = status.get("message")
        message = text if type(text) is str else ""
    kind = item.get("kind")
    if type(kind) is not int or not 0 <= kind < 16:
        kind = enum_number(kind, _KINDS, "SPAN_KIND_", "kind")
    flags = item.get("flags")
    span = Span(
        trace_id.lower(),
        span_id.lower(),
        parent_id.lower(),
        name if type(name) is str else "",
        kind,
        start,
        end,
        _attributes(item.get("attributes"), report, where),
        resource,
        code,
        message,
        flags if type(flags) is int else 0,
    )
    events = item.get("events")
    for event in events if events and type(events) is list else ():
        if type(event) is dict:
            ename = event.get("name")
            time = nanos(event.get("timeUnixNano"), "timeUnixNano", strict=False)
            attrs = _attributes(event.get("attributes"), report, where)
            span.events.append((ename if type(ename) is str else "", time, attrs))
    links = item.get("links")
    for link in links if links and type(links) is list else ():
        try:
            if type(link) is not dict:
                raise _Bad(f"expected a link object, got {_short(link)}")
            tid = _id(link.get("traceId"), _HEX32, "links[].traceId", 32).lower()
            sid = _id(link.get("spanId"), _HEX16, "links[].spanId", 16).lower()
        except _Bad as bad:
            report(where, f"span {span.span_id}: a link was skipped: {bad}")
            continue
        span.links.append((tid, sid, _attributes(link.get("attributes"), report, where)))
    return span


def _id(value: Any, pattern: re.Pattern[str], what: str, digits: int) -> str:
    if type(value) is str and pattern.match(value):
        return value
    hint = ""
    if type(value) is str and _BASE64.match(value) and len(value) == (digits // 2 + 2) // 3 * 4:
        hint = (
            " (this looks like base64: OTLP/JSON writes ids as hex; protobuf's generic JSON "
            "mapping, json_format.MessageToJson, is not OTLP/JSON)"
        )
    raise _Bad(f"'{what}' must be {digits} hex digits, got {_short(value)}{hint}")


def nanos(value: Any, what: str, strict: bool = True) -> int:
    """Epoch nanoseconds from an int or a decimal string; 0 when absent (a value that is
    neither raises when ``strict``, else gives 0)."""
    if value is None:
        return 0
    kind = type(value)
    if kind is str and value.isdecimal() and len(value) < 25:
        number = int(value)
    elif kind is int:
        number = value
    elif kind is float and value.is_integer():
        number = int(value)
    else:
        if not strict:
            return 0
        raise _Bad(
            f"'{what}' must be epoch nanoseconds (an integer or a string of digits), got {_short(value)}"
        )
    if not 0 <= number < _MAX_NS:
        if not strict:
            return 0
        raise _Bad(f"'{what}' must be epoch nanoseconds between 0 and {_MAX_NS:.0e}, got {number}")
    return number


def enum_number(value: Any, names: dict[str, int], prefix: str, what: str) -> int:
    """An OTLP enum (``kind``, ``status.code``) from its number or name; 0 when absent."""
    if value is None:
        return 0
    if type(value) is int and 0 <= value < 16:
        return value
    if type(value) is str:
        key = value.upper()
        key = key[len(prefix) :] if key.startswith(prefix) else key
        if key in names:
            return names[key]
        if key.isdecimal():
            return int(key) if int(key) < 16 else 0
    raise _Bad(f"'{what}' must be an OTLP enum name or number, got {_short(value)}")


def _resource_attributes(resource: Any, report: Report, where: str) -> dict[str, Any]:
    if type(resource) is not dict:
        return {}
    return _attributes(resource.get("attributes"), report, where)


def _attributes(value: Any, report: Report, where: str) -> dict[str, Any]:
    """OTLP attributes (a list of ``{"key", "value": AnyValue}``) or a plain object, as a dict."""
    if value is None:
        return {}
    if type(value) is dict:  # the span log group writes attributes as a plain object
        return value
    if type(value) is not list:
        report(where, f"'attributes' must be a list of key-values, got {_short(value)}; ignored")
        return {}
    out: dict[str, Any] = {}
    for kv in value:
        try:  # the common case first: {"key": "k", "value": {"stringValue": "v"}}
            key, wrapped = kv["key"], kv["value"]
            text = wrapped["stringValue"]
            if type(text) is str and type(key) is str and len(wrapped) == 1:
                out[key] = text
                continue
        except (TypeError, KeyError, IndexError):
            pass
        if type(kv) is not dict or type(kv.get("key")) is not str:
            report(
                where,
                f"an attribute must be {{'key': str, 'value': AnyValue}}, got {_short(kv)}; ignored",
            )
            continue
        out[kv["key"]] = any_value(kv.get("value"), report, where, 0)
    return out


def any_value(value: Any, report: Report, where: str, depth: int) -> Any:
    """An OTLP ``AnyValue`` as a Python value (None when empty or not understood)."""
    if type(value) is not dict:
        return None
    for tag in _SCALARS:
        if tag in value:
            inner = value[tag]
            if tag == "intValue":
                if type(inner) is str:
                    try:
                        return int(inner) if len(inner) < 25 else None
                    except ValueError:
                        return None
                return inner if type(inner) is int else None
            if tag == "doubleValue":
                if type(inner) in (int, float):
                    return float(inner)
                if inner in ("NaN", "Infinity", "-Infinity"):
                    return inner  # kept as text: JSON has no such numbers
                return None
            if tag == "boolValue":
                return inner if type(inner) is bool else None
            return inner if type(inner) is str else None
    if "bytesValue" in value:
        inner = value["bytesValue"]
        return inner if type(inner) is str else None
    if depth >= MAX_DEPTH:
        report(where, f"an attribute value nested deeper than {MAX_DEPTH} levels was cut")
        return None
    if "arrayValue" in value:
        inner = value["arrayValue"]
        values = inner.get("values") if type(inner) is dict else None
        if type(values) is not list:
            return []
        return [any_value(v, report, where, depth + 1) for v in values]
    if "kvlistValue" in value:
        inner = value["kvlistValue"]
        values = inner.get("values") if type(inner) is dict else None
        out: dict[str, Any] = {}
        for kv in values if type(values) is list else ():
            if type(kv) is dict and type(kv.get("key")) is str:
                out[kv["key"]] = any_value(kv.get("value"), report, where, depth + 1)
        return out
    return None


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deep to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""OTLP trace data in protobuf, read into the OTLP/JSON structure that :mod:`otlp` reads.

Protobuf arrives two ways: as the body of ``POST /v1/traces`` on the local X-Ray
(``application/x-protobuf``), and as a file the OpenTelemetry collector's file exporter wrote
with ``format: proto`` or with ``compression: zstd``: each message preceded by its length in
four bytes, big-endian, and zstd-compressed on its own when compression is on (a JSON message
so compressed is JSON again once decompressed). :func:`frames` cuts such a file into its
messages, :func:`unzstd` undoes the compression (bounded), and :func:`request` decodes a
``TracesData`` or ``ExportTraceServiceRequest`` (the same fields on the wire) with
``opentelemetry-proto`` (``pip install "xraykit[otlp]"``): nothing is hand-parsed but the
lengths. Ids become hex, as OTLP/JSON writes them, so both encodings translate alike.

A framed file is told from text by its first bytes (:func:`is_framed`): a length whose first
byte is zero (a message under 16 MB; JSON text never starts with NUL) followed by a zstd frame
or a protobuf ``resource_spans`` field. One message saved without a length (a request body
as it was posted) is read too when the whole file parses as one and holds a span
(:func:`single_request`).

>>> data = (3).to_bytes(4, "big") + b"abc" + (2).to_bytes(4, "big") + b"de"
>>> list(frames(iter([data[:5], data[5:]]), limit=None))
[(1, b'abc', None), (2, b'de', None)]
>>> is_framed(data), is_framed(b'{"resourceSpans": []}')
(False, False)
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from xraykit.exceptions import MissingDependencyError, require
from xraykit.io import otlp as _otlp
from xraykit.io.source import ZSTD_MAGIC

__all__ = [
    "ProtobufError",
    "frames",
    "is_framed",
    "is_message",
    "request",
    "single_request",
    "trace_service",
    "unzstd",
]

_TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.trace_service_pb2"
_RESOURCE_SPANS = b"\x0a"  # field 1, length-delimited: TracesData.resource_spans
_PREFIX = 4  # bytes of a frame's length


class ProtobufError(ValueError):
    """Bytes that are not the protobuf message (or zstd frame) they should be."""


def trace_service() -> Any:
    """The generated ``trace_service_pb2`` module (MissingDependencyError naming the extra)."""
    return require(_TRACE_SERVICE, "otlp")


def is_framed(head: bytes) -> bool:
    """Whether a file starting with ``head`` (8 bytes or more) is length-prefixed messages."""
    if len(head) < _PREFIX + 4 or head[0] != 0:
        return False
    length = int.from_bytes(head[:_PREFIX], "big")
    body = head[_PREFIX:]
    return length > 0 and (body.startswith(ZSTD_MAGIC) or body.startswith(_RESOURCE_SPANS))


def frames(
    blocks: Iterator[bytes | bytearray], limit: int | None
) -> Iterator[tuple[int, bytes | None, str | None]]:
    """``(number, message, None)`` per message of a framed file, from 1; ``(number, None,
    reason)`` for one longer than ``limit`` (skipped without being held whole) or cut off at
    the end of the file."""
    pending = bytearray()
    number = 0
    skip = 0  # bytes still to pass over of a message too long to keep
    for block in blocks:
        view = memoryview(block)
        if skip:
            passed = min(skip, len(view))
            skip -= passed
            view = view[passed:]
        pending += view
        at = 0
        while len(pending) - at >= _PREFIX:
            length = int.from_bytes(pending[at : at + _PREFIX], "big")
            if limit is not None and length > limit:
                number += 1
                yield (
                    number,
                    None,
                    (
                        f"a message of {length:,} bytes is longer than max_line_bytes "
                        f"({limit:,}); it was skipped"
                    ),
                )
                left = len(pending) - at - _PREFIX
                skip = max(0, length - left)
                at = min(len(pending), at + _PREFIX + length)
                continue
            if len(pending) - at - _PREFIX < length:
                break
            number += 1
            yield number, bytes(pending[at + _PREFIX : at + _PREFIX + length]), None
            at += _PREFIX + length
        del pending[:at]
    if pending:  # (a message being skipped was reported already)
        if len(pending) < _PREFIX:
            cut = f"inside a message's length ({len(pending)} of its {_PREFIX} bytes)"
        else:
            size = int.from_bytes(pending[:_PREFIX], "big")
            cut = f"inside a message ({len(pending) - _PREFIX:,} of its {size:,} bytes)"
        yield number + 1, None, f"the file ends {cut}; kept what came before"


def unzstd(data: bytes, limit: int | None) -> bytes:
    """One zstd-compressed message, decompressed (at most ``limit`` bytes of it)."""
    import pyarrow as pa

    out = bytearray()
    stream = pa.CompressedInputStream(pa.BufferReader(data), "zstd")
    try:
        while True:
            piece = stream.read(1 << 20)
            if not piece:
                return bytes(out)
            out += piece
            if limit is not None and len(out) > limit:
                raise ProtobufError(
                    f"the message is larger than max_line_bytes ({limit:,}) once decompressed"
                )
    except (OSError, pa.ArrowException) as exc:
        raise ProtobufError(f"the message is not a whole zstd frame ({exc})") from None
    finally:
        stream.close()


def is_message(head: bytes) -> bool:
    """Whether a file starting with ``head`` may be one unframed ``TracesData`` message (a
    request body saved as it was posted): a ``resource_spans`` field whose first member is a
    field of ``ResourceSpans``. Text can start so too (a blank line, then ``{``): only
    :func:`single_request` decides."""
    if len(head) < 3 or head[:1] != _RESOURCE_SPANS:
        return False
    at = 1
    while at < len(head) and head[at] & 0x80 and at < 6:  # the length's varint
        at += 1
    return at + 1 < len(head) and head[at + 1] in (0x0A, 0x12, 0x1A)


def single_request(data: bytes) -> dict[str, Any] | None:
    """The file as one unframed trace message, or None when it is not one (it does not
    parse, or holds no span with X-Ray-sized ids: 16 and 8 bytes), or when
    ``opentelemetry-proto`` is missing."""
    try:
        value = request(data)
    except (ProtobufError, MissingDependencyError):
        return None
    spans = (s for rs in value["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"])
    return value if any(len(s["traceId"]) == 32 and len(s["spanId"]) == 16 for s in spans) else None


def request(data: bytes) -> dict[str, Any]:
    """A ``TracesData`` / ``ExportTraceServiceRequest`` in protobuf as the OTLP/JSON
    structure (hex ids)."""
    message = trace_service().ExportTraceServiceRequest()
    try:
        message.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError, or a nesting limit
        raise ProtobufError(f"the bytes are not an OTLP trace message: {error}") from None
    resource_spans = []
    for rs in message.resource_spans:
        scopes = [{"spans": [_span(span) for span in ss.spans]} for ss in rs.scope_spans]
        resource = {"attributes": _attributes(rs.resource.attributes)}
        resource_spans.append({"resource": resource, "scopeSpans": scopes})
    return {"resourceSpans": resource_spans}


def _span(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": span.trace_id.hex(),
        "spanId": span.span_id.hex(),
        "parentSpanId": span.parent_span_id.hex(),
        "name": span.name,
        "kind": int(span.kind),
        "startTimeUnixNano": int(span.start_time_unix_nano),
        "endTimeUnixNano": int(span.end_time_unix_nano),
        "attributes": _attributes(span.attributes),
        "status": {"code": int(span.status.code), "message": span.status.message},
        "flags": int(getattr(span, "flags", 0)),
    }
    if span.events:
        out["events"] = [
            {
                "name": e.name,
                "timeUnixNano": int(e.time_unix_nano),
                "attributes": _attributes(e.attributes),
            }
            for e in span.events
        ]
    if span.links:
        out["links"] = [
            {
                "traceId": link.trace_id.hex(),
                "spanId": link.span_id.hex(),
                "attributes": _attributes(link.attributes),
            }
            for link in span.links
        ]
    return out


def _attributes(pairs: Any) -> list[dict[str, Any]]:
    return [{"key": kv.key, "value": _value(kv.value, 0)} for kv in pairs]


def _value(value: Any, depth: int) -> dict[str, Any]:
    """An ``AnyValue`` message as its OTLP/JSON object."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return {"stringValue": value.string_value}
    if which == "int_value":
        return {"intValue": int(value.int_value)}
    if which == "double_value":
        return {"doubleValue": float(value.double_value)}
    if which == "bool_value":
        return {"boolValue": bool(value.bool_value)}
    if which == "bytes_value":
        return {"bytesValue": base64.b64encode(value.bytes_value).decode()}
    if depth >= _otlp.MAX_DEPTH:
        return {}
    if which == "array_value":
        return {"arrayValue": {"values": [_value(v, depth + 1) for v in value.array_value.values]}}
    if which == "kvlist_value":
        values = [
            {"key": kv.key, "value": _value(kv.value, depth + 1)}
            for kv in value.kvlist_value.values
        ]
        return {"kvlistValue": {"values": values}}
    return {}

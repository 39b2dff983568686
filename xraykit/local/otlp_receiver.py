"""The local X-Ray's OTLP/HTTP trace receiver: ``POST /v1/traces``.

An OpenTelemetry SDK's OTLP HTTP exporter (or a collector) posts an
``ExportTraceServiceRequest`` here, as protobuf (``application/x-protobuf``, decoded with
``opentelemetry-proto``: ``pip install "xraykit[otlp]"``) or as OTLP/JSON
(``application/json``), optionally gzip-compressed (``Content-Encoding: gzip``). The spans
are translated into segment documents by the ADOT collector's X-Ray exporter rules
(:mod:`xraykit.io.otlp_translate`) and kept in the :class:`~xraykit.local.store.Store`, each
span its own document as the exporter sends them, next to what the daemon received: a trace
half on the X-Ray SDK and half on OpenTelemetry is one trace.

The answer is an ``ExportTraceServiceResponse`` in the request's encoding, with
``partialSuccess.rejectedSpans`` and a message when some spans could not be kept (an id that
cannot be an X-Ray trace id, a span that cannot be read). A body that cannot be decoded is
answered 400, an unknown content type 415, a missing ``opentelemetry-proto`` 415 naming the
extra; bodies are bounded (:data:`MAX_BODY` sent, :data:`MAX_DECODED` after gzip).

>>> import json
>>> from xraykit.local.store import Store
>>> request = {"resourceSpans": [{"scopeSpans": [{"spans": [{
...     "traceId": "5759e988bd862e3fe1be46a994272793", "spanId": "53995c3f42cd8ad8",
...     "name": "GET /", "kind": 2, "startTimeUnixNano": "1465575560000000000",
...     "endTimeUnixNano": "1465575560250000000"}]}]}]}
>>> with Store(":memory:") as store:
...     reply = receive(store, json.dumps(request).encode(), "application/json", "")
...     reply.status, json.loads(reply.body), store.count()
(200, {}, 1)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from xraykit.exceptions import MissingDependencyError
from xraykit.io import otlp as _otlp
from xraykit.io import otlp_protobuf as _protobuf
from xraykit.io import otlp_translate as _translate

if TYPE_CHECKING:
    from xraykit.local.store import Store

__all__ = ["MAX_BODY", "MAX_DECODED", "PATH", "Reply", "receive"]

#: where OTLP/HTTP exporters post traces
PATH = "/v1/traces"
#: the largest body accepted as sent, in bytes
MAX_BODY = 16 << 20
#: the largest body accepted after gzip is undone, in bytes
MAX_DECODED = 64 << 20
_JSON, _PROTOBUF = "application/json", "application/x-protobuf"


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, content type and body."""

    status: int
    content_type: str
    body: bytes


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def receive(store: Store, body: bytes, content_type: str, content_encoding: str) -> Reply:
    """Answer one ``POST /v1/traces``: decode, translate, store; never raises."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    answer_kind = _PROTOBUF if kind == _PROTOBUF else _JSON
    try:
        data = _decoded(body, content_encoding)
        if kind == _JSON:
            try:
                request = orjson.loads(data) if data.strip() else {}
            except orjson.JSONDecodeError as error:
                raise _Refusal(400, f"the body is not valid JSON: {error}") from None
        elif kind == _PROTOBUF:
            request = _from_protobuf(data)
        else:
            raise _Refusal(
                415,
                f"Content-Type {content_type!r} is not served: send OTLP as application/json "
                "or application/x-protobuf",
            )
        if type(request) is not dict:
            raise _Refusal(400, "an ExportTraceServiceRequest must be a JSON object")
        rejected, message = _store(store, request)
    except _Refusal as refusal:
        return _status(refusal.status, str(refusal), answer_kind)
    return _response(rejected, message, answer_kind)


def _decoded(body: bytes, encoding: str) -> bytes:
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise _Refusal(415, f"Content-Encoding {encoding!r} is not served: use gzip or none")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_DECODED)
    except zlib.error as error:
        raise _Refusal(400, f"the gzip body cannot be decompressed: {error}") from None
    if inflater.unconsumed_tail:
        raise _Refusal(413, f"the body is larger than {MAX_DECODED} bytes once decompressed")
    return data


def _store(store: Store, request: dict[str, Any]) -> tuple[int, str]:
    """Translate and keep the request's spans; the count of spans not kept, and why."""
    reasons: list[str] = []

    def report(location: str, reason: str) -> None:
        if len(reasons) < 20:
            reasons.append(reason)

    translator = _translate.Translator(_translate.Options(), report)
    translator.location = PATH
    docs: list[dict[str, Any]] = []
    owner: dict[str, str] = {}  # document id -> id of the span it came from
    kept_spans: set[str] = set()
    for span in _otlp.spans(request, report, PATH):
        try:
            made = translator.documents(span)
        except _translate.Refused as refused:
            report(PATH, str(refused))
            continue
        kept_spans.add(span.span_id)
        for doc in made:
            owner[doc["id"]] = span.span_id
            docs.append(doc)
    result = store.put(docs) if docs else None
    for doc_id, reason in result.rejected if result is not None else ():
        span_id = owner.get(doc_id or "")
        if span_id in kept_spans:
            kept_spans.discard(span_id)
            reasons.append(f"span {span_id}: the store refused its document ({reason})")
    rejected = max(0, _count_spans(request) - len(kept_spans))
    return rejected, "; ".join(reasons[:5]) if rejected else ""


def _count_spans(request: dict[str, Any]) -> int:
    count = 0
    resource_spans = request.get("resourceSpans")
    for rs in resource_spans if type(resource_spans) is list else ():
        scopes = (
            rs.get("scopeSpans", rs.get("instrumentationLibrarySpans"))
            if type(rs) is dict
            else None
        )
        for scope in scopes if type(scopes) is list else ():
            spans = scope.get("spans") if type(scope) is dict else None
            count += len(spans) if type(spans) is list else 0
    return count


def _response(rejected: int, message: str, kind: str) -> Reply:
    if kind == _PROTOBUF:
        response = _trace_service().ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        return Reply(200, _PROTOBUF, response.SerializeToString())
    body: dict[str, Any] = {}
    if rejected:
        body["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
    return Reply(200, _JSON, orjson.dumps(body))


def _status(status: int, message: str, kind: str) -> Reply:
    """An error answer: a ``google.rpc.Status`` (protobuf when it can be made, else JSON)."""
    code = {400: 3, 413: 8, 415: 3}.get(status, 13)
    if kind == _PROTOBUF:
        try:
            from google.rpc import status_pb2  # optional: comes with the OTLP exporter
        except ImportError:
            pass
        else:
            return Reply(
                status, _PROTOBUF, status_pb2.Status(code=code, message=message).SerializeToString()
            )
    return Reply(status, _JSON, orjson.dumps({"code": code, "message": message}))


def _trace_service() -> Any:
    try:
        return _protobuf.trace_service()
    except MissingDependencyError as missing:
        raise _no_protobuf(missing) from None


def _from_protobuf(data: bytes) -> dict[str, Any]:
    """An ``ExportTraceServiceRequest`` in protobuf as the OTLP/JSON structure (hex ids)."""
    try:
        return _protobuf.request(data)
    except MissingDependencyError as missing:
        raise _no_protobuf(missing) from None
    except _protobuf.ProtobufError as error:
        raise _Refusal(400, f"the body cannot be read: {error}") from None


def _no_protobuf(missing: MissingDependencyError) -> _Refusal:
    return _Refusal(
        415,
        "OTLP protobuf needs opentelemetry-proto, which is not installed here: "
        'pip install "xraykit[otlp]" (or send application/json). ' + str(missing),
    )

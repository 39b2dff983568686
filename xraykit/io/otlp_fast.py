"""The fast path for OTLP/JSON export requests: spans straight into nested segment documents.

:mod:`xraykit.io.otlp` reads spans into :class:`~xraykit.io.otlp.Span` records and
:mod:`xraykit.io.otlp_translate` turns each into documents; that path reports every oddity
where it is. Files of many traces are almost always plain: hex ids, times as digits,
attributes of scalars, no events or links. :class:`FastTranslator` reads such a request in
one pass, with the same rules (the block builders of :mod:`xraykit.io.otlp_blocks` and the
naming and attribute rules of :mod:`xraykit.io.otlp_translate`, called with plain values
rather than a ``Span``), and gives exactly the documents of that path, nested the same way.

It gives up on a request, returning None so that the exact path reads it (and reports what
it must), at the first thing outside that plain shape: an id, time, kind or attribute that
would be a problem, a span with events or links, a local root (``aws.span.kind``), a trace
id the exporter refuses, or anything unexpected. Nothing is reported here, so giving up
costs only the time spent. The parts a resource gives are kept for resources seen before
(:data:`MAX_CACHED` of them), since each request of a file repeats its services' resources;
and spans of a pattern seen before (the same resource, kind, status shape and attribute keys
and types) are translated by that pattern's plan (:mod:`xraykit.io.otlp_plan`), which
decided once where each attribute goes.

A request's JSON text (a line of a file) is read in C when the library is built
(:meth:`FastTranslator.documents_of_text`): ``OtlpSpans`` of ``_scan.c`` reads a plain request
straight into each span's ids, times, kind, status and attribute dict, and the translation
goes on from there; ``nest_documents`` nests the subsegments. It reads nothing differently
from ``orjson.loads`` and :meth:`FastTranslator.documents` (``tests/test_otlp_native.py``
compares them on every request it has, hostile ones included) and gives up where it would.

>>> request = {"resourceSpans": [{
...     "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
...     "scopeSpans": [{"spans": [{
...         "traceId": "5759e988bd862e3fe1be46a994272793", "spanId": "53995c3f42cd8ad8",
...         "name": "GET /", "kind": 2, "startTimeUnixNano": "1465575560000000000",
...         "endTimeUnixNano": "1465575560250000000"}]}]}]}
>>> fast = FastTranslator()
>>> [(d["name"], d["end_time"]) for d in fast.documents(request)], fast.taken, fast.left
([('web', 1465575560.25)], 1, 0)
>>> fast.documents({"resourceSpans": "not a list"}), fast.left
(None, 1)
"""

from __future__ import annotations

import re
from typing import Any

from xraykit.io import otlp as _otlp
from xraykit.io import otlp_blocks as _blocks
from xraykit.io import otlp_plan as _plan
from xraykit.io import otlp_translate as _translate
from xraykit.io.columns import _scan
from xraykit.io.otlp import KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, STATUS_ERROR

__all__ = ["MAX_CACHED", "USE_FAST_PATH", "USE_NATIVE", "USE_PLANS", "FastTranslator"]

#: whether readers use the fast path (tests turn it off to compare with the exact path)
USE_FAST_PATH = True
#: whether the fast path applies translation plans (:mod:`xraykit.io.otlp_plan`)
USE_PLANS = True
#: whether lines of requests are read by the C reader (``OtlpSpans`` of ``_scan.c``) when built
USE_NATIVE = True
#: resources (and annotation keys) whose translation is kept for the next requests
MAX_CACHED = 4096

_HEX32 = re.compile(r"[0-9a-fA-F]{32}\Z")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}\Z")
_NO_PARENT = "0" * 16
_MAX_NS = 10**11 * 10**9
_MAX_AGE = 28 * 24 * 3600
_MAX_SKEW = 300
_MAX_NESTING = _translate.MAX_NESTING
_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5, "UNSPECIFIED": 0}
_STATUSES = {"UNSET": 0, "OK": 1, "ERROR": 2}
_SPECIAL = _blocks.SPECIAL_KEYS
_DEPENDENCY = (KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER)


class _GiveUp(Exception):
    """The request is not plain: the exact path reads it."""


def _give_up(_location: str, _reason: str) -> None:
    raise _GiveUp


class FastTranslator:
    """Export requests into nested documents with one set of
    :class:`~xraykit.io.otlp_translate.Options`; ``taken`` and ``left`` count the requests
    translated here and those left to the exact path. ``native=False``: no C (as a reader
    without the C scanner reads)."""

    def __init__(self, options: _translate.Options | None = None, native: bool = True) -> None:
        self.options = options or _translate.Options()
        self.taken = 0
        self.left = 0
        self._parts: dict[tuple[Any, ...], _translate.ResourceParts] = {}
        self._plans = _plan.Plans(self.options) if USE_PLANS else None
        self._trace: tuple[Any, str, int] = (object(), "", 0)  # the last trace id, translated
        native = native and USE_NATIVE and _scan is not None
        self._native = _scan.OtlpSpans() if native else None  # the C reader, when built

    def documents(self, value: Any) -> list[dict[str, Any]] | None:
        """The documents of an export request (or a list of them), subsegments nested as
        :func:`~xraykit.io.otlp_translate.nest` does; None when the exact path must read it."""
        try:
            docs: list[dict[str, Any]] = []
            if type(value) is list:
                for item in value:
                    if type(item) is not dict or "resourceSpans" not in item:
                        raise _GiveUp
                    self._request(item, docs)
            else:
                self._request(value, docs)
        except Exception:  # anything unusual: the exact path reads (and reports) it
            self.left += 1
            return None
        self.taken += 1
        return _nest(docs, self._native is not None)

    def documents_of_text(self, data: bytes | memoryview) -> list[dict[str, Any]] | None:
        """The documents of one export request's JSON text (a line of a file), read by the
        C reader (:class:`xraykit.io._scan.OtlpSpans`); the same documents as
        :meth:`documents` gives for ``orjson.loads(data)``. None when that reader is not
        built or the request is not plain: then :meth:`documents` (or the exact path) reads
        it. Counts as :meth:`documents` does only what it translates."""
        native = self._native
        if native is None:
            return None
        spans = native.read(data, self.options.validate_trace_ids)
        if spans is None:
            return None
        try:
            docs = []
            complete, last = self._complete, None
            parts: Any = None  # the parts of `last`, the resource of the spans before
            for resource, doc, attrs, kind, subsegment, name, code, message in spans:
                if resource is not last:
                    last, parts = resource, self._resource_parts(resource)
                docs.append(complete(doc, attrs, kind, subsegment, name, code, message, resource, parts))  # fmt: skip
        except Exception:  # anything unusual: the other paths read (and report) it
            return None
        self.taken += 1
        return _nest(docs, True)

    def _resource_parts(self, resource: dict[str, Any]) -> _translate.ResourceParts:
        """The parts a resource gives, kept by content when its values are text or integers."""
        for value in resource.values():
            kind = type(value)
            if kind is not str and kind is not int:
                return _translate.resource_parts(resource, self.options)
        key = tuple(resource.items())
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) >= MAX_CACHED:
                self._parts.clear()
            parts = self._parts[key] = _translate.resource_parts(resource, self.options)
        return parts

    def _request(self, request: Any, docs: list[dict[str, Any]]) -> None:
        resource_spans = request.get("resourceSpans")
        if type(resource_spans) is not list:
            raise _GiveUp
        for rs in resource_spans:
            if type(rs) is not dict:
                raise _GiveUp
            res = rs.get("resource")
            resource = _attributes(res.get("attributes")) if type(res) is dict else {}
            scopes = rs.get("scopeSpans", rs.get("instrumentationLibrarySpans"))
            if scopes is None:
                continue
            if type(scopes) is not list:
                raise _GiveUp
            parts = None
            for scope in scopes:
                items = scope.get("spans") if type(scope) is dict else None
                if items is None and type(scope) is dict:
                    continue
                if type(items) is not list:
                    raise _GiveUp
                if items and parts is None:
                    parts = self._resource_parts(resource)
                document, append = self._document, docs.append
                for item in items:
                    append(document(item, resource, parts))  # type: ignore[arg-type]

    def _document(
        self, item: Any, resource: dict[str, Any], parts: _translate.ResourceParts
    ) -> dict[str, Any]:
        """One span's document, as :meth:`~xraykit.io.otlp_translate.Translator.documents`
        makes it for a span that is not a local root."""
        if type(item) is not dict:
            raise _GiveUp
        trace_id = item["traceId"]
        span_id = item["spanId"]
        trace = self._trace
        if trace_id != trace[0]:  # the spans of a request mostly share their trace
            if not (type(trace_id) is str and _HEX32.match(trace_id)):
                raise _GiveUp
            low = trace_id.lower()
            trace = self._trace = (trace_id, f"1-{low[:8]}-{low[8:]}", int(low[:8], 16))
        if not (type(span_id) is str and _HEX16.match(span_id)):
            raise _GiveUp
        span_id = span_id.lower()
        parent = item.get("parentSpanId")
        if parent is None or parent == "":
            parent = ""
        elif type(parent) is str and _HEX16.match(parent):
            parent = "" if parent == _NO_PARENT else parent.lower()
        else:
            raise _GiveUp
        start = item.get("startTimeUnixNano")
        if type(start) is str and start.isdecimal() and 0 < len(start) < 21:
            start = int(start)
        elif type(start) is not int:
            raise _GiveUp
        if not 0 < start < _MAX_NS:
            raise _GiveUp
        end = item.get("endTimeUnixNano")
        if type(end) is str and end.isdecimal() and len(end) < 25:
            end = int(end)
            if end >= _MAX_NS:
                raise _GiveUp
            end = end or None
        else:
            end = _otlp.nanos(end, "endTimeUnixNano") or None
        name = item.get("name")
        if type(name) is not str:
            name = ""
        kind = item.get("kind")
        if type(kind) is not int or not 0 <= kind < 16:
            kind = _otlp.enum_number(kind, _KINDS, "SPAN_KIND_", "kind")
        status_code, status_message = 0, ""
        status = item.get("status")
        if type(status) is dict:
            status_code = _otlp.enum_number(status.get("code"), _STATUSES, "STATUS_CODE_", "code")
            text = status.get("message")
            status_message = text if type(text) is str else ""
        events, links = item.get("events"), item.get("links")
        if (events and type(events) is list) or (links and type(links) is list):
            raise _GiveUp
        attrs = _attributes(item.get("attributes"))
        subsegment = kind != KIND_SERVER and kind != KIND_CONSUMER and parent != ""
        start_s = (start // 1000) / 1e6
        if self.options.validate_trace_ids:
            delta = start_s - trace[2]
            if delta > _MAX_AGE or delta < -_MAX_SKEW:
                raise _GiveUp
        doc: dict[str, Any] = {
            "id": span_id,
            "trace_id": trace[1],
            "start_time": start_s,
        }
        if end is None:
            doc["in_progress"] = True
        else:
            doc["end_time"] = (end // 1000) / 1e6
        if parent:
            doc["parent_id"] = parent
        if subsegment:
            doc["type"] = "subsegment"
        return self._complete(
            doc, attrs, kind, subsegment, name, status_code, status_message, resource, parts
        )

    def _complete(
        self,
        doc: dict[str, Any],
        attrs: dict[str, Any],
        kind: int,
        subsegment: bool,
        name: str,
        status_code: int,
        status_message: str,
        resource: dict[str, Any],
        parts: _translate.ResourceParts,
    ) -> dict[str, Any]:
        """``doc`` (ids and times set) completed with what the span's attributes, kind,
        name and status give it."""
        if attrs.get("aws.span.kind") == "LOCAL_ROOT":
            raise _GiveUp
        options = self.options
        plans = self._plans
        if plans is not None and len(attrs) <= _plan.MAX_KEYS:  # otlp_plan.pattern, inline
            if "db.system" in attrs or "db.system.name" in attrs:
                steering = _plan.switches(attrs)
            elif "aws.xray.annotations" in attrs:
                steering = _plan.listed(attrs["aws.xray.annotations"])
            else:
                steering = ()
            pattern = (
                id(parts),
                kind,
                subsegment,
                status_code,
                status_message != "",
                tuple(attrs),
                tuple(map(type, attrs.values())),
                steering,
            )
            plan = plans.found.get(pattern)
            if plan is None or (plan and plan.parts is not parts):  # type: ignore[union-attr]
                plan = plans.settle(
                    pattern,
                    attrs,
                    kind,
                    subsegment,
                    status_code,
                    status_message,
                    parts,
                    resource,
                    name,
                )
            if plan:
                plans.used += 1
                return plan.fill(doc, attrs, kind, name, status_code, resource)  # type: ignore[union-attr]

        rest: dict[str, Any] = {}
        special: dict[str, Any] = {}
        for key, value in attrs.items():
            if key in _SPECIAL:
                special[key] = value
            else:
                rest[key] = value
        http = _blocks.http_block(kind, attrs, (), special) if special else None
        if status_code == STATUS_ERROR:
            fault, error, throttle, cause = _blocks.cause_block(
                kind, attrs, [], resource, doc["id"], status_code, status_message, special
            )
        else:
            fault = error = throttle = False
            cause = None
            code = _blocks.as_int(
                attrs.get("http.status_code", attrs.get("http.response.status_code"))
            )
            if code is not None and 400 <= code <= 599:
                if code <= 499:
                    error, throttle = True, code == 429
                else:
                    fault = True
        aws = _blocks.aws(special, parts.aws, attrs) if special or parts.aws is not None else None
        sql = None
        if special and ("db.system" in special or "db.system.name" in special):
            sql = _blocks.sql_block(name, special)
        if special:
            rest.update(special)
        for key in options.indexed_attributes:
            if key not in rest and key in attrs:
                rest[key] = attrs[key]
        user, annotations, metadata = _translate.annotations_and_metadata(
            rest, None if subsegment else parts, options
        )
        doc["name"], namespace = _translate.name_and_namespace(attrs, kind, resource, name)
        doc["fault"], doc["error"], doc["throttle"] = fault, error, throttle
        _translate.fill(doc, namespace, parts.origin, user, cause, http, aws, sql, parts.service,
                        annotations, metadata)  # fmt: skip
        if (
            subsegment
            and kind in _DEPENDENCY
            and "namespace" not in doc
            and "aws.remote.service" in attrs
        ):
            doc["namespace"] = "remote"
        return doc


def _nest(docs: list[dict[str, Any]], native: bool) -> list[dict[str, Any]]:
    """:func:`~xraykit.io.otlp_translate.nest`, quicker when every subsegment's parent comes
    before it (as spans are written parent first) and nesting stays within
    :data:`~xraykit.io.otlp_translate.MAX_NESTING`; else that function itself. The quick case
    runs in C (``_scan.nest_documents``) when ``native`` and built."""
    if native and USE_NATIVE and _scan is not None:
        moved: list[dict[str, Any]] | None = _scan.nest_documents(docs, _MAX_NESTING)
        if moved is not None:
            return moved
    index = {}
    for i, doc in enumerate(docs):
        index[(doc["trace_id"], doc["id"])] = i
    depth = [0] * len(docs)
    nested = False
    for i, doc in enumerate(docs):
        if doc.get("type") != "subsegment":
            continue
        parent = index.get((doc["trace_id"], doc.get("parent_id")))
        if parent is None:
            continue
        if parent >= i or depth[parent] >= _MAX_NESTING:
            return _translate.nest(docs)
        depth[i] = depth[parent] + 1
        nested = True
    if not nested:
        return docs
    top = []
    for i, doc in enumerate(docs):
        if depth[i]:
            parent_doc = docs[index[(doc["trace_id"], doc["parent_id"])]]
            del doc["trace_id"], doc["type"], doc["parent_id"]
            parent_doc.setdefault("subsegments", []).append(doc)
        else:
            top.append(doc)
    return top


def _attributes(value: Any) -> dict[str, Any]:
    """As :func:`xraykit.io.otlp._attributes`, giving up where that reports."""
    if value is None:
        return {}
    if type(value) is dict:
        return value
    if type(value) is not list:
        raise _GiveUp
    out: dict[str, Any] = {}
    for kv in value:
        try:
            key, wrapped = kv["key"], kv["value"]
        except (TypeError, KeyError, IndexError):
            if type(kv) is not dict or type(kv.get("key")) is not str:
                raise _GiveUp from None
            out[kv["key"]] = _otlp.any_value(kv.get("value"), _give_up, "", 0)
            continue
        if type(kv) is not dict or type(key) is not str:
            raise _GiveUp
        if type(wrapped) is dict and len(wrapped) == 1:  # the scalars any_value reads, inline
            if "stringValue" in wrapped:
                text = wrapped["stringValue"]
                if type(text) is str:
                    out[key] = text
                    continue
            elif "intValue" in wrapped:
                inner = wrapped["intValue"]
                if type(inner) is str:
                    try:
                        out[key] = int(inner) if len(inner) < 25 else None
                    except ValueError:
                        out[key] = None
                    continue
            elif "boolValue" in wrapped:
                inner = wrapped["boolValue"]
                if type(inner) is bool:
                    out[key] = inner
                    continue
        out[key] = _otlp.any_value(wrapped, _give_up, "", 0)
    return out

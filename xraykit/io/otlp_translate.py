"""Spans into X-Ray segment documents, by the rules of the ADOT collector's X-Ray exporter.

The rules below were read from the ``awsxrayexporter`` translator of
opentelemetry-collector-contrib (``exporter/awsxrayexporter/internal/translator``) and are
written here in this project's own words; each is followed unless a *deviation* says
otherwise. Every span becomes its own document (a subsegment as ``"type": "subsegment"``
with ``parent_id``, as the daemon receives them); the document reader stitches them.

Segment or subsegment
    A span is a segment when it is a SERVER span or has no parent; any other span is a
    subsegment of its parent. *Deviation (asked for by this project):* a CONSUMER span is a
    segment too, since it is where a message enters a service; the exporter makes it one
    only when the instrumentation marks it as a local root.
Local roots (``aws.span.kind`` = ``LOCAL_ROOT``, set by ADOT's Application Signals SDKs)
    A local root of kind SERVER or INTERNAL is one segment. A local root of kind CLIENT,
    PRODUCER or CONSUMER is split in two: a *service segment* (a new id, named by
    ``aws.local.service``; no ``http``; its ``aws`` block keeps no operation, account,
    region, request id, queue or table; metadata only the ``otel.resource.*`` keys; no
    ``namespace``; links only when CONSUMER; ``aws.remote.*`` attributes dropped) and a
    *dependency subsegment* under it (the span's own id, named by ``aws.remote.service``,
    ``namespace`` ``remote`` unless set; links dropped when CONSUMER). *Deviation:* the
    exporter draws the service segment's id at random; here it is derived from the span id,
    so a file loads the same twice.
Trace id
    ``1-`` + the first 8 hex digits (epoch seconds) + ``-`` + the other 24. The exporter
    refuses a span whose epoch part is more than 28 days before, or 5 minutes after, the
    moment it exports (random W3C ids fail this): such a span is a problem row here.
    *Deviation:* the moment compared with is the span's own start, not the clock of the
    load, so an old file loads as it would have been exported at the time;
    ``validate_trace_ids=False`` skips the check (the exporter's feature gate).
Name (the first that applies)
    ``aws.local.service`` (SERVER, or INTERNAL local root); ``aws.remote.service`` (CLIENT,
    PRODUCER, CONSUMER; ``AWS.SDK.`` / ``AWS::`` cut when ``rpc.system`` is ``aws-api``);
    ``peer.service``; ``aws.service``; ``db.name`` + ``@host`` of ``db.connection_string``
    (``jdbc:`` cut); the resource's ``service.name`` (SERVER only); ``rpc.service``;
    ``http.host``; ``net.peer.name``; else the span name without the characters X-Ray does
    not allow in names, cut to 200, or ``span`` when nothing is left. *Extension:* the newer
    ``db.namespace`` stands for ``db.name`` and ``server.address`` follows ``net.peer.name``.
Namespace
    ``aws`` when ``rpc.system`` is ``aws-api`` or the name came from ``aws.service``;
    else ``remote`` for CLIENT spans, and for PRODUCER / CONSUMER subsegments that carry
    ``aws.remote.service``.
HTTP (old and new semantic-convention names)
    ``http.method`` / ``http.request.method``; ``http.user_agent`` / ``user_agent.original``;
    ``http.status_code`` / ``http.response.status_code``; ``http.client_ip`` (then
    ``x_forwarded_for``), else ``net.peer.ip`` / ``client.address`` /
    ``network.peer.address`` as ``client_ip``; the URL is ``http.url`` / ``url.full``, else
    built from scheme (``http.scheme`` / ``url.scheme``, default http), host (server spans:
    ``http.host``, ``http.server_name``, ``net.host.name``, ``host.name``,
    ``server.address``; others: ``http.host``, ``net.peer.name``, ``net.peer.ip``,
    ``server.address``), port (unless the scheme's default; only when the host is not
    ``http.host``) and target (``http.target``, or ``url.path`` + ``?`` + ``url.query``;
    default ``/``). ``content_length`` from ``http.response_content_length`` /
    ``http.response.body.size``, or an event with ``message.type`` RECEIVED and
    ``messaging.message_payload_size_bytes``. These keys never reach metadata.
    *Deviation:* a length of 0, which only means unknown, is left out.
Fault, error, throttle and cause
    HTTP status 400-499 is an error (429 also a throttle), 500-599 a fault; without such a
    status, span status ERROR is a fault. Events named ``exception`` become the
    ``cause.exceptions`` (``exception.type``, ``exception.message``, ``remote`` for CLIENT
    and PRODUCER spans; Java and Python stack traces parsed into frames, chained causes
    into further exceptions; AWS SDK spans' ``HTTP request failure`` events also count).
    Without exception events, status ERROR with a message (or ``http.status_text``) gives
    one exception with that message. *Deviation:* exception ids are derived from the span
    id, not random; stack traces of other languages keep no frames.
AWS (``aws`` block)
    From resource attributes: ``cloud.account.id``, ``ec2`` (``host.id``, zone, type,
    image), ``ecs``, ``elastic_beanstalk``, ``eks``, ``cloudwatch_logs``
    (``aws.log.group.arns`` / ``aws.log.group.names``), ``xray`` (SDK name + `` for `` +
    language, version, ``auto_instrumentation``). From span attributes: ``operation``
    (``aws.operation``, else ``rpc.method``), ``account_id``, ``region``, ``request_id``
    (``aws.request_id`` / ``aws.requestId``), ``queue_url`` (``aws.queue_url`` /
    ``aws.queue.url``, overridden by ``messaging.url``), ``table_name`` / ``table_names``
    (``aws.table_name`` / ``aws.table.name``, or ``aws.dynamodb.table_names``). No block
    when ``cloud.provider`` is another cloud.
Origin, service, user, SQL
    ``origin`` from ``cloud.platform`` (EC2, ECS with its launch type, EKS, Elastic
    Beanstalk, App Runner) when the provider is AWS. ``service.version`` (else
    ``container.image.tag``) is ``service.version``. ``enduser.id`` is ``user``. A span
    whose ``db.system`` is a SQL database (db2, derby, hive, mariadb, mssql, mysql, oracle,
    postgresql, sqlite, teradata, other_sql) gets ``sql`` (url = span name,
    connection_string = ``db.connection_string`` or localhost + ``/`` + ``db.name``,
    database_type, user, sanitized_query). *Extension:* ``db.system.name``,
    ``db.namespace`` and ``db.query.text`` stand for the older names.
Annotations and metadata
    Keys named in ``indexed_attributes`` or listed in the span's ``aws.xray.annotations``
    (or every key with ``index_all_attributes``) become annotations when the value is a
    string, number or boolean, their key's characters other than letters, digits and dots
    replaced by ``_`` (the exporter's default since its ``allowDot`` gate). Other attributes
    go to metadata ``default``; ``aws.xray.metadata.<ns>`` holding a JSON object fills
    namespace ``<ns>``. Segments also carry the resource attributes as
    ``otel.resource.<key>``. Indexed keys consumed by a block above are still annotated.
Links
    ``links`` with the X-Ray trace id, span id and attributes. *Deviation:* a link whose
    trace id the exporter would refuse is dropped with a problem row, not the whole span.
Times
    ``start_time`` / ``end_time`` in epoch seconds. *Deviation:* cut to whole microseconds
    (X-Ray's precision) before dividing, so 0.25 s stays 0.25 and not 0.2499998; a span
    without an end time is ``in_progress`` (the exporter writes 0).

>>> from xraykit.io.otlp import Span
>>> span = Span("5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", "", "GET /", 2,
...             1465575560 * 10**9, 1465575561 * 10**9, {"http.response.status_code": 503},
...             {"service.name": "web"})
>>> doc, = documents(span)
>>> doc["name"], doc["trace_id"], doc["fault"], doc["http"]
('web', '1-5759e988-bd862e3fe1be46a994272793', True, {'response': {'status': 503}})
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any

import orjson

from xraykit.io import otlp_blocks as _blocks
from xraykit.io.otlp import (
    KIND_CLIENT,
    KIND_CONSUMER,
    KIND_INTERNAL,
    KIND_PRODUCER,
    KIND_SERVER,
    Report,
    Span,
)

__all__ = [
    "MAX_NESTING",
    "Options",
    "Refused",
    "ResourceParts",
    "Translator",
    "annotation_key",
    "annotations_and_metadata",
    "documents",
    "name_and_namespace",
    "nest",
    "resource_parts",
    "xray_trace_id",
]

_MAX_AGE = 28 * 24 * 3600  # the exporter refuses ids older than this (seconds)
_MAX_SKEW = 300  # or further in the future than this
_NAME_ASCII = re.compile(r"[^ 0-9A-Za-z_.:/%&#=+\-@]")  # characters that need a closer look
_NAME_SYMBOLS = frozenset(" 0123456789_.:/%&#=+-@")
_ANNOTATION_KEY = re.compile(r"[^0-9A-Za-z.]")
_REMOTE_ATTRS = (
    "aws.remote.service",
    "aws.remote.operation",
    "remoteTarget",
    "K8s.RemoteNamespace",
)
_DEPENDENCY = (KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER)
_SCALAR = (str, bool, int, float)
#: subsegment documents nested at most this deep into one document (deeper ones stay apart)
MAX_NESTING = 64
_SPAN_AWS_FIELDS = (
    "operation",
    "account_id",
    "region",
    "request_id",
    "queue_url",
    "table_name",
    "table_names",
)


@dataclass(frozen=True, slots=True)
class Options:
    """The exporter's settings: ``indexed_attributes`` (keys made annotations),
    ``index_all_attributes``, and whether trace ids are checked (``validate_trace_ids``)."""

    indexed_attributes: frozenset[str] = frozenset()
    index_all_attributes: bool = False
    validate_trace_ids: bool = True


class Refused(Exception):
    """A span the exporter would not send (the message says why)."""


_DEFAULT = Options()


def xray_trace_id(trace_id: str, reference_s: float | None, what: str = "trace id") -> str:
    """``1-xxxxxxxx-yyyy...`` from 32 hex digits; :class:`Refused` when the epoch part is
    out of the exporter's range around ``reference_s`` (None: not checked).

    >>> xray_trace_id("5759e988bd862e3fe1be46a994272793", 1465575560.5)
    '1-5759e988-bd862e3fe1be46a994272793'
    """
    if reference_s is not None:
        delta = reference_s - int(trace_id[:8], 16)
        if delta > _MAX_AGE or delta < -_MAX_SKEW:
            raise Refused(
                f"{what} {trace_id} cannot be an X-Ray trace id: its first 8 hex digits "
                f"({int(trace_id[:8], 16)} epoch seconds) are not within 28 days before, or 5 "
                "minutes after, the span's start, so the X-Ray exporter refuses it. Create spans "
                "with the X-Ray id generator (AwsXRayIdGenerator, opentelemetry-sdk-extension-aws), "
                "or pass validate_trace_ids=False"
            )
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


def documents(span: Span, options: Options = _DEFAULT) -> list[dict[str, Any]]:
    """The segment documents of one span (one, or two for a local root dependency span).

    Raises
    ------
    Refused
        When the span's trace id cannot be an X-Ray id (see :func:`xray_trace_id`).
    """
    return Translator(options).documents(span)


def resource_parts(resource: dict[str, Any], options: Options) -> ResourceParts:
    """What ``resource`` gives every document of its spans."""
    annotations: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for key, value in resource.items():
        key = "otel.resource." + key
        indexed = options.index_all_attributes or key in options.indexed_attributes
        if indexed and type(value) in _SCALAR:
            annotations[_ANNOTATION_KEY.sub("_", key)] = value
        elif value is not None:
            metadata[key] = value
    return ResourceParts(
        _blocks.origin(resource),
        _blocks.service(resource),
        _blocks.aws_resource(resource),
        annotations,
        metadata,
    )


@dataclass(slots=True)
class ResourceParts:
    """What a resource gives every document of its spans (worked out once per resource)."""

    origin: str
    service: dict[str, Any] | None
    aws: dict[str, Any] | None
    annotations: dict[str, Any]
    metadata: dict[str, Any]


class Translator:
    """Spans into documents with one set of :class:`Options`; the parts a resource gives
    are worked out once for the spans of that resource that come in a row."""

    def __init__(self, options: Options = _DEFAULT, report: Report | None = None) -> None:
        self.options = options
        self.report = report
        self.location = "<otlp>"  # where the span being translated came from, for ``report``
        self._resource: dict[str, Any] | None = None
        self._parts: ResourceParts | None = None

    def documents(self, span: Span) -> list[dict[str, Any]]:
        """As :func:`documents`."""
        attrs = span.attributes
        local_root = attrs.get("aws.span.kind") == "LOCAL_ROOT"
        if not local_root or span.kind not in _DEPENDENCY:
            doc = self._segment(span)
            if local_root:
                doc.pop("type", None)
                doc.pop("namespace", None)
            elif (
                "type" in doc
                and span.kind in _DEPENDENCY
                and "namespace" not in doc
                and "aws.remote.service" in attrs
            ):
                doc["namespace"] = "remote"
            return [doc]
        return self._local_root_dependency(span)

    def _local_root_dependency(self, span: Span) -> list[dict[str, Any]]:
        """A service segment and, under it, a dependency subsegment."""
        attrs = span.attributes
        service_id = _derived_id(span.span_id, b"service")
        dependency = self._segment(replace(span, parent_id=service_id))
        dependency["type"] = "subsegment"
        dependency.setdefault("namespace", "remote")
        if span.kind == KIND_CONSUMER:
            dependency.pop("links", None)
        remote = attrs.get("aws.remote.service")
        if type(remote) is str:
            dependency["name"] = _trim_sdk_prefix(remote, attrs)
        kept = {k: v for k, v in attrs.items() if k not in _REMOTE_ATTRS}
        service = self._segment(replace(span, span_id=service_id, attributes=kept))
        local = attrs.get("aws.local.service")
        if type(local) is str:
            service["name"] = local
        service.pop("http", None)
        aws = service.get("aws")
        if aws is not None:
            for key in _SPAN_AWS_FIELDS:
                aws.pop(key, None)
        metadata: dict[str, Any] = service.get("metadata") or {}
        for namespace, entries in list(metadata.items()):
            if type(entries) is dict:
                kept_entries = {k: v for k, v in entries.items() if k.startswith("otel.resource.")}
                metadata[namespace] = kept_entries
        for key in ("type", "namespace"):
            service.pop(key, None)
        if span.kind != KIND_CONSUMER:
            service.pop("links", None)
        return [dependency, service]

    def _parts_of(self, resource: dict[str, Any]) -> ResourceParts:
        if resource is self._resource and self._parts is not None:
            return self._parts
        parts = resource_parts(resource, self.options)
        self._resource, self._parts = resource, parts
        return parts

    def _segment(self, span: Span) -> dict[str, Any]:
        """The exporter's translation of one span into one document."""
        options = self.options
        attrs = span.attributes
        kind = span.kind
        subsegment = kind not in (KIND_SERVER, KIND_CONSUMER) and bool(span.parent_id)
        start_s = (span.start_ns // 1000) / 1e6  # microseconds, X-Ray's precision
        reference = start_s if options.validate_trace_ids else None
        doc: dict[str, Any] = {
            "id": span.span_id,
            "trace_id": xray_trace_id(span.trace_id, reference),
            "start_time": start_s,
        }
        if span.end_ns is None:
            doc["in_progress"] = True
        else:
            doc["end_time"] = (span.end_ns // 1000) / 1e6
        if span.parent_id:
            doc["parent_id"] = span.parent_id
        if subsegment:
            doc["type"] = "subsegment"
        parts = self._parts_of(span.resource)

        rest, special = _blocks.split(attrs)
        http = _blocks.http(span, special) if special else None
        fault, error, throttle, cause = _blocks.cause(span, special)
        aws = _blocks.aws(special, parts.aws, attrs)
        sql = _blocks.sql(span, special) if special else None
        rest.update(special)  # what no block consumed
        for key in options.indexed_attributes:  # indexed keys come back even when consumed
            if key not in rest and key in attrs:
                rest[key] = attrs[key]
        user, annotations, metadata = annotations_and_metadata(
            rest, None if subsegment else parts, options
        )

        name, namespace = name_and_namespace(attrs, kind, span.resource, span.name)
        doc["name"] = name
        doc["fault"], doc["error"], doc["throttle"] = fault, error, throttle
        fill(doc, namespace, parts.origin, user, cause, http, aws, sql, parts.service,
             annotations, metadata)  # fmt: skip
        if span.links:
            doc["links"] = self._links(span, reference)
        return doc

    def _links(self, span: Span, reference: float | None) -> list[dict[str, Any]]:
        """The span's links with X-Ray trace ids; a link the exporter would refuse is left
        out and reported (the exporter drops the whole span)."""
        links = []
        for trace_id, span_id, attrs in span.links:
            try:
                xray_id = xray_trace_id(trace_id, reference, "the trace id of a link")
            except Refused as refused:
                if self.report is not None:
                    self.report(self.location, f"span {span.span_id}: link left out: {refused}")
                continue
            link: dict[str, Any] = {"trace_id": xray_id, "id": span_id}
            if attrs:
                link["attributes"] = attrs
            links.append(link)
        return links


def fill(
    doc: dict[str, Any],
    namespace: str | None,
    origin: str | None,
    user: str | None,
    cause: Any,
    http: Any,
    aws: Any,
    sql: Any,
    service: Any,
    annotations: Any,
    metadata: Any,
) -> None:
    """Add a document's optional fields, leaving out the empty ones, in the one order every
    translation path writes them (so their documents are the same bytes)."""
    if namespace:
        doc["namespace"] = namespace
    if origin:
        doc["origin"] = origin
    if user:
        doc["user"] = user
    if cause:
        doc["cause"] = cause
    if http:
        doc["http"] = http
    if aws:
        doc["aws"] = aws
    if sql:
        doc["sql"] = sql
    if service:
        doc["service"] = service
    if annotations:
        doc["annotations"] = annotations
    if metadata:
        doc["metadata"] = metadata


def name_and_namespace(
    attrs: dict[str, Any], kind: int, resource: dict[str, Any], span_name: str
) -> tuple[str, str]:
    """The document's name and namespace ("" for none) from a span's attributes, kind,
    resource attributes and name."""
    name = ""
    if kind == KIND_SERVER or (
        kind == KIND_INTERNAL and attrs.get("aws.span.kind") == "LOCAL_ROOT"
    ):
        name = _text(attrs.get("aws.local.service"))
    if kind in _DEPENDENCY and type(attrs.get("aws.remote.service")) is str:
        name = _trim_sdk_prefix(attrs["aws.remote.service"], attrs)
    name = name or _text(attrs.get("peer.service"))
    namespace = "aws" if attrs.get("rpc.system") == "aws-api" else ""
    if not name and "aws.service" in attrs:
        name = _text(attrs["aws.service"])
        namespace = namespace or "aws"
    if not name:
        db = attrs.get("db.name", attrs.get("db.namespace"))
        if db is not None:
            name = _text(db)
            host = _blocks.url_host(_text(attrs.get("db.connection_string")).removeprefix("jdbc:"))
            if host:
                name += "@" + host
    if not name and kind == KIND_SERVER:
        name = _text(resource.get("service.name"))
    for key in ("rpc.service", "http.host", "net.peer.name", "server.address"):
        if name:
            break
        name = _text(attrs.get(key))
    if not name:
        name = _segment_name(span_name)
    if not namespace and kind == KIND_CLIENT:
        namespace = "remote"
    return name, namespace


def annotations_and_metadata(
    attrs: dict[str, Any], resource: ResourceParts | None, options: Options
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``user``, annotations and metadata from the attributes no block consumed (and, for
    a segment, ``resource``'s)."""
    user = ""
    if "enduser.id" in attrs:
        user = _text(attrs.pop("enduser.id"))
    annotations: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    if not attrs and not (resource and (resource.annotations or resource.metadata)):
        return user, annotations, metadata
    default: dict[str, Any] = {}
    if resource is not None:
        annotations.update(resource.annotations)
        default.update(resource.metadata)
    index_all = options.index_all_attributes
    indexed = options.indexed_attributes
    listed = attrs.pop("aws.xray.annotations", None)
    if type(listed) is list:
        indexed = indexed.union(k for k in listed if type(k) is str)
    for key, value in attrs.items():
        if index_all or key in indexed:
            if type(value) in _SCALAR:
                annotations[_ANNOTATION_KEY.sub("_", key)] = value
        elif key.startswith("aws.xray.metadata.") and type(value) is str:
            namespace = key[len("aws.xray.metadata.") :]
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                parsed = None
            if type(parsed) is not dict:
                default[key] = value
            elif namespace.lower() == "default":
                default.update(parsed)
            else:
                metadata[namespace] = parsed
        elif value is not None:
            default[key] = value
    if default:
        metadata["default"] = default
    return user, annotations, metadata


def annotation_key(key: str) -> str:
    """An attribute's key as an annotation key (characters other than letters, digits and
    dots replaced by ``_``)."""
    return _ANNOTATION_KEY.sub("_", key)


def nest(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put each subsegment document inside its parent's ``subsegments`` when the parent is
    among ``docs`` (same trace), as X-Ray assembles the documents it receives; return the
    documents left at the top. A subsegment whose parent is elsewhere stays on its own;
    cycles stay unnested, and nesting stops every :data:`MAX_NESTING` levels.

    >>> seg = {"id": "a" * 16, "trace_id": "1-5759e988-bd862e3fe1be46a994272793", "name": "web"}
    >>> sub = {"id": "b" * 16, "trace_id": seg["trace_id"], "parent_id": "a" * 16,
    ...        "type": "subsegment", "name": "db"}
    >>> nest([sub, seg]) == [{**seg, "subsegments": [{"id": "b" * 16, "name": "db"}]}]
    True
    """
    index = {(d["trace_id"], d["id"]): i for i, d in enumerate(docs)}
    parent_of: list[int | None] = [
        index.get((d["trace_id"], d.get("parent_id"))) if d.get("type") == "subsegment" else None
        for d in docs
    ]
    depth = [-1] * len(docs)
    for i in range(len(docs)):
        path: list[int] = []
        on_path: set[int] = set()
        j = i
        while depth[j] < 0:
            parent = parent_of[j]
            if parent is None or parent == j or parent in on_path:
                depth[j] = 0  # a top-level document (also where a cycle is cut)
                break
            path.append(j)
            on_path.add(j)
            j = parent
        level = depth[j]
        for k in reversed(path):
            level = level + 1 if level < MAX_NESTING else 0
            depth[k] = level
    for k, doc in enumerate(docs):
        if depth[k]:
            parent_doc = docs[parent_of[k]]  # type: ignore[index]
            for key in ("trace_id", "type", "parent_id"):
                del doc[key]
            parent_doc.setdefault("subsegments", []).append(doc)
    return [doc for k, doc in enumerate(docs) if not depth[k]]


def _segment_name(name: str) -> str:
    """A span name with the characters X-Ray refuses in names removed, at most 200 long.

    >>> _segment_name("GET /users/{id}?x=1")
    'GET /users/idx=1'
    """
    if _NAME_ASCII.search(name):
        name = "".join(c for c in name if c in _NAME_SYMBOLS or c.isalpha())
    return name[:200] or "span"


def _trim_sdk_prefix(name: str, attrs: dict[str, Any]) -> str:
    if attrs.get("rpc.system") == "aws-api":
        for prefix in ("AWS.SDK.", "AWS::"):
            if name.startswith(prefix):
                return name[len(prefix) :]
    return name


def _derived_id(span_id: str, salt: bytes) -> str:
    """A 16-hex-digit id derived from a span id (stable across loads)."""
    return hashlib.blake2b(span_id.encode() + salt, digest_size=8).hexdigest()


def _text(value: Any) -> str:
    """A string attribute's value, "" for anything else (as the exporter's ``Str()``)."""
    return value if type(value) is str else ""

"""Translation plans: what the exporter's rules decide for one pattern of span, worked out once.

Most rules of :mod:`xraykit.io.otlp_translate` depend on which attributes a span has, their
types and a few values, not on the rest of their values: which attribute fills which part of
the ``http`` block, which go to the ``aws`` block, which become annotations (under which
key) or metadata, which are left out. A file of many traces repeats few such patterns, so
:class:`Plans` works them out once per pattern — the resource, kind, whether the span is a
subsegment, its status, its attribute keys in order with their value types, and the values
that steer those decisions (``db.system``, ``db.system.name``, ``aws.xray.annotations``) —
and each span then only places its values. What still depends on values is computed per
span by the same functions as the full path: the URL and the rest of the ``http`` block,
fault / error / throttle from the HTTP status, the ``sql`` block, and the name and namespace
(remembered per plan for the values that decide them, since names repeat).

A pattern gets a plan the second time it is seen (a file whose every span has new keys pays
nothing for plans it would never reuse); at most :data:`MAX_PLANS` patterns are remembered
(and as many plans, each with at most :data:`MAX_NAMES` names), and spans of more than
:data:`MAX_KEYS` attributes get none, so memory stays bounded whatever the file holds.
Patterns the plans do not capture are left to :class:`~xraykit.io.otlp_fast.FastTranslator`'s own
translation (:func:`build` gives None): values that are not text, numbers or booleans (but
the list of ``aws.xray.annotations``), ``aws.xray.metadata.*``, ``aws.span.kind``,
``message.type``, and a span status ERROR with a message or ``http.status_text``.

>>> from xraykit.io.otlp_translate import Options, resource_parts
>>> parts = resource_parts({"service.name": "web"}, Options())
>>> attrs = {"http.request.method": "GET", "http.response.status_code": 503, "tier": "gold"}
>>> plan = build(attrs, 2, False, 0, parts, {"service.name": "web"}, Options(), "GET /")
>>> doc = plan.fill({}, attrs, 2, "GET /", 0, {"service.name": "web"})
>>> doc["name"], doc["fault"], doc["http"]
('web', True, {'request': {'method': 'GET'}, 'response': {'status': 503}})
>>> doc["metadata"]
{'default': {'otel.resource.service.name': 'web', 'tier': 'gold'}}
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from xraykit.io import otlp_blocks as _blocks
from xraykit.io import otlp_translate as _translate
from xraykit.io.otlp import KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, STATUS_ERROR

__all__ = [
    "MAX_KEYS",
    "MAX_NAMES",
    "MAX_PLANS",
    "Plan",
    "Plans",
    "build",
    "listed",
    "pattern",
    "switches",
]

#: plans kept at most (then all are forgotten and built again as patterns recur)
MAX_PLANS = 4096
#: names remembered per plan at most
MAX_NAMES = 256
#: spans with more attributes than this get no plan (patterns kept stay small)
MAX_KEYS = 128

_SCALAR = (str, bool, int, float)
_SWITCHES = ("db.system", "db.system.name", "aws.xray.annotations")
_NAME_KEYS = (
    "aws.span.kind",
    "aws.local.service",
    "aws.remote.service",
    "rpc.system",
    "peer.service",
    "aws.service",
    "db.name",
    "db.namespace",
    "db.connection_string",
    "rpc.service",
    "http.host",
    "net.peer.name",
    "server.address",
)
_LEFT_OUT = frozenset(["aws.span.kind", "message.type"])
_DEPENDENCY = (KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER)
_MISSING = object()
_text = _blocks.text
_as_int = _blocks.as_int


class Plan:
    """What one pattern of span gives its document; :meth:`fill` places a span's values."""

    __slots__ = (
        "annotations",
        "aws_base",
        "aws_map",
        "base_annotations",
        "base_metadata",
        "is_http",
        "messaging_url",
        "metadata",
        "name_keys",
        "names",
        "parts",
        "remote",
        "request",
        "response_length",
        "response_status",
        "server",
        "sql_keys",
        "status_key",
        "url_key",
        "url_map",
        "user_key",
    )

    def __init__(self, parts: _translate.ResourceParts) -> None:
        self.parts = parts
        self.is_http = False
        self.request: tuple[tuple[str, str | None], ...] = ()
        self.url_key: str | None = None
        self.url_map: tuple[tuple[str, str], ...] | None = None
        self.server = False
        self.response_status: str | None = None
        self.response_length: str | None = None
        self.status_key: str | None = None
        self.aws_base: dict[str, Any] | None = None
        self.aws_map: tuple[tuple[str, str], ...] = ()
        self.messaging_url = False
        self.sql_keys: tuple[str, ...] = ()
        self.user_key = False
        self.base_annotations: dict[str, Any] = {}
        self.base_metadata: dict[str, Any] = {}
        self.annotations: tuple[tuple[str, str], ...] = ()
        self.metadata: tuple[str, ...] = ()
        self.name_keys: Callable[[dict[str, Any]], Any] | None = None
        self.names: dict[Any, tuple[str, str]] = {}
        self.remote = False

    def fill(
        self,
        doc: dict[str, Any],
        attrs: dict[str, Any],
        kind: int,
        name: str,
        status_code: int,
        resource: dict[str, Any],
    ) -> dict[str, Any]:
        """``doc`` (ids and times set) completed with the span's blocks, as
        :class:`~xraykit.io.otlp_translate.Translator` makes them."""
        http = None
        if self.is_http:  # as otlp_blocks.http_from_parts, its decisions made
            request: dict[str, Any] = {}
            for field, key in self.request:
                if key is None:
                    request[field] = True
                else:
                    value = attrs[key]
                    request[field] = value if type(value) is str else _text(value)
            if self.url_key is not None:
                value = attrs[self.url_key]
                request["url"] = value if type(value) is str else _text(value)
            elif self.url_map is not None:
                parts = {part: attrs[key] for part, key in self.url_map}
                request["url"] = _blocks.http_url(parts, self.server)
            response: dict[str, Any] = {}
            if self.response_status is not None:
                status = attrs[self.response_status]
                if type(status) is not int:
                    status = _as_int(status)
                if status is not None:
                    response["status"] = status
            if self.response_length is not None:
                length = _as_int(attrs[self.response_length])
                if length:
                    response["content_length"] = length
            http = {}
            if request:
                http["request"] = request
            if response:
                http["response"] = response
        fault = error = throttle = False
        code = attrs[self.status_key] if self.status_key is not None else None
        if type(code) is not int:
            code = _as_int(code)
        if code is None or not 400 <= code <= 599:
            fault = status_code == STATUS_ERROR
        elif code <= 499:
            error, throttle = True, code == 429
        else:
            fault = True
        aws = None
        base = self.aws_base
        if base is not None:
            aws = dict(base)
            for field, key in self.aws_map:
                value = attrs[key]
                aws[field] = value if type(value) is str else _text(value)
            if self.messaging_url:
                aws["queue_url"] = _text(attrs["messaging.url"])
        sql = None
        if self.sql_keys:
            sql = _blocks.sql_block(name, {key: attrs[key] for key in self.sql_keys})
        user = attrs["enduser.id"] if self.user_key else ""
        parts_ = self.parts
        annotations = dict(self.base_annotations)  # a segment's: its resource's first
        default = dict(self.base_metadata)
        for out, key in self.annotations:
            annotations[out] = attrs[key]
        for key in self.metadata:
            default[key] = attrs[key]
        memo = (self.name_keys(attrs), name) if self.name_keys is not None else name
        found = self.names.get(memo)
        if found is None:
            if len(self.names) >= MAX_NAMES:
                self.names.clear()
            found = self.names[memo] = _translate.name_and_namespace(attrs, kind, resource, name)
        doc["name"], namespace = found
        doc["fault"], doc["error"], doc["throttle"] = fault, error, throttle
        _translate.fill(doc, namespace, parts_.origin, user, None, http, aws, sql, parts_.service,
                        annotations, {"default": default} if default else None)  # fmt: skip
        if self.remote and not namespace:
            doc["namespace"] = "remote"
        return doc


def build(
    attrs: dict[str, Any],
    kind: int,
    subsegment: bool,
    status_code: int,
    parts: _translate.ResourceParts,
    resource: dict[str, Any],
    options: _translate.Options,
    name: str,
    status_message: str = "",
) -> Plan | None:
    """The plan of the pattern of a span (its attributes, kind, ...); None when the pattern
    is one that plans do not capture."""
    for key, value in attrs.items():
        if type(value) not in _SCALAR and not (
            key == "aws.xray.annotations" and type(value) is list
        ):
            return None
        if key in _LEFT_OUT or key.startswith("aws.xray.metadata."):
            return None
    if status_code == STATUS_ERROR and (status_message or "http.status_text" in attrs):
        return None
    plan = Plan(parts)
    rest, special = _blocks.split(attrs)
    # http: which attribute gives which part (found with each key standing for its value)
    by_key = {key: key for key in special}
    http_parts, is_http, has_url = _blocks.http_parts(kind, by_key)
    for key in [k for k in special if k in _blocks.HTTP_KEYS]:
        del special[key]
    if is_http:
        _plan_http(plan, http_parts, has_url, kind)
    if "http.status_code" in attrs:
        plan.status_key = "http.status_code"
    elif "http.response.status_code" in attrs:
        plan.status_key = "http.response.status_code"
    # aws: the operation, then the span's fields in the order of its attributes
    aws_map = []
    operation = "aws.operation" if "aws.operation" in special else None
    if operation is None and "rpc.method" in special:
        operation = "rpc.method"
    if operation is not None:
        aws_map.append(("operation", operation))
    special.pop("aws.operation", None)
    special.pop("rpc.method", None)
    for key in [k for k in special if k in _blocks.AWS_SPAN_KEYS]:
        aws_map.append((_blocks.AWS_SPAN_KEYS[key], key))
        del special[key]
    plan.aws_map = tuple(aws_map)
    plan.aws_base = parts.aws
    plan.messaging_url = "messaging.url" in attrs
    # sql: a SQL database's keys leave the attributes (db.system's value is in the pattern)
    if "db.system" in special or "db.system.name" in special:
        sql_keys = tuple(k for k in special if k in _blocks.SQL_KEYS)
        if _blocks.sql_block(name, {k: special[k] for k in sql_keys}) is not None:
            plan.sql_keys = sql_keys
            for key in sql_keys:
                del special[key]
    rest.update(special)
    for key in options.indexed_attributes:
        if key not in rest and key in attrs:
            rest[key] = attrs[key]
    # annotations and metadata (a segment's begin with its resource's)
    plan.user_key = type(rest.pop("enduser.id", None)) is str  # the exporter's Str(): text only
    indexed = options.indexed_attributes
    listed = rest.pop("aws.xray.annotations", None)
    if type(listed) is list:
        indexed = indexed.union(k for k in listed if type(k) is str)
    annotations: list[tuple[str, str]] = []
    metadata: list[str] = []
    if not subsegment:
        plan.base_annotations, plan.base_metadata = parts.annotations, parts.metadata
    for key in rest:
        if options.index_all_attributes or key in indexed:
            annotations.append((_translate.annotation_key(key), key))
        else:
            metadata.append(key)
    plan.annotations, plan.metadata = tuple(annotations), tuple(metadata)
    name_keys = [k for k in _NAME_KEYS if k in attrs]
    plan.name_keys = itemgetter(*name_keys) if name_keys else None
    plan.remote = subsegment and kind in _DEPENDENCY and "aws.remote.service" in attrs
    return plan


class Plans:
    """The plans of one translator: patterns seen once, and the plans of those seen again
    (at most :data:`MAX_PLANS`)."""

    def __init__(self, options: _translate.Options) -> None:
        self.options = options
        #: plans by pattern (see :func:`pattern`); False for a pattern plans do not capture
        self.found: dict[tuple[Any, ...], Plan | bool] = {}
        self.seen: set[tuple[Any, ...]] = set()
        self.used = 0  # spans translated by a plan (counted by the caller)

    def settle(
        self,
        pattern: tuple[Any, ...],
        attrs: dict[str, Any],
        kind: int,
        subsegment: bool,
        status_code: int,
        status_message: str,
        parts: _translate.ResourceParts,
        resource: dict[str, Any],
        name: str,
    ) -> Plan | bool:
        """The plan for a span's pattern not in :attr:`found` (or found for another resource
        that had the same ``id``): False the first time the pattern is seen, else built."""
        if pattern not in self.found and pattern not in self.seen:
            if len(self.seen) >= MAX_PLANS:
                self.seen.clear()
            self.seen.add(pattern)
            return False
        if len(self.found) >= MAX_PLANS:
            self.found.clear()
        built = build(
            attrs,
            kind,
            subsegment,
            status_code,
            parts,
            resource,
            self.options,
            name,
            status_message,
        )
        self.found[pattern] = built or False
        return built or False


def pattern(
    attrs: dict[str, Any],
    kind: int,
    subsegment: bool,
    status_code: int,
    status_message: str,
    parts: _translate.ResourceParts,
) -> tuple[Any, ...]:
    """The pattern of a span: what its plan depends on (:class:`FastTranslator` builds the
    same tuple inline)."""
    if "db.system" in attrs or "db.system.name" in attrs:
        steering = switches(attrs)
    elif "aws.xray.annotations" in attrs:
        steering = listed(attrs["aws.xray.annotations"])
    else:
        steering = ()
    return (
        id(parts),
        kind,
        subsegment,
        status_code,
        status_message != "",
        tuple(attrs),
        tuple(map(type, attrs.values())),
        steering,
    )


def switches(attrs: dict[str, Any]) -> tuple[Any, ...]:
    """The values of the attributes that steer a plan (``db.system``, ...)."""
    return tuple([_switch(attrs[k]) if k in attrs else _MISSING for k in _SWITCHES])


def _plan_http(plan: Plan, parts: dict[str, str], has_url: bool, kind: int) -> None:
    """The ``http`` block's decisions, as :func:`~xraykit.io.otlp_blocks.http_from_parts`
    takes them, from the attribute each part comes from (``message.type`` is never in a
    plan, so no event or attribute gives a received size)."""
    plan.is_http = True
    request: list[tuple[str, str | None]] = []
    if "method" in parts:
        request.append(("method", parts["method"]))
    if "client_ip" in parts:
        request += [("client_ip", parts["client_ip"]), ("x_forwarded_for", None)]
    elif "peer_ip" in parts:
        request.append(("client_ip", parts["peer_ip"]))
    if "user_agent" in parts:
        request.append(("user_agent", parts["user_agent"]))
    plan.request = tuple(request)
    if has_url and "url" in parts:
        plan.url_key = parts["url"]
    elif has_url:
        plan.url_map = tuple(parts.items())
    plan.server = kind == KIND_SERVER
    plan.response_status = parts.get("status")
    plan.response_length = parts.get("content_length")


def listed(value: Any) -> Any:
    """What of ``aws.xray.annotations`` steers a plan: the list itself when it can be a key
    (a finer pattern than its text entries, which alone decide), else its text entries."""
    if type(value) is not list:
        return ()  # ignored (its type is in the pattern)
    key = tuple(value)
    try:
        hash(key)
    except TypeError:
        return tuple([k for k in value if type(k) is str])
    return key


def _switch(value: Any) -> Any:
    if type(value) is list:
        return tuple([k for k in value if type(k) is str])
    return value if type(value) in _SCALAR else None

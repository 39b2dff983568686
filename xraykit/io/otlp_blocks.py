"""The blocks of a segment document built from a span: ``http``, ``cause`` (with fault, error
and throttle), ``aws``, ``sql``, ``origin`` and ``service``.

Each builder takes the span's attributes not yet consumed and returns those it leaves (what
it used never reaches metadata) with its block; the rules are listed in
:mod:`xraykit.io.otlp_translate`.

>>> from xraykit.io.otlp import Span
>>> span = Span("5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", "", "GET", 2, 1, 2,
...             {"http.request.method": "GET", "url.scheme": "https", "server.address": "shop",
...              "url.path": "/cart", "http.response.status_code": 429, "tier": "gold"}, {})
>>> rest, special = split(span.attributes)
>>> http(span, special)
{'request': {'method': 'GET', 'url': 'https://shop/cart'}, 'response': {'status': 429}}
>>> rest, special, cause(span, special)[:3]
({'tier': 'gold'}, {}, (False, True, True))
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from xraykit.io import otlp_stacks as _stacks
from xraykit.io.otlp import KIND_CLIENT, KIND_PRODUCER, KIND_SERVER, STATUS_ERROR, Span

__all__ = [
    "AWS_SPAN_KEYS",
    "HTTP_KEYS",
    "SPECIAL_KEYS",
    "SQL_KEYS",
    "as_int",
    "aws",
    "aws_resource",
    "cause",
    "cause_block",
    "http",
    "http_block",
    "http_from_parts",
    "http_parts",
    "http_url",
    "origin",
    "service",
    "split",
    "sql",
    "sql_block",
    "text",
    "url_host",
]

# attribute -> (part of the http block or of the URL, whether it makes the span an HTTP span,
#               whether it counts towards building a URL)
_HTTP_KEYS: dict[str, tuple[str, bool, bool]] = {
    "http.method": ("method", True, False),
    "http.request.method": ("method", True, False),
    "http.client_ip": ("client_ip", True, False),
    "http.user_agent": ("user_agent", True, False),
    "user_agent.original": ("user_agent", True, False),
    "http.status_code": ("status", True, False),
    "http.response.status_code": ("status", True, False),
    "http.url": ("url", True, True),
    "url.full": ("url", True, True),
    "http.scheme": ("scheme", True, False),
    "url.scheme": ("scheme", True, False),
    "http.host": ("http.host", True, True),
    "http.target": ("target", True, False),
    "url.path": ("path", True, False),
    "url.query": ("query", True, False),
    "http.server_name": ("http.server_name", True, True),
    "net.host.port": ("host_port", True, False),
    "server.port": ("server_port", False, False),
    "host.name": ("host.name", False, True),
    "net.host.name": ("net.host.name", False, True),
    "server.address": ("server.address", False, True),
    "net.peer.name": ("net.peer.name", False, False),
    "net.peer.port": ("peer_port", False, False),
    "net.peer.ip": ("peer_ip", False, True),
    "client.address": ("peer_ip", False, True),
    "network.peer.address": ("peer_ip", False, True),
    "http.response_content_length": ("content_length", False, False),
    "http.response.body.size": ("content_length", False, False),
}
_SQL_SYSTEMS = frozenset(
    [
        "db2",
        "derby",
        "hive",
        "mariadb",
        "mssql",
        "mysql",
        "oracle",
        "postgresql",
        "sqlite",
        "teradata",
        "other_sql",
    ]
)
_SQL_KEYS = {
    "db.connection_string": "connection",
    "db.system": "system",
    "db.system.name": "system",
    "db.name": "instance",
    "db.namespace": "instance",
    "db.statement": "statement",
    "db.query.text": "statement",
    "db.user": "user",
}
_AWS_SPAN_KEYS = {
    "aws.account_id": "account_id",
    "aws.region": "region",
    "aws.request_id": "request_id",
    "aws.requestId": "request_id",
    "aws.queue_url": "queue_url",
    "aws.queue.url": "queue_url",
    "aws.table_name": "table_name",
    "aws.table.name": "table_name",
}
_SPECIAL = frozenset(
    [*_HTTP_KEYS, *_SQL_KEYS, *_AWS_SPAN_KEYS, "aws.operation", "rpc.method", "http.status_text"]
)
#: attributes some block may consume (the others go to annotations or metadata untouched)
SPECIAL_KEYS = _SPECIAL
#: the attributes of the http, sql and aws blocks (``aws.operation`` and ``rpc.method`` too)
HTTP_KEYS, SQL_KEYS = frozenset(_HTTP_KEYS), frozenset(_SQL_KEYS)
AWS_SPAN_KEYS = {**_AWS_SPAN_KEYS}
_ORIGINS = {
    "aws_app_runner": "AWS::AppRunner::Service",
    "aws_eks": "AWS::EKS::Container",
    "aws_elastic_beanstalk": "AWS::ElasticBeanstalk::Environment",
    "aws_ec2": "AWS::EC2::Instance",
}
_ECS_ORIGINS = {"ec2": "AWS::ECS::EC2", "fargate": "AWS::ECS::Fargate"}
_ECS = "AWS::ECS::Container"


def split(attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attributes no block reads, and those that some block may consume (the blocks
    take theirs out of the second dict; what they leave goes back to the first)."""
    rest: dict[str, Any] = {}
    special: dict[str, Any] = {}
    for key, value in attrs.items():
        if key in _SPECIAL:
            special[key] = value
        else:
            rest[key] = value
    return rest, special


def http(span: Span, special: dict[str, Any]) -> dict[str, Any] | None:
    """The ``http`` block (None when the span is not HTTP); its keys leave ``special``."""
    return http_block(span.kind, span.attributes, span.events, special)


def http_block(
    kind: int, attrs: dict[str, Any], events: Iterable[Any], special: dict[str, Any]
) -> dict[str, Any] | None:
    """:func:`http` from a span's kind, attributes and events."""
    parts, is_http, has_url = http_parts(kind, special)
    if not is_http:
        return None
    return http_from_parts(kind, parts, has_url, attrs, events)


def http_parts(kind: int, special: dict[str, Any]) -> tuple[dict[str, Any], bool, bool]:
    """The parts of the ``http`` block (and of its URL) the span's HTTP attributes give, which
    leave ``special``; whether the span is HTTP, and whether it has what makes a URL."""
    parts: dict[str, Any] = {}
    is_http = has_url = False
    for key in [k for k in special if k in _HTTP_KEYS]:
        value = special.pop(key)
        part, marks_http, marks_url = _HTTP_KEYS[key]
        if part == "client_ip":
            parts["client_ip"] = value
        elif part == "peer_ip":
            parts.setdefault("peer_ip", value)
        else:
            parts[part] = value
        is_http = is_http or marks_http
        has_url = has_url or marks_url
    if kind == KIND_SERVER and "server_port" in parts:
        parts.setdefault("host_port", parts["server_port"])
    return parts, is_http, has_url


def http_from_parts(
    kind: int, parts: dict[str, Any], has_url: bool, attrs: dict[str, Any], events: Iterable[Any]
) -> dict[str, Any]:
    """The ``http`` block of an HTTP span from :func:`http_parts`'s parts."""
    request: dict[str, Any] = {}
    if "method" in parts:
        request["method"] = _str(parts["method"])
    if "client_ip" in parts:
        request["client_ip"] = _str(parts["client_ip"])
        request["x_forwarded_for"] = True
    elif "peer_ip" in parts:
        request["client_ip"] = _str(parts["peer_ip"])
    if "user_agent" in parts:
        request["user_agent"] = _str(parts["user_agent"])
    if has_url:
        request["url"] = _url(parts, kind == KIND_SERVER)
    response: dict[str, Any] = {}
    status = as_int(parts.get("status"))
    if status is not None:
        response["status"] = status
    length = as_int(parts.get("content_length")) or _received_size(attrs, events)
    if length:
        response["content_length"] = length
    return {k: v for k, v in (("request", request), ("response", response)) if v}


def http_url(parts: dict[str, Any], server: bool) -> str:
    """The URL of an HTTP span from :func:`http_parts`'s parts (``server``: a SERVER span)."""
    return _url(parts, server)


def _url(parts: dict[str, Any], server: bool) -> str:
    if "url" in parts:
        return _str(parts["url"])
    scheme = _str(parts.get("scheme")) or "http"
    port = ""
    host = parts.get("http.host")
    if host is None:
        names: tuple[str, ...] = (
            "http.server_name",
            "net.host.name",
            "host.name",
            "server.address",
        )
        if not server:
            names = ("net.peer.name", "server.address", "peer_ip")
        host = next((parts[n] for n in names if n in parts), "")
        port = _port(parts.get("host_port" if server else "peer_port", parts.get("server_port")))
    url = f"{scheme}://{_str(host)}"
    if port and (scheme, port) not in (("http", "80"), ("https", "443")):
        url += ":" + port
    if "target" in parts:
        return url + _str(parts["target"])
    if "path" in parts:
        url += _str(parts["path"]) or "/"
        query = _str(parts.get("query"))
        return url + ("?" + query if query else "")
    return url + "/"


def _received_size(attrs: dict[str, Any], events: Iterable[Any]) -> int:
    for found in [attrs] + [event[2] for event in events]:
        if found.get("message.type") == "RECEIVED":
            size = as_int(found.get("messaging.message_payload_size_bytes"))
            if size:
                return size
    return 0


def cause(span: Span, special: dict[str, Any]) -> tuple[bool, bool, bool, dict[str, Any] | None]:
    """``fault``, ``error``, ``throttle`` and the ``cause`` block."""
    return cause_block(
        span.kind,
        span.attributes,
        span.events,
        span.resource,
        span.span_id,
        span.status_code,
        span.status_message,
        special,
    )


def cause_block(
    kind: int,
    span_attrs: dict[str, Any],
    span_events: list[tuple[str, int, dict[str, Any]]],
    resource: dict[str, Any],
    span_id: str,
    status_code: int,
    status_message: str,
    special: dict[str, Any],
) -> tuple[bool, bool, bool, dict[str, Any] | None]:
    """:func:`cause` from the parts of a span."""
    remote = kind in (KIND_CLIENT, KIND_PRODUCER)
    sdk = span_attrs.get("rpc.system") == "aws-api"
    exceptions: list[dict[str, Any]] = []
    events = [
        e for e in span_events if e[0] == "exception" or (sdk and e[0] == "HTTP request failure")
    ]
    block = None
    if events:
        language = _str(resource.get("telemetry.sdk.language"))
        for number, (name, time_ns, attrs) in enumerate(events):
            eid = _exception_id(span_id, number)
            if name == "exception":
                exceptions.extend(_stacks.exceptions(attrs, eid, remote, language))
            elif "http.response.status_code" in attrs and "aws.http.error_message" in attrs:
                code, text = attrs["http.response.status_code"], attrs["aws.http.error_message"]
                message = f"{code}@{time_ns / 1e9:.6f}@{_str(text)}"
                exceptions.append(
                    {"id": eid, "type": "aws.http.error.event", "remote": True, "message": message}
                )
        block = {"exceptions": exceptions}
    elif status_code == STATUS_ERROR:
        message = status_message
        if "http.status_text" in special:
            text = special.pop("http.status_text")
            message = message or _str(text)
        if message:
            block = {"exceptions": [{"id": _exception_id(span_id, 0), "message": message}]}
    code = as_int(span_attrs.get("http.status_code", span_attrs.get("http.response.status_code")))
    fault = error = throttle = False
    if code is None or not 400 <= code <= 599:
        fault = status_code == STATUS_ERROR
    elif code <= 499:
        error, throttle = True, code == 429
    else:
        fault = True
    return fault, error, throttle, block


def aws(
    special: dict[str, Any], base: dict[str, Any] | None, attrs: dict[str, Any]
) -> dict[str, Any] | None:
    """The ``aws`` block; its keys leave ``special``. ``base`` is :func:`aws_resource`'s
    block (None when the cloud is not AWS: then no block); ``attrs`` all the span's."""
    block = dict(base) if base is not None else {}
    operation = special.pop("aws.operation", None)
    method = special.pop("rpc.method", None)
    operation = operation if operation is not None else method
    if operation is not None:
        block["operation"] = _str(operation)
    for key in [k for k in special if k in _AWS_SPAN_KEYS]:
        value = special.pop(key)
        field = _AWS_SPAN_KEYS[key]
        if field != "account_id" or value is not None:
            block[field] = _str(value)
    if base is None:
        return None
    if "messaging.url" in attrs:
        block["queue_url"] = _str(attrs["messaging.url"])
    tables = attrs.get("aws.dynamodb.table_names")
    if type(tables) is list and len(tables) == 1:
        block["table_name"] = _str(tables[0])
    elif type(tables) is list and len(tables) > 1:
        block.pop("table_name", None)
        block["table_names"] = [_str(t) for t in tables]
    return block


def aws_resource(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The part of the ``aws`` block the resource gives; None when the cloud is not AWS."""
    res = {k: v for k, v in resource.items() if type(v) is str}
    if res.get("cloud.provider", "") not in ("", "aws"):
        return None
    block: dict[str, Any] = {}
    if "cloud.account.id" in res:
        block["account_id"] = res["cloud.account.id"]
    platform = res.get("cloud.platform", "")
    zone = res.get("cloud.availability_zone", "")
    if platform == "aws_ec2" or res.get("host.id"):
        block["ec2"] = _compact(
            instance_id=res.get("host.id"),
            availability_zone=zone,
            instance_size=res.get("host.type"),
            ami_id=res.get("host.image.id"),
        )
    if platform == "aws_ecs":
        block["ecs"] = _compact(
            container=res.get("container.name"),
            container_id=res.get("container.id"),
            availability_zone=zone,
            container_arn=res.get("aws.ecs.container.arn"),
            cluster_arn=res.get("aws.ecs.cluster.arn"),
            task_arn=res.get("aws.ecs.task.arn"),
            task_family=res.get("aws.ecs.task.family"),
            launch_type=res.get("aws.ecs.launchtype"),
        )
    if platform == "aws_elastic_beanstalk" and res.get("service.instance.id"):
        deployment = res["service.instance.id"]
        block["elastic_beanstalk"] = _compact(
            environment_name=res.get("service.namespace"),
            deployment_id=int(deployment) if deployment.isdecimal() else 0,
            version_label=res.get("service.version"),
        )
    if platform == "aws_eks" or res.get("k8s.cluster.name"):
        block["eks"] = _compact(
            cluster_name=res.get("k8s.cluster.name"),
            pod=res.get("k8s.pod.name"),
            container_id=res.get("container.id"),
        )
    groups = _log_groups(resource)
    if groups:
        block["cloudwatch_logs"] = groups
    sdk, language = res.get("telemetry.sdk.name", ""), res.get("telemetry.sdk.language", "")
    if sdk and language and not sdk.lower().endswith(" for " + language.lower()):
        sdk += " for " + language
    block["xray"] = _compact(
        sdk=sdk,
        sdk_version=res.get("telemetry.sdk.version"),
        auto_instrumentation=bool(res.get("telemetry.auto.version")),
    )
    return block


def _log_groups(resource: dict[str, Any]) -> list[dict[str, str]]:
    for key, arns in (("aws.log.group.arns", True), ("aws.log.group.names", False)):
        value = resource.get(key)
        items = [value] if type(value) is str else value if type(value) is list else []
        items = [v for v in items if type(v) is str]
        if items:
            if arns:
                return [{"arn": a, "log_group": (a.split(":") + [""] * 7)[6] or a} for a in items]
            return [{"log_group": name} for name in items]
    return []


def sql(span: Span, special: dict[str, Any]) -> dict[str, Any] | None:
    """The ``sql`` block (None unless ``db.system`` is a SQL one); then its keys leave
    ``special``."""
    return sql_block(span.name, special)


def sql_block(name: str, special: dict[str, Any]) -> dict[str, Any] | None:
    """:func:`sql` from the span's name."""
    keys = [k for k in special if k in _SQL_KEYS]
    found: dict[str, str] = {}
    for key in keys:
        found.setdefault(_SQL_KEYS[key], _str(special[key]))
    if found.get("system") not in _SQL_SYSTEMS:
        return None
    for key in keys:
        del special[key]
    connection = (found.get("connection") or "localhost") + "/" + found.get("instance", "")
    return _compact(
        url=name,
        connection_string=connection,
        database_type=found["system"],
        user=found.get("user"),
        sanitized_query=found.get("statement"),
    )


def origin(resource: dict[str, Any]) -> str:
    """The ``origin`` for the resource's AWS platform, "" when none."""
    if resource.get("cloud.provider", "aws") != "aws":
        return ""
    platform = resource.get("cloud.platform")
    if platform == "aws_ecs":
        launch = resource.get("aws.ecs.launchtype")
        return _ECS_ORIGINS.get(launch, _ECS) if type(launch) is str else _ECS
    return _ORIGINS.get(platform, "") if type(platform) is str else ""


def service(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The ``service`` block: the resource's version."""
    version = resource.get("service.version", resource.get("container.image.tag"))
    return None if version is None else {"version": _str(version)}


def url_host(text: str) -> str:
    """The host name of a URL, "" when it has none."""
    try:
        return urlsplit(text).hostname or ""
    except ValueError:
        return ""


def _exception_id(span_id: str, number: int) -> str:
    return hashlib.blake2b(f"{span_id}/{number}".encode(), digest_size=8).hexdigest()


def _compact(**fields: Any) -> dict[str, Any]:
    """The fields that are set (the exporter leaves out empty strings)."""
    return {k: v for k, v in fields.items() if v is not None and v != ""}


def text(value: Any) -> str:
    """A value as the exporter writes it into a block: text as it is, None as "", else
    ``str``."""
    return value if type(value) is str else "" if value is None else str(value)


_str = text


def as_int(value: Any) -> int | None:
    """An integer attribute's value (also from a string of digits or a whole float), else
    None."""
    if type(value) is int:
        return value
    if type(value) is str and value.isdecimal() and len(value) < 19:
        return int(value)
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def _port(value: Any) -> str:
    return "" if value is None else _str(value)

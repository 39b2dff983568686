"""OpenTelemetry spans (OTLP/JSON) into segment documents, rule by rule, and through the SDK.

Every expected field below was worked out by hand from the X-Ray exporter's rules listed in
:mod:`xraykit.io.otlp_translate`.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import xraykit
import xraykit.traceset
from xraykit.exceptions import TraceParseError
from xraykit.io import otlp, otlp_fast
from xraykit.io.formats import frames_from_otlp, read_frames
from xraykit.io.otlp_translate import Options, Refused, Translator, documents
from xraykit.traceset import TraceSet

DATA = Path(__file__).parent / "data" / "otlp"
TID = "5759e988bd862e3fe1be46a994272793"
XTID = "1-5759e988-bd862e3fe1be46a994272793"
S0 = 1465575560 * 10**9


def from_otlp(value: Any, **options: Any) -> TraceSet:
    """``xraykit.from_otlp`` once the lead exports it; the same frames until then."""
    public = getattr(xraykit.traceset, "from_otlp", None)
    if public is not None:
        return public(value, **options)
    on_error = options.get("on_error", "warn")
    return xraykit.traceset._from_frames(frames_from_otlp(value, **options), on_error)


def kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, list):
        items = [kv("", v)["value"] for v in value]
        return {"key": key, "value": {"arrayValue": {"values": items}}}
    if isinstance(value, dict):
        items = [kv(k, v) for k, v in value.items()]
        return {"key": key, "value": {"kvlistValue": {"values": items}}}
    return {"key": key, "value": {"stringValue": value}}


def span(
    span_id: str = "53995c3f42cd8ad8",
    parent: str = "",
    kind: Any = 2,
    name: str = "op",
    attrs: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out = {
        "traceId": TID,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(S0),
        "endTimeUnixNano": str(S0 + 500_000_000),
        "attributes": [kv(k, v) for k, v in (attrs or {}).items()],
    }
    out.update(extra)
    return out


def request(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    res = {"attributes": [kv(k, v) for k, v in (resource or {}).items()]}
    return {"resourceSpans": [{"resource": res, "scopeSpans": [{"spans": list(spans)}]}]}


def docs(
    *spans: dict[str, Any], resource: dict[str, Any] | None = None, **options: Any
) -> list[dict[str, Any]]:
    """The documents of the spans, each span on its own (not nested)."""
    problems: list[tuple[str, str]] = []
    translator = Translator(Options(**options), lambda where, why: problems.append((where, why)))
    found = []
    for item in otlp.spans(
        request(*spans, resource=resource),
        problems.append and (lambda w, r: problems.append((w, r))),
    ):
        found.extend(translator.documents(item))
    assert not problems, problems
    return found


def one(*spans: dict[str, Any], **kw: Any) -> dict[str, Any]:
    (doc,) = docs(*spans, **kw)
    return doc


# -- the fixture files --------------------------------------------------------------------------


def _check_shop(ts: TraceSet) -> None:
    assert list(ts.traces.trace_id) == [XTID] and ts.problems.empty
    assert ts.traces.root_service.item() == "web" and not ts.traces.has_fault.item()
    web = ts.document("53995c3f42cd8ad8")
    assert (
        web["name"] == "web"
        and web["start_time"] == 1465575560.0
        and web["end_time"] == 1465575560.25
    )
    assert web["http"] == {
        "request": {"method": "GET", "url": "https://shop.example.com/cart"},
        "response": {"status": 200},
    }
    assert web["user"] == "u-42" and web["annotations"] == {"cart.items": 3}
    assert web["origin"] == "AWS::EC2::Instance" and web["service"] == {"version": "1.4.2"}
    assert web["aws"] == {
        "ec2": {"instance_id": "i-0abc"},
        "xray": {
            "sdk": "opentelemetry for python",
            "sdk_version": "1.45.2",
            "auto_instrumentation": False,
        },
    }
    assert web["metadata"]["default"]["otel.resource.host.id"] == "i-0abc"
    assert (web["fault"], web["error"], web["throttle"]) == (False, False, False)
    subs = ts.subsegments.set_index("subsegment_id")
    ddb = subs.loc["6f1c2a3b4c5d6e7f"]
    assert (
        ddb["name"],
        ddb["namespace"],
        ddb["aws_operation"],
        ddb["aws_region"],
        ddb["table_name"],
    ) == (
        "DynamoDB",
        "aws",
        "GetItem",
        "us-east-1",
        "carts",
    )
    call = subs.loc["7a7a7a7a7a7a7a7a"]
    assert (call["name"], call["namespace"], call["http_status"], call["fault"]) == (
        "pricing",
        "remote",
        503,
        True,
    )
    assert call["http_url"] == "http://pricing.internal/price?sku=9"
    pricing = ts.segments.set_index("segment_id").loc["8b8b8b8b8b8b8b8b"]
    assert (pricing["name"], pricing["parent_id"], pricing["http_url"], pricing["fault"]) == (
        "pricing",
        "7a7a7a7a7a7a7a7a",
        "http://pricing.internal/price?sku=9",
        True,
    )
    errors = ts.exceptions.set_index("entity_id")
    assert errors.loc["8b8b8b8b8b8b8b8b", "type"] == "TimeoutError"
    assert errors.loc["7a7a7a7a7a7a7a7a", "message"] == "upstream failed"
    assert set(ts.services) == {"web", "pricing", "DynamoDB"} or {"web", "pricing"} <= set(
        ts.services
    )


def test_a_pretty_printed_export_loads_with_load_file() -> None:
    _check_shop(xraykit.load_file(DATA / "shop.json"))


def test_one_request_per_line_and_gzip(tmp_path: Path) -> None:
    _check_shop(xraykit.load_file(DATA / "shop.jsonl"))
    packed = tmp_path / "spans.otlp"
    with open(DATA / "shop.jsonl", "rb") as f, gzip.open(packed, "wb") as g:
        shutil.copyfileobj(f, g)
    _check_shop(xraykit.load_file(packed))


def test_from_otlp_and_from_documents_take_the_decoded_structure() -> None:
    value = json.loads((DATA / "shop.json").read_text())
    _check_shop(from_otlp(value))
    _check_shop(from_otlp([value]))
    _check_shop(xraykit.from_documents([value]))


def test_an_export_next_to_xray_documents_in_one_file(tmp_path: Path) -> None:
    doc = {
        "name": "batch",
        "id": "70de5b6f19ff9a0a",
        "trace_id": "1-581cf771-a006649127e371903a2de979",
        "start_time": 1478293361.271,
        "end_time": 1478293361.449,
    }
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(doc) + "\n" + (DATA / "shop.jsonl").read_text())
    ts = xraykit.load_file(path)
    assert len(ts) == 2 and ts.problems.empty


# -- rule by rule -------------------------------------------------------------------------------


def test_trace_id_becomes_an_xray_id_and_out_of_range_ids_are_problems() -> None:
    assert one(span())["trace_id"] == XTID
    old = dict(span(), traceId="00000001" + "ab" * 12)  # epoch 1 s: refused by the exporter
    with pytest.warns(xraykit.XrayKitWarning):
        ts = from_otlp(request(old, span(span_id="1" * 16)))
    assert len(ts.segments) == 1
    (reason,) = ts.problems.reason
    assert "cannot be an X-Ray trace id" in reason and "AwsXRayIdGenerator" in reason
    late = dict(span(), traceId=f"{1465575560 + 301:08x}" + "ab" * 12)  # 5 min 1 s ahead
    with pytest.raises(Refused):
        documents(next(otlp.spans(late, print)))
    ts = from_otlp(request(old), validate_trace_ids=False)
    assert list(ts.traces.trace_id) == ["1-00000001-" + "ab" * 12]
    with pytest.raises(TraceParseError):
        from_otlp(request(old), on_error="raise")


@pytest.mark.parametrize(
    ("kind", "parent", "segment"),
    [
        (2, "aaaaaaaaaaaaaaaa", True),  # server: a segment even with a parent
        ("SPAN_KIND_CONSUMER", "aaaaaaaaaaaaaaaa", True),  # consumer: a segment (deviation)
        ("SPAN_KIND_INTERNAL", "", True),  # a root: a segment
        ("SPAN_KIND_INTERNAL", "aaaaaaaaaaaaaaaa", False),
        (3, "aaaaaaaaaaaaaaaa", False),
        ("PRODUCER", "aaaaaaaaaaaaaaaa", False),  # the span log group's short names
        (1, "0000000000000000", True),  # an all-zero parent is no parent
    ],
)
def test_segment_or_subsegment(kind: Any, parent: str, segment: bool) -> None:
    doc = one(span(kind=kind, parent=parent))
    assert ("type" not in doc) is segment
    if not segment:
        assert doc["parent_id"] == parent


def test_status_and_kind_numbers_or_names_and_fault_error_throttle() -> None:
    def flags(attrs: dict[str, Any], status: Any = None) -> tuple[bool, bool, bool]:
        extra = {"status": {"code": status}} if status is not None else {}
        doc = one(span(attrs=attrs, **extra))
        return doc["fault"], doc["error"], doc["throttle"]

    assert flags({"http.response.status_code": 429}) == (False, True, True)
    assert flags({"http.status_code": 404}, "STATUS_CODE_ERROR") == (False, True, False)
    assert flags({"http.status_code": 502}) == (True, False, False)
    assert flags({}, 2) == (True, False, False)
    assert flags({}, "ERROR") == (True, False, False)
    assert flags({"http.response.status_code": 302}, "STATUS_CODE_ERROR") == (True, False, False)
    assert flags({}, "STATUS_CODE_OK") == (False, False, False)


def test_names_in_the_exporters_order() -> None:
    def name(
        kind: int,
        attrs: dict[str, Any],
        span_name: str = "op",
        resource: dict[str, Any] | None = None,
    ) -> str:
        return one(
            span(kind=kind, parent="aaaaaaaaaaaaaaaa", name=span_name, attrs=attrs),
            resource=resource,
        )["name"]

    assert name(2, {"aws.local.service": "cart-svc", "peer.service": "x"}) == "cart-svc"
    assert name(3, {"aws.remote.service": "AWS::DynamoDB", "rpc.system": "aws-api"}) == "DynamoDB"
    assert name(3, {"aws.remote.service": "AWS.SDK.S3", "rpc.system": "aws-api"}) == "S3"
    assert name(3, {"aws.remote.service": "AWS::Thing"}) == "AWS::Thing"  # not an SDK span
    assert name(3, {"peer.service": "pricing", "aws.service": "S3"}) == "pricing"
    assert name(1, {"aws.service": "SQS"}) == "SQS"
    assert name(
        3, {"db.name": "orders", "db.connection_string": "jdbc:mysql://db.example.com:3306"}
    ) == ("orders@db.example.com")
    assert name(3, {"db.namespace": "orders"}) == "orders"
    assert name(2, {}, resource={"service.name": "web"}) == "web"
    assert name(3, {}, resource={"service.name": "web"}) == "op"  # only server spans take it
    assert name(3, {"rpc.service": "Greeter", "http.host": "h"}) == "Greeter"
    assert name(3, {"http.host": "api.example.com", "net.peer.name": "p"}) == "api.example.com"
    assert name(3, {"net.peer.name": "peer"}) == "peer"
    assert name(3, {"server.address": "new.example.com"}) == "new.example.com"
    assert name(1, {}, "GET /users/{id}?q=<x>") == "GET /users/idq=x"
    assert name(1, {}, "{}[]") == "span"
    assert name(1, {}, "é" * 300) == "é" * 200


def test_namespaces() -> None:
    assert one(span(kind=3, parent="a" * 16))["namespace"] == "remote"
    assert one(span(kind=3, parent="a" * 16, attrs={"rpc.system": "aws-api"}))["namespace"] == "aws"
    assert one(span(kind=1, parent="a" * 16, attrs={"aws.service": "S3"}))["namespace"] == "aws"
    assert "namespace" not in one(span(kind=4, parent="a" * 16))
    assert (
        one(span(kind=4, parent="a" * 16, attrs={"aws.remote.service": "q"}))["namespace"]
        == "remote"
    )
    assert "namespace" not in one(span(kind=1, parent="a" * 16))


def test_http_block_from_old_and_new_names() -> None:
    server_old = one(
        span(
            kind=2,
            attrs={
                "http.method": "POST",
                "http.scheme": "https",
                "http.server_name": "shop",
                "net.host.port": 8443,
                "http.target": "/pay",
                "http.user_agent": "curl/8",
                "http.client_ip": "198.51.100.7",
                "http.status_code": 201,
                "http.response_content_length": 17,
            },
        )
    )["http"]
    assert server_old == {
        "request": {
            "method": "POST",
            "url": "https://shop:8443/pay",
            "user_agent": "curl/8",
            "client_ip": "198.51.100.7",
            "x_forwarded_for": True,
        },
        "response": {"status": 201, "content_length": 17},
    }
    client_new = one(
        span(
            kind=3,
            parent="a" * 16,
            attrs={
                "http.request.method": "GET",
                "server.address": "api",
                "server.port": 80,
                "url.path": "/items",
                "url.query": "page=2",
                "network.peer.address": "10.0.0.9",
            },
        )
    )["http"]
    assert client_new == {
        "request": {"method": "GET", "client_ip": "10.0.0.9", "url": "http://api/items?page=2"}
    }
    peer = one(
        span(
            kind=3,
            parent="a" * 16,
            attrs={
                "http.method": "GET",
                "net.peer.name": "inventory",
                "net.peer.port": "9000",
            },
        )
    )
    assert peer["http"] == {"request": {"method": "GET"}}  # a peer name alone builds no URL
    assert "metadata" not in peer  # the http and net keys never reach metadata
    peer = one(
        span(
            kind=3,
            parent="a" * 16,
            attrs={
                "http.method": "GET",
                "net.peer.name": "inventory",
                "net.peer.port": 9000,
                "net.peer.ip": "10.1.1.1",
            },
        )
    )
    assert peer["http"]["request"] == {
        "method": "GET",
        "client_ip": "10.1.1.1",
        "url": "http://inventory:9000/",
    }
    received = one(
        span(
            attrs={"http.method": "GET"},
            events=[
                {
                    "name": "message",
                    "timeUnixNano": str(S0),
                    "attributes": [
                        kv("message.type", "RECEIVED"),
                        kv("messaging.message_payload_size_bytes", 512),
                    ],
                }
            ],
        )
    )
    assert received["http"] == {"request": {"method": "GET"}, "response": {"content_length": 512}}
    assert "http" not in one(span(attrs={"net.peer.name": "x"}))


def test_exception_events_become_the_cause_with_python_frames() -> None:
    trace = (
        'Traceback (most recent call last):\n  File "/app/db.py", line 8, in query\n'
        '    raise OSError("reset")\nOSError: reset\n\nDuring handling of the above exception, '
        "another exception occurred:\n\nTraceback (most recent call last):\n"
        '  File "/app/api.py", line 21, in handler\n    load()\n'
        '  File "/app/api.py", line 5, in load\n    raise KeyError("cart")\nKeyError: \'cart\'\n'
    )
    event = {
        "name": "exception",
        "timeUnixNano": str(S0),
        "attributes": [
            kv("exception.type", "KeyError"),
            kv("exception.message", "'cart'"),
            kv("exception.stacktrace", trace),
        ],
    }
    doc = one(
        span(kind=3, parent="a" * 16, events=[event]), resource={"telemetry.sdk.language": "python"}
    )
    first, cause = doc["cause"]["exceptions"]
    assert (first["type"], first["message"], first["remote"]) == ("KeyError", "'cart'", True)
    assert first["stack"] == [
        {"path": "/app/api.py", "line": 5, "label": "load"},
        {"path": "/app/api.py", "line": 21, "label": "handler"},
    ]
    assert first["cause"] == cause["id"] and (cause["type"], cause["message"]) == (
        "OSError",
        "reset",
    )
    assert cause["stack"] == [{"path": "/app/db.py", "line": 8, "label": "query"}]
    assert doc["fault"] is False  # exceptions alone decide nothing: the status does
    again = one(
        span(kind=3, parent="a" * 16, events=[event]), resource={"telemetry.sdk.language": "python"}
    )
    assert again["cause"] == doc["cause"]  # ids are stable


def test_java_stack_traces_and_chained_causes() -> None:
    trace = (
        "java.lang.IllegalStateException: bad state\n\tat com.shop.Cart.add(Cart.java:42)\n"
        "\tat app//com.shop.Api.handle(Api.java:10)\nCaused by: java.io.IOException: disk\n"
        "\tat com.shop.Store.write(Store.java:7)\n\t... 2 more\n"
    )
    event = {
        "name": "exception",
        "attributes": [
            kv("exception.type", "java.lang.IllegalStateException"),
            kv("exception.stacktrace", trace),
        ],
    }
    doc = one(span(events=[event]), resource={"telemetry.sdk.language": "java"})
    first, cause = doc["cause"]["exceptions"]
    assert first["stack"] == [
        {"path": "Cart.java", "line": 42, "label": "com.shop.Cart.add"},
        {"path": "Api.java", "line": 10, "label": "com.shop.Api.handle"},
    ]
    assert (cause["type"], cause["message"], first["cause"]) == (
        "java.io.IOException",
        "disk",
        cause["id"],
    )
    assert cause["stack"] == [{"path": "Store.java", "line": 7, "label": "com.shop.Store.write"}]
    go = one(span(events=[event]), resource={"telemetry.sdk.language": "go"})
    assert "stack" not in go["cause"]["exceptions"][0]  # other languages keep no frames


def test_a_status_message_without_exceptions_is_the_cause() -> None:
    doc = one(span(attrs={"http.status_text": "Bad Gateway"}, status={"code": 2}))
    (exception,) = doc["cause"]["exceptions"]
    assert exception["message"] == "Bad Gateway" and "metadata" not in doc
    assert "cause" not in one(span(status={"code": 2}))
    sdk = one(
        span(
            kind=3,
            parent="a" * 16,
            attrs={"rpc.system": "aws-api"},
            events=[
                {
                    "name": "HTTP request failure",
                    "timeUnixNano": str(S0 + 1_500_000),
                    "attributes": [
                        kv("http.response.status_code", 503),
                        kv("aws.http.error_message", "slow down"),
                    ],
                }
            ],
        )
    )
    (failure,) = sdk["cause"]["exceptions"]
    assert failure["type"] == "aws.http.error.event" and failure["remote"] is True
    assert failure["message"] == "503@1465575560.001500@slow down"


def test_aws_block_origin_and_service() -> None:
    sqs = one(
        span(
            kind=4,
            parent="a" * 16,
            attrs={
                "rpc.system": "aws-api",
                "rpc.method": "SendMessage",
                "aws.queue_url": "https://old",
                "messaging.url": "https://sqs.us-east-1.amazonaws.com/1/orders",
                "aws.account_id": "123456789012",
                "aws.requestId": "req-1",
            },
        ),
        resource={
            "cloud.provider": "aws",
            "cloud.platform": "aws_ecs",
            "aws.ecs.launchtype": "fargate",
            "aws.ecs.task.arn": "arn:task",
            "container.image.tag": "v7",
            "aws.log.group.arns": ["arn:aws:logs:us-east-1:1:log-group:/ecs/shop:*"],
        },
    )
    assert sqs["origin"] == "AWS::ECS::Fargate" and sqs["service"] == {"version": "v7"}
    aws = sqs["aws"]
    assert (aws["operation"], aws["queue_url"], aws["account_id"], aws["request_id"]) == (
        "SendMessage",
        "https://sqs.us-east-1.amazonaws.com/1/orders",
        "123456789012",
        "req-1",
    )
    assert aws["ecs"] == {"task_arn": "arn:task", "launch_type": "fargate"}
    assert aws["cloudwatch_logs"] == [
        {"arn": "arn:aws:logs:us-east-1:1:log-group:/ecs/shop:*", "log_group": "/ecs/shop"}
    ]
    tables = one(span(attrs={"aws.dynamodb.table_names": ["a", "b"], "aws.table_name": "x"}))["aws"]
    assert tables["table_names"] == ["a", "b"] and "table_name" not in tables
    gcp = one(
        span(attrs={"aws.operation": "Get"}),
        resource={"cloud.provider": "gcp", "cloud.platform": "aws_ec2"},
    )
    assert "aws" not in gcp and "origin" not in gcp
    eb = one(
        span(),
        resource={
            "cloud.platform": "aws_elastic_beanstalk",
            "service.instance.id": "23",
            "service.namespace": "prod",
        },
    )
    assert eb["origin"] == "AWS::ElasticBeanstalk::Environment"
    assert eb["aws"]["elastic_beanstalk"] == {"environment_name": "prod", "deployment_id": 23}


def test_sql_block_for_sql_databases_only() -> None:
    doc = one(
        span(
            kind=3,
            parent="a" * 16,
            name="SELECT orders",
            attrs={
                "db.system": "postgresql",
                "db.name": "shop",
                "db.statement": "SELECT * FROM orders",
                "db.user": "app",
                "db.connection_string": "postgresql://db:5432",
            },
        )
    )
    assert doc["sql"] == {
        "url": "SELECT orders",
        "connection_string": "postgresql://db:5432/shop",
        "database_type": "postgresql",
        "user": "app",
        "sanitized_query": "SELECT * FROM orders",
    }
    assert doc["name"] == "shop@db"
    new = one(
        span(
            kind=3,
            parent="a" * 16,
            attrs={"db.system.name": "mysql", "db.namespace": "shop", "db.query.text": "SELECT 1"},
        )
    )
    assert (
        new["sql"]["connection_string"] == "localhost/shop"
        and new["sql"]["sanitized_query"] == "SELECT 1"
    )
    redis = one(
        span(kind=3, parent="a" * 16, attrs={"db.system": "redis", "db.statement": "GET k"})
    )
    assert "sql" not in redis and redis["metadata"]["default"] == {
        "db.system": "redis",
        "db.statement": "GET k",
    }


def test_annotations_and_metadata() -> None:
    attrs = {
        "order id": "o-1",
        "tier": "gold",
        "tags": ["a"],
        "aws.xray.annotations": ["order id", "tags"],
        "aws.xray.metadata.billing": '{"plan": "pro"}',
        "aws.xray.metadata.default": '{"k": 1}',
        "aws.xray.metadata.bad": "not json",
        "size": 3,
        "http.method": "GET",
    }
    doc = one(span(attrs=attrs), resource={"service.name": "web", "team": "a"})
    assert doc["annotations"] == {"order_id": "o-1"}  # lists are not annotations
    assert doc["metadata"] == {
        "billing": {"plan": "pro"},
        "default": {
            "otel.resource.service.name": "web",
            "otel.resource.team": "a",
            "tier": "gold",
            "k": 1,
            "aws.xray.metadata.bad": "not json",
            "size": 3,
        },
    }
    indexed = one(
        span(attrs={"http.method": "GET", "tier": "gold", "a-b": 1.5}),
        resource={"team": "a"},
        indexed_attributes=frozenset({"http.method", "a-b", "otel.resource.team"}),
    )
    assert indexed["annotations"] == {"http.method": "GET", "a_b": 1.5, "otel.resource.team": "a"}
    assert indexed["http"] == {"request": {"method": "GET"}}  # consumed, and annotated too
    every = one(span(attrs={"tier": "gold", "n": 2, "list": [1]}), index_all_attributes=True)
    assert every["annotations"] == {"tier": "gold", "n": 2} and "metadata" not in every
    sub = one(span(kind=1, parent="a" * 16, attrs={"x": 1}), resource={"team": "a"})
    assert sub["metadata"] == {"default": {"x": 1}}  # the resource only on segments


def test_local_root_dependency_spans_split_in_two() -> None:
    attrs = {
        "aws.span.kind": "LOCAL_ROOT",
        "aws.local.service": "worker",
        "aws.remote.service": "AWS::SQS",
        "rpc.system": "aws-api",
        "rpc.method": "ReceiveMessage",
        "http.response.status_code": 200,
    }
    dependency, service = docs(span(kind=5, attrs=attrs), resource={"service.name": "worker-svc"})
    assert service["name"] == "worker" and "type" not in service and "namespace" not in service
    assert "http" not in service and "operation" not in service["aws"]
    assert set(service["metadata"]["default"]) == {"otel.resource.service.name"}
    assert service["id"] != "53995c3f42cd8ad8" and len(service["id"]) == 16
    assert dependency["id"] == "53995c3f42cd8ad8" and dependency["parent_id"] == service["id"]
    assert (dependency["type"], dependency["name"], dependency["namespace"]) == (
        "subsegment",
        "SQS",
        "aws",
    )
    assert dependency["aws"]["operation"] == "ReceiveMessage"
    ts = from_otlp(request(span(kind=5, attrs=attrs)))
    assert list(ts.segments.name) == ["worker"] and list(ts.subsegments.name) == ["SQS"]
    (root,) = docs(
        span(
            kind=1,
            parent="a" * 16,
            attrs={"aws.span.kind": "LOCAL_ROOT", "aws.local.service": "job"},
        )
    )
    assert root["name"] == "job" and "type" not in root and root["parent_id"] == "a" * 16


def test_links_and_in_progress_spans() -> None:
    link = {
        "traceId": "5759e988" + "cd" * 12,
        "spanId": "bbbbbbbbbbbbbbbb",
        "attributes": [kv("kind", "batch")],
    }
    refused = {"traceId": "00000002" + "cd" * 12, "spanId": "cccccccccccccccc"}
    problems: list[str] = []
    translator = Translator(report=lambda where, why: problems.append(why))
    (item,) = otlp.spans(request(span(links=[link, refused], endTimeUnixNano="0")), print)
    (doc,) = translator.documents(item)
    assert doc["links"] == [
        {
            "trace_id": "1-5759e988-" + "cd" * 12,
            "id": "bbbbbbbbbbbbbbbb",
            "attributes": {"kind": "batch"},
        }
    ]
    assert len(problems) == 1 and "link" in problems[0]
    assert doc["in_progress"] is True and "end_time" not in doc
    ts = from_otlp(request(span(links=[link])))
    assert ts.document("53995c3f42cd8ad8")["links"][0]["id"] == "bbbbbbbbbbbbbbbb"


def test_attribute_values_of_every_type() -> None:
    value = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            dict(
                                span(),
                                attributes=[
                                    kv("s", "x"),
                                    kv("i", 7),
                                    kv("d", 1.5),
                                    kv("b", True),
                                    {"key": "raw", "value": {"bytesValue": "AAE="}},
                                    kv("arr", ["p", "q"]),
                                    kv("map", {"k": "v"}),
                                    {"key": "empty", "value": {}},
                                    {"key": "n", "value": {"intValue": 9}},
                                ],
                            )
                        ]
                    }
                ]
            }
        ]
    }
    (item,) = otlp.spans(value, print)
    assert item.attributes == {
        "s": "x",
        "i": 7,
        "d": 1.5,
        "b": True,
        "raw": "AAE=",
        "arr": ["p", "q"],
        "map": {"k": "v"},
        "empty": None,
        "n": 9,
    }


def test_transaction_search_span_objects() -> None:
    """The OTEL format of ListRetrievedTraces: one span per object, plain attribute objects."""
    flat = {
        "resource": {"attributes": {"service.name": "orders", "cloud.provider": "aws"}},
        "scope": {"name": "x"},
        "traceId": TID,
        "spanId": "53995c3f42cd8ad8",
        "flags": 256,
        "name": "POST /orders",
        "kind": "SERVER",
        "startTimeUnixNano": S0,
        "endTimeUnixNano": S0 + 10**8,
        "durationNano": 10**8,
        "attributes": {"http.request.method": "POST", "http.response.status_code": 500},
        "status": {"code": "ERROR"},
    }
    ts = from_otlp([flat])
    (segment,) = ts.segments.itertuples()
    assert (segment.name, segment.http_method, segment.http_status, segment.fault) == (
        "orders",
        "POST",
        500,
        True,
    )


# -- hostile input ------------------------------------------------------------------------------


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "bottom"}
    for _ in range(levels):
        value = {"arrayValue": {"values": [value]}}
    return value


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"resourceSpans": 5}, "'resourceSpans' must be a list"),
        ({"resourceSpans": [7]}, "ResourceSpans object"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": "x"}]}]}, "'spans' list"),
        (request(dict(span(), traceId="xyz")), "'traceId' must be 32 hex digits"),
        (request(dict(span(), traceId=base64.b64encode(bytes.fromhex(TID)).decode())), "base64"),
        (request(dict(span(), spanId=None)), "'spanId'"),
        (request(dict(span(), startTimeUnixNano="soon")), "startTimeUnixNano"),
        (request(dict(span(), startTimeUnixNano=None)), "missing or 0"),
        (request(dict(span(), startTimeUnixNano=str(10**30))), "startTimeUnixNano"),
        (request(dict(span(), kind="SIDEWAYS")), "'kind'"),
        (request(dict(span(), attributes=[{"key": 1}])), "an attribute must be"),
        (request(dict(span(), attributes=[{"key": "deep", "value": _deep(200)}])), "nested deeper"),
        ([3], "expected OTLP span data"),
    ],
)
def test_hostile_input_is_a_problem_row_never_a_crash(bad: Any, says: str) -> None:
    with pytest.warns(xraykit.XrayKitWarning):
        ts = from_otlp([bad, request(span(span_id="1" * 16))])
    assert len(ts.segments) >= 1  # the good span still loads
    assert any(says in reason for reason in ts.problems.reason), list(ts.problems.reason)


def test_cycles_and_deep_chains_of_parents_still_load() -> None:
    ring = [
        span(span_id="a" * 16, parent="b" * 16, kind=1),
        span(span_id="b" * 16, parent="a" * 16, kind=1),
    ]
    chain = [
        span(span_id=f"{i + 1:016x}", parent=f"{i:016x}" if i else "", kind=1) for i in range(300)
    ]
    ts = from_otlp(request(*ring, *chain), on_error="ignore")
    assert len(ts.traces) == 1
    assert len(ts.segments) + len(ts.subsegments) >= 300


def test_a_damaged_line_leaves_the_other_lines(tmp_path: Path) -> None:
    lines = (DATA / "shop.jsonl").read_text().splitlines()
    path = tmp_path / "damaged.jsonl"
    path.write_text(lines[0] + "\n" + lines[1][:50] + "\n")
    with pytest.warns(xraykit.XrayKitWarning):
        ts = xraykit.load_file(path)
    assert "53995c3f42cd8ad8" in set(ts.segments.segment_id) and len(ts.problems) == 1


# -- a round trip through the OpenTelemetry SDK ---------------------------------------------------


def test_round_trip_through_the_opentelemetry_sdk(otlp_json) -> None:
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.common")
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    provider = TracerProvider(
        id_generator=AwsXRayIdGenerator(), resource=Resource.create({"service.name": "orders"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("round-trip")
    with tracer.start_as_current_span(
        "POST /orders",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "POST",
            "http.response.status_code": 201,
            "customer.tier": "gold",
            "aws.xray.annotations": ["customer.tier"],
        },
    ) as root:
        with tracer.start_as_current_span(
            "INSERT",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.name": "shop",
                "db.statement": "INSERT INTO orders",
            },
        ):
            pass
        with tracer.start_as_current_span(
            "notify", kind=SpanKind.PRODUCER, attributes={"peer.service": "mailer"}
        ):
            pass
    provider.shutdown()
    value = otlp_json(encode_spans(memory.get_finished_spans()))
    ts = from_otlp(json.loads(json.dumps(value)))
    assert ts.problems.empty
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert list(ts.traces.trace_id) == [f"1-{trace_id[:8]}-{trace_id[8:]}"]
    (segment,) = ts.segments.itertuples()
    assert (segment.name, segment.http_method, segment.http_status) == ("orders", "POST", 201)
    assert segment.segment_id == format(root.get_span_context().span_id, "016x")
    subs = ts.subsegments.set_index("name")
    assert set(subs.index) == {"shop", "mailer"}
    assert (subs.parent_id == segment.segment_id).all()
    assert subs.loc["shop", "sql_database_type"] == "postgresql"
    assert ts.annotations[["key", "value"]].values.tolist() == [["customer.tier", "gold"]]
    assert ts.services == ["orders"] or "orders" in ts.services


# -- the fast path gives exactly the frames of the exact path ------------------------------------


def _same_frames(fast: dict[str, Any], exact: dict[str, Any]) -> None:
    assert fast.keys() == exact.keys()
    for name, frame in exact.items():
        if hasattr(frame, "columns"):
            pd.testing.assert_frame_equal(fast[name], frame, obj=name)
        else:  # the document store: every document's text, in order
            pd.testing.assert_frame_equal(fast[name].to_frame(), frame.to_frame(), obj=name)


def _both(read: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], dict[str, Any]]:
    fast = read()
    monkeypatch.setattr(otlp_fast, "USE_FAST_PATH", False)
    exact = read()
    monkeypatch.setattr(otlp_fast, "USE_FAST_PATH", True)
    return fast, exact


def _random_request(rng: random.Random, number: int) -> dict[str, Any]:
    """An export request of one trace with the attributes the rules read, in random mixes;
    now and then something the fast path leaves to the exact path."""
    trace = f"{1465575560 + number:08x}" + "".join(
        rng.choice("0123456789abcdef") for _ in range(24)
    )
    start = (1465575560 + number) * 10**9
    pool: dict[str, list[Any]] = {
        "http.method": ["GET", "POST"],
        "http.request.method": ["PUT"],
        "http.status_code": [200, 404, 429, 503, "500"],
        "http.response.status_code": [201, 400],
        "http.url": ["https://shop.example.com/cart?x=1"],
        "http.scheme": ["https"],
        "http.host": ["api.example.com"],
        "http.target": ["/orders/7"],
        "url.path": ["/items"],
        "url.query": ["page=2"],
        "server.address": ["inventory"],
        "server.port": [8443, 80],
        "net.peer.name": ["payments"],
        "net.peer.port": [443],
        "client.address": ["10.0.0.9"],
        "http.client_ip": ["203.0.113.5"],
        "user_agent.original": ["curl/8"],
        "http.response_content_length": [512, 0],
        "http.status_text": ["Bad Gateway"],
        "rpc.system": ["aws-api", "grpc"],
        "rpc.service": ["DynamoDB"],
        "rpc.method": ["GetItem"],
        "aws.service": ["SQS"],
        "aws.operation": ["SendMessage"],
        "aws.region": ["eu-west-1"],
        "aws.request_id": ["req-1"],
        "aws.queue_url": ["https://sqs/q"],
        "messaging.url": ["https://sqs/other"],
        "aws.dynamodb.table_names": [["orders"], ["a", "b"]],
        "aws.table_name": ["carts"],
        "peer.service": ["billing"],
        "aws.remote.service": ["AWS.SDK.S3", "ledger"],
        "db.system": ["postgresql", "redis"],
        "db.name": ["shop"],
        "db.statement": ["SELECT 1"],
        "db.user": ["app"],
        "db.connection_string": ["jdbc:postgresql://db.example.com:5432"],
        "enduser.id": ["user-7"],
        "tier": ["gold", 3, 2.5, True],
        "order.id": ["o-1"],
        "bad key!": ["x"],
        "aws.xray.metadata.billing": ['{"plan": "pro"}', "not json"],
        "aws.xray.metadata.default": ['{"merged": 1}'],
        "message.type": ["RECEIVED"],
        "messaging.message_payload_size_bytes": [99],
        "tags": [["a", "b"]],
        "empty": [None],
    }
    resources = [
        {"service.name": "web", "telemetry.sdk.language": "python"},
        {
            "service.name": "cart",
            "cloud.provider": "aws",
            "cloud.platform": "aws_ec2",
            "host.id": "i-1",
            "service.version": "1.2",
        },
        {"service.name": "ecs", "cloud.platform": "aws_ecs", "aws.ecs.launchtype": "fargate"},
        {"service.name": "gcp", "cloud.provider": "gcp", "process.pid": 12},
    ]
    spans = []
    ids = [f"{number:08x}{i:08x}" for i in range(rng.randint(1, 6))]
    for i, span_id in enumerate(ids):
        keys = rng.sample(sorted(pool), rng.randint(0, 8))
        attrs = {k: rng.choice(pool[k]) for k in keys}
        if attrs and rng.random() < 0.3:
            attrs["aws.xray.annotations"] = rng.sample(sorted(attrs), 1)
        extra: dict[str, Any] = {}
        if rng.random() < 0.3:
            extra["status"] = rng.choice(
                [{"code": 2, "message": "boom"}, {"code": "STATUS_CODE_ERROR"}, {"code": 1}]
            )
        if rng.random() < 0.1:
            extra["endTimeUnixNano"] = rng.choice([None, 0, start + 7_654_321_987])
        if rng.random() < 0.05:  # left to the exact path
            extra.update(
                rng.choice(
                    [
                        {"events": [{"name": "exception", "attributes": []}]},
                        {"links": [{"traceId": trace, "spanId": ids[0]}]},
                        {"spanId": "not-an-id"},
                        {"attributes": [kv("aws.span.kind", "LOCAL_ROOT")]},
                    ]
                )
            )
        parent = "" if i == 0 else ids[rng.randrange(i)]
        item = span(span_id, parent, rng.choice([1, 2, 3, 4, 5, "SPAN_KIND_CLIENT"]), **extra)
        item["traceId"] = trace
        item["name"] = rng.choice(["GET /cart", "op{1}", ""])
        item["startTimeUnixNano"] = str(start + i * 1000)
        if "attributes" not in extra:
            item["attributes"] = [kv(k, v) for k, v in attrs.items()]
        spans.append(item)
    if rng.random() < 0.5:
        spans.reverse()  # children before parents, as SDKs export them
    groups = [spans[: len(spans) // 2], spans[len(spans) // 2 :]]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [kv(k, v) for k, v in rng.choice(resources).items()]},
                "scopeSpans": [{"spans": group}],
            }
            for group in groups
            if group
        ]
    }


def test_fast_path_gives_the_frames_of_the_exact_path_on_the_fixtures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("shop.json", "shop.jsonl"):
        fast, exact = _both(lambda n=name: read_frames(DATA / n), monkeypatch)
        _same_frames(fast, exact)
    translator = otlp_fast.FastTranslator()
    for line in (DATA / "shop.jsonl").read_text().splitlines():
        translator.documents(json.loads(line))
    assert translator.taken >= 1 and translator.left >= 1  # the span with events is left


def test_fast_path_gives_the_frames_of_the_exact_path_on_a_generated_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(15)
    requests = [_random_request(rng, i) for i in range(400)]
    path = tmp_path / "mixed.otlp.jsonl"
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
    fast, exact = _both(lambda: read_frames(path, on_error="ignore"), monkeypatch)
    _same_frames(fast, exact)
    assert len(exact["segments"]) > 400 and len(exact["problems"]) > 0
    translator = otlp_fast.FastTranslator()
    for request in requests:
        translator.documents(request)
    assert translator.taken > 300 and translator.left > 10  # both paths were exercised
    for options in ({"indexed_attributes": ["tier", "order.id"]}, {"index_all_attributes": True}):
        fast, exact = _both(
            lambda o=options: frames_from_otlp(requests[:100], on_error="ignore", **o),
            monkeypatch,
        )
        _same_frames(fast, exact)


# -- translation plans (otlp_plan) give exactly the documents of the fast path -------------------

_PATTERN_VALUES: dict[str, list[Any]] = {  # values that steer value-dependent rules, per key
    "http.method": ["GET", "post", ""],
    "http.status_code": [200, 404, 429, 503, 599, 600, 399],
    "http.response.status_code": [201, 400, 500],
    "http.url": ["https://shop.example.com/cart?x=1", ""],
    "http.scheme": ["https", "http", ""],
    "url.scheme": ["http", "https"],
    "http.host": ["api.example.com", ""],
    "http.target": ["/orders/7", ""],
    "url.path": ["/items", ""],
    "url.query": ["page=2", ""],
    "server.address": ["inventory", ""],
    "server.port": [8443, 80, 443],
    "net.host.port": [80, 9000],
    "net.peer.name": ["payments", ""],
    "net.peer.port": [443, 80],
    "net.peer.ip": ["10.1.1.1"],
    "client.address": ["10.0.0.9", ""],
    "http.client_ip": ["203.0.113.5"],
    "user_agent.original": ["curl/8", ""],
    "http.response_content_length": [512, 0],
    "http.status_text": ["Bad Gateway", ""],
    "rpc.system": ["aws-api", "grpc"],
    "rpc.service": ["DynamoDB", ""],
    "rpc.method": ["GetItem", ""],
    "aws.service": ["SQS", ""],
    "aws.operation": ["SendMessage"],
    "aws.region": ["eu-west-1", "us-east-1"],
    "aws.account_id": ["123456789012"],
    "aws.request_id": ["req-1", "req-2"],
    "aws.requestId": ["req-3"],
    "aws.queue_url": ["https://sqs/q"],
    "messaging.url": ["https://sqs/other", ""],
    "aws.table_name": ["carts"],
    "aws.table.name": ["orders"],
    "peer.service": ["billing", ""],
    "aws.remote.service": ["AWS.SDK.S3", "AWS::Lambda", "ledger", ""],
    "aws.local.service": ["front", ""],
    "db.system": ["postgresql", "redis", "mysql"],
    "db.system.name": ["sqlite", "mongodb"],
    "db.name": ["shop", ""],
    "db.namespace": ["ledger"],
    "db.statement": ["SELECT 1", ""],
    "db.user": ["app"],
    "db.connection_string": ["jdbc:postgresql://db.example.com:5432", "", "http://[bad"],
    "enduser.id": ["user-7", "", 7],
    "tier": ["gold", "silver", ""],
    "order.id": ["o-1", "o-2"],
    "count": [3, 4],
    "ratio": [2.5, 0.5],
    "flag": [True, False],
    "bad key!": ["x", "y"],
    "aws.xray.metadata.billing": ['{"plan": "pro"}', "not json"],
    "message.type": ["RECEIVED", "SENT"],
    "messaging.message_payload_size_bytes": [99],
    "tags": [["a", "b"]],
    "empty": [None],
}


def _patterns(rng: random.Random, count: int) -> list[tuple[Any, ...]]:
    """``count`` span patterns: kind, whether a child, status shape, span names, keys."""
    keys = sorted(_PATTERN_VALUES)
    rare = {"aws.xray.metadata.billing", "message.type", "tags", "empty"}
    common = [k for k in keys if k not in rare]
    out = []
    for _ in range(count):
        chosen = rng.sample(common, rng.randint(0, 9))
        if rng.random() < 0.1:
            chosen.append(rng.choice(sorted(rare)))
        listed = rng.sample(chosen, min(len(chosen), rng.randint(0, 2))) if chosen else []
        status = rng.choice([None, {"code": 2}, {"code": 1}, {"code": 2, "message": "boom"}])
        out.append((rng.choice([1, 2, 3, 4, 5]), rng.random() < 0.7, status, chosen, listed))
    return out


def _patterned_request(
    rng: random.Random, number: int, patterns: list[tuple[Any, ...]]
) -> dict[str, Any]:
    """A request of one trace whose spans follow ``patterns``: the same keys in the same
    order, new values each time (values that change the value-dependent rules too)."""
    trace = f"{1465575560 + number:08x}" + "".join(
        rng.choice("0123456789abcdef") for _ in range(24)
    )
    start = (1465575560 + number) * 10**9
    spans = []
    ids = [f"{number:08x}{i:08x}" for i in range(rng.randint(1, 5))]
    for i, span_id in enumerate(ids):
        kind, child, status, keys, listed = rng.choice(patterns)
        attrs = {k: rng.choice(_PATTERN_VALUES[k]) for k in keys}
        if listed and rng.random() < 0.8:  # the listed keys steer annotations: vary them
            attrs["aws.xray.annotations"] = rng.sample(listed, rng.randint(1, len(listed)))
            if rng.random() < 0.15:  # entries that are not keys: ignored, some not hashable
                attrs["aws.xray.annotations"].append(rng.choice([5, ["nested"], {"k": "v"}]))
        parent = ids[rng.randrange(i)] if i and child else ""
        extra: dict[str, Any] = {"status": status} if status else {}
        item = span(span_id, parent, kind, rng.choice(["GET /cart", "op{1}", "", "shop"]), **extra)
        item["traceId"] = trace
        item["startTimeUnixNano"] = str(start + i * 1000)
        if rng.random() < 0.05:
            item["endTimeUnixNano"] = None
        item["attributes"] = [kv(k, v) for k, v in attrs.items()]
        spans.append(item)
    resources = [
        {"service.name": "web", "telemetry.sdk.language": "python"},
        {
            "service.name": "cart",
            "cloud.provider": "aws",
            "cloud.platform": "aws_ec2",
            "host.id": "i-1",
            "service.version": "1.2",
            "tier": "resource",
        },
        {"service.name": "gcp", "cloud.provider": "gcp", "process.pid": 12},
    ]
    resource = resources[number % len(resources)]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [kv(k, v) for k, v in resource.items()]},
                "scopeSpans": [{"spans": spans}],
            }
        ]
    }


def _plan_differences(requests: list[dict[str, Any]], options: Options) -> tuple[int, int]:
    """Translate ``requests`` with and without plans; assert the same documents, byte for
    byte; return the plans kept and the spans they translated."""
    import orjson

    planned = otlp_fast.FastTranslator(options)
    assert planned._plans is not None
    plain = otlp_fast.FastTranslator(options)
    plain._plans = None
    for request_ in requests:
        a = planned.documents(json.loads(json.dumps(request_)))
        b = plain.documents(json.loads(json.dumps(request_)))
        assert (a is None) == (b is None)
        if a is not None:
            assert [orjson.dumps(d) for d in a] == [orjson.dumps(d) for d in b]
    kept = planned._plans.found
    return sum(bool(p) for p in kept.values()), planned._plans.used


@pytest.mark.parametrize(
    "options",
    [
        Options(),
        Options(indexed_attributes=frozenset({"tier", "order.id", "http.method", "db.user"})),
        Options(index_all_attributes=True),
        Options(validate_trace_ids=False),
    ],
)
def test_plans_give_the_documents_of_the_fast_path(options: Options) -> None:
    rng = random.Random(1515)
    patterns = _patterns(rng, 40)
    requests = [_patterned_request(rng, i, patterns) for i in range(400)]
    kept, used = _plan_differences(requests, options)
    assert kept >= 10 and used >= 300  # plans were built and reused


def test_plans_stay_within_their_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    from xraykit.io import otlp_plan

    monkeypatch.setattr(otlp_plan, "MAX_PLANS", 3)
    monkeypatch.setattr(otlp_plan, "MAX_NAMES", 2)
    monkeypatch.setattr(otlp_plan, "MAX_KEYS", 5)
    rng = random.Random(7)
    patterns = _patterns(rng, 12)
    requests = [_patterned_request(rng, i, patterns) for i in range(300)]
    kept, used = _plan_differences(requests, Options())
    assert kept <= 3 and used > 0
    translator = otlp_fast.FastTranslator()
    for request_ in requests:
        translator.documents(request_)
    assert translator._plans is not None
    assert len(translator._plans.found) <= 3 and len(translator._plans.seen) <= 3
    assert all(len(p.names) <= 2 for p in translator._plans.found.values() if p)
    assert all(len(pattern[5]) <= 5 for pattern in translator._plans.found)


def test_plans_give_the_frames_of_the_exact_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(99)
    patterns = _patterns(rng, 25)
    requests = [_patterned_request(rng, i, patterns) for i in range(300)]
    path = tmp_path / "patterned.otlp.jsonl"
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
    fast, exact = _both(lambda: read_frames(path, on_error="ignore"), monkeypatch)
    _same_frames(fast, exact)
    for options in ({"indexed_attributes": ["tier", "count"]}, {"index_all_attributes": True}):
        fast, exact = _both(
            lambda o=options: frames_from_otlp(requests, on_error="ignore", **o), monkeypatch
        )
        _same_frames(fast, exact)

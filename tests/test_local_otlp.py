"""The local X-Ray as an OTLP endpoint: ``POST /v1/traces``, end to end on loopback.

An app on opentelemetry-sdk (X-Ray id generator, OTLP HTTP exporter in protobuf) sends to the
local X-Ray directly; a mixed system (a service on the X-Ray SDK, through the daemon, calling
a service on OpenTelemetry with ``X-Amzn-Trace-Id``) is one trace and one service map; the
receiver's answers (partial success, errors) follow OTLP/HTTP.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import xraykit
import xraykit.local
from xraykit.graph import service_graph
from xraykit.io import otlp_protobuf
from xraykit.local import otlp_receiver

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.proto")

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode


@pytest.fixture
def xr() -> Iterator[xraykit.local.LocalXRay]:
    with xraykit.local.start("127.0.0.1:0", store=":memory:") as local:
        yield local


def _provider(xr: xraykit.local.LocalXRay, service: str, **exporter: Any) -> TracerProvider:
    """A TracerProvider of its own (the global one is left alone) sending to ``xr``."""
    provider = TracerProvider(
        id_generator=AwsXRayIdGenerator(),
        resource=Resource.create({"service.name": service, "cloud.provider": "aws"}),
    )
    endpoint = f"{xr.endpoint_url}/v1/traces"
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=10, **exporter))
    )
    return provider


def _fetch(xr: xraykit.local.LocalXRay) -> xraykit.TraceSet:
    return xraykit.fetch(endpoint_url=xr.endpoint_url, since="1h", cache=False, progress=False)


def _post(
    xr: xraykit.local.LocalXRay, body: bytes, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(f"{xr.endpoint_url}/v1/traces", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def test_an_opentelemetry_app_sends_protobuf_to_the_local_xray(xr) -> None:
    provider = _provider(xr, "checkout", compression=Compression.Gzip)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "POST /orders",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "POST",
            "url.full": "http://shop.local/orders",
            "http.response.status_code": 201,
            "order.tier": "gold",
            "aws.xray.annotations": ["order.tier"],
        },
    ) as root:
        with tracer.start_as_current_span(
            "charge", kind=SpanKind.CLIENT, attributes={"peer.service": "payments"}
        ) as call:
            call.set_status(Status(StatusCode.ERROR, "card declined"))
        with tracer.start_as_current_span("render"):
            pass
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    ts = _fetch(xr)
    assert list(ts.traces.trace_id) == [f"1-{trace_id[:8]}-{trace_id[8:]}"]
    (segment,) = ts.segments.itertuples()
    assert (segment.name, segment.http_method, segment.http_url, segment.http_status) == (
        "checkout",
        "POST",
        "http://shop.local/orders",
        201,
    )
    subs = ts.subsegments.set_index("name")
    assert set(subs.index) == {"payments", "render"}
    assert subs.loc["payments", "namespace"] == "remote" and subs.loc["payments", "fault"]
    assert subs.loc["payments", "parent_id"] == segment.segment_id
    assert ts.annotations[["key", "value"]].values.tolist() == [["order.tier", "gold"]]
    assert len(ts.exceptions) == 1 and ts.exceptions.message.item() == "card declined"
    assert set(service_graph(ts).nodes.name) >= {"checkout", "payments"}


def test_a_mixed_system_is_one_trace_and_one_service_map(xr) -> None:
    """frontend (X-Ray SDK, daemon UDP) -> backend (OpenTelemetry, OTLP/HTTP), one trace."""
    provider = _provider(xr, "backend")
    tracer = provider.get_tracer("backend")
    propagator = AwsXRayPropagator()

    class Backend(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parent = propagator.extract(self.headers)
            with (
                tracer.start_as_current_span(
                    "GET /price",
                    context=parent,
                    kind=SpanKind.SERVER,
                    attributes={"http.request.method": "GET", "http.response.status_code": 200},
                ),
                tracer.start_as_current_span("lookup"),
            ):
                body = b'{"price": 12}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    frontend = r"""
import json, sys, urllib.request
from aws_xray_sdk.core import xray_recorder
daemon, url = sys.argv[1], sys.argv[2]
xray_recorder.configure(service="frontend", daemon_address=daemon, sampling=False,
                        context_missing="LOG_ERROR", plugins=())
segment = xray_recorder.begin_segment("frontend")
segment.put_http_meta("method", "GET")
segment.put_http_meta("url", "http://frontend.local/")
sub = xray_recorder.begin_subsegment("backend", namespace="remote")
sub.put_http_meta("method", "GET")
sub.put_http_meta("url", url)
header = f"Root={segment.trace_id};Parent={sub.id};Sampled=1"
request = urllib.request.Request(url, headers={"X-Amzn-Trace-Id": header})
status = urllib.request.urlopen(request, timeout=10).status
sub.put_http_meta("status", status)
xray_recorder.end_subsegment()
segment.put_http_meta("status", 200)
xray_recorder.end_segment()
print(json.dumps({"trace_id": segment.trace_id, "subsegment": sub.id}))
"""
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/price"
        out = subprocess.run(
            [sys.executable, "-c", frontend, xr.daemon_address, url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr[-2000:]
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        provider.shutdown()
    sent = json.loads(out.stdout.strip().splitlines()[-1])
    assert xr.wait_until_stored(1, timeout=10)
    deadline = time.monotonic() + 10  # the daemon's segment arrives by UDP: wait for it
    while (
        time.monotonic() < deadline
        and xr.store.documents([sent["trace_id"]]).get(sent["trace_id"], []).__len__() < 3
    ):
        time.sleep(0.05)
    ts = _fetch(xr)
    assert list(ts.traces.trace_id) == [sent["trace_id"]]
    segments = ts.segments.set_index("name")
    assert set(segments.index) == {"frontend", "backend"}
    assert segments.loc["backend", "parent_id"] == sent["subsegment"]
    assert ts.traces.root_service.item() == "frontend"
    graph = service_graph(ts)
    names = dict(zip(graph.nodes.node_id, graph.nodes.name, strict=True))
    edges = {
        (names[s], names[t]) for s, t in zip(graph.edges.source, graph.edges.target, strict=True)
    }
    assert ("frontend", "backend") in edges
    assert {"frontend", "backend"} <= set(graph.nodes.name)


def _json_request(trace_ids: list[str]) -> bytes:
    now = int(time.time())
    spans = [
        {
            "traceId": tid,
            "spanId": f"{i + 1:016x}",
            "name": "GET /",
            "kind": "SPAN_KIND_SERVER",
            "startTimeUnixNano": str(now * 10**9),
            "endTimeUnixNano": str(now * 10**9 + 10**8),
        }
        for i, tid in enumerate(trace_ids)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]}
    return json.dumps(
        {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    ).encode()


def test_json_gzip_and_a_partial_success(xr) -> None:
    good = f"{int(time.time()):08x}" + "ab" * 12
    bad = "00000001" + "cd" * 12  # epoch 1: the exporter refuses it
    body = gzip.compress(_json_request([good, bad]))
    status, kind, answer = _post(
        xr, body, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert (status, kind) == (200, "application/json")
    partial = json.loads(answer)["partialSuccess"]
    assert (
        partial["rejectedSpans"] == "1" and "cannot be an X-Ray trace id" in partial["errorMessage"]
    )
    assert xr.store.count() == 1
    status, _, answer = _post(xr, _json_request([good]), {"Content-Type": "application/json"})
    assert (status, json.loads(answer)) == (200, {})


def test_protobuf_partial_success_is_a_protobuf_response(xr) -> None:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    request = trace_service_pb2.ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes(16)  # all zero: not an X-Ray id
    span.span_id = bytes.fromhex("53995c3f42cd8ad8")
    span.name, span.kind = "job", trace_pb2.Span.SPAN_KIND_INTERNAL
    span.start_time_unix_nano = span.end_time_unix_nano = time.time_ns()
    status, kind, answer = _post(
        xr, request.SerializeToString(), {"Content-Type": "application/x-protobuf"}
    )
    assert (status, kind) == (200, "application/x-protobuf")
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(answer)
    assert response.partial_success.rejected_spans == 1
    assert xr.store.count() == 0


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (
            b"\xff\x00garbage",
            {"Content-Type": "application/x-protobuf"},
            400,
            "ExportTraceServiceRequest",
        ),
        (b"{}", {"Content-Type": "text/plain"}, 415, "application/x-protobuf"),
        (b"{}", {"Content-Type": "application/json", "Content-Encoding": "br"}, 415, "gzip"),
        (
            b"\x1f\x8b broken",
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            400,
            "gzip",
        ),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "JSON object"),
    ],
)
def test_bad_requests_are_answered_with_a_status(xr, body, headers, status, says) -> None:
    got, _, answer = _post(xr, body, headers)
    assert got == status
    if headers["Content-Type"] != "application/x-protobuf":
        assert says in json.loads(answer)["message"]
    assert xr.store.count() == 0


def test_a_gzip_bomb_is_refused(xr) -> None:
    body = gzip.compress(b" " * (otlp_receiver.MAX_DECODED + 1))
    status, _, answer = _post(
        xr, body, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert status == 413 and "decompressed" in json.loads(answer)["message"]


def test_without_opentelemetry_proto_protobuf_names_the_extra(xr, monkeypatch) -> None:
    def missing(module: str, extra: str) -> object:
        raise xraykit.MissingDependencyError(f"{module!r} is not installed ({extra})")

    monkeypatch.setattr(otlp_protobuf, "require", missing)
    status, kind, answer = _post(xr, b"\x0a\x00", {"Content-Type": "application/x-protobuf"})
    assert status == 415
    assert kind == "application/x-protobuf"  # a google.rpc.Status
    assert b"xraykit[otlp]" in answer
    # JSON still works without the package
    status, _, _ = _post(
        xr,
        _json_request([f"{int(time.time()):08x}" + "ef" * 12]),
        {"Content-Type": "application/json"},
    )
    assert status == 200 and xr.store.count() == 1


def test_the_xray_api_still_answers_next_to_otlp(xr) -> None:
    assert xr.client().get_groups()["Groups"] == []
    status, _, _ = _post(xr, b"{}", {"Content-Type": "application/json"})
    assert status == 200
    request = urllib.request.Request(f"{xr.endpoint_url}/NoSuchOperation", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    raised.value.close()
    assert raised.value.code == 404

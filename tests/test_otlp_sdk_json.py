"""Spans as the OpenTelemetry Python SDK prints them (``ConsoleSpanExporter``) load like the
same spans sent as OTLP, and files of JSON values one after another load value by value."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

import xraykit
from xraykit.io import formats
from xraykit.io.otlp_sdk_json import is_sdk_span, span_object

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.common")


def _run_app(*exporters: Any) -> None:
    """A small service: a server span with a database call, a call that fails with an
    exception, and a producer span; every span handed to each of ``exporters``."""
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    provider = TracerProvider(
        id_generator=AwsXRayIdGenerator(),
        resource=Resource.create({"service.name": "orders", "cloud.provider": "aws"}),
    )
    for exporter in exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sdk-json")
    attributes = {
        "http.request.method": "POST",
        "url.full": "https://shop.example.com/orders?id=7",
        "http.response.status_code": 500,
        "customer.tier": "gold",
        "items": 3,
        "aws.xray.annotations": ["customer.tier", "items"],
        "tags": ("a", "b"),
    }
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER, attributes=attributes):
        with tracer.start_as_current_span(
            "INSERT shop.orders",
            kind=SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "db.statement": "INSERT INTO orders"},
        ):
            pass
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT) as charge:
            try:
                raise TimeoutError("payments did not answer")
            except TimeoutError as error:
                charge.record_exception(error)
                charge.set_status(Status(StatusCode.ERROR, "payments timed out"))
        with tracer.start_as_current_span(
            "notify", kind=SpanKind.PRODUCER, attributes={"peer.service": "mailer"}
        ):
            pass
    provider.shutdown()


def _otlp_request(spans: Any, otlp_json: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """The spans as an OTLP/JSON export request (ids in hex, as OTLP/JSON writes them)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    value = otlp_json(encode_spans(spans))
    for resource_spans in value["resourceSpans"]:
        for scope in resource_spans["scopeSpans"]:
            for item in scope["spans"]:
                for event in item.get("events", []):
                    event["timeUnixNano"] = event.get("timeUnixNano", "0")
    return value


def _same_but_rounding(a: pd.DataFrame, b: pd.DataFrame, key: str) -> None:
    """Equal frames, but for times, which the SDK's text rounds to the microsecond."""
    a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    times = ["start", "end", "duration_s"]
    pd.testing.assert_frame_equal(a.drop(columns=times), b.drop(columns=times))
    for column in ("start", "end"):  # microseconds apart at most
        gap = (a[column].astype("int64") - b[column].astype("int64")).abs().max()
        assert gap <= 1, (column, gap)
    assert (a.duration_s - b.duration_s).abs().max() <= 2.001e-6


@pytest.mark.parametrize("indent", [4, None])
def test_the_console_exporters_output_loads_as_the_otlp_of_the_same_spans(
    tmp_path: Path, indent: int | None, otlp_json: Callable[[Any], dict[str, Any]]
) -> None:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    out, memory = io.StringIO(), InMemorySpanExporter()
    printed = ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(indent=indent) + "\n")
    _run_app(printed, memory)
    path = tmp_path / "console.json"
    path.write_text(out.getvalue())
    console = xraykit.load_file(path)
    sent = xraykit.from_otlp(_otlp_request(memory.get_finished_spans(), otlp_json))
    assert console.problems.empty and sent.problems.empty
    assert len(console) == 1 and console.traces.trace_id.tolist() == sent.traces.trace_id.tolist()
    _same_but_rounding(console.segments, sent.segments, "segment_id")
    # each printed span is a document of its own: its subsegments come "streamed", as X-Ray
    # receives the documents of a span exporter; a request's spans are nested before reading
    assert console.subsegments.streamed.all() and not sent.subsegments.streamed.any()
    _same_but_rounding(
        console.subsegments.drop(columns="streamed"),
        sent.subsegments.drop(columns="streamed"),
        "subsegment_id",
    )
    for name in ("annotations", "metadata", "exceptions"):  # rows in another order: sorted
        a, b = getattr(console, name), getattr(sent, name)
        keys = [c for c in ("entity_id", "key", "exception_id") if c in a.columns]
        a, b = (f.sort_values(keys).reset_index(drop=True) for f in (a, b))
        pd.testing.assert_frame_equal(a, b, obj=name)
    assert console.exceptions.message.tolist() == ["payments did not answer"]
    assert len(console.annotations) == 2 and len(console.metadata) > 3
    (segment,) = console.segments.itertuples()
    assert (segment.name, segment.http_method, segment.http_status, segment.fault) == (
        "orders",
        "POST",
        500,
        True,
    )
    subs = console.subsegments.set_index("name")
    assert sorted(subs.index) == ["INSERT shop.orders", "charge", "mailer"]
    assert subs.loc["INSERT shop.orders", "sql_database_type"] == "postgresql"
    assert subs.loc["charge", "fault"] and not subs.loc["mailer", "fault"]


def test_span_object_rewrites_what_it_can_and_passes_on_the_rest() -> None:
    sdk = {
        "name": "op",
        "context": {"trace_id": "0X5759e988bd862e3fe1be46a994272793", "span_id": "nothex"},
        "kind": "CLIENT",
        "parent_id": "0x53995c3f42cd8ad8",
        "start_time": "2016-06-10T16:19:20.250000",  # no zone: UTC, as the SDK means it
        "end_time": "yesterday",
        "status": "odd",
        "events": [{"name": "e", "timestamp": None}, "not an event"],
        "links": [{"context": None}, 7],
    }
    assert is_sdk_span(sdk) and not is_sdk_span({"context": "x"}) and not is_sdk_span([sdk])
    span = span_object(sdk)
    assert span["traceId"] == "5759e988bd862e3fe1be46a994272793"
    assert (span["spanId"], span["parentSpanId"], span["kind"]) == (
        "nothex",
        "53995c3f42cd8ad8",
        "CLIENT",
    )
    assert span["startTimeUnixNano"] == "1465575560250000000"
    assert span["endTimeUnixNano"] == "yesterday" and "status" not in span
    assert span["events"][0]["timeUnixNano"] is None and span["events"][1] == "not an event"
    assert span["links"][0] == {"traceId": None, "spanId": None, "attributes": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = xraykit.from_otlp([sdk, {"context": {"trace_id": "x", "span_id": "y"}}])
    assert len(ts.segments) == 0 and len(ts.problems) == 2
    assert "spanId" in ts.problems.reason[0] and "traceId" in ts.problems.reason[1]


def _documents(n: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "web",
            "id": f"{i:016x}",
            "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
            "start_time": 1465575560.0 + i,
            "end_time": 1465575560.5 + i,
            "annotations": {"i": i},
        }
        for i in range(n)
    ]


def test_values_one_after_another_load_as_json_lines_do(tmp_path: Path) -> None:
    docs = _documents(4)
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b"\n".join(orjson.dumps(d) for d in docs) + b"\n")
    pretty = tmp_path / "pretty.json"  # as `jq .` prints them
    pretty.write_text("\n".join(json.dumps(d, indent=2) for d in docs) + "\n")
    a, b = xraykit.load_file(lines), xraykit.load_file(pretty)
    assert b.problems.empty
    pd.testing.assert_frame_equal(a.segments, b.segments)
    pd.testing.assert_frame_equal(a.annotations, b.annotations)


def test_value_sequences_are_found_only_where_they_are() -> None:
    one = json.dumps(_documents(1)[0], indent=2).encode()
    assert formats._value_sequence(one) is None  # one value is not a sequence
    assert formats._value_sequence(one + b"\n,\n" + one) is None  # not whitespace between
    assert formats._value_sequence(one + b" 5 " + one) is None  # a scalar between
    assert formats._value_sequence(one + b"\n" + one[:-3]) is None  # cut off
    found = formats._value_sequence(b"\n\n" + one + b"\r\n" + one + b"\t[]\n")
    second = 3 + one.count(b"\n") + 1  # the "[]" follows the second value on its last line
    assert found is not None and [line for line, _ in found] == [3, second, second + 9]
    assert one.count(b"\n") == 9
    assert found[0][1] == one and found[2][1] == b"[]"
    bad = one.replace(b'"web"', b'"w\xffb"')
    found = formats._value_sequence(bad + b"\n" + one)
    assert found is not None and found[0][1] == bad  # bytes kept as they were


def test_a_damaged_value_in_a_sequence_leaves_the_others(tmp_path: Path) -> None:
    docs = [json.dumps(d, indent=2).encode() for d in _documents(3)]
    path = tmp_path / "damaged.json"
    path.write_bytes(docs[0] + b"\n" + docs[1].replace(b'"web"', b'"w\xffb"') + b"\n" + docs[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = xraykit.load_file(path)
    assert len(ts.segments) == 2 and len(ts.problems) == 1
    second = docs[0].count(b"\n") + 2  # the line the damaged value starts on
    assert ts.problems.location[0] == f"damaged.json:{second}"

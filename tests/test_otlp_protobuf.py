"""OTLP in protobuf and zstd: files as the collector's file exporter writes them."""

from __future__ import annotations

import gzip
import io
import json
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xraykit
from xraykit.io import otlp_protobuf
from xraykit.io.source import open_source

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.common")

SAMPLES = Path(__file__).parent.parent / "sample_traces"
ZSTD = pa.Codec("zstd")


def _framed(messages: list[bytes]) -> bytes:
    """Messages as the file exporter frames them: a 4-byte big-endian length before each."""
    return b"".join(len(m).to_bytes(4, "big") + m for m in messages)


def _zstd_stream(data: bytes) -> bytes:
    """``data`` as one streamed zstd frame (no size in its header), as a zstd writer makes."""
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return bytes(sink.getvalue().to_pybytes())


@pytest.fixture(scope="module")
def requests() -> list[Any]:
    """Three export requests from the OpenTelemetry SDK: a server span with an HTTP status,
    a database call under it, and, in the last, an error with an exception event."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode

    memory = InMemorySpanExporter()
    provider = TracerProvider(
        id_generator=AwsXRayIdGenerator(), resource=Resource.create({"service.name": "orders"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("framed")
    made = []
    for i in range(3):
        attributes = {
            "http.request.method": "GET",
            "http.response.status_code": 200 + 300 * (i == 2),
        }
        database = {"db.system": "postgresql", "db.name": "shop"}
        with (
            tracer.start_as_current_span(f"GET /{i}", kind=SpanKind.SERVER, attributes=attributes),
            tracer.start_as_current_span(
                "SELECT", kind=SpanKind.CLIENT, attributes=database
            ) as call,
        ):
            if i == 2:
                call.record_exception(TimeoutError("the database timed out"))
                call.set_status(Status(StatusCode.ERROR, "timed out"))
        made.append(encode_spans(memory.get_finished_spans()))
        memory.clear()
    provider.shutdown()
    return made


@pytest.fixture(scope="module")
def values(requests: list[Any], otlp_json: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """The requests in OTLP/JSON."""
    return [otlp_json(r) for r in requests]


def _json_lines(values: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(v).encode() + b"\n" for v in values)


def _load(tmp_path: Path, name: str, data: bytes, **kwargs: Any) -> xraykit.TraceSet:
    path = tmp_path / name
    path.write_bytes(data)
    return xraykit.load_file(path, **kwargs)


def _same(a: xraykit.TraceSet, b: xraykit.TraceSet) -> None:
    for name in ("traces", "segments", "subsegments", "annotations", "metadata", "exceptions"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)


# -- the file exporter's shapes load as the OTLP/JSON of the same spans -------------------------


def test_each_shape_the_file_exporter_writes_loads_as_its_json_lines(
    tmp_path, requests, values
) -> None:
    expected = _load(tmp_path, "lines.json", _json_lines(values))
    assert len(expected.segments) == 3 and len(expected.subsegments) == 3
    assert expected.problems.empty
    protos = [r.SerializeToString() for r in requests]
    jsons = [json.dumps(v).encode() for v in values]
    shapes = {
        "format proto": _framed(protos),
        "format proto, compression zstd": _framed([ZSTD.compress(m, asbytes=True) for m in protos]),
        "format json, compression zstd": _framed([ZSTD.compress(m, asbytes=True) for m in jsons]),
        # the native-compression feature gate: one zstd stream around lines or frames
        "zstd stream of JSON lines": _zstd_stream(_json_lines(values)),
        "zstd stream of proto frames": _zstd_stream(_framed(protos)),
    }
    for shape, data in shapes.items():
        loaded = _load(tmp_path, "exported", data)
        assert loaded.problems.empty, (shape, loaded.problems)
        _same(loaded, expected)
    (fault,) = expected.subsegments[expected.subsegments.fault].itertuples()
    assert fault.name == "shop"


def test_zstd_of_a_shipped_sample_loads_as_its_gzip(tmp_path) -> None:
    plain = gzip.decompress((SAMPLES / "shop.jsonl.gz").read_bytes())
    expected = _load(tmp_path, "shop.jsonl.gz", (SAMPLES / "shop.jsonl.gz").read_bytes())
    for data in (ZSTD.compress(plain, asbytes=True), _zstd_stream(plain)):
        _same(_load(tmp_path, "shop.jsonl.zst", data), expected)


def test_one_message_saved_without_a_length_loads(tmp_path, requests, values) -> None:
    merged = type(requests[0])()
    for request in requests:
        merged.MergeFrom(request)  # one request body holding all three traces
    expected = _load(tmp_path, "lines.json", _json_lines(values))
    loaded = _load(tmp_path, "body.binpb", merged.SerializeToString())
    assert loaded.problems.empty
    _same(loaded, expected)
    _same(_load(tmp_path, "body.binpb.gz", gzip.compress(merged.SerializeToString())), expected)


@pytest.mark.parametrize(
    "text",
    [
        b'\n{\n"Id": "1-5759e988-bd862e3fe1be46a994272793", "Segments": []}\n',
        b"\n{\n" + b"".join(b'{"a": %d}\n' % i for i in range(20)),
    ],
)
def test_text_that_starts_like_a_message_is_read_as_text(tmp_path, text: bytes) -> None:
    from xraykit.io import formats

    assert otlp_protobuf.is_message(text[:8])  # the bytes could start a message ...
    with open_source(io.BytesIO(text)) as src:  # ... but are read as the text they are
        reader = formats._Reader(formats._Problems("t", "warn"))
        assert not formats._read_message(reader, src)
        assert b"".join(src.blocks()) == text


# -- damage loses only what is damaged -----------------------------------------------------------


def test_a_damaged_message_is_a_problem_and_its_neighbours_load(tmp_path, requests) -> None:
    protos = [r.SerializeToString() for r in requests]
    broken_zstd = ZSTD.compress(protos[1], asbytes=True)[:-7]
    data = _framed([protos[0], b"\x0a\xff\xff\xff\xff\x0f", broken_zstd, protos[2]])
    with pytest.warns(xraykit.XrayKitWarning):
        loaded = _load(tmp_path, "damaged.binpb", data)
    assert sorted(loaded.problems.location) == ["damaged.binpb:2", "damaged.binpb:3"]
    reasons = " ".join(loaded.problems.reason)
    assert "not an OTLP trace message" in reasons and "zstd" in reasons
    assert len(loaded.segments) == 2


def test_a_file_cut_inside_a_message_keeps_the_messages_before(tmp_path, requests) -> None:
    data = _framed([r.SerializeToString() for r in requests])
    with pytest.warns(xraykit.XrayKitWarning):
        loaded = _load(tmp_path, "cut.binpb", data[:-10])
    assert len(loaded.segments) == 2
    (problem,) = loaded.problems.itertuples()
    assert problem.location == "cut.binpb:3" and "ends inside a message" in problem.reason


def test_a_message_longer_than_the_line_limit_is_skipped_unread(tmp_path, requests) -> None:
    protos = [r.SerializeToString() for r in requests]
    bomb = ZSTD.compress(b"\x0a" + b"\x00" * 5000, asbytes=True)  # small, but 5 kB unpacked
    data = _framed([protos[0], protos[1], bomb, protos[2]])
    limit = max(len(p) for p in protos) + 10
    big = _framed([protos[0], b"\x0a" + b"\x01" * (limit + 100), protos[2]])
    with pytest.warns(xraykit.XrayKitWarning):
        loaded = _load(tmp_path, "big.binpb", big, max_line_bytes=limit)
    assert len(loaded.segments) == 2
    assert list(loaded.problems.location) == ["big.binpb:2"]
    assert "longer than max_line_bytes" in loaded.problems.reason[0]
    with pytest.warns(xraykit.XrayKitWarning):
        loaded = _load(tmp_path, "bomb.binpb", data, max_line_bytes=limit)
    assert list(loaded.problems.location) == ["bomb.binpb:3"]
    assert "once decompressed" in loaded.problems.reason[0]
    assert len(loaded.segments) == 3


def test_a_truncated_zstd_file_keeps_what_came_before(tmp_path) -> None:
    plain = gzip.decompress((SAMPLES / "shop.jsonl.gz").read_bytes())
    whole = _load(tmp_path, "shop.jsonl", plain)
    packed = ZSTD.compress(plain, asbytes=True)
    with pytest.warns(xraykit.XrayKitWarning):
        cut = _load(tmp_path, "cut.jsonl.zst", packed[: len(packed) * 3 // 4])
    assert len(whole.segments) // 2 < len(cut.segments) < len(whole.segments)
    assert set(cut.segments.segment_id) <= set(whole.segments.segment_id)
    assert any("zstd stream is truncated" in r for r in cut.problems.reason)


def test_without_opentelemetry_proto_a_protobuf_file_names_the_extra(
    tmp_path, requests, values, monkeypatch
) -> None:
    def missing(module: str, extra: str) -> object:
        raise xraykit.MissingDependencyError(
            f'{module!r} is not installed: pip install "xraykit[{extra}]"'
        )

    monkeypatch.setattr(otlp_protobuf, "require", missing)
    with pytest.raises(xraykit.MissingDependencyError, match=r"xraykit\[otlp\]"):
        _load(tmp_path, "a.binpb", _framed([requests[0].SerializeToString()]))
    # JSON messages, even framed and compressed, need no protobuf package
    framed_json = _framed([ZSTD.compress(json.dumps(values[0]).encode(), asbytes=True)])
    assert len(_load(tmp_path, "b.bin", framed_json).segments) == 1


# -- the framing ----------------------------------------------------------------------------------


def test_frames_are_the_same_however_the_file_is_cut_into_blocks() -> None:
    rng = random.Random(15)
    messages = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) for _ in range(60)]
    data = _framed(messages)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randrange(0, 40)))
        blocks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        got = list(otlp_protobuf.frames(iter(blocks), limit=None))
        assert got == [(n, m, None) for n, m in enumerate(messages, 1)]
        limited = list(otlp_protobuf.frames(iter(blocks), limit=150))
        assert [n for n, m, _ in limited if m is not None] == [
            n for n, m in enumerate(messages, 1) if len(m) <= 150
        ]
        assert all((m is None) == (len(messages[n - 1]) > 150) for n, m, _ in limited)


@pytest.mark.parametrize(
    "data",
    [
        b'{"resourceSpans": []}',
        b"",
        b"\x00\x00",
        '{"Id": "1-5759e988-bd862e3fe1be46a994272793"}'.encode("utf-16-be"),
        '{"Id": "1-5759e988-bd862e3fe1be46a994272793"}'.encode("utf-16-le"),
        gzip.compress(b"{}"),
        b"\x00\x00\x00\x00\x0a\x00\x00\x00",  # a zero length
        b'\x00\x00\x00\x05{"a":',  # a length, then JSON text: not a message the exporter writes
    ],
)
def test_text_is_never_taken_for_frames(data: bytes) -> None:
    assert not otlp_protobuf.is_framed(data)


def test_the_source_peeks_without_losing_bytes() -> None:
    data = b"".join(b'{"n": %d}\n' % i for i in range(100_000))
    src = open_source(io.BytesIO(ZSTD.compress(data, asbytes=True)))
    assert src.head(3) == b'{"n'
    assert src.head(9) == b'{"n": 0}\n'
    assert b"".join(src.blocks()) == data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.binary(max_size=200)
        | st.builds(lambda b: b"\x0a" + b, st.binary(max_size=200))
        | st.builds(lambda b: ZSTD.compress(b, asbytes=True), st.binary(max_size=200)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 40),
)
def test_any_framed_bytes_load_or_become_problems(messages: list[bytes], cut: int) -> None:
    data = _framed([b"\x0a\x00", *messages])
    data = data[: len(data) - cut] if cut < len(data) - 8 else data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xraykit.XrayKitWarning)
        loaded = xraykit.load_file(io.BytesIO(data))
    assert isinstance(loaded, xraykit.TraceSet)
    assert loaded.problems.location.str.match(r"<stream>:\d+(:\d+)?$").all(), loaded.problems

"""The C reader of OTLP/JSON requests (``OtlpSpans`` and ``nest_documents`` of ``_scan.c``)
must give exactly the documents of the Python fast path, or give up.

Every request here is read both ways: ``FastTranslator.documents_of_text`` (the C reader, then
the translation) and ``FastTranslator.documents(orjson.loads(...))`` (Python). Where the C
reader gives documents they must be the Python path's, byte for byte; where it gives up (None)
Python reads the request. Hostile lines (mutated JSON text and values) check that it gives up
rather than reading anything differently, and files check the frames end to end.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_otlp import DATA, _patterned_request, _patterns, _random_request, _same_frames, kv

from xraykit.io import columns, otlp_fast
from xraykit.io.formats import read_frames
from xraykit.io.otlp_translate import MAX_NESTING, Options

_scan = columns._scan
pytestmark = pytest.mark.skipif(_scan is None, reason="the C fast path is not built here")


def _python_documents(line: bytes, options: Options) -> list[bytes] | None:
    """What the Python fast path gives for a line: documents as JSON, or None."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict or "resourceSpans" not in value:
        return None
    docs = otlp_fast.FastTranslator(options, native=False).documents(value)
    return None if docs is None else [orjson.dumps(d) for d in docs]


def _check_lines(lines: list[bytes], options: Options | None = None) -> int:
    """Read ``lines`` both ways; assert the same documents wherever C reads; return how many
    lines the C reader read."""
    options = options or Options()
    native = otlp_fast.FastTranslator(options)
    assert native._native is not None
    read = 0
    for line in lines:
        docs = native.documents_of_text(line)
        if docs is None:
            continue
        read += 1
        expected = _python_documents(line, options)
        assert expected is not None, line
        assert [orjson.dumps(d) for d in docs] == expected, line
    return read


def _requests(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    patterns = _patterns(rng, 30)
    out = [_random_request(rng, i) for i in range(count)]
    out += [_patterned_request(rng, i, patterns) for i in range(count)]
    return out


@pytest.mark.parametrize(
    "options",
    [
        Options(),
        Options(indexed_attributes=frozenset({"tier", "order.id"})),
        Options(index_all_attributes=True),
        Options(validate_trace_ids=False),
    ],
)
def test_the_c_reader_gives_the_documents_of_the_python_path(options: Options) -> None:
    requests = _requests(151, 200)
    lines = [orjson.dumps(r) for r in requests]
    lines += [json.dumps(r, indent=1).replace("\n", " ").encode() for r in requests[:50]]
    read = _check_lines(lines, options)
    assert read > len(lines) * 0.6  # most requests are plain: the C reader read them


def test_the_fixture_lines_and_the_enum_spellings() -> None:
    lines = (DATA / "shop.jsonl").read_bytes().splitlines()
    assert _check_lines(lines) >= 1
    base = orjson.loads(lines[0])
    variants = []
    for kind in [
        2,
        "SPAN_KIND_SERVER",
        "server",
        "Span_Kind_Client",
        "3",
        "SPAN_KIND_4",
        "17",
        "99",
    ]:
        for code in [None, 2, "STATUS_CODE_ERROR", "error", "OK", "1", "20", "STATUS_CODE_"]:
            request = copy.deepcopy(base)
            for rs in request["resourceSpans"]:
                for scope in rs["scopeSpans"]:
                    for item in scope["spans"]:
                        item["kind"] = kind
                        item["status"] = {"code": code, "message": "m"}
            variants.append(orjson.dumps(request))
    assert _check_lines(variants) >= 40


def _mutations(rng: random.Random, line: bytes) -> list[bytes]:
    """Hostile versions of one request's JSON text: changed spellings of ids, times, enums and
    values, escapes, repeated keys, bad UTF-8, bad JSON, odd types."""
    text = line.decode()
    edits = [
        ('"kind":2', '"kind":"SERVER"'),
        ('"kind":2', '"kind":2.0'),
        ('"kind":2', '"kind":true'),
        ('"kind":2', '"kind":-1'),
        ('"kind":3', '"kind":"ſpan_kind_client"'),
        ('"traceId":"', '"traceId":"\\u0030'),
        ('"traceId":"', '"trace\\u0049d":"'),
        ('"traceId":"', '"traceId":"X'),
        ('"spanId":"', '"spanId":"\\u0061'),
        ('"spanId":"', '"spanId":"g'),
        ('"spanId":"', '"spanId":"A'),
        ('"parentSpanId":"', '"parentSpanId":"Z'),
        ('"parentSpanId":"', '"parentSpanId":null,"x":"'),
        ('"startTimeUnixNano":"', '"startTimeUnixNano":"+'),
        ('"startTimeUnixNano":"', '"startTimeUnixNano":" '),
        ('"startTimeUnixNano":"', '"startTimeUnixNano":"٣'),
        ('"startTimeUnixNano":"', '"startTimeUnixNano":"99999'),
        ('"startTimeUnixNano":"', '"startTimeUnixNano":"00'),
        ('"startTimeUnixNano":"', '"startTimeUnixNano":0,"s":"'),
        ('"endTimeUnixNano":"', '"endTimeUnixNano":"0'),
        ('"endTimeUnixNano":"', '"endTimeUnixNano":"99999999'),
        ('"endTimeUnixNano":"', '"endTimeUnixNano":1.5,"e":"'),
        ('"endTimeUnixNano":"', '"endTimeUnixNano":"٣'),
        ('"endTimeUnixNano":"', '"endTimeUnixNano":null,"e":"'),
        ('"name":"', '"name":"\\ud83d\\ude00'),
        ('"name":"', '"name":"\\ud83d'),
        ('"name":"', '"name":"é\\n'),
        ('"name":"', '"name":7,"n":"'),
        ('"intValue":"', '"intValue":"+'),
        ('"intValue":"', '"intValue":"1_'),
        ('"intValue":"', '"intValue":"-'),
        ('"intValue":"', '"intValue":"٣'),
        ('"intValue":"', '"intValue":"99999999999999999999'),
        ('"intValue":"', '"intValue":" '),
        ('{"intValue":"', '{"intValue":12,"x":"'),
        ('"stringValue":"', '"stringValue":null,"s":"'),
        ('"stringValue":"', '"stringValue":"\\u00e9\\t'),
        ('{"stringValue":"', '{"doubleValue":1e400,"s":"'),
        ('{"stringValue":"', '{"doubleValue":"NaN","s":"'),
        ('{"stringValue":', '{"doubleValue":12345678901234567890123,"x":'),
        ('{"stringValue":', '{"bytesValue":'),
        ('{"stringValue":', '{"kvlistValue":{"values":[]},"x":'),
        ('{"stringValue":', '{"arrayValue":{"values":[{"arrayValue":{}}]},"x":'),
        (
            '{"stringValue":',
            '{"arrayValue":{"values":[{"doubleValue":0.1},{"intValue":3},{"boolValue":false}]},"x":',
        ),
        ('{"stringValue":', '{"arrayValue":{},"x":'),
        ('"boolValue":', '"boolValue":1,"b":'),
        ('"key":"', '"key":"\\u0000'),
        ('"key":"', '"key":5,"k":"'),
        ('"key":"', '"key":"k","key":"'),
        ('"attributes":[', '"attributes":{},"a":['),
        ('"attributes":[', '"attributes":null,"a":['),
        ('"spans":[', '"spans":null,"s":['),
        ('"scopeSpans":[', '"scopeSpans":{},"s":['),
        ('"scopeSpans":[', '"instrumentationLibrarySpans":['),
        ('"resource":{', '"resource":null,"r":{'),
        ('"resource":{', '"resource":[],"r":{'),
        ('"status":{', '"status":"ERROR","s":{'),
        ('"status":{', '"status":{"message":5,'),
        ('"code":', '"code":"STATUS_CODE_ERROR","c":'),
        ('"spans":[', '"spans":[{"events":[{"name":"e"}]},'),
        ('"spans":[{', '"spans":[{"links":[],"events":[],'),
        ('"spans":[{', '"spans":[{"links":{"x":1},'),
        ('"spans":[{', '"spans":[{"spanId":"0000000000000001",'),
        ('"spans":[{', '"spans":[{"status":null,"kind":null,"name":null,'),
        ('{"resourceSpans":[', '{"resourceSpans":[1,'),
        ('{"resourceSpans":[', '{"resourceSpans":[],"resourceSpans":['),
        ('{"resourceSpans":[', '{"other":{"deep":[[[[]]]]},"resourceSpans":['),
        ('"}', '",}'),
        ('"}', '"}}'),
    ]
    out = []
    for old, new in edits:
        if old not in text:
            continue
        count = text.count(old)
        at = -1
        for _ in range(rng.randint(0, count - 1) + 1):
            at = text.index(old, at + 1)
        out.append((text[:at] + new + text[at + len(old) :]).encode())
    raw = bytearray(line)
    for bad in (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"):
        at = rng.randrange(len(raw))
        out.append(bytes(raw[:at] + bad + raw[at:]))
    out.append(line.rstrip() + b" \n")
    out.append(b"\xef\xbb\xbf" + line)
    out.append(line[: rng.randrange(len(line))])
    return out


def test_hostile_lines_are_read_alike_or_left_to_python() -> None:
    rng = random.Random(1515)
    requests = _requests(7, 60)
    lines: list[bytes] = []
    for request in requests:
        lines += _mutations(rng, orjson.dumps(request))
    read = _check_lines(lines)
    assert len(lines) > 3000 and 1000 < read < len(lines) - 1000  # both outcomes exercised


def test_files_give_the_frames_of_the_python_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(3)
    requests = _requests(42, 150)
    lines = [orjson.dumps(r) for r in requests]
    for line in lines[:80]:
        lines += _mutations(rng, line)[:12]
    rng.shuffle(lines)
    path = tmp_path / "mixed.otlp.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    native = read_frames(path, on_error="ignore")
    monkeypatch.setattr(otlp_fast, "USE_NATIVE", False)
    python = read_frames(path, on_error="ignore")
    _same_frames(native, python)
    assert len(python["problems"]) > 10 and len(python["segments"]) > 300


def _docs(rng: random.Random, n: int) -> list[dict[str, Any]]:
    traces = ["1-5759e988-bd862e3fe1be46a994272793", "1-5759e988-00000000000000000000aaaa"]
    ids = [f"{i:016x}" for i in range(max(2, n // 2 + 1))]
    out = []
    for _ in range(n):
        doc: dict[str, Any] = {"id": rng.choice(ids), "trace_id": rng.choice(traces), "name": "x"}
        if rng.random() < 0.7:
            doc["parent_id"] = rng.choice(ids)
            if rng.random() < 0.8:
                doc["type"] = "subsegment"
        out.append(doc)
    return out


def test_nest_documents_nests_as_python_does() -> None:
    rng = random.Random(11)
    moved = 0
    for _ in range(3000):
        docs = _docs(rng, rng.randint(0, 9))
        native = _scan.nest_documents(copy.deepcopy(docs), MAX_NESTING)
        expected = otlp_fast._nest(copy.deepcopy(docs), native=False)
        if native is not None:
            assert orjson.dumps(native) == orjson.dumps(expected)
            moved += native != docs
    assert moved > 100


def test_nest_documents_leaves_to_python_what_it_does_not_nest() -> None:
    child = {"id": "b", "trace_id": "t", "type": "subsegment", "parent_id": "a"}
    parent = {"id": "a", "trace_id": "t"}
    assert _scan.nest_documents([dict(child), dict(parent)], MAX_NESTING) is None  # parent after
    chain = [{"id": "0", "trace_id": "t"}] + [
        {"id": str(i), "trace_id": "t", "type": "subsegment", "parent_id": str(i - 1)}
        for i in range(1, 5)
    ]
    assert _scan.nest_documents(copy.deepcopy(chain), 3) is None  # deeper than allowed
    nested = _scan.nest_documents(copy.deepcopy(chain), 4)
    assert nested is not None and len(nested) == 1
    assert _scan.nest_documents([parent, "not a document"], MAX_NESTING) is None
    assert _scan.nest_documents([{"id": 1, "trace_id": "t"}], MAX_NESTING) is None
    assert _scan.nest_documents([{"id": "a"}], MAX_NESTING) is None
    many = [dict(parent) for _ in range(600)]
    assert _scan.nest_documents(many, MAX_NESTING) is None
    unchanged = [dict(parent), dict(parent)]
    assert _scan.nest_documents(unchanged, MAX_NESTING) is unchanged
    with pytest.raises(TypeError):
        _scan.nest_documents((parent,), MAX_NESTING)


def test_the_reader_takes_any_bytes_and_keeps_memory_bounded() -> None:
    reader = _scan.OtlpSpans()
    big = {
        "resourceSpans": [
            {
                "resource": {"attributes": [kv("service.name", "web")]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5759e988bd862e3fe1be46a994272793",
                                "spanId": f"{i:016x}",
                                "kind": 1,
                                "startTimeUnixNano": "1465575560000000000",
                                "attributes": [kv(f"k{j}", "v" * 60) for j in range(20)],
                            }
                            for i in range(3000)
                        ]
                    }
                ],
            }
        ]
    }
    spans = reader.read(orjson.dumps(big))
    assert spans is not None and len(spans) == 3000
    assert spans[0][1]["in_progress"] is True and spans[0][0] is spans[-1][0]
    for data in (b"", b"[]", b"{}", b"null", b'{"resourceSpans": 5}', b"\xff" * 10, b"{" * 100_000):
        assert reader.read(data) is None
    assert reader.read(bytearray(b'{"resourceSpans": []}')) == []
    assert reader.read(memoryview(b'  {"resourceSpans": [{}]}\n')) == []
    with pytest.raises(TypeError):
        reader.read("text, not bytes")
    with pytest.raises(TypeError):
        _scan.OtlpSpans(1)


@pytest.mark.parametrize("native", [True, False])
def test_batched_documents_keep_the_locations_they_would_have_alone(
    native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xraykit.io import formats, reader

    monkeypatch.setattr(formats, "_BATCH_DOCUMENTS", 5)  # batches end inside requests too

    def doc(i: int, name: Any = "web") -> dict[str, Any]:
        return {
            "id": f"{i:016x}",
            "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
            "name": name,
            "start_time": 1465575560.0,
            "end_time": 1465575561.0,
        }

    requests = {
        3: [doc(1), doc(2, name=7)],  # line 3, its second document is not valid
        4: [doc(3)],
        9: [doc(4), doc(5), doc(6, name=None), doc(7)],
        10: [doc(8, name=["x"])],
    }
    frames_reader = formats._Reader(reader._Problems("file.jsonl", "ignore"), native=native)
    pending = formats._Translated(frames_reader, "file.jsonl")
    for number, docs in requests.items():
        pending.add(docs, number)
    pending.flush()
    frames = frames_reader.frames()
    where = frames["problems"]["location"].tolist()
    expected = ["file.jsonl:3:2", "file.jsonl:9:3", "file.jsonl:10:1"]
    assert where == expected
    assert len(frames["segments"]) == 5


def test_a_pretty_printed_request_is_read_in_c_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = otlp_fast.FastTranslator()
    requests = [r for r in _requests(5, 40) if plain.documents_of_text(orjson.dumps(r))]
    merged = {"resourceSpans": [rs for r in requests for rs in r["resourceSpans"]]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps(merged, indent=2))
    reader = otlp_fast.FastTranslator()
    assert reader.documents_of_text(path.read_bytes()) is not None  # plain: C reads it
    native = read_frames(path, on_error="ignore")
    monkeypatch.setattr(otlp_fast, "USE_NATIVE", False)
    python = read_frames(path, on_error="ignore")
    _same_frames(native, python)
    assert len(python["segments"]) > 40


def test_a_line_as_the_collectors_file_exporter_writes_it() -> None:
    """The file exporter's shape: scope and schema URLs, flags, dropped counts, an empty
    status, trace state; read in C, as Python reads it."""
    line = (
        b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
        b'{"stringValue":"checkout"}},{"key":"cloud.provider","value":{"stringValue":"aws"}},'
        b'{"key":"cloud.platform","value":{"stringValue":"aws_ecs"}}],"droppedAttributesCount":0},'
        b'"scopeSpans":[{"scope":{"name":"opentelemetry.instrumentation.flask","version":"0.48b0"},'
        b'"spans":[{"traceId":"6741A1C50D1B4E2F9A8B7C6D5E4F3A2B","spanId":"A1B2C3D4E5F60718",'
        b'"traceState":"","parentSpanId":"","flags":257,"name":"POST /cart","kind":2,'
        b'"startTimeUnixNano":"1732354501123456789","endTimeUnixNano":"1732354501223456789",'
        b'"attributes":[{"key":"http.request.method","value":{"stringValue":"POST"}},'
        b'{"key":"http.response.status_code","value":{"intValue":"503"}},'
        b'{"key":"url.path","value":{"stringValue":"/cart"}},'
        b'{"key":"server.address","value":{"stringValue":"shop.example.com"}}],'
        b'"droppedAttributesCount":0,"droppedEventsCount":0,"droppedLinksCount":0,'
        b'"status":{}},{"traceId":"6741a1c50d1b4e2f9a8b7c6d5e4f3a2b","spanId":"0718a1b2c3d4e5f6",'
        b'"parentSpanId":"a1b2c3d4e5f60718","flags":257,"name":"SELECT shop","kind":3,'
        b'"startTimeUnixNano":"1732354501133456789","endTimeUnixNano":"1732354501183456789",'
        b'"attributes":[{"key":"db.system","value":{"stringValue":"postgresql"}},'
        b'{"key":"db.statement","value":{"stringValue":"SELECT * FROM cart WHERE id = $1"}}],'
        b'"status":{"code":2,"message":"timeout"}}]}],'
        b'"schemaUrl":"https://opentelemetry.io/schemas/1.26.0"}]}\n'
    )
    assert _check_lines([line]) == 1
    (segment,) = otlp_fast.FastTranslator().documents_of_text(line) or []
    assert segment["trace_id"] == "1-6741a1c5-0d1b4e2f9a8b7c6d5e4f3a2b"
    assert segment["fault"] is True and segment["http"]["response"]["status"] == 503
    (query,) = segment["subsegments"]
    assert query["fault"] is True and query["sql"]["sanitized_query"].startswith("SELECT")

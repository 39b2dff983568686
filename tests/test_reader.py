"""Reading documents: formats, X-Ray semantics, and bad input (issue: foundation §3-§5)."""

from __future__ import annotations

import contextlib
import gzip
import json
import warnings
from pathlib import Path

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xraykit
from xraykit.exceptions import TraceParseError, XrayKitWarning
from xraykit.schema import SCHEMAS

TID = "1-5f84c7a1-6c7a8d2e9f0a1b2c3d4e5f60"
TID2 = "1-5f84c7a2-0a1b2c3d4e5f60718293a4b5"


def seg(i: int = 1, trace_id: str = TID, **fields) -> dict:
    doc = {
        "name": f"svc{i}",
        "id": f"{i:016x}",
        "trace_id": trace_id,
        "start_time": 1602537377.0 + i,
        "end_time": 1602537377.5 + i,
    }
    doc.update(fields)
    return doc


def load(docs, **kwargs) -> xraykit.TraceSet:
    return xraykit.from_documents(docs, on_error=kwargs.pop("on_error", "ignore"), **kwargs)


def write_lines(path: Path, values) -> Path:
    path.write_bytes(b"".join(orjson.dumps(v) + b"\n" for v in values))
    return path


# -- formats ---------------------------------------------------------------------------------


def batch_response(*docs) -> dict:
    return {
        "Traces": [
            {
                "Id": docs[0]["trace_id"],
                "Duration": 0.5,
                "LimitExceeded": False,
                "Segments": [{"Id": d["id"], "Document": json.dumps(d)} for d in docs],
            }
        ],
        "UnprocessedTraceIds": [],
    }


FORMATS = {
    "batch response": lambda p, docs: p.write_text(json.dumps(batch_response(*docs))),
    "batch response, pretty": lambda p, docs: p.write_text(
        json.dumps(batch_response(*docs), indent=2)
    ),
    "batch responses, one per line": lambda p, docs: write_lines(
        p, [batch_response(d) for d in docs]
    ),
    "json array": lambda p, docs: p.write_text(json.dumps(docs, indent=1)),
    "json array on one line": lambda p, docs: p.write_text(json.dumps(docs)),
    "one trace per line": lambda p, docs: write_lines(
        p, [batch_response(d)["Traces"][0] for d in docs]
    ),
    "json lines": lambda p, docs: write_lines(p, docs),
    "daemon capture": lambda p, docs: p.write_text(
        "".join('{"format":"json","version":1}\n' + json.dumps(d) + "\n" for d in docs)
    ),
}


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("layout", list(FORMATS))
def test_every_format_gives_the_same_frames(tmp_path, layout, gzipped):
    docs = [seg(1, http={"response": {"status": 200}}), seg(2, trace_id=TID2, fault=True)]
    path = tmp_path / "traces.bin"  # the name says nothing: the content decides
    FORMATS[layout](path, docs)
    if gzipped:
        path.write_bytes(gzip.compress(path.read_bytes()))
    ts = xraykit.load_file(path)
    assert ts.problems.empty
    assert sorted(ts.traces.trace_id) == sorted([TID, TID2])
    assert sorted(ts.segments.name) == ["svc1", "svc2"]
    assert ts.traces.set_index("trace_id").loc[TID2, "has_fault"]


def test_from_documents_accepts_dicts_json_text_and_bytes():
    ts = load([seg(1), json.dumps(seg(2)), orjson.dumps(seg(3))])
    assert sorted(ts.segments.segment_id) == [f"{i:016x}" for i in (1, 2, 3)]
    assert ts.problems.empty


def test_daemon_capture_file(data_dir):
    ts = xraykit.load_file(data_dir / "daemon_capture.txt")
    assert ts.problems.empty
    assert ts.subsegments.streamed.tolist() == [True]
    assert ts.subsegments.segment_id.tolist() == ["a300000000000001"]
    assert ts.traces.has_error.tolist() == [True]


def test_bad_daemon_header_is_a_problem(tmp_path):
    path = tmp_path / "capture"
    path.write_text('{"format":"xml","version":7}\n' + json.dumps(seg(1)) + "\n")
    ts = xraykit.load_file(path, on_error="ignore")
    assert len(ts.segments) == 1
    assert ts.problems.reason.str.contains("daemon header").any()


def test_summaries_response_explains_itself(tmp_path):
    path = tmp_path / "summaries.json"
    path.write_text(json.dumps({"TraceSummaries": [], "ApproximateTime": 0}))
    ts = xraykit.load_file(path, on_error="ignore")
    assert "GetTraceSummaries" in ts.problems.reason[0]


def test_unprocessed_and_limit_exceeded_are_reported():
    response = batch_response(seg(1))
    response["Traces"][0]["LimitExceeded"] = True
    response["UnprocessedTraceIds"] = [TID2]
    ts = load([response])
    assert len(ts) == 1
    reasons = " ".join(ts.problems.reason)
    assert "LimitExceeded" in reasons and TID2 in reasons


# -- X-Ray semantics -------------------------------------------------------------------------


def test_streamed_subsegments_are_stitched_children_first(data_dir):
    ts = xraykit.load_file(data_dir / "streamed_subsegments.jsonl", on_error="ignore")
    sub = ts.subsegments.set_index("subsegment_id")
    assert sub.loc["c000000000000002", "segment_id"] == "c000000000000001"
    assert sub.loc["c000000000000002", "depth"] == 1
    assert sub.loc["c000000000000003", "depth"] == 2  # child of the batch loop, arrived first
    assert sub.loc["c000000000000004", "depth"] == 2  # embedded inside a streamed subsegment
    assert sub.loc["c000000000000004", "segment_id"] == "c000000000000001"
    assert sub.loc["c000000000000004", "parent_id"] == "c000000000000002"
    assert ts.traces.subsegment_count.tolist() == [4]


def test_orphan_is_kept_flagged_and_reported(data_dir):
    ts = xraykit.load_file(data_dir / "streamed_subsegments.jsonl", on_error="ignore")
    orphan = ts.subsegments.set_index("subsegment_id").loc["c0000000000000ff"]
    assert orphan["orphan"]
    assert pd.isna(orphan["segment_id"]) and pd.isna(orphan["depth"])
    assert ts.subsegments.orphan.sum() == 1
    assert ts.problems.reason.str.contains("deadbeefdeadbeef").sum() == 1


def test_orphan_warns_once(data_dir):
    with pytest.warns(XrayKitWarning, match="1 record"):
        xraykit.load_file(data_dir / "streamed_subsegments.jsonl")


def test_complete_document_wins_over_in_progress(data_dir):
    ts = xraykit.load_file(data_dir / "duplicates.jsonl")
    assert ts.problems.empty
    assert len(ts.segments) == 1  # in progress + complete + exact duplicate
    assert not ts.segments.in_progress[0]
    assert ts.annotations.value.tolist() == ["final"]
    assert len(ts.subsegments) == 1  # the exact duplicate's subsegment counts once
    assert ts.document("a200000000000001")["annotations"] == {"version": "final"}
    # the store keeps only the winner's document
    assert ts.raw_documents["entity_id"].tolist() == ["a200000000000001"]
    assert not ts.raw_documents["in_progress"].any()


def test_complete_wins_whatever_the_order():
    done = seg(1, annotations={"v": "done"})
    running = {k: v for k, v in seg(1).items() if k != "end_time"} | {"in_progress": True}
    for docs in ([running, done], [done, running]):
        ts = load(docs)
        assert len(ts.segments) == 1 and not ts.segments.in_progress[0]
        assert ts.annotations.value.tolist() == ["done"]


def test_conflicting_complete_duplicates_are_reported():
    ts = load([seg(1), seg(1, end_time=1602537390.0)])
    assert len(ts.segments) == 1
    assert ts.segments.duration_s[0] == pytest.approx(1602537390.0 - 1602537378.0)
    assert ts.problems.reason.str.contains("two different complete documents").any()


def test_a_subsegment_reusing_its_segments_id_still_loads_and_stitches():
    same = f"{1:016x}"
    streamed = {
        "type": "subsegment",
        "id": "00000000000000aa",
        "parent_id": same,
        "trace_id": TID,
        "name": "call",
        "start_time": 1602537378.1,
        "end_time": 1602537378.2,
    }
    inner = {"id": same, "name": "dup", "start_time": 1602537378.1, "end_time": 1602537378.2}
    ts = load([streamed, seg(1, subsegments=[inner])])
    placed = ts.subsegments.set_index("subsegment_id").loc["00000000000000aa"]
    assert placed["segment_id"] == same and placed["depth"] == 1


def test_in_progress_has_no_end_and_makes_the_trace_partial(data_dir):
    ts = xraykit.load_file(data_dir / "in_progress.json")
    traces = ts.traces.set_index("trace_id")
    assert traces.loc[TID, "is_partial"] and not traces.loc[TID2, "is_partial"]
    running = ts.segments.set_index("segment_id").loc["a000000000000001"]
    assert running["in_progress"] and pd.isna(running["end"]) and pd.isna(running["duration_s"])
    assert ts.subsegments.in_progress.tolist() == [True]


def test_inferred_segments_are_kept_and_flagged(data_dir):
    ts = xraykit.load_file(data_dir / "inferred_segment.json")
    segs = ts.segments.set_index("segment_id")
    assert segs.loc["d000000000000003", "inferred"]
    assert segs.loc["d000000000000003", "origin"] == "AWS::DynamoDB::Table"
    assert not segs.loc["d000000000000001", "inferred"]
    trace = ts.traces.iloc[0]
    assert trace.root_service == "orders-api"  # never an inferred segment
    assert trace.segment_count == 2 and trace.service_count == 2


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, (False, False, False)),
        ({"fault": True}, (True, False, False)),
        ({"error": True}, (False, True, False)),
        ({"error": True, "throttle": True}, (False, True, True)),
        ({"throttle": True}, (False, False, True)),  # still an error at trace level
        ({"fault": True, "error": True, "throttle": True}, (True, True, True)),
    ],
)
def test_flags_are_read_from_documents_absent_means_false(flags, expected):
    ts = load([seg(1, **flags)])
    row = ts.segments.iloc[0]
    assert (row.fault, row.error, row.throttle) == expected
    trace = ts.traces.iloc[0]
    fault, error, throttle = expected
    assert (trace.has_fault, trace.has_error, trace.has_throttle) == (
        fault,
        error or throttle,
        throttle,
    )


def test_downstream_throttle_marks_the_trace_not_the_root_error(data_dir):
    ts = xraykit.load_file(data_dir / "throttle_429.json")
    trace = ts.traces.iloc[0]
    assert trace.has_throttle and not trace.has_error and not trace.has_fault
    assert trace.http_status == 200
    assert ts.subsegments.http_status.tolist() == [429]


def test_a_bare_429_status_counts_as_throttle():
    child = {"name": "x", "id": "00000000000000aa", "start_time": 1602537377.1, "end_time": 1602537377.2,
             "http": {"response": {"status": 429}}}  # fmt: skip
    ts = load([seg(1, subsegments=[child])])
    assert ts.traces.has_throttle[0]


def test_http_status_kept_and_methods_upper_case(data_dir):
    ts = xraykit.load_file(data_dir / "throttle_429.json")
    assert ts.segments.http_method.tolist() == ["POST"]
    assert ts.subsegments.http_method.tolist() == ["POST"]
    assert ts.traces.http_method.tolist() == ["POST"]
    assert str(ts.segments.http_status.dtype) == "Int64"


def test_cause_object_and_bare_string(data_dir):
    ts = xraykit.load_file(data_dir / "bare_string_cause.json")
    assert ts.segments.cause_id.tolist() == ["1234567890abcdef"]
    exc = ts.exceptions.iloc[0]
    assert (exc.entity_id, exc.exception_id, exc.type, exc.message) == (
        "f000000000000002",
        "1234567890abcdef",
        "CardDeclined",
        "card declined",
    )
    assert exc.stack_depth == 2 and exc.top_frame == "app.py:42 charge"
    assert len(ts.exceptions) == 1


def test_annotations_keep_their_type_and_metadata_its_namespace(data_dir):
    ts = xraykit.load_file(data_dir / "annotation_html.json")
    ann = ts.annotations.set_index("key")
    assert ann.loc["comment", "value"] == "<script>alert('x')</script>"
    assert ann.loc["score", "value"] == 4.5 and ann.loc["score", "value_type"] == "number"
    assert ann.loc["vip", "value"] is False and ann.loc["vip", "value_type"] == "boolean"
    assert ann.loc["count", "value"] == 3 and type(ann.loc["count", "value"]) is int
    meta = ts.metadata.set_index(["namespace", "key"])
    assert meta.loc[("default", "payload"), "value"] == {"items": [1, 2, {"a": None}]}
    assert meta.loc[("debug", "ok"), "value"] is True


def test_trace_columns_follow_get_trace_summaries():
    root = seg(1, user="alice", http={"request": {"method": "GET", "url": "https://a/"},
                                      "response": {"status": 502}}, fault=True,
               subsegments=[{"name": "call", "id": "00000000000000c1", "start_time": 1602537378.1,
                             "end_time": 1602537378.3, "namespace": "remote"}])  # fmt: skip
    # a downstream segment called from the subsegment, which finishes after the root (async)
    down = seg(2, parent_id="00000000000000c1", start_time=1602537378.15, end_time=1602537380.0,
               error=True, user="bob")  # fmt: skip
    trace = load([down, root]).traces.iloc[0]
    assert trace.root_service == "svc1"
    assert trace.response_time_s == pytest.approx(0.5)  # the root's own duration
    assert trace.duration_s == pytest.approx(1602537380.0 - 1602537378.0)  # first start, last end
    assert trace.has_fault and not trace.has_error  # the root's flags
    assert trace.user == "alice"
    assert (trace.http_method, trace.http_url, trace.http_status) == ("GET", "https://a/", 502)
    assert (trace.segment_count, trace.subsegment_count, trace.service_count) == (2, 1, 2)


def test_user_falls_back_to_any_segment():
    trace = load([seg(1), seg(2, parent_id="0000000000000001", user="carol")]).traces.iloc[0]
    assert trace.user == "carol"


def test_times_are_utc_microseconds_and_durations_seconds():
    ts = load([seg(1, start_time=1602537377.123456, end_time=1602537377.623457)])
    assert str(ts.segments.start.dtype) == "datetime64[us, UTC]"
    assert ts.segments.start[0] == pd.Timestamp("2020-10-12 21:16:17.123456", tz="UTC")
    # float epoch seconds resolve about 0.2 µs, so a duration is exact to the microsecond
    assert ts.segments.duration_s[0] == pytest.approx(0.500001, abs=1e-6)


# -- bad input -------------------------------------------------------------------------------


def _bad_lines() -> list[tuple[str, bytes]]:
    deep = b'{"a":' * 2000 + b"1" + b"}" * 2000
    return [
        ("invalid JSON line", b'{"name": "x", "id": '),
        ("no id", orjson.dumps({k: v for k, v in seg(90).items() if k != "id"})),
        ("no trace_id", orjson.dumps({k: v for k, v in seg(91).items() if k != "trace_id"})),
        ("no name", orjson.dumps({k: v for k, v in seg(92).items() if k != "name"})),
        ("no start_time", orjson.dumps({k: v for k, v in seg(93).items() if k != "start_time"})),
        ("string start_time", orjson.dumps(seg(94, start_time="2020-10-12T21:16:17Z"))),
        ("object where a list belongs", orjson.dumps(seg(95, subsegments={"name": "x"}))),
        ("malformed trace id", orjson.dumps(seg(96, trace_id="1-nothex-00"))),
        ("not UTF-8", b'{"name": "caf\xe9", "id": "0000000000000061"}'),
        ("nesting too deep", deep),
        ("top-level scalar", b"42"),
    ]


@pytest.mark.parametrize(("what", "line"), _bad_lines(), ids=[w for w, _ in _bad_lines()])
def test_each_bad_record_is_a_problem_and_neighbours_load(tmp_path, what, line):
    path = tmp_path / "mixed.jsonl"
    good = [orjson.dumps(seg(1)), orjson.dumps(seg(2, trace_id=TID2))]
    path.write_bytes(good[0] + b"\n" + line + b"\n" + good[1] + b"\n")
    with pytest.warns(XrayKitWarning, match="could not be read") as record:
        ts = xraykit.load_file(path)
    assert len(record) == 1
    kept = [f"{1:016x}", f"{2:016x}"]
    if what == "object where a list belongs":
        kept.append(f"{95:016x}")  # the segment itself is valid; only its subsegments are not
    assert sorted(ts.segments.segment_id) == kept
    assert len(ts.problems) >= 1
    problem = ts.problems.iloc[0]
    assert problem.source == "mixed.jsonl"
    assert problem.location.startswith("mixed.jsonl:2")
    assert problem.reason


@pytest.mark.parametrize(("what", "line"), _bad_lines(), ids=[w for w, _ in _bad_lines()])
def test_on_error_raise_names_file_and_line(tmp_path, what, line):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(orjson.dumps(seg(1)) + b"\n" + line + b"\n")
    with pytest.raises(TraceParseError, match=r"mixed\.jsonl:2") as info:
        xraykit.load_file(path, on_error="raise")
    assert info.value.source == "mixed.jsonl"


def test_reasons_say_what_was_expected_and_what_came(tmp_path):
    path = write_lines(tmp_path / "x.jsonl", [seg(1, start_time="soon"), seg(2, trace_id="abc")])
    ts = xraykit.load_file(path, on_error="ignore")
    assert "'start_time' must be a number of epoch seconds, got 'soon'" in ts.problems.reason[0]
    assert "got 'abc'" in ts.problems.reason[1]


def test_wrong_typed_optional_field_keeps_the_entity(tmp_path):
    ts = load(
        [seg(1, http={"response": {"status": "200"}}, user=7), seg(2, http=["not", "a", "dict"])]
    )
    assert len(ts.segments) == 2
    assert ts.segments.http_status.isna().all()
    assert ts.problems.reason.str.contains("http.response.status").any()
    assert ts.problems.reason.str.contains("'user'").any()


def test_bad_subsegment_keeps_its_valid_children():
    bad = {"name": "broken", "start_time": 1602537377.1, "end_time": 1602537377.2,
           "subsegments": [{"name": "kid", "id": "00000000000000d2", "start_time": 1602537377.15,
                            "end_time": 1602537377.16}]}  # fmt: skip
    ts = load([seg(1, subsegments=[bad])])
    assert ts.subsegments.subsegment_id.tolist() == ["00000000000000d2"]
    assert ts.subsegments.parent_id.tolist() == [f"{1:016x}"]
    assert ts.problems.reason.str.contains("missing or invalid 'id'").any()


def test_bad_annotation_and_cause_values_are_problems():
    ts = load([seg(1, annotations={"ok": 1, "nested": {"a": 1}}, cause=17)])
    assert ts.annotations.key.tolist() == ["ok"]
    reasons = " ".join(ts.problems.reason)
    assert "annotation 'nested'" in reasons and "'cause'" in reasons


def test_truncated_json_array_keeps_complete_elements(tmp_path):
    text = json.dumps([seg(1), seg(2), seg(3)], indent=1)
    path = tmp_path / "cut.json"
    path.write_text(text[: int(len(text) * 0.8)])
    ts = xraykit.load_file(path, on_error="ignore")
    assert sorted(ts.segments.segment_id) == [f"{1:016x}", f"{2:016x}"]
    assert "truncated" in ts.problems.reason[0]


def test_truncated_batch_response_keeps_complete_traces(tmp_path):
    response = batch_response(seg(1))
    response["Traces"].append(batch_response(seg(2, trace_id=TID2))["Traces"][0])
    text = json.dumps(response, indent=1)
    path = tmp_path / "cut.json"
    path.write_text(text[: text.rindex('"Segments"')])
    ts = xraykit.load_file(path, on_error="ignore")
    assert ts.traces.trace_id.tolist() == [TID]
    assert len(ts.problems) == 1


def test_truncated_gzip_keeps_what_came_before(tmp_path):
    path = tmp_path / "cut.gz"
    payload = b"".join(
        orjson.dumps(seg(i, trace_id=f"1-5f84c7a1-{i:024x}")) + b"\n" for i in range(1, 400)
    )
    path.write_bytes(gzip.compress(payload)[:-200])
    ts = xraykit.load_file(path, on_error="ignore")
    assert 0 < len(ts) < 399
    assert "gzip" in " ".join(ts.problems.reason)


def test_non_utf8_inside_a_json_array(tmp_path):
    good = json.dumps(seg(1)).encode()
    bad = json.dumps(seg(2)).encode().replace(b"svc2", b"svc\xff")
    path = tmp_path / "array.json"
    path.write_bytes(b"[" + good + b",\n" + bad + b",\n" + json.dumps(seg(3)).encode() + b"]")
    ts = xraykit.load_file(path, on_error="ignore")
    assert sorted(ts.segments.name) == ["svc1", "svc3"]
    assert "not UTF-8" in ts.problems.reason[0]


def test_garbage_file_is_one_problem(tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"\x00\x01 this is not a trace file {")
    ts = xraykit.load_file(path, on_error="ignore")
    assert len(ts) == 0 and len(ts.problems) == 1


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["empty", "blank lines"])
def test_empty_file_is_an_empty_traceset_with_every_column(tmp_path, content):
    path = tmp_path / "empty.json"
    path.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ts = xraykit.load_file(path)
    assert len(ts) == 0
    for name, frame in ts.frames.items():
        assert list(frame.columns) == list(SCHEMAS[name]), name
        assert {c: str(t) for c, t in frame.dtypes.items()} == SCHEMAS[name]


def test_ten_megabyte_metadata_value_loads(tmp_path):
    blob = "x" * (10 * 1024 * 1024)
    path = write_lines(tmp_path / "big.jsonl", [seg(1, metadata={"debug": {"payload": blob}})])
    ts = xraykit.load_file(path)
    assert ts.metadata.value[0] == blob


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such trace file"):
        xraykit.load_file(tmp_path / "nope.json")
    with pytest.raises(TraceParseError, match="is a directory"):
        xraykit.load_file(tmp_path)


def test_on_error_must_be_known():
    with pytest.raises(ValueError, match="`on_error` must be one of"):
        xraykit.from_documents([seg(1)], on_error="explode")  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
entity_keys = ["id", "name", "trace_id", "start_time", "end_time", "in_progress", "subsegments",
               "parent_id", "type", "http", "aws", "annotations", "metadata", "cause", "fault", "sql"]  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(st.tuples(st.sampled_from(entity_keys), json_values), max_size=4),
    extra=json_values,
)
def test_no_input_raises_anything_but_parse_errors(mutations, extra):
    """Fuzz: mangled documents never leak KeyError/TypeError/...; valid neighbours always load."""
    doc = seg(
        5, subsegments=[{"name": "c", "id": "00000000000000f1", "start_time": 1.0, "end_time": 2.0}]
    )
    for key, value in mutations:
        doc[key] = value
    ts = xraykit.from_documents([seg(1), doc, extra, seg(2, trace_id=TID2)], on_error="ignore")
    assert {f"{1:016x}", f"{2:016x}"} <= set(ts.segments.segment_id)
    with contextlib.suppress(TraceParseError):  # the only error allowed out
        xraykit.from_documents([doc, extra], on_error="raise")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_byte_order_marks_are_understood(tmp_path, encoding):
    path = tmp_path / "powershell.json"
    path.write_text(json.dumps([seg(1), seg(2)], indent=1), encoding=encoding)
    ts = xraykit.load_file(path)
    assert sorted(ts.segments.name) == ["svc1", "svc2"] and ts.problems.empty


def test_wrongly_typed_field_raises_with_file_and_line(tmp_path):
    path = write_lines(
        tmp_path / "typed.jsonl", [seg(1), seg(2, http={"response": {"status": "200"}})]
    )
    with pytest.raises(
        TraceParseError,
        match=r"typed\.jsonl:2: .*'http\.response\.status' must be an integer, got '200'",
    ):
        xraykit.load_file(path, on_error="raise")


def test_from_documents_takes_one_document_or_says_what_it_takes():
    assert len(xraykit.from_documents(seg(1))) == 1
    assert len(xraykit.from_documents(json.dumps([seg(1), seg(2, trace_id=TID2)]))) == 2
    with pytest.raises(TypeError, match=r"iterable of segment documents.*NoneType.*load_file"):
        xraykit.from_documents(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "fault", "error"),
    [(503, True, False), (404, False, True), (429, False, True), (200, False, False)],
)
def test_root_status_stands_in_for_a_missing_flag(status, fault, error):
    trace = load([seg(1, http={"response": {"status": status}})]).traces.iloc[0]
    assert (trace.has_fault, trace.has_error) == (fault, error)
    assert trace.has_throttle == (status == 429)


def test_a_trace_of_inferred_segments_only_has_no_root():
    trace = load([seg(1, inferred=True, parent_id="00000000000000aa")]).traces.iloc[0]
    assert pd.isna(trace.root_service) and pd.isna(trace.response_time_s)
    assert trace.segment_count == 1


# -- the segment-document schema: every field of the wrong type is a problem -------------------

WRONG_TYPES = [
    ("http", ["GET"], "http", "an object"),
    ("http", {"request": "GET"}, "http.request", "an object"),
    ("http", {"request": {"method": 5}}, "http.request.method", "a string"),
    ("http", {"response": {"content_length": "12"}}, "http.response.content_length", "a number"),
    ("http", {"response": {"status": 200.0}}, "http.response.status", "an integer"),
    ("aws", "123456789012", "aws", "an object"),
    ("aws", {"ec2": ["i-1"]}, "aws.ec2", "an object"),
    ("aws", {"xray": {"sdk_version": 2}}, "aws.xray.sdk_version", "a string"),
    (
        "aws",
        {"cloudwatch_logs": [{"log_group": 1}]},
        "aws.cloudwatch_logs[0].log_group",
        "a string",
    ),
    ("sql", "select 1", "sql", "an object"),
    ("service", {"version": 1.2}, "service.version", "a string"),
    ("user", 7, "user", "a string"),
    ("origin", ["AWS::EC2::Instance"], "origin", "a string"),
    ("fault", "true", "fault", "a boolean"),
    ("precursor_ids", "abc", "precursor_ids", "a list"),
    ("precursor_ids", ["abc", 3], "precursor_ids[1]", "a string"),
    ("links", {"trace_id": TID}, "links", "a list"),
    ("cause", 5, "cause", "an object or a string"),
    ("cause", {"exceptions": {"id": "e"}}, "cause.exceptions", "a list"),
    (
        "cause",
        {"exceptions": [{"id": "e", "truncated": 1.5}]},
        "cause.exceptions[0].truncated",
        "an integer",
    ),
    (
        "cause",
        {"exceptions": [{"stack": [{"line": "12"}]}]},
        "cause.exceptions[0].stack[0].line",
        "an integer",
    ),
    ("annotations", ["a"], "annotations", "an object"),
    ("metadata", "m", "metadata", "an object"),
    ("subsegments", {"id": "x"}, "subsegments", "a list"),
]


@pytest.mark.parametrize("nested", [False, True], ids=["segment", "subsegment"])
@pytest.mark.parametrize(("field", "value", "path", "kind"), WRONG_TYPES)
def test_a_field_of_the_wrong_type_is_a_problem_and_the_entity_loads(
    field, value, path, kind, nested
):
    child = {
        "name": "child",
        "id": "00000000000000c1",
        "start_time": 1602537377.1,
        "end_time": 1602537377.2,
    }
    if nested:
        doc, eid = seg(1, subsegments=[{**child, field: value}]), "00000000000000c1"
    else:
        doc, eid = {**seg(1, subsegments=[child]), field: value}, f"{1:016x}"
    ts = load([doc, seg(2)])
    assert sorted(ts.segments.segment_id) == [f"{1:016x}", f"{2:016x}"]
    children = [] if field == "subsegments" and not nested else ["00000000000000c1"]
    assert ts.subsegments.subsegment_id.tolist() == children
    (reason,) = ts.problems.reason
    assert reason.startswith(f"entity {eid}: '{path}' must be {kind}, got ")
    assert reason.endswith(
        "ignored" if path.endswith("]") else "ignored, the entity loads without it"
    )


def test_a_field_of_the_wrong_type_leaves_its_column_empty():
    ts = load(
        [seg(1, http={"request": {"method": 5, "url": "https://x/"}}, fault="true", user=["u"])]
    )
    row = ts.segments.iloc[0]
    assert pd.isna(row.http_method) and row.http_url == "https://x/"
    assert not row.fault and pd.isna(row.user)
    assert len(ts.problems) == 3


@pytest.mark.parametrize("depth", [994, 1000, 1024, 1030])
def test_deep_nesting_is_a_problem_row_never_a_recursion_error(tmp_path, depth):
    path = tmp_path / "deep.jsonl"
    path.write_bytes(orjson.dumps(seg(1)) + b"\n" + b"[" * depth + b"]" * depth + b"\n")
    ts = xraykit.load_file(path, on_error="ignore")
    assert len(ts.segments) == 1
    with contextlib.suppress(TraceParseError):
        xraykit.load_file(path, on_error="raise")
    objects = b'{"a":' * depth + b"1" + b"}" * depth
    path.write_bytes(
        orjson.dumps(seg(1)) + b"\n" + objects + b"\n" + b"[" * depth + b"{}" + b"]" * depth
    )
    assert len(xraykit.load_file(path, on_error="ignore").segments) == 1


def test_metadata_nested_900_levels_deep_loads():
    value: object = "leaf"
    for _ in range(900):
        value = [value]
    text = json.dumps(seg(1, metadata={"deep": {"v": value}}))
    ts = xraykit.from_documents([text])
    assert ts.problems.empty
    got = ts.metadata.value[0]
    for _ in range(900):
        got = got[0]
    assert got == "leaf"


def test_a_load_changes_no_process_wide_state(tmp_path):
    """Other threads (widgets, DuckDB, pyarrow) share the collector and Arrow's pool."""
    import gc
    import threading

    import pyarrow as pa

    path = tmp_path / "t.jsonl"
    write_lines(path, [seg(i, trace_id=f"1-5f84c7a1-{i:024x}") for i in range(1, 3000)])
    seen: set[tuple[bool, str]] = set()
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.add((gc.isenabled(), pa.default_memory_pool().backend_name))

    before = (gc.isenabled(), pa.default_memory_pool().backend_name)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(3):
            xraykit.load_file(path)
    finally:
        done.set()
        watcher.join()
    assert seen == {before}


def test_without_the_c_fast_path_a_warning_says_why_loads_are_slow(monkeypatch, tmp_path):
    from xraykit.io import columns

    monkeypatch.setattr(columns, "_scan", None)
    monkeypatch.setattr(columns, "_SCAN_MISSING", ImportError("no module named xraykit.io._scan"))
    monkeypatch.setattr(columns, "_WARNED", False)
    path = write_lines(tmp_path / "t.jsonl", [seg(1)])
    with pytest.warns(XrayKitWarning, match="C fast path could not be imported .*no module named"):
        xraykit.load_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xraykit.load_file(path)  # once per process

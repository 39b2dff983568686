"""The C fast path (xraykit/io/_scan.c) must load exactly what the Python loader loads.

The Python loader is the reference. Every test here reads the same bytes twice, once with the
scanner and once with it switched off, and compares every frame (problems included).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xraykit.io import columns, formats, reader, source
from xraykit.samples import sample_names, sample_path

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = os.environ.get("XRAYKIT_REQUIRE_NATIVE") == "1"
native = pytest.mark.skipif(
    columns._scan is None and not REQUIRED, reason="the C fast path is not built here"
)


def test_fast_path_is_built_from_the_current_source() -> None:
    if columns._scan is None:
        if REQUIRED:
            pytest.fail("xraykit.io._scan did not import; `make test` requires the C fast path")
        pytest.skip("the C fast path is not built here")
    sources = [ROOT / "xraykit" / "io" / name for name in ("_scan.c", "_scan_otlp.h")]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]
    assert digest == columns._scan.SOURCE_HASH, (
        "xraykit/io/_scan.c (or _scan_otlp.h) changed since the library was built: run `make test` (or "
        "`pip install -e .`) again to rebuild it"
    )


def read(path: Path, native: bool, **limits: Any) -> dict[str, Any]:
    """Load ``path`` with the C scanner (``native``) or with the Python reader alone."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with source.open_source(path, **limits) as src:
            return formats.read_source(src, native=native)


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], dict[str, Any]]:
    return read(path, native=True), read(path, native=False)


def assert_same_load(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    fast, slow = _both(path, monkeypatch)
    assert fast.keys() == slow.keys()
    for name in fast:
        if name == "documents":  # stores: blocks may be cut elsewhere; the contents agree
            pd.testing.assert_frame_equal(fast[name].to_frame(), slow[name].to_frame())
            links = [store.index["has_links"].tolist() for store in (fast[name], slow[name])]
            assert links[0] == links[1]
        elif name == "problems":  # type repairs are reported when a chunk is converted,
            # so their place in the list depends on where chunks end; the set must agree
            ordered = [
                f.sort_values(list(f.columns), ignore_index=True) for f in (fast[name], slow[name])
            ]
            pd.testing.assert_frame_equal(*ordered, obj=name)
        else:
            pd.testing.assert_frame_equal(fast[name], slow[name], obj=name)
    return fast


@native
@pytest.mark.parametrize("name", sample_names())
def test_samples_load_the_same(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = assert_same_load(sample_path(name), monkeypatch)
    assert len(frames["segments"]) > 0


def _write(tmp_path: Path, lines: list[str], name: str = "input.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(lines), encoding="utf-8")
    return path


TRACE = "1-581cf771-a006649127e371903a2de979"


def _segment(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "web",
        "id": f"{i:016x}",
        "trace_id": TRACE,
        "start_time": 1478293361.271 + i,
        "end_time": 1478293361.449 + i,
        **extra,
    }


@native
def test_lines_longer_than_a_block_and_a_missing_last_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "BLOCK_BYTES", 64)  # most lines cross a block boundary
    big = {"payload": {"text": "x" * 500}}
    lines = [json.dumps(_segment(i, metadata={"default": big})) + "\n" for i in range(20)]
    lines[-1] = lines[-1].rstrip("\n")
    frames = assert_same_load(_write(tmp_path, lines), monkeypatch)
    assert len(frames["segments"]) == 20
    assert frames["metadata"]["value"].iloc[-1] == big["payload"]


@native
def test_escapes_unicode_and_crlf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["caf\u00e9", "\u65e5\u672c", "emoji \U0001f600", 'quote " and \\ slash', "tab\there"]
    lines = []
    for i, name in enumerate(names):
        doc = _segment(i, name=name, annotations={"k\u00e9y": name}, user=name)
        lines.append(json.dumps(doc, ensure_ascii=i % 2 == 0) + "\r\n")
    frames = assert_same_load(_write(tmp_path, lines), monkeypatch)
    assert frames["segments"]["name"].tolist() == names


@native
def test_fallback_lines_keep_their_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        json.dumps(_segment(0)) + "\n",
        json.dumps(_segment(1, http={"response": {"status": "200"}})) + "\n",  # wrong type
        "{not json\n",
        json.dumps(_segment(2, annotations={"a": 1, "b": None})) + "\n",  # bad annotation
        "\n",
        json.dumps(_segment(3)) + "\n",
        json.dumps(_segment(0, end_time=1478293362.0)) + "\n",  # a conflicting duplicate
        json.dumps({"format": "json", "version": 1}) + "\n",
        json.dumps({"format": "JSON", "version": 1.0}) + "\n",  # Python decides
    ]
    frames = assert_same_load(_write(tmp_path, lines), monkeypatch)
    assert len(frames["problems"]) >= 3


@native
def test_responses_with_problems_fall_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def response(*docs: Any, **extra: Any) -> str:
        segments = [
            {"Id": "x", "Document": d if isinstance(d, str) else json.dumps(d)} for d in docs
        ]
        return json.dumps({"Traces": [{"Id": TRACE, "Segments": segments}], **extra}) + "\n"

    lines = [
        response(_segment(0), _segment(1)),
        response(_segment(2), "{broken"),
        response(_segment(3), UnprocessedTraceIds=[TRACE]),
        response(_segment(4, subsegments=[{"id": "a1", "name": "x", "start_time": 1e9}])),
        response(_segment(5)),
    ]
    frames = assert_same_load(_write(tmp_path, lines), monkeypatch)
    assert "00000000000000005" not in frames["segments"]["segment_id"].tolist()
    assert {"0000000000000000", "0000000000000005"} <= set(frames["segments"]["segment_id"])


@native
def test_gzip_and_streamed_subsegments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    child = {
        "type": "subsegment",
        "id": "00000000000000aa",
        "parent_id": "0000000000000000",
        "trace_id": TRACE,
        "name": "DynamoDB",
        "namespace": "aws",
        "start_time": 1478293361.3,
        "in_progress": True,
        "subsegments": [
            {
                "id": "00000000000000ab",
                "name": "inner",
                "start_time": 1478293361.31,
                "end_time": 1478293361.32,
            }
        ],
    }
    lines = [json.dumps(child) + "\n", json.dumps(_segment(0)) + "\n"]
    path = tmp_path / "input.jsonl.gz"
    path.write_bytes(gzip.compress("".join(lines).encode()))
    frames = assert_same_load(path, monkeypatch)
    assert frames["subsegments"]["segment_id"].tolist() == ["0000000000000000"] * 2


# -- property: any document, however odd, loads alike ------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(
        ["", "0", "aws", "remote", "GET", "get", "subsegment", TRACE, "links", 'a"links']
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "id", "name", "trace_id", "start_time", "end_time", "in_progress", "parent_id", "type",
    "origin", "inferred", "http", "aws", "service", "cause", "user", "resource_arn", "fault",
    "error", "throttle", "namespace", "traced", "sql", "subsegments", "annotations", "metadata",
]  # fmt: skip


def _rich_entity(i: int, streamed: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = _segment(i)
    doc.update(
        http={
            "request": {"method": "get", "url": "https://x/", "traced": True},
            "response": {"status": 429},
        },
        aws={
            "account_id": "123456789012",
            "operation": "GetItem",
            "ec2": {"instance_id": "i-1"},
            "xray": {"sdk": "X-Ray for Python", "sdk_version": "2.15.0"},
        },
        sql={"url": "", "connection_string": "postgres://db", "user": "app"},
        annotations={"tier": "gold", "cart": 12.5, "vip": True, "n": 3},
        metadata={"default": {"payload": [1, {"a": None}]}, "flat": 7},
        cause={
            "exceptions": [
                {
                    "id": "e1",
                    "message": "boom",
                    "stack": [{"path": "a.py", "line": 3, "label": "f "}],
                }
            ]
        },
        service={"version": "1.2"},
        fault=True,
    )
    if streamed:
        doc.update(type="subsegment", parent_id=f"{i + 1:016x}")
    doc["subsegments"] = [
        {
            "id": f"{i:08x}aaaa{k:04x}",
            "name": f"s{k}",
            "start_time": 1478293361.3 + i,
            "end_time": 1478293361.4 + i,
            "namespace": "aws",
            "aws": {"table_name": "t"},
        }
        for k in range(2)
    ]
    doc["subsegments"][0]["subsegments"] = [
        {
            "id": f"{i:08x}ffff{k:04x}",
            "name": "deep",
            "start_time": 1478293361.31 + i,
            "end_time": 1478293361.32 + i,
        }
        for k in range(2)
    ]
    return doc


@st.composite
def documents_with_oddities(draw: st.DrawFn) -> list[str]:
    lines = []
    for i in range(draw(st.integers(1, 4))):
        doc = _rich_entity(i, streamed=draw(st.booleans()))
        target = doc if draw(st.booleans()) else doc["subsegments"][draw(st.integers(0, 1))]
        for _ in range(draw(st.integers(0, 2))):
            field = draw(st.sampled_from(FIELDS))
            if draw(st.booleans()):
                target.pop(field, None)
            else:
                target[field] = draw(VALUES)
        text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
        if draw(st.booleans()):
            segments = [{"Id": "x", "Document": text}]
            text = json.dumps({"Traces": [{"Id": TRACE, "Segments": segments}]})
        lines.append(text + draw(st.sampled_from(["\n", "\r\n", "\n\n"])))
    return lines


@native
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=documents_with_oddities())
def test_any_documents_load_alike(
    lines: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # start with a plain line, so that the odd ones are never the first (format detection)
    first = json.dumps(_segment(99)) + "\n"
    assert_same_load(_write(tmp_path, [first, *lines]), monkeypatch)


@st.composite
def damaged_lines(draw: st.DrawFn) -> list[bytes]:
    """Valid lines with a few random byte edits: cuts, insertions, replacements."""
    lines = []
    for i in range(draw(st.integers(1, 3))):
        text = json.dumps(_rich_entity(i), ensure_ascii=draw(st.booleans()))
        if draw(st.booleans()):
            segments = [{"Id": "x", "Document": text}]
            text = json.dumps({"Traces": [{"Id": TRACE, "Segments": segments}]})
        data = bytearray(text.encode())
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(data)))
            edit = draw(st.sampled_from(["cut", "insert", "replace", "truncate"]))
            if edit == "cut":
                del data[at : at + draw(st.integers(1, 8))]
            elif edit == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=4))
            elif edit == "replace" and at < len(data):
                data[at] = draw(st.sampled_from(b'"\\{}[],:0-.eE \x00\x1f\x80\xc3\xff'))
            elif edit == "truncate":
                del data[at:]
        lines.append(bytes(data).replace(b"\n", b" ") + b"\n")
    return lines


@native
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=damaged_lines())
def test_damaged_lines_load_alike(
    lines: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes((json.dumps(_segment(99)) + "\n").encode() + b"".join(lines))
    assert_same_load(path, monkeypatch)


# -- cases found in review: each loaded differently with and without the scanner ----------------


def _lines_with(tmp_path: Path, *docs: Any, raw: str = "") -> Path:
    lines = [json.dumps(d) + "\n" for d in docs]
    return _write(tmp_path, [json.dumps(_segment(90)) + "\n", *lines, raw])


@native
def test_an_empty_trace_id_is_a_problem_after_scanned_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = assert_same_load(_lines_with(tmp_path, _segment(1, trace_id="")), monkeypatch)
    assert "" not in frames["segments"]["trace_id"].tolist()
    assert frames["problems"]["reason"].str.contains("'trace_id' must look like").any()


@native
@pytest.mark.parametrize("literal", ["1e400", "-1e400", "9" * 400, "1.7976931348623159e308"])
def test_a_number_beyond_a_double_makes_the_line_invalid_json(
    literal: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = json.dumps(_segment(1))[:-1] + f', "unused": {literal}}}\n'
    frames = assert_same_load(_lines_with(tmp_path, raw=line), monkeypatch)
    assert len(frames["segments"]) == 1  # only the first line
    assert frames["problems"]["reason"].str.contains("not valid JSON").all()


@native
def test_an_http_status_must_be_an_integer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [
        _segment(1, http={"response": {"status": 500.0}}),
        _segment(2, http={"response": {"status": 500.5}}),
        _segment(3, http={"response": {"status": 2**63}}),
        _segment(4, http={"response": {"status": 404}}),
    ]
    frames = assert_same_load(_lines_with(tmp_path, *docs), monkeypatch)
    assert frames["segments"]["http_status"].tolist()[1:] == [pd.NA, pd.NA, pd.NA, 404]
    assert frames["problems"]["reason"].str.contains("must be an integer").sum() == 3


@native
def test_big_exception_counts_and_null_metadata_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cause = {"exceptions": [{"id": "e1", "truncated": 2**63, "skipped": 3}]}
    docs = [_segment(1, metadata={"ns": {"a": "x", "b": None}}, cause=cause)]
    frames = assert_same_load(_lines_with(tmp_path, *docs), monkeypatch)
    assert frames["metadata"]["value"].tolist() == ["x", None]
    assert frames["exceptions"][["truncated", "skipped"]].values.tolist() == [[pd.NA, 3]]


@native
def test_times_do_not_depend_on_the_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import locale

    previous = locale.setlocale(locale.LC_NUMERIC)
    try:
        locale.setlocale(locale.LC_NUMERIC, "de_DE.UTF-8")  # a decimal comma
    except locale.Error:  # not installed: compile it from glibc's sources, if they are here
        subprocess.run(
            ["localedef", "-i", "de_DE", "-f", "UTF-8", str(tmp_path / "de_DE.UTF-8")],
            capture_output=True,
            check=False,
        )
        monkeypatch.setenv("LOCPATH", str(tmp_path))
        try:
            locale.setlocale(locale.LC_NUMERIC, "de_DE.UTF-8")
        except locale.Error:
            pytest.skip("no de_DE.UTF-8 locale, and localedef could not make one")
    try:
        doc = _segment(1, start_time=1478293361.2719998, end_time=1478293361.4490001)
        frames = assert_same_load(_lines_with(tmp_path, doc), monkeypatch)
    finally:
        locale.setlocale(locale.LC_NUMERIC, previous)
    assert frames["segments"]["duration_s"].iloc[1] == pytest.approx(0.1770003, abs=1e-6)


@native
def test_documents_holding_links_are_found_as_by_a_text_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [
        _segment(1, links=[{"trace_id": TRACE, "id": "00000000000000ff"}]),
        _segment(2, annotations={"a": 'quoted "links'}),  # ends with an escaped quote + links
        _segment(3, metadata={"m": {"v": "links"}}),
        _segment(4, annotations={"a": 'x"linksy', "b": "linksx"}),  # no '"links"' in the text
        _segment(5),
    ]
    frames = assert_same_load(_lines_with(tmp_path, *docs), monkeypatch)
    store = frames["documents"]
    found = dict(zip(store.index["entity_id"], store.index["has_links"], strict=True))
    assert [found[f"{i:016x}"] for i in range(1, 6)] == [True, True, True, False, False]


# -- every shape read line by line is read by the scanner ------------------------------------


def _response(*docs: dict[str, Any]) -> dict[str, Any]:
    segments = [{"Id": d["id"], "Document": json.dumps(d)} for d in docs]
    return {"Traces": [{"Id": TRACE, "Duration": 0.2, "Segments": segments}]}


SHAPES = {
    "responses, one per line": lambda docs: [_response(d) for d in docs],
    "one trace per line": lambda docs: [_response(d)["Traces"][0] for d in docs],
    "documents, one per line": lambda docs: docs,
    "an array of documents on one line": lambda docs: [docs],
    "an array of responses on one line": lambda docs: [[_response(d) for d in docs]],
    "nested arrays": lambda docs: [
        [[d], [[d2]]] for d, d2 in zip(docs[::2], docs[1::2], strict=False)
    ],
    "daemon capture": lambda docs: [v for d in docs for v in ({"format": "json", "version": 1}, d)],
}


@native
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_line_shape_is_read_by_the_scanner(
    shape: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [_rich_entity(i) for i in range(6)]
    path = _write(tmp_path, [json.dumps(v) + "\n" for v in SHAPES[shape](docs)])
    read_by_python: list[Any] = []
    with monkeypatch.context() as m:
        m.setattr(formats, "_read_line", lambda *a: read_by_python.append(a))
        m.setattr(reader.Reader, "accept", lambda *a: read_by_python.append(a))
        fast = read(path, native=True)
    assert read_by_python == []
    assert len(fast["segments"]) == 6 and fast["problems"].empty
    assert_same_load(path, monkeypatch)


@native
def test_a_pretty_printed_file_is_read_by_the_scanner_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, value in enumerate(
        [_response(*(_rich_entity(i) for i in range(4))), [_rich_entity(i) for i in range(4)]]
    ):
        path = tmp_path / f"pretty{i}.json"
        path.write_text(json.dumps(value, indent=2))
        assert len(assert_same_load(path, monkeypatch)["segments"]) == 4


@native
def test_wrong_types_load_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_reader import WRONG_TYPES

    docs = [_segment(i, **{field: value}) for i, (field, value, _, _) in enumerate(WRONG_TYPES)]
    nested = [_segment(100 + i, subsegments=[{**_rich_entity(i)["subsegments"][1], field: value}])
              for i, (field, value, _, _) in enumerate(WRONG_TYPES)]  # fmt: skip
    frames = assert_same_load(_lines_with(tmp_path, *docs, *nested), monkeypatch)
    assert len(frames["problems"]) == 2 * len(WRONG_TYPES)
    assert len(frames["segments"]) == 2 * len(WRONG_TYPES) + 1

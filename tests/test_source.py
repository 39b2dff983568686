"""Sources: any path the system allows, streams read once, encodings, and bounded reading."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import threading
import tracemalloc
import warnings
from pathlib import Path

import pytest

import xraykit
from xraykit.exceptions import TraceParseError
from xraykit.io import source

TID = "1-5f84c7a1-6c7a8d2e9f0a1b2c3d4e5f60"


def seg(i: int) -> dict:
    return {
        "name": f"svc{i}",
        "id": f"{i:016x}",
        "trace_id": TID,
        "start_time": 1602537377.0 + i,
        "end_time": 1602537377.5 + i,
    }


def lines(*docs: dict) -> bytes:
    return b"".join(json.dumps(d).encode() + b"\n" for d in docs)


def load(src: object, **kwargs: object) -> xraykit.TraceSet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xraykit.load_file(src, **kwargs)  # type: ignore[arg-type]


# -- names and kinds of sources ------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="file names of any bytes are a POSIX thing")
@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes path", "str path"])
def test_a_file_name_that_is_not_utf8_works_and_shows_escaped(
    tmp_path: Path, as_bytes: bool
) -> None:
    raw = os.fsencode(tmp_path) + b"/bad\xff.jsonl"
    with open(raw, "wb") as f:
        f.write(lines(seg(1)) + b"{not json\n")
    ts = load(raw if as_bytes else os.fsdecode(raw))
    assert len(ts.segments) == 1
    assert ts.problems.source.tolist() == ["bad\\xff.jsonl"]
    assert ts.problems.location.tolist() == ["bad\\xff.jsonl:2"]
    with pytest.raises(TraceParseError, match=r"bad\\xff\.jsonl:2"):
        xraykit.load_file(raw, on_error="raise")


def test_what_is_not_a_path_or_a_binary_file_is_a_clear_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"path .*or a binary file object, but int was passed"):
        xraykit.load_file(42)  # type: ignore[arg-type]
    path = tmp_path / "t.jsonl"
    path.write_bytes(lines(seg(1)))
    with open(path) as text, pytest.raises(TypeError, match="binary mode"):
        xraykit.load_file(text)  # type: ignore[arg-type]


def test_a_pipe_or_device_path_is_refused_with_the_way_to_read_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # nobody writes to it: opening it would block forever
    with pytest.raises(TraceParseError, match=r"named pipe.*open\(path, .rb.\)"):
        xraykit.load_file(fifo)
    with pytest.raises(TraceParseError, match="device, not a regular file"):
        xraykit.load_file("/dev/zero")


def test_a_pipe_passed_open_is_read_once_as_a_stream(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data = lines(seg(1), seg(2))

    def write() -> None:
        with open(fifo, "wb") as f:  # the writer writes once and goes away
            f.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    with open(fifo, "rb") as f:
        ts = load(f)
    writer.join(timeout=10)
    assert ts.segments.segment_id.tolist() == [f"{1:016x}", f"{2:016x}"]
    assert ts.problems.empty


class OneWay(io.RawIOBase):
    """A stream that cannot seek and counts the bytes handed out."""

    def __init__(self, data: bytes) -> None:
        self.data, self.given = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), len(self.data) - self.given)
        buffer[:n] = self.data[self.given : self.given + n]
        self.given += n
        return n


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_stream_is_read_exactly_once(gzipped: bool) -> None:
    data = lines(*(seg(i) for i in range(1, 50)))
    stream = OneWay(gzip.compress(data) if gzipped else data)
    ts = load(io.BufferedReader(stream))
    assert len(ts.segments) == 49
    assert stream.given == len(stream.data)  # everything, once


def test_a_saved_traceset_loads_from_a_stream(tmp_path: Path, shop: xraykit.TraceSet) -> None:
    small = shop.select(shop.traces.trace_id[:20])
    saved = small.save(tmp_path / "small.traceset")
    ts = load(io.BufferedReader(OneWay(saved.read_bytes())))
    assert ts.traces.equals(small.traces)


# -- encodings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
        lambda t: t.encode("utf-16"),  # with a byte-order mark, as PowerShell's `>` writes
        lambda t: t.encode("utf-16-le"),
        lambda t: t.encode("utf-16-be"),
    ],
    ids=["utf-8 bom", "utf-16 bom", "utf-16-le", "utf-16-be"],
)
def test_encodings_are_recognised_from_the_bytes(tmp_path: Path, encode) -> None:
    text = lines(seg(1), {**seg(2), "name": "caf\u00e9 \U0001f600"}).decode()
    path = tmp_path / "t.jsonl"
    path.write_bytes(encode(text))
    ts = load(path)
    assert ts.segments.name.tolist() == ["svc1", "caf\u00e9 \U0001f600"]
    assert ts.problems.empty


@pytest.mark.parametrize("where", [0, 1, 2])
def test_one_line_of_bytes_that_are_not_utf8_is_the_only_problem(
    tmp_path: Path, where: int
) -> None:
    docs = [lines(seg(i)) for i in range(1, 5)]
    docs[where] = docs[where].replace(b'"svc', b'"\xff\xfesvc')
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(docs))
    ts = load(path)
    assert len(ts.segments) == 3
    assert ts.problems.location.tolist() == [f"t.jsonl:{where + 1}"]
    assert "not UTF-8" in ts.problems.reason[0]


def test_two_damaged_first_lines_still_leave_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"{\xff\n{oops\n" + lines(seg(1), seg(2)))
    ts = load(path)
    assert len(ts.segments) == 2
    assert ts.problems.location.tolist() == ["t.jsonl:1", "t.jsonl:2"]


# -- gzip ----------------------------------------------------------------------------------------


def test_gzip_of_several_members_and_trailing_zeros(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(lines(seg(1))) + gzip.compress(lines(seg(2))) + b"\0" * 512)
    ts = load(path)
    assert len(ts.segments) == 2
    assert ts.problems.empty


def test_bytes_after_a_gzip_stream_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(lines(seg(1))) + b"garbage")
    ts = load(path)
    assert len(ts.segments) == 1
    assert ts.problems.reason.str.contains("after the end of the gzip stream").all()


def test_a_truncated_gzip_keeps_its_complete_lines(tmp_path: Path) -> None:
    data = gzip.compress(lines(*(seg(i) for i in range(1, 400))))
    path = tmp_path / "t.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    ts = load(path)
    assert 0 < len(ts.segments) < 399
    assert ts.problems.reason.str.contains("truncated").any()


# -- limits --------------------------------------------------------------------------------------


def test_a_long_line_is_skipped_and_reported_and_the_rest_loads(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(lines(seg(1)) + b'"' + b"x" * 1_200_000 + b'"\n' + lines(seg(2)))
    ts = load(path, max_line_bytes=1 << 20)
    assert len(ts.segments) == 2
    assert ts.problems.location.tolist() == ["t.jsonl:2"]
    assert "longer than max_line_bytes" in ts.problems.reason[0]
    read = load(path, max_line_bytes=None).problems.reason.tolist()  # now read: a string
    assert len(read) == 1 and read[0].startswith("expected a segment document")


def test_a_gzip_bomb_without_newlines_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        for _ in range(96):
            f.write(b"x" * (1 << 20))  # 96 MiB of one line
        f.write(b"\n" + lines(seg(1)))
    tracemalloc.start()
    try:
        ts = load(path, max_line_bytes=4 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(ts.segments) == 1
    assert "longer than max_line_bytes" in ts.problems.reason[0]
    assert peak < 32 << 20  # a few blocks, never the line


def test_max_bytes_stops_reading_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    data = lines(*(seg(i) for i in range(1, 101)))
    path.write_bytes(data)
    ts = load(path, max_bytes=len(data) // 2)
    assert 40 < len(ts.segments) < 60
    assert ts.problems.reason.str.contains("max_bytes").sum() == 1


def test_an_endless_stream_stops_at_max_bytes() -> None:
    with open("/dev/zero", "rb") as zeros:
        ts = load(zeros, max_bytes=8 << 20, max_line_bytes=1 << 20)
    assert len(ts) == 0
    assert ts.problems.reason.str.contains("max_bytes").any()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1"])
def test_limits_must_be_positive_numbers(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(lines(seg(1)))
    with pytest.raises(ValueError, match="max_bytes"):
        xraykit.load_file(path, max_bytes=bad)  # type: ignore[arg-type]


def test_line_events_split_lines_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "BLOCK_BYTES", 3)
    src = source.open_source(io.BytesIO(b"ab\ncdefg\nh"), max_line_bytes=4)
    events = list(source.line_events(src))
    assert [type(e).__name__ for e in events] == ["Lines", "LongLine", "Lines"]
    assert events[0].data[events[0].start : events[0].end] == b"ab\n"
    assert events[1].length == 5

"""Fuzz the file loader: damaged trace files load alike with and without the C scanner.

Valid lines (from the shipped samples, and small hand-made documents: segments, embedded and
streamed subsegments, annotations, metadata, causes, http/aws/sql blocks, daemon headers,
``BatchGetTraces`` responses, one trace per line, OTLP/JSON export requests) get random damage, each kind an operation of
its own, combined at random: byte flips; cuts (also mid-escape and mid-character) and split
lines; quotes, backslashes, braces and brackets put in or taken out; huge numbers; ``\\u``
escapes (lone surrogates, ``\\u0000``, letters spelt as escapes) and raw NULs; invalid UTF-8;
nesting 500 to 1,100 levels deep; lone CRs; repeated keys. A raw document is damaged before it
is escaped into a response's ``Document``, the line after. Files are JSON lines (CRLF or lone
CR line ends, blank and whitespace-only lines), sometimes a JSON array or a pretty-printed
response; sometimes with a byte-order mark, sometimes gzipped (and the stream damaged); and are
read in blocks of random size, so that lines cross block boundaries, sometimes with small
``max_bytes`` or ``max_line_bytes`` limits.

Each file is read with the scanner and without it (without the C extension both reads are
the Python reader's, and the other checks still hold), and:

* every frame is the same (``test_scan.assert_same_load``);
* no exception escapes ``read_frames(path)``; with ``on_error="raise"`` only a
  ``TraceParseError`` does, the same from both paths, and one of the problems the default
  mode reports (and none when it reports none);
* the documents of undamaged lines are all loaded (damage elsewhere must not drop them).

The default run takes about 25 s. ``XRAYKIT_FUZZ_EXAMPLES`` sets the number of examples of
the main property for a long run (no time limit then)::

    XRAYKIT_FUZZ_EXAMPLES=20000 .venv/bin/pytest -p no:cacheprovider tests/test_fuzz.py

Inputs that failed once are kept at the end as regression cases (``KNOWN``).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import random
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest
import test_scan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xraykit.exceptions import TraceParseError
from xraykit.io import formats, source
from xraykit.samples import sample_names, sample_path

# -- the two seams: how the scanner is switched off, and where the block size is set -----------


def _load(path: Path, native: bool, **kwargs: Any) -> dict[str, Any]:
    """``read_frames(path, **kwargs)``, with the C scanner or with the Python reader alone."""
    if native:
        return formats.read_frames(path, **kwargs)
    on_error = kwargs.pop("on_error", "warn")
    with source.open_source(path, **kwargs) as src:
        return formats.read_source(src, on_error=on_error, native=False)


@contextlib.contextmanager
def _blocks_of(size: int | None) -> Iterator[None]:
    """Make the loader read ``size``-byte blocks (None: its own size)."""
    with pytest.MonkeyPatch.context() as mp:
        if size is not None:
            mp.setattr(source, "BLOCK_BYTES", size)
        yield


# -- checking one file ------------------------------------------------------------------------

# Loads get the stack a caller near the top of a default interpreter has, wherever they are
# called from (hypothesis raises the limit, and runs tests deeper than pytest does), so that a
# RecursionError in the loader shows alike in the property and in its regression case.
HEADROOM = sys.getrecursionlimit() - 50


def _depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def _read(path: Path, native: bool, **kwargs: Any) -> dict[str, Any]:
    """:func:`_load` with :data:`HEADROOM` frames to spare; an escaping error says which path."""
    outer = sys.getrecursionlimit()
    sys.setrecursionlimit(_depth() + HEADROOM)
    try:
        return _load(path, native, **kwargs)
    except Exception as exc:
        call = "".join([f"read_frames({path.name!r}", *(f", {k}={v!r}" for k, v in kwargs.items())])
        exc.add_note(f"raised by {call}) with the C scanner {'on' if native else 'off'}")
        raise
    finally:
        sys.setrecursionlimit(outer)


def _same_load(path: Path, **limits: Any) -> dict[str, Any]:
    """Both loads, compared by ``test_scan.assert_same_load`` (given these two loads instead
    of making its own), far above the recursion limit: metadata values may nest 1,000 deep."""
    fast, slow = _read(path, True, **limits), _read(path, False, **limits)
    outer = sys.getrecursionlimit()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(test_scan, "_both", lambda *_: (fast, slow))
        sys.setrecursionlimit(_depth() + 5_000)
        try:
            return test_scan.assert_same_load(path, mp)
        finally:
            sys.setrecursionlimit(outer)


def _raised(path: Path, native: bool, **limits: Any) -> TraceParseError | None:
    """The error ``on_error="raise"`` stops with (anything but a TraceParseError escapes)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _read(path, native, on_error="raise", **limits)
    except TraceParseError as exc:
        return exc
    return None


def _describe(exc: TraceParseError | None) -> tuple[str, str, str] | None:
    return None if exc is None else (str(exc), exc.source, exc.location)


def check_file(
    content: bytes,
    block: int | None = None,
    loaded: frozenset[str] = frozenset(),
    limits: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Load ``content`` both ways, in both modes, check what must hold; return the frames.

    ``loaded``: ids of documents that must be in the frames (those of undamaged lines);
    ``limits``: ``max_bytes`` and ``max_line_bytes`` for the loads.
    """
    limits = limits or {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.jsonl"
        path.write_bytes(content)
        with _blocks_of(block):
            frames = _same_load(path, **limits)
            fast, slow = _raised(path, True, **limits), _raised(path, False, **limits)
    assert _describe(fast) == _describe(slow), 'on_error="raise": the two paths stop differently'
    problems = frames["problems"]
    if fast is None:
        assert problems.empty, 'on_error="raise" raised nothing, but there are problems'
    else:
        reported = zip(problems["location"], problems["reason"], strict=True)
        assert any(
            fast.location == location and str(fast).endswith(reason)
            for location, reason in reported
        ), f'on_error="raise" raised {fast}, which is not among the problems'
    ids = set(frames["segments"]["segment_id"]) | set(frames["subsegments"]["subsegment_id"])
    assert not loaded - ids, f"documents of undamaged lines were dropped: {sorted(loaded - ids)}"
    return frames


# -- seeds ------------------------------------------------------------------------------------

TRACE = "1-581cf771-a006649127e371903a2de979"
OTHER_TRACE = "1-5759e988-bd862e3fe1be46a994272793"
T0 = 1478293361.271


def _hand_made() -> list[dict[str, Any]]:
    """Small documents with every part the loader reads."""
    stack = [{"path": "app/views.py", "line": 42, "label": "checkout"}, {"path": "x.py"}]
    full = {
        "name": "shop-api",
        "id": "70de5b6f19ff9a0a",
        "trace_id": TRACE,
        "start_time": T0,
        "end_time": T0 + 0.178,
        "origin": "AWS::EC2::Instance",
        "user": "alice",
        "service": {"version": "1.2.3"},
        "fault": True,
        "http": {
            "request": {
                "method": "POST",
                "url": "https://shop.example.com/cart?x=1",
                "user_agent": "curl/8.0",
                "client_ip": "198.51.100.7",
                "x_forwarded_for": True,
            },
            "response": {"status": 503, "content_length": 1024},
        },
        "aws": {
            "account_id": "123456789012",
            "ec2": {"instance_id": "i-0b5a4678fc325bg98", "availability_zone": "us-east-1a"},
            "xray": {"sdk": "X-Ray for Python", "sdk_version": "2.14.0"},
        },
        "annotations": {"tier": "gold", "cart_total": 129.95, "items": 3, "vip": False},
        "metadata": {
            "default": {"order": {"lines": [1, 2, 3], "note": None}, "ratio": 0.25},
            "debug": "flat value",
        },
        "cause": {
            "working_directory": "/app",
            "exceptions": [
                {
                    "id": "4fe9b0e7e4f3c1d2",
                    "type": "TimeoutError",
                    "message": "upstream timed out",
                    "remote": True,
                    "truncated": 2,
                    "skipped": 1,
                    "cause": "1c9a0b3f1e2d4c5b",
                    "stack": stack,
                },
                {"id": "1c9a0b3f1e2d4c5b", "message": "socket closed"},
            ],
        },
        "subsegments": [
            {
                "id": "70de5b6f19ff9a0b",
                "name": "DynamoDB",
                "namespace": "aws",
                "start_time": T0 + 0.01,
                "end_time": T0 + 0.05,
                "throttle": True,
                "error": True,
                "http": {"response": {"status": 429}},
                "aws": {
                    "operation": "GetItem",
                    "region": "us-east-1",
                    "table_name": "orders",
                    "request_id": "3AIENM5J4ELQ3SPODHKBIRVIC3VV4KQNSO5AEMVJF66Q9ASUAAJG",
                    "retries": 1,
                },
                "annotations": {"table": "orders"},
            },
            {
                "id": "70de5b6f19ff9a0c",
                "name": "orders-db",
                "namespace": "remote",
                "start_time": T0 + 0.06,
                "end_time": T0 + 0.16,
                "sql": {
                    "url": "postgresql://db.example.com:5432/orders",
                    "database_type": "PostgreSQL",
                    "sanitized_query": "SELECT * FROM orders WHERE id = $1",
                    "user": "app",
                },
                "subsegments": [
                    {
                        "id": "70de5b6f19ff9a0d",
                        "name": "fetch",
                        "start_time": T0 + 0.07,
                        "end_time": T0 + 0.08,
                        "metadata": {"rows": {"n": 12}},
                        "cause": "4fe9b0e7e4f3c1d2",
                    }
                ],
            },
        ],
    }
    unicode = {
        "name": "caf\u00e9 \u65e5\u672c \U0001f600",
        "id": "70de5b6f19ff9a10",
        "trace_id": OTHER_TRACE,
        "start_time": T0 + 1,
        "end_time": T0 + 1.5,
        "annotations": {"cl\u00e9": "\u00fcber \U0001f680", "tab": 'a\tb\\c"d'},
        "metadata": {"default": {"text": "line\nbreak \u2028 \u0001"}},
        "http": {"request": {"method": "get", "url": "https://x/\u00e9"}},
    }
    in_progress = {
        "name": "worker",
        "id": "70de5b6f19ff9a11",
        "trace_id": OTHER_TRACE,
        "start_time": T0 + 2,
        "in_progress": True,
    }
    streamed = {
        "type": "subsegment",
        "id": "70de5b6f19ff9a12",
        "parent_id": "70de5b6f19ff9a11",
        "trace_id": OTHER_TRACE,
        "name": "S3",
        "namespace": "aws",
        "start_time": T0 + 2.1,
        "end_time": T0 + 2.2,
        "aws": {"operation": "PutObject", "bucket_name": "b"},
        "subsegments": [
            {
                "id": "70de5b6f19ff9a13",
                "name": "inner",
                "start_time": T0 + 2.11,
                "in_progress": True,
            }
        ],
    }
    inferred = {
        "name": "SNS",
        "id": "70de5b6f19ff9a14",
        "trace_id": TRACE,
        "parent_id": "70de5b6f19ff9a0a",
        "inferred": True,
        "origin": "AWS::SNS",
        "start_time": T0 + 0.1,
        "end_time": T0 + 0.12,
    }
    return [full, unicode, in_progress, streamed, inferred]


def _escape(doc: bytes) -> bytes:
    """``doc`` as the inside of a JSON string, its bytes otherwise as they are (even invalid)."""
    out = doc.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return re.sub(rb"[\x00-\x1f]", lambda m: b"\\u%04x" % m.group()[0], out)


def _segments(docs: list[bytes]) -> bytes:
    parts = [b'{"Id":"%d","Document":"%s"}' % (i, _escape(d)) for i, d in enumerate(docs)]
    return b"[" + b",".join(parts) + b"]"


def _response(docs: list[bytes]) -> bytes:
    """A ``BatchGetTraces`` response line holding ``docs``."""
    trace = b'{"Id":"%s","Duration":0.178,"Segments":%s}' % (TRACE.encode(), _segments(docs))
    return b'{"Traces":[' + trace + b'],"UnprocessedTraceIds":[]}'


def _trace(docs: list[bytes]) -> bytes:
    """A one-trace-per-line line holding ``docs``."""
    return b'{"Id":"%s","Duration":0.178,"Segments":%s}' % (TRACE.encode(), _segments(docs))


DAEMON_HEADER = b'{"format":"json","version":1}'
FEATURES = ("cause", "annotations", "metadata", "sql", "aws", "in_progress", "subsegment", "http")


@functools.cache
def _sample_seeds() -> tuple[list[bytes], list[bytes]]:
    """Documents and whole lines from the shipped samples: for each sample and feature, the
    shortest document that has it, and the sample's shortest line among its first ten."""
    docs: dict[bytes, None] = {}
    lines: list[bytes] = []
    for name in sample_names():
        with gzip.open(sample_path(name)) as f:
            head = [line.rstrip(b"\r\n") for _, line in zip(range(10), f, strict=False)]
        head = [line for line in head if line.strip()]
        lines.append(min((line for line in head if b'"format"' not in line), key=len))
        found: list[bytes] = []
        for line in head:
            value = orjson.loads(line)
            if "Traces" in value:
                for trace in value["Traces"]:
                    found += [s["Document"].encode() for s in trace["Segments"]]
            elif "id" in value:
                found.append(line)
        for feature in FEATURES:
            having = [d for d in found if b'"%s' % feature.encode() in d]
            if having:
                docs[min(having, key=len)] = None
    return list(docs), lines


@functools.cache
def seed_documents() -> list[bytes]:
    """Raw documents to build lines from: hand-made (in several spellings) and from samples."""
    out = []
    for i, doc in enumerate(_hand_made()):
        out.append(json.dumps(doc, ensure_ascii=i % 2 == 0).encode())
        out.append(orjson.dumps(doc))  # compact, non-ASCII as UTF-8
    out.append(json.dumps(_hand_made()[1], ensure_ascii=True, indent=None).encode())
    return out + _sample_seeds()[0]


@functools.cache
def otlp_seeds() -> list[bytes]:
    """OTLP/JSON export requests, one per line: the fixture's (events, links, local roots) and
    generated plain ones (HTTP, AWS, SQL, annotations), those that load without problems."""
    import random

    from test_otlp import DATA, _random_request

    rng = random.Random(8)
    lines = [line for line in (DATA / "shop.jsonl").read_bytes().splitlines() if line.strip()]
    lines += [orjson.dumps(_random_request(rng, i)) for i in range(12)]
    clean = []
    for line in lines:
        frames = formats.frames_from_otlp(orjson.loads(line), on_error="ignore")
        if frames["problems"].empty:
            clean.append(line)
    return clean


def _ids(line: bytes) -> set[str]:
    """The ids of the documents in an undamaged line (any of the formats)."""
    found: set[str] = set()
    for part in line.split(b"\n"):
        value = orjson.loads(part)
        if "resourceSpans" in value:  # OTLP: the ids of the documents its spans become
            frames = formats.frames_from_otlp(value, on_error="ignore")
            found |= set(frames["segments"]["segment_id"])
            found |= set(frames["subsegments"]["subsegment_id"])
            continue
        if "Traces" in value:
            segments = [s for t in value["Traces"] for s in t["Segments"]]
        elif "Segments" in value:
            segments = value["Segments"]
        else:
            segments = [{"Document": part.decode()}] if "id" in value else []
        found |= {orjson.loads(s["Document"])["id"] for s in segments}
    return found


# -- damage: each kind an operation taking the bytes, giving a strategy for the damaged bytes -----

Op = Callable[[bytes], st.SearchStrategy[bytes]]


def _after(data: bytes, pattern: bytes) -> list[int]:
    return [m.end() for m in re.finditer(pattern, data)]


@st.composite
def _spot(draw: st.DrawFn, data: bytes) -> int:
    """A position in ``data``: anywhere, in a string, in an escape, in a multibyte character
    or in a number."""
    kind = draw(st.sampled_from(["anywhere", "string", "escape", "multibyte", "number"]))
    spots = {
        "string": lambda: _after(data, rb'"'),
        "escape": lambda: [i + k for i in _after(data, rb"\\") for k in range(5)],
        "multibyte": lambda: [i + k for i in _after(data, rb"[\xc0-\xff]") for k in range(3)],
        "number": lambda: _after(data, rb"[:\[,]-?\d"),
    }.get(kind, lambda: [])()
    spots = [i for i in spots if i <= len(data)]
    if not spots:
        return draw(st.integers(0, len(data)))
    return spots[draw(st.integers(0, len(spots) - 1))]


@st.composite
def flip_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """One to three bytes with some bits flipped."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if out:
            at = draw(st.integers(0, len(out) - 1))
            out[at] ^= draw(st.integers(1, 255))
    return bytes(out)


@st.composite
def cut(draw: st.DrawFn, data: bytes) -> bytes:
    """The line truncated, a span of it deleted, or it split in two by a newline."""
    at = draw(_spot(data))
    how = draw(st.sampled_from(["truncate", "delete", "split"]))
    if how == "truncate":
        return data[:at]
    if how == "delete":
        return data[:at] + data[at + draw(st.integers(1, 12)) :]
    return data[:at] + draw(st.sampled_from([b"\n", b"\r\n"])) + data[at:]


@st.composite
def syntax(draw: st.DrawFn, data: bytes) -> bytes:
    """A quote, backslash, brace or bracket put in, or one taken out."""
    char = draw(st.sampled_from([b'"', b"\\", b"{", b"}", b"[", b"]"]))
    present = [m.start() for m in re.finditer(re.escape(char), data)]
    if present and draw(st.booleans()):
        at = present[draw(st.integers(0, len(present) - 1))]
        return data[:at] + data[at + 1 :]
    at = draw(_spot(data))
    return data[:at] + char * draw(st.integers(1, 2)) + data[at:]


HUGE = [
    b"1e400", b"-1e400", b"1E+308", b"1.7976931348623157e308", b"1.8e308", b"1e-400",
    b"4.9e-324", b"-0", b"-0.0", b"0e0", b"9" * 400, b"-" + b"1" * 400,
    b"0." + b"0" * 400 + b"1", b"9223372036854775807", b"9223372036854775808",
    b"-9223372036854775809", b"18446744073709551616", b"1478293361.27199981234567890123",
    b"99999999999", b"1e11", b"200.0", b"2E2",
]  # fmt: skip
NUMBER = re.compile(rb"(?<=[:\[,])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
STRING_VALUE = re.compile(rb'(?<=:)\s*"(?:[^"\\]|\\.)*"')


@st.composite
def huge_number(draw: st.DrawFn, data: bytes) -> bytes:
    """A number (a time, a status, an annotation or metadata value...) replaced by a huge or
    odd one; or a string value replaced by one."""
    literal = draw(st.sampled_from(HUGE))
    spans = [m.span() for m in NUMBER.finditer(data)]
    if not spans or draw(st.integers(0, 3)) == 0:
        spans = [m.span() for m in STRING_VALUE.finditer(data)] or spans
    if not spans:
        at = draw(_spot(data))
        return data[:at] + literal + data[at:]
    start, end = spans[draw(st.integers(0, len(spans) - 1))]
    return data[:start] + literal + data[end:]


ESCAPES = [
    rb"\ud800", rb"\udfff", rb"\ud800\u0041", rb"\udbff\ud800", rb"\ud800\n", rb"\uDBFF\uDFFF",
    rb"\ud83d\ude00", rb"\u0000", rb"\u001f", rb"\u00e9", rb"\uffff", rb"\ufeff", rb"\u12",
    rb"\uzzzz", rb"\u", rb"\x41", rb"\'", rb"\/", b"\x00", b"\x00\x00", b"\x1f",
]  # fmt: skip


@st.composite
def unicode_escape(draw: st.DrawFn, data: bytes) -> bytes:
    """A ``\\u`` escape (lone surrogates, ``\\u0000``, broken ones) or a raw NUL put in; or
    a letter of a key or string value written as its escape, which changes nothing."""
    letters = [m.start() for m in re.finditer(rb'(?<=")[a-z_]|(?<=[a-z_])[a-z_](?=[a-z_]*")', data)]
    if letters and draw(st.booleans()):
        at = letters[draw(st.integers(0, len(letters) - 1))]
        return data[:at] + b"\\u%04x" % data[at] + data[at + 1 :]
    at = draw(_spot(data))
    return data[:at] + draw(st.sampled_from(ESCAPES)) + data[at:]


BAD_UTF8 = [
    b"\x80", b"\xbf", b"\x80\x80", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80", b"\xc3", b"\xe6\x97",
    b"\xf0\x9f\x98", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xff", b"\xfe", b"\xc3(",
]  # fmt: skip


@st.composite
def bad_utf8(draw: st.DrawFn, data: bytes) -> bytes:
    """Bytes that are not UTF-8 put in, or a multibyte character cut short."""
    leads = [m.start() for m in re.finditer(rb"[\xc2-\xf4][\x80-\xbf]+", data)]
    if leads and draw(st.integers(0, 3)) == 0:
        at = leads[draw(st.integers(0, len(leads) - 1))]
        return data[: at + 1] + data[at + 2 :]
    at = draw(_spot(data))
    return data[:at] + draw(st.sampled_from(BAD_UTF8)) + data[at:]


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """A value nested 500 to 1,100 levels deep (arrays, objects or both), sometimes unclosed."""
    # around the limits: the scanner's (512) and orjson's (1024, counting the document's own)
    limits = st.sampled_from([511, 512, 513, 950, 1000, 1018, 1019, 1020, 1021, 1022, 1023, 1024])
    depth = draw(st.one_of(st.integers(500, 1100), limits))
    shape = draw(st.sampled_from(["array", "object", "mixed"]))
    leaf = draw(st.sampled_from([b"1", b'"x"', b"null", b"[]", b"{}", b"1e400", rb'"\ud800"']))
    opens = [
        b"[" if shape == "array" or (shape == "mixed" and i % 2) else b'{"k":' for i in range(depth)
    ]
    closes = [b"]" if o == b"[" else b"}" for o in reversed(opens)]
    if not draw(st.integers(0, 4)):
        closes = closes[: draw(st.integers(0, depth - 1))]
    return b"".join(opens) + leaf + b"".join(closes)


def _subsegment_chain(depth: int) -> bytes:
    """A segment with subsegments nested ``depth`` deep (JSON nesting twice as deep)."""
    head = b'{"id":"%016x","name":"s","start_time":1478293361.3,"end_time":1478293361.4,"subsegments":['
    opens = [head % (0xBEEF0000 + i) for i in range(depth)]
    body = (
        b'{"id":"00000000deadbeef","name":"leaf","start_time":1478293361.3,"end_time":1478293361.4}'
    )
    segment = b'{"trace_id":"%s","id":"00000000feedbeef","name":"deep","start_time":1478293361.2,"end_time":1478293361.5,"subsegments":['
    return segment % TRACE.encode() + b"".join(opens) + body + b"]}" * (depth + 1)


@st.composite
def deep_nesting(draw: st.DrawFn, data: bytes) -> bytes:
    """A deeply nested value as a metadata or annotation value, a field, or the whole line;
    or a line whose subsegments nest deeply."""
    where = draw(st.sampled_from(["metadata", "annotations", "field", "line", "subsegments"]))
    if where == "subsegments":
        return _subsegment_chain(draw(st.integers(249, 550)))
    value = draw(nested())
    if where == "line":
        return value
    if where in ("metadata", "annotations"):
        starts = _after(data, rb'"%s"\s*:\s*\{' % where.encode())
        if starts:
            at = starts[draw(st.integers(0, len(starts) - 1))]
            comma = b"" if data[at:].lstrip()[:1] == b"}" else b", "
            inner = b'{"deep": ' + value + b"}" if where == "metadata" else value
            return data[:at] + b'"deep": ' + inner + comma + data[at:]
        value = (
            b'{"deep": {"v": ' + value + b"}}"
            if where == "metadata"
            else b'{"deep": ' + value + b"}"
        )
    at = data.find(b"{") + 1
    if at == 0:
        return value
    comma = b"" if data[at:].lstrip()[:1] == b"}" else b", "
    return data[:at] + b'"%s": ' % where.encode() + value + comma + data[at:]


@st.composite
def carriage_return(draw: st.DrawFn, data: bytes) -> bytes:
    """A lone CR inside the line (between tokens it is JSON whitespace, in a string it is not)."""
    at = draw(_spot(data))
    return data[:at] + b"\r" + data[at:]


REPEATED = [
    b'"id": "00000000000000ff"', b'"name": null', b'"name": "other"', b'"start_time": 1',
    b'"end_time": null', b'"trace_id": "1-5759e988-bd862e3fe1be46a994272793"',
    b'"type": "subsegment"', b'"parent_id": ""', b'"in_progress": true',
    b'"annotations": {"a": 1, "a": "two"}', b'"metadata": {"n": {"k": 1}}', b'"Traces": []',
    b'"http": {"response": {"status": 200, "status": 500}}', b'"subsegments": []',
    b'"Document": "{}"', b'"Segments": null', b'"format": "json"', b'"version": 2',
]  # fmt: skip


@st.composite
def repeated_key(draw: st.DrawFn, data: bytes) -> bytes:
    """A key that the object may already have put in at its start (the old value wins) or at
    its end (the new one wins): JSON leaves duplicate keys to the reader."""
    pair = draw(st.sampled_from(REPEATED))
    starts = [m.end() for m in re.finditer(rb"\{(?=\s*\")", data)]
    ends = [m.start() for m in re.finditer(rb'(?<=["\d\]}el])\s*\}', data)]
    if starts and draw(st.booleans()):
        at = starts[draw(st.integers(0, len(starts) - 1))]
        return data[:at] + pair + b", " + data[at:]
    if ends:
        at = ends[draw(st.integers(0, len(ends) - 1))]
        return data[:at] + b", " + pair + data[at:]
    return data


OPS: list[Op] = [
    flip_bytes, cut, syntax, huge_number, unicode_escape, bad_utf8, deep_nesting, carriage_return,
    repeated_key,
]  # fmt: skip


@st.composite
def damaged(draw: st.DrawFn, data: bytes, most: int = 3) -> tuple[bytes, bool]:
    """``data`` after up to ``most`` random damages; and whether it was damaged."""
    ops = draw(st.lists(st.sampled_from(OPS), max_size=most))
    for op in ops:
        data = draw(op(data))
    return data, bool(ops)


# -- whole files ----------------------------------------------------------------------------


class Fuzzed(NamedTuple):
    content: bytes
    block: int | None  # the loader's block size (None: its own)
    loaded: frozenset[str]  # ids of the documents of undamaged lines
    limits: dict[str, int]  # max_bytes, max_line_bytes


@st.composite
def unit(draw: st.DrawFn) -> tuple[bytes, bool]:
    """One line (a daemon pair is two) in one of the formats; and whether it was damaged."""
    kinds = ["raw", "raw", "response", "trace", "daemon", "header", "sample", "otlp"]
    kind = draw(st.sampled_from(kinds))
    if kind in ("sample", "otlp"):
        line = draw(st.sampled_from(_sample_seeds()[1] if kind == "sample" else otlp_seeds()))
        return draw(damaged(line))
    if kind == "header":
        return draw(damaged(DAEMON_HEADER))
    docs, hurt = [], False
    for doc in draw(st.lists(st.sampled_from(seed_documents()), min_size=1, max_size=3)):
        if kind in ("response", "trace") and draw(st.booleans()):  # inside the Document string
            doc, inner = draw(damaged(doc, most=2))
            hurt |= inner
        docs.append(doc)
    line = {
        "raw": lambda: docs[0],
        "daemon": lambda: DAEMON_HEADER + b"\n" + docs[0],
        "response": lambda: _response(docs),
        "trace": lambda: _trace(docs),
    }[kind]()
    line, outer = draw(damaged(line))
    return line, hurt or outer


BLOCKS = st.one_of(st.none(), st.integers(1, 64), st.sampled_from([127, 256, 1000, 4096, 65536]))
ENDS = st.sampled_from([b"\n", b"\n", b"\n", b"\r\n", b"\r"])
BLANKS = st.sampled_from([b"\n", b"   \n", b"\t \n", b"\r\n", b" \r\n", b"\x0b\n", b"\x0c\n"])


def _is_json(text: bytes) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


class Clean(NamedTuple):
    """An undamaged line (or daemon pair) of a file: where it ends, its longest line, its ids."""

    stop: int
    longest: int
    ids: set[str]


@st.composite
def json_lines(draw: st.DrawFn) -> tuple[bytes, list[Clean]]:
    """JSON lines, some damaged, with CRLF or CR ends and blank lines; the undamaged ones."""
    first = draw(st.sampled_from(seed_documents()))  # usually a clean first line: the format
    lines = [draw(damaged(first)) if draw(st.integers(0, 4)) == 0 else (first, False)]
    lines += draw(st.lists(unit(), min_size=1, max_size=6))
    content, clean, previous = b"", [], b"\n"
    for i, (line, hurt) in enumerate(lines):
        last = i == len(lines) - 1
        end = draw(st.sampled_from([b"", b"\n", b"\r\n"]) if last else ENDS)
        content += b"".join(draw(st.lists(BLANKS, max_size=2))) + line + end
        if not hurt and previous != b"\r" and end != b"\r":  # a lone CR joins two lines
            longest = max(map(len, line.split(b"\n"))) + len(end)
            clean.append(Clean(len(content), longest, _ids(line)))
        previous = end
    return content, clean


@st.composite
def json_array(draw: st.DrawFn) -> tuple[bytes, list[Clean]]:
    """A JSON array of documents, one a line, some damaged; those before the first damage."""
    clean: list[Clean] = []
    content, intact = b"[", True
    for doc in draw(st.lists(st.sampled_from(seed_documents()), min_size=1, max_size=6)):
        doc, hurt = draw(damaged(doc)) if draw(st.integers(0, 2)) == 0 else (doc, False)
        intact &= not hurt
        content += (b"\n" if content == b"[" else b",\n") + doc
        if intact:  # salvage keeps the elements before the first damaged one
            clean.append(Clean(len(content), len(content), _ids(doc)))  # read as one value
    return content + b"\n]\n", clean


@st.composite
def pretty_response(draw: st.DrawFn) -> tuple[bytes, list[Clean]]:
    """A ``BatchGetTraces`` response pretty-printed over many lines, maybe damaged."""
    docs = draw(st.lists(st.sampled_from(seed_documents()), min_size=1, max_size=4))
    text = orjson.dumps(orjson.loads(_response(docs)), option=orjson.OPT_INDENT_2)
    text, hurt = draw(damaged(text))
    return text, [] if hurt else [Clean(len(text), len(text), set().union(*map(_ids, docs)))]


@st.composite
def files(draw: st.DrawFn) -> Fuzzed:
    """A file in one of the layouts, sometimes with a byte-order mark, sometimes gzipped (and
    then sometimes damaged), read in blocks of some size, sometimes with small limits."""
    layout = draw(st.sampled_from([json_lines] * 8 + [json_array, pretty_response]))
    content, clean = draw(layout())
    if not draw(st.integers(0, 9)):
        content = b"\xef\xbb\xbf" + content  # a UTF-8 byte-order mark
        clean = [c._replace(stop=c.stop + 3) for c in clean]
    if content[:4].count(0) or content.startswith((b"\xff\xfe", b"\xfe\xff")):
        clean = []  # read as UTF-16
    limits = draw(
        st.one_of(
            st.just({}),
            st.fixed_dictionaries({"max_line_bytes": st.integers(1, 4000)}),
            st.fixed_dictionaries({"max_bytes": st.integers(1, len(content) + 1)}),
        )
    )
    longest, most = limits.get("max_line_bytes"), limits.get("max_bytes")
    loaded = set().union(
        *(
            c.ids
            for c in clean
            if (longest is None or c.longest <= longest) and (most is None or c.stop <= most)
        )
    )
    if not draw(st.integers(0, 5)):
        content = gzip.compress(content, mtime=0)
        if draw(st.booleans()):  # a damaged gzip stream: what follows the damage is lost
            content = draw(draw(st.sampled_from([flip_bytes, cut]))(content))
            loaded = set()
    return Fuzzed(content, draw(BLOCKS), frozenset(loaded), limits)


EXAMPLES = 100  # the default run: about 12 s here (the file: about 20 s)
LONG = int(os.environ.get("XRAYKIT_FUZZ_EXAMPLES") or 0)
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


@pytest.mark.timeout(0 if LONG else 900)  # shrinking a failure may take hypothesis 5 minutes
@settings(max_examples=LONG or EXAMPLES, deadline=None, suppress_health_check=SLOW)
@given(case=files())
def test_damaged_files_load_alike(case: Fuzzed) -> None:
    check_file(case.content, case.block, case.loaded, case.limits)


@pytest.mark.parametrize("block", [None, 1, 7, 300])
def test_undamaged_seeds_load_without_problems(block: int | None) -> None:
    """The seeds are valid: every line format, every seed, CRLF and blank lines, no problem."""
    docs = seed_documents()
    lines = [
        *docs,
        _response(docs[:3]),
        _trace(docs[3:6]),
        DAEMON_HEADER,
        docs[-1],
        *_sample_seeds()[1],
        *otlp_seeds(),
    ]
    content = b"\r\n  \n".join(lines) + b"\n\t\n"
    frames = check_file(content, block, frozenset(set().union(*map(_ids, lines))))
    assert frames["problems"].empty


# -- regression cases: inputs that failed once, and edge cases worth keeping ----------------------


def _line(i: int, extra: bytes = b"") -> bytes:
    """A valid segment document, with ``extra`` (``, "key": value`` text) added at its end."""
    doc = {"name": "web", "id": f"{i:016x}", "trace_id": TRACE, "start_time": T0 + i}
    return orjson.dumps({**doc, "end_time": T0 + i + 0.5})[:-1] + extra + b"}"


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _damaged_gzip() -> bytes:
    """Three long lines, gzipped, one byte of the stream flipped at 80 %: zlib fails there."""
    rnd = random.Random(0)
    text = b"".join(
        json.dumps(
            {
                "name": "web",
                "trace_id": TRACE,
                "start_time": 1.0,
                "end_time": 2.0,
                "id": f"{i:016x}",
                "user": "".join(rnd.choice("abcdefgh") for _ in range(5000)),
            }
        ).encode()
        + b"\n"
        for i in range(3)
    )
    stream = bytearray(gzip.compress(text, mtime=0))
    stream[len(stream) * 80 // 100] ^= 0x55
    return bytes(stream)


class Known(NamedTuple):
    content: bytes
    block: int | None = None
    loaded: frozenset[str] = frozenset()  # ids that must load
    clean: bool = False  # no problems expected
    limits: tuple[tuple[str, int], ...] = ()  # max_bytes, max_line_bytes


def _response_line(document: bytes) -> bytes:
    """A response line whose one segment has ``document`` (JSON text) as its ``Document``."""
    segment = b'{"Id":"0","Document":%s}' % document
    return b'{"Traces":[{"Id":"%s","Segments":[%s]}]}' % (TRACE.encode(), segment)


KNOWN: dict[str, Known] = {
    # found by this fuzzer in the second loader, fixed since
    "empty Document": Known(  # the scanner skipped it, the Python reader reported it
        _line(0) + b"\n" + _response_line(b'""') + b"\n",
    ),
    "gzip, first read one byte": Known(  # gzip was sniffed from a first read of one byte
        gzip.compress(_line(1) + b"\n", mtime=0),
        block=1,
        loaded=frozenset({f"{1:016x}"}),
        clean=True,
    ),
    "damaged array, last element intact": Known(  # read as JSON lines: elements dropped
        b"[\n" + _line(1) + b",\n{broken,\n" + _line(2) + b"\n]\n",
        loaded=frozenset({f"{1:016x}", f"{2:016x}"}),
    ),
    "array without its closing bracket": Known(  # read as JSON lines: only the last loaded
        b"[\n" + _line(1) + b",\n" + _line(2) + b"\n",
        loaded=frozenset({f"{1:016x}", f"{2:016x}"}),
    ),
    "JSON lines, most of them damaged": Known(  # taken for one damaged value: all dropped
        b"\xef\xbb\xbfz" + _line(0)[1:] + b"\n" + _line(1) + b"\nz" + _line(2)[1:] + b"\n",
        loaded=frozenset({f"{1:016x}"}),
    ),
    "lone surrogate in a salvaged array": Known(  # UnicodeEncodeError from the json module
        b"[\n" + _line(1, b', "user": "\\ud800"') + b",\n{broken\n]\n",
    ),
    # found by this fuzzer in the previous loader (commit 4662985), passing today
    "deep annotation value": Known(  # RecursionError from repr() in a problem's message
        _line(0) + b"\n" + _line(1, b', "annotations": {"k": ' + _deep(1000) + b"}") + b"\n",
    ),
    "deep array line": Known(  # RecursionError: one call per level of nested lists
        _line(0) + b"\n" + _deep(1000) + b"\n",
    ),
    "two damaged lines first": Known(  # valid lines dropped: salvaged as one JSON value
        b"{broken\n{broken\n" + _line(1) + b"\n" + _line(2) + b"\n",
        loaded=frozenset({f"{1:016x}", f"{2:016x}"}),
    ),
    "byte-order mark, blank line": Known(  # a problem for the blank line
        b"\xef\xbb\xbf\n" + _line(1) + b"\n" + _line(2) + b"\n",
        loaded=frozenset({f"{1:016x}", f"{2:016x}"}),
        clean=True,
    ),
    "byte-order mark, blank line, damaged line": Known(  # valid lines dropped
        b"\xef\xbb\xbf \n{broken\n" + _line(1) + b"\n",
        loaded=frozenset({f"{1:016x}"}),
    ),
    "damaged gzip, small blocks": Known(_damaged_gzip(), block=127),  # the paths differed
    # edge cases that load alike today
    "deep metadata value": Known(
        _line(0) + b"\n" + _line(1, b', "metadata": {"n": {"k": ' + _deep(1019) + b"}}") + b"\n",
        loaded=frozenset({f"{1:016x}"}),
        clean=True,
    ),
    "deep subsegments": Known(
        _subsegment_chain(500) + b"\n", loaded=frozenset({"00000000deadbeef"}), clean=True
    ),
    "too deep for orjson": Known(_line(0) + b"\n" + _deep(1025) + b"\n"),
    "escaped letters in keys": Known(
        _line(0).replace(b'"id"', b'"\\u0069d"').replace(b'"name"', b'"n\\u0061me"') + b"\n",
        loaded=frozenset({f"{0:016x}"}),
        clean=True,
    ),
    "duplicate keys": Known(
        _line(0, b', "id": "00000000000000ff", "annotations": {"a": 1, "a": "x"}') + b"\n",
        loaded=frozenset({"00000000000000ff"}),
        clean=True,
    ),
    "NULs, escaped and raw": Known(
        _line(0, b', "user": "a\\u0000b"') + b"\n" + _line(1, b', "user": "a\x00b"') + b"\n",
        loaded=frozenset({f"{0:016x}"}),
    ),
    "lone surrogates": Known(
        _line(0)
        + b"\n"
        + b"".join(
            _line(i, b', "user": "%s"' % e) + b"\n"
            for i, e in enumerate([rb"\ud800", rb"\udfff", rb"\ud800\u0041", rb"\ud83d\ude00"])
        ),
        loaded=frozenset({f"{3:016x}"}),
    ),
    "invalid UTF-8": Known(
        _line(0)
        + b"\n"
        + b"".join(_line(i, b', "user": "%s"' % e) + b"\n" for i, e in enumerate(BAD_UTF8))
        + _line(99)
        + b"\n",
        loaded=frozenset({f"{99:016x}"}),
    ),
    "huge numbers": Known(
        b"".join(
            _line(
                i,
                b', "annotations": {"n": %s}, "metadata": {"m": {"v": %s}}, "http": {"response": {"status": %s}}'
                % (n, n, n),
            )
            + b"\n"
            for i, n in enumerate(HUGE)
        )
        + b'{"format":"json","version":1e400}\n',
    ),
    "CR line ends and blank lines": Known(
        _line(0) + b"\r\n \t\r\n\x0b\n" + _line(1) + b"\r" + _line(2) + b"\r\n\r\n" + _line(3),
        block=5,
        loaded=frozenset({f"{0:016x}", f"{3:016x}"}),
    ),
}


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=name) for name, case in KNOWN.items()],
)
def test_known_inputs(case: Known) -> None:
    frames = check_file(case.content, case.block, case.loaded, dict(case.limits))
    if case.clean:
        assert frames["problems"].empty

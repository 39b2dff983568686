"""The shapes a trace file comes in, read record by record into a :class:`~xraykit.io.reader.Reader`.

* a ``BatchGetTraces`` response (one JSON object, or one per line, as a recorded pull is);
* one trace per line (``{"Id": ..., "Segments": [...]}``, what ``jq -c '.Traces[]'`` gives);
* a JSON array or JSON lines of raw segment documents;
* a daemon capture: the header ``{"format":"json","version":1}`` and a document, per packet;
* gzip, zstd or UTF-16 of any of these (:mod:`xraykit.io.source` detects them from the bytes);
* documents and responses given in Python;
* JSON values one after another, each over several lines (``jq .`` output);
* OpenTelemetry spans: OTLP/JSON export requests (``{"resourceSpans": [...]}``, one per file
  or per line), span objects (Transaction Search's OTEL format) and spans as the Python SDK's
  console exporter prints them, translated into segment documents by
  :mod:`xraykit.io.otlp_translate` on the way in (plain export requests in one pass by
  :mod:`xraykit.io.otlp_fast`, read in C when it is built, to the same documents);
  OTLP in protobuf as the collector's file exporter writes it (``format: proto``, or
  ``compression: zstd``: length-prefixed messages, :mod:`xraykit.io.otlp_protobuf`).

What cannot be read becomes a row of ``problems`` (source, location, reason) and never stops
the load: a damaged value is salvaged record by record, so no valid record is lost to a bad
neighbour. With ``on_error="raise"`` the first problem raises
:class:`~xraykit.exceptions.TraceParseError` instead.

Examples
--------
>>> from xraykit.io.formats import frames_from_documents
>>> doc = {"name": "web", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979",
...        "start_time": 1478293361.271, "end_time": 1478293361.449,
...        "subsegments": [{"name": "DynamoDB", "id": "70de5b6f19ff9a0b", "namespace": "aws",
...                         "start_time": 1478293361.3, "end_time": 1478293361.4}]}
>>> frames = frames_from_documents([doc])
>>> frames["subsegments"][["name", "segment_id", "depth"]].values.tolist()
[['DynamoDB', '70de5b6f19ff9a0a', 1]]
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pandas as pd

from xraykit.exceptions import ArgumentTypeError
from xraykit.io import otlp as _otlp
from xraykit.io import otlp_fast as _fast
from xraykit.io import otlp_protobuf as _protobuf
from xraykit.io import otlp_translate as _translate
from xraykit.io import source as _source
from xraykit.io.reader import (
    _DOCUMENT_BYTES,
    _FALLBACK,
    _FULL,
    OnError,
    Reader,
    _Problems,
)

__all__ = [
    "frames_from_documents",
    "frames_from_otlp",
    "frames_from_responses",
    "read_frames",
    "read_source",
    "summarise",
]


_BATCH_DOCUMENTS = 4096  # translated documents handed to the C scanner in one call
_OTLP_LINE = re.compile(rb'\s*\{\s*"resourceSpans"\s*:')


class _Reader(Reader):
    """The document reader, which also takes OpenTelemetry span data (translated first)."""

    def __init__(
        self, problems: _Problems, native: bool = True, options: _translate.Options | None = None
    ) -> None:
        super().__init__(problems, native=native)
        self.otlp_options = options or _translate.Options()
        self.otlp_lines = False  # lines of OTLP requests: read in Python, not by the C scanner
        fast = _fast.FastTranslator(self.otlp_options, native) if _fast.USE_FAST_PATH else None
        self.otlp_fast = fast

    def _object(self, value: dict[str, Any], location: str, raw: bytes | str | None) -> None:
        if _otlp.is_otlp(value):
            _read_otlp(self, value, location)
        else:
            super()._object(value, location, raw)


def _read_otlp(reader: _Reader, value: Any, location: str) -> None:
    """Translate OTLP span data into segment documents and read them (subsegments nested
    into their segments first, as X-Ray assembles them)."""
    fast = reader.otlp_fast
    docs = fast.documents(value) if fast is not None else None
    if docs is None:  # not plain, or the fast path is off: the exact path, which reports
        add = reader.problems.add
        translator = _translate.Translator(reader.otlp_options, add)
        translator.location = location
        docs = []
        for span in _otlp.spans(value, add, location):
            try:
                docs.extend(translator.documents(span))
            except _translate.Refused as refused:
                add(location, f"span {span.span_id}: {refused}")
        if docs:
            docs = _translate.nest(docs)
    _read_translated(reader, docs, location)


def _read_translated(reader: _Reader, docs: list[dict[str, Any]], location: str) -> None:
    """Read the documents translated from one request (with the C scanner when built)."""
    if not docs:
        return
    if reader.native:
        data = b"\n".join([orjson.dumps(doc) for doc in docs])
        _read_lines(reader, data, 0, len(data), 1, location)
    else:  # each located as the scanner locates a document it leaves to Python
        for number, doc in enumerate(docs, 1):
            reader.document(doc, f"{location}:{number}", None)


def frames_from_otlp(
    value: Any,
    *,
    source: str = "<otlp>",
    on_error: OnError = "warn",
    indexed_attributes: Iterable[str] = (),
    index_all_attributes: bool = False,
    validate_trace_ids: bool = True,
    problems: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Build the frames from decoded OTLP span data (see :mod:`xraykit.io.otlp`).

    ``value`` is an export request (``{"resourceSpans": [...]}``), a span object, or a list
    of them; ``indexed_attributes``, ``index_all_attributes`` and ``validate_trace_ids``
    are the X-Ray exporter's settings (see :mod:`xraykit.io.otlp_translate`);
    ``problems`` are ``(location, reason)`` found before (spans that were not JSON).
    """
    if isinstance(indexed_attributes, str) or not isinstance(indexed_attributes, Iterable):
        raise ArgumentTypeError(
            "indexed_attributes must be a list of attribute names, like "
            f'["order.id", "tier"], but {indexed_attributes!r} was passed.'
        )
    options = _translate.Options(
        frozenset(str(k) for k in indexed_attributes),
        bool(index_all_attributes),
        bool(validate_trace_ids),
    )
    reader = _Reader(_Problems(source, on_error), options=options)
    for location, reason in problems:
        reader.problems.add(location, reason)
    _read_otlp(reader, value, source)
    return reader.frames()


def _reason(exc: Exception, line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"bytes that are not UTF-8 at column {bad.start + 1} ({line[bad.start : bad.start + 4]!r})"
    text = str(exc)
    if "recursion" in text.lower() or "depth" in text.lower():
        return f"nesting deeper than a JSON parser accepts ({text})"
    return text


def _read_line(reader: Reader, line: bytes, location: str) -> None:
    """One line, read in Python."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if line.strip():
            reader.problems.add(location, f"not valid JSON: {_reason(exc, line)}")
        return
    reader.accept(value, location, line.strip())


def _read_lines(
    reader: Reader,
    data: bytes,
    start: int,
    end: int,
    number: int,
    source: str,
    where: Callable[[int], str] | None = None,
) -> int:
    """The lines of ``data[start:end]``, the first numbered ``number``: with the C scanner, or
    line by line in Python. Return the number of the next line. A line's location is
    ``source:number``, or ``where(number)``."""
    if not reader.native:
        while start < end:  # each line with its newline, as the scanner hands a line over
            stop = data.find(b"\n", start, end) + 1 or end
            location = f"{source}:{number}" if where is None else where(number)
            _read_line(reader, data[start:stop], location)
            start, number = stop, number + 1
        return number
    scanner = reader.tables
    view = memoryview(data)[start:end]
    pos, size = 0, end - start
    try:
        while pos < size:
            status, pos, number, reader.seq = scanner.scan(
                view, pos, number, reader.seq, _DOCUMENT_BYTES
            )
            if status == _FULL:
                reader.take_documents()
            elif status == _FALLBACK:  # problems and unusual types: Python reads this line
                stop = data.find(b"\n", start + pos, end) + 1 or end
                location = f"{source}:{number}" if where is None else where(number)
                _read_line(reader, data[start + pos : stop], location)
                pos, number = stop - start, number + 1
    finally:
        view.release()
    return number


def _read_json_lines(reader: Reader, events: Iterable[Any], source: str, number: int = 1) -> int:
    """Read runs of lines (and report the long lines skipped); return the next line's number."""
    for event in events:
        if isinstance(event, _source.LongLine):
            reader.problems.add(
                f"{source}:{number}",
                f"a line of {event.length:,} bytes, longer than max_line_bytes; skipped without "
                "reading it. Pass max_line_bytes=None, or a larger number, to read it",
            )
            number += 1
        elif isinstance(reader, _Reader) and reader.otlp_lines:  # the scanner cannot read them
            number = _read_otlp_lines(reader, event.data, event.start, event.end, number, source)
        else:
            number = _read_lines(reader, event.data, event.start, event.end, number, source)
    return number


def _read_otlp_lines(
    reader: _Reader, data: bytes, start: int, end: int, number: int, source: str
) -> int:
    """Lines of OTLP export requests (as :func:`_read_lines` reads them in Python, export
    requests handed straight to the translation). Return the number of the next line."""
    fast = reader.otlp_fast
    pending = _Translated(reader, source)
    view = memoryview(data)
    try:
        while start < end:
            stop = data.find(b"\n", start, end) + 1 or end
            docs = fast.documents_of_text(view[start:stop]) if fast is not None else None
            if docs is not None:  # read in C: a plain request
                pending.add(docs, number)
            else:
                pending.flush()  # rows and problems stay in the order of the lines
                _read_otlp_line(reader, data[start:stop], f"{source}:{number}")
            start, number = stop, number + 1
        pending.flush()
    finally:
        view.release()
    return number


class _Translated:
    """Documents translated from lines of OTLP requests, read by the C scanner
    :data:`_BATCH_DOCUMENTS` at a time (a call per request costs more than scanning its few
    documents); each keeps the location it would have had read alone."""

    def __init__(self, reader: _Reader, source: str) -> None:
        self.reader, self.source = reader, source
        self.texts: list[bytes] = []
        self.ends: list[int] = []  # per request: where its documents end in `texts`
        self.numbers: list[int] = []  # per request: its line's number

    def add(self, docs: list[dict[str, Any]], number: int) -> None:
        if not self.reader.native:
            _read_translated(self.reader, docs, f"{self.source}:{number}")
        elif docs:
            self.texts += map(orjson.dumps, docs)
            self.ends.append(len(self.texts))
            self.numbers.append(number)
            if len(self.texts) >= _BATCH_DOCUMENTS:
                self.flush()

    def flush(self) -> None:
        if self.texts:
            data = b"\n".join(self.texts)
            _read_lines(self.reader, data, 0, len(data), 0, self.source, self._where)
            self.texts, self.ends, self.numbers = [], [], []

    def _where(self, index: int) -> str:
        """The location of the document at ``index`` (from 0): its request's line, and its
        number in that request, as :func:`_read_translated` names it."""
        k = bisect.bisect_right(self.ends, index)
        first = self.ends[k - 1] if k else 0
        return f"{self.source}:{self.numbers[k]}:{index - first + 1}"


def _read_otlp_line(reader: _Reader, line: bytes, location: str) -> None:
    """One line of a file of OTLP requests, read in Python: export requests handed straight
    to the translation, anything else (problems included) as any line is read."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        value = None
    if type(value) is dict and "resourceSpans" in value:
        _read_otlp(reader, value, location)
    else:
        _read_line(reader, line, location)


def _first_line(event: _source.Lines) -> bytes | None:
    """The first non-blank line of a run of lines, or None."""
    data, at = event.data, event.start
    while at < event.end:
        stop = data.find(b"\n", at, event.end)
        stop = event.end if stop < 0 else stop + 1
        if data[at:stop].strip():
            return bytes(data[at:stop])
        at = stop
    return None


def _read_source(reader: Reader, src: _source.Source) -> None:
    """Detect the layout from the first line (JSON lines, or one JSON value) and read it."""
    if isinstance(reader, _Reader):
        head = src.head(8)
        if _protobuf.is_framed(head):
            _read_framed(reader, src)
            return
        if _protobuf.is_message(head) and _read_message(reader, src):
            return
    events = _source.line_events(src)
    ahead: list[Any] = []  # what was read to find the first line (copied: blocks are reused)
    first = None
    for event in events:
        if isinstance(event, _source.Lines):
            event = _source.Lines(
                bytes(event.data[event.start : event.end]), 0, event.end - event.start
            )
            first = _first_line(event)
        ahead.append(event)
        if first is not None:
            break
    source = src.name
    if first is not None and isinstance(reader, _Reader):
        reader.otlp_lines = _OTLP_LINE.match(first) is not None
    if first is None or _is_json(first):
        number = _read_json_lines(reader, ahead, source)
        _read_json_lines(reader, events, source, number)
        return
    # the first line alone is not JSON: a pretty-printed value, or a damaged first line
    for event in events:
        if isinstance(event, _source.Lines):
            event = _source.Lines(
                bytes(event.data[event.start : event.end]), 0, event.end - event.start
            )
        ahead.append(event)
    whole = b"".join(e.data for e in ahead if isinstance(e, _source.Lines))
    if reader.native and reader._scan_text(whole):
        _report_long_lines(reader, ahead, source)
        return
    if isinstance(reader, _Reader) and reader.otlp_fast is not None:
        docs = reader.otlp_fast.documents_of_text(whole)
        if docs is not None:  # one plain OTLP request, read in C
            _report_long_lines(reader, ahead, source)
            _read_translated(reader, docs, source)
            return
    try:
        value = orjson.loads(whole)
    except orjson.JSONDecodeError as exc:
        values = _value_sequence(whole)
        if values is not None:  # values one after another, each split over lines
            _report_long_lines(reader, ahead, source)
            for line, text in values:
                _read_line(reader, text, f"{source}:{line}")
        elif _split_value(first, whole):  # one value split over lines, damaged or cut off
            _report_long_lines(reader, ahead, source)
            _salvage(reader, whole, source, exc)
        else:  # JSON lines, the first of them damaged
            _read_json_lines(reader, ahead, source)
        return
    _report_long_lines(reader, ahead, source)
    reader.accept(value, source, whole.strip())


def _read_framed(reader: _Reader, src: _source.Source) -> None:
    """Length-prefixed OTLP messages (the collector's file exporter with ``format: proto``
    or ``compression: zstd``): each protobuf, or JSON, zstd-compressed or not; located
    ``file:N`` for the N-th message."""
    limit = src.max_line_bytes
    for number, message, reason in _protobuf.frames(src.binary_blocks(), limit):
        location = f"{src.name}:{number}"
        if message is None:
            reader.problems.add(location, str(reason))
            continue
        try:
            if message.startswith(_source.ZSTD_MAGIC):
                message = _protobuf.unzstd(message, limit)
            if message.lstrip()[:1] in (b"{", b"["):
                _read_otlp_line(reader, message, location)
            else:
                _read_otlp(reader, _protobuf.request(message), location)
        except _protobuf.ProtobufError as bad:
            reader.problems.add(location, str(bad))


def _read_message(reader: _Reader, src: _source.Source) -> bool:
    """Read the file as one unframed OTLP protobuf message if it is one (held whole to try,
    at most ``max_line_bytes``, and left in place for the text reader if it is not)."""
    limit = src.max_line_bytes if src.max_line_bytes is not None else _source.MAX_LINE_BYTES
    whole = src.head(limit + 1)
    request = _protobuf.single_request(whole) if len(whole) <= limit else None
    if request is None:
        return False
    _read_otlp(reader, request, src.name)
    return True


def _value_sequence(whole: bytes) -> list[tuple[int, bytes]] | None:
    """The values of text that is two or more JSON objects or arrays one after another,
    separated by whitespace only (what the OpenTelemetry SDK's console exporter prints, or
    ``jq .``), each with the number of the line it starts on; None for any other text.

    Python's JSON decoder finds where each value ends; each is then read as a line is, so a
    value is accepted exactly when it would be on a line of its own.
    """
    text = whole.decode("utf-8", errors="surrogateescape")
    decoder = json.JSONDecoder()
    values: list[tuple[int, bytes]] = []
    pos, line, size = 0, 1, len(text)
    while True:
        start = pos
        while pos < size and text[pos] in " \t\r\n":
            pos += 1
        line += text.count("\n", start, pos)
        if pos >= size:
            return values if len(values) >= 2 else None
        if text[pos] not in "{[":
            return None
        try:
            end = decoder.raw_decode(text, pos)[1]
        except (json.JSONDecodeError, RecursionError):
            return None
        values.append((line, text[pos:end].encode("utf-8", errors="surrogateescape")))
        line += text.count("\n", pos, end)
        pos = end


def _split_value(first: bytes, whole: bytes) -> bool:
    """Whether text that is not one JSON value is one split over lines (pretty-printed, or an
    array of an element per line), damaged or cut off, rather than JSON lines: its first line
    opens an array or object it does not close, it is an array or a ``BatchGetTraces``
    response, and most of its lines are not JSON alone."""
    head = first.strip()
    if not (head in (b"[", b"{") or head.endswith((b"[", b"{", b","))):
        return False
    if not (whole.lstrip().startswith(b"[") or re.search(rb'"Traces"\s*:\s*\[', whole)):
        return False
    lines = [line for line in whole.split(b"\n") if line.strip()]
    return 2 * sum(_is_json(line) for line in lines) < len(lines)


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _report_long_lines(reader: Reader, events: list[Any], source: str) -> None:
    """Report the long lines skipped, when the rest was read as one value."""
    number = 1
    for event in events:
        if isinstance(event, _source.LongLine):
            _read_json_lines(reader, [event], source, number)
            number += 1
        else:
            number += event.data.count(b"\n", event.start, event.end)


def read_frames(
    source: Any,
    *,
    on_error: OnError = "warn",
    max_bytes: int | None = _source.MAX_BYTES,
    max_line_bytes: int | None = _source.MAX_LINE_BYTES,
) -> dict[str, Any]:
    """Read a trace file or stream in any supported JSON format into frames.

    Raises
    ------
    FileNotFoundError
        When a path does not exist.
    """
    with _source.open_source(source, max_bytes=max_bytes, max_line_bytes=max_line_bytes) as src:
        return read_source(src, on_error=on_error)


def read_source(
    src: _source.Source, *, on_error: OnError = "warn", native: bool = True
) -> dict[str, Any]:
    """Read an opened :class:`~xraykit.io.source.Source` of JSON text into frames."""
    problems = _Problems(src.name, on_error)
    reader = _Reader(problems, native=native)
    _read_source(reader, src)
    for location, reason in src.issues:
        problems.add(location, reason)
    return reader.frames()


def _salvage(reader: Reader, data: bytes, source: str, exc: Exception) -> None:
    """Recover the complete elements of a damaged or cut-off JSON array or ``BatchGetTraces``
    response (its ``Traces``).

    Python's JSON decoder finds where each element ends; orjson then reads it, so an element
    is accepted exactly when a line of it would be. Past a damaged element, reading resumes at
    the next line that starts where the first element did (pretty-printed arrays indent their
    elements alike) and holds a whole element; the damaged stretch is reported.
    """
    problems = reader.problems
    text = data.decode("utf-8", errors="surrogateescape")
    stripped = text.lstrip()
    if stripped.startswith("["):
        start, traces = len(text) - len(stripped) + 1, False
    else:
        m = re.search(r'"Traces"\s*:\s*\[', text)
        if m is None:
            problems.add(
                source, f"not valid JSON and nothing could be recovered: {_reason(exc, data)}"
            )
            return
        start, traces = m.end(), True
    decoder = json.JSONDecoder()
    pos, kept, indent, closed = start, 0, None, False
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            break
        if text[pos] == "]":
            closed = True
            break
        line = text.count("\n", 0, pos) + 1
        if indent is None:
            indent = pos - (text.rfind("\n", 0, pos) + 1)
        try:
            end = decoder.raw_decode(text, pos)[1]
        except (json.JSONDecodeError, RecursionError) as err:
            reason = (
                "nesting deeper than a JSON parser accepts"
                if isinstance(err, RecursionError)
                else err.msg
            )
            resume = _resume(text, decoder, pos, indent)
            upto = (
                f"up to line {text.count(chr(10), 0, resume)}"
                if resume is not None
                else "to the end"
            )
            problems.add(
                f"{source}:{line}",
                f"damaged or truncated JSON ({reason}) from here {upto}; skipped, the {kept} element(s) before it were kept",
            )
            if resume is None:
                return
            pos = resume
            continue
        piece = text[pos:end].encode("utf-8", "surrogateescape")
        try:
            value = orjson.loads(piece)
        except orjson.JSONDecodeError as err:
            problems.add(f"{source}:{line}", f"not valid JSON: {_reason(err, piece)}")
        else:
            if traces:
                reader.trace(value, f"{source}:{line}")
            else:
                reader.accept(value, f"{source}:{line}", piece)
            kept += 1
        pos = end
    if not closed:
        problems.add(
            source,
            f"the JSON ends before its closing bracket (a file cut off?); the {kept} complete element(s) were kept",
        )


def _resume(text: str, decoder: json.JSONDecoder, pos: int, indent: int) -> int | None:
    """Where the next whole element starts after a damaged one, or None."""
    at = text.find("\n", pos)
    while at >= 0:
        begin = at + 1
        first = begin + indent
        if text[begin:first].strip(" \t") == "" and text[first : first + 1] in ("{", "["):
            try:
                end = decoder.raw_decode(text, first)[1]
            except (json.JSONDecodeError, RecursionError):
                pass
            else:
                follow = text[end:].lstrip()
                if not follow or follow[0] in ",]":
                    return first
        at = text.find("\n", begin)
    return None


# -- documents given in Python ------------------------------------------------------------------


def frames_from_documents(
    documents: Iterable[dict[str, Any] | str | bytes],
    *,
    source: str = "<documents>",
    on_error: OnError = "warn",
) -> dict[str, Any]:
    """Build the frames from segment documents given as dicts or JSON text.

    Each item may also be a ``BatchGetTraces`` response, or a list of documents.
    """
    if isinstance(documents, str | bytes | bytearray | dict):
        documents = [documents]  # one document, or the JSON text of a list of them
    elif not isinstance(documents, Iterable):
        raise ArgumentTypeError(
            "from_documents() takes an iterable of segment documents (dicts or JSON strings), "
            f"but {type(documents).__name__} was passed. To read a file, use xraykit.load_file(path)."
        )
    reader = _Reader(_Problems(source, on_error))
    for i, item in enumerate(documents):
        location = f"{source}[{i}]"
        if isinstance(item, str | bytes | bytearray | memoryview):
            text = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else bytes(item)
            if reader.native and reader._scan_text(text):
                continue
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                reader.problems.add(location, f"not valid JSON: {_reason(exc, text)}")
                continue
            reader.accept(value, location, text.strip())
        else:
            reader.accept(item, location, None)
    return reader.frames()


def frames_from_responses(
    responses: Iterable[dict[str, Any]],
    *,
    source: str = "BatchGetTraces",
    on_error: OnError = "warn",
) -> dict[str, Any]:
    """Build the frames from ``BatchGetTraces`` response dicts (as boto3 returns them)."""
    return frames_from_documents(responses, source=source, on_error=on_error)


def summarise(problems: pd.DataFrame) -> str:
    """One sentence counting the problems by source, for the load warning."""
    counts = problems.groupby("source", sort=False).size()
    parts = ", ".join(f"{n} in {src}" for src, n in counts.items())
    return (
        f"{len(problems)} record(s) could not be read and were skipped or repaired ({parts}); "
        "every valid document was loaded. See the TraceSet's `problems` frame for what and where, "
        'or pass on_error="raise" to stop at the first one.'
    )

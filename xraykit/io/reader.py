"""The reader of segment documents: one document at a time, checked, into column rows.

:class:`Reader` takes documents (JSON text or dicts) from :mod:`xraykit.io.formats`. A JSON
line goes to the C scanner (``_scan.c``) when it is built; whatever the scanner cannot load
exactly as the Python reader here would (a problem to report, a type the schema does not
allow) is read here, into the same column buffers (:mod:`xraykit.io.columns`). Every document
field is checked against the JSON type :mod:`xraykit.schema` declares: a field of the wrong
type is a problem row and the entity loads without it. Nested values are walked without
recursion. Originals go to a compressed :class:`~xraykit.io.docstore.DocumentStore`;
:meth:`Reader.frames` hands the rows to :mod:`xraykit.io.assemble`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import orjson
import pandas as pd

from xraykit.exceptions import ArgumentError, TraceParseError
from xraykit.io import columns as _columns
from xraykit.io.assemble import assemble_frames
from xraykit.io.columns import (
    CONTEXT,
    ENTITY,
    EXCEPTION,
    FIELD,
    FIRST,
    FRAME,
    TABLES,
    Field,
    TableColumn,
)
from xraykit.io.docstore import DocumentStoreBuilder
from xraykit.schema import SCHEMAS, conform, empty_frame

__all__ = ["DAEMON_HEADER", "OnError", "Reader", "entity_error"]

OnError = Literal["warn", "raise", "ignore"]

#: The header line SDKs put before every document they send to the daemon.
DAEMON_HEADER = b'{"format":"json","version":1}'

TRACE_ID = re.compile(r"\A\d+-[0-9A-Fa-f]{8}-[0-9A-Fa-f]{24}\Z")
_MIN_TIME, _MAX_TIME = 0.0, 1e11  # epoch seconds X-Ray could have recorded
_DOCUMENT_BYTES = 1 << 20  # document text held before it is compressed
_STACK = EXCEPTION.fields["stack"].path
#: the parts of a stack frame in ``top_frame``, and what stands for one that is absent
_FRAME_PARTS = [
    (FRAME.fields["path"].path, "?"),
    (FRAME.fields["line"].path, "?"),
    (FRAME.fields["label"].path, ""),
]
_ANNOTATION_TYPES = {str: "string", bool: "boolean", int: "number", float: "number"}
_FULL, _FALLBACK = 1, 2  # what the C scanner's scan() says (_scan.FULL, _scan.FALLBACK)
_DOCUMENT = 2  # the C scanner's mode for one document (_scan.DOCUMENT)
_A_TYPE = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "object": "an object",
    "array": "a list",
}


class _Problems:
    """Collects what could not be read; raises at once under ``on_error="raise"``."""

    def __init__(self, source: str, on_error: OnError) -> None:
        if on_error not in ("warn", "raise", "ignore"):
            raise ArgumentError(
                f'`on_error` must be one of "warn", "raise" or "ignore", but {on_error!r} was passed.'
            )
        self.source = source
        self.on_error = on_error
        self.rows: list[tuple[str, str, str]] = []

    def add(self, location: str, reason: str) -> None:
        if self.on_error == "raise":
            where = location if location.startswith(self.source) else f"{self.source} {location}"
            raise TraceParseError(f"{where}: {reason}", source=self.source, location=location)
        self.rows.append((self.source, location, reason))

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return empty_frame("problems")
        return conform(pd.DataFrame(self.rows, columns=list(SCHEMAS["problems"])), "problems")


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except RecursionError:  # a value nested deeper than repr goes
        text = f"<{type(value).__name__} nested too deep to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kinds(types: frozenset[str]) -> str:
    return " or ".join(_A_TYPE[t] for t in sorted(types))


def _allowed(value: Any, types: frozenset[str]) -> bool:
    """Whether a JSON value (not None) is of one of ``types``."""
    kind = type(value)
    if kind is str:
        return "string" in types
    if kind is bool:
        return "boolean" in types
    if kind is int:
        return "number" in types or ("integer" in types and -(2**63) <= value < 2**63)
    if kind is float:
        return "number" in types
    if kind is dict:
        return "object" in types
    if kind is list:
        return "array" in types
    return False


def entity_error(d: Any) -> str | None:
    """Say what is wrong with an entity's required fields, or None when it is usable."""
    if type(d) is not dict:
        return f"expected a JSON object for a segment or subsegment, got {type(d).__name__} {_short(d)}"
    eid = d.get("id")
    if type(eid) is not str or not eid:
        return f"missing or invalid 'id' (expected a 16-hex-digit string, got {_short(eid)})"
    name = d.get("name")
    if type(name) is not str:
        return f"entity {eid}: missing or invalid 'name' (expected a string, got {_short(name)})"
    for field in ("start_time", "end_time"):
        value: Any = d.get(field)
        if value is None and field == "end_time":
            continue
        if type(value) not in (float, int):
            return f"entity {eid}: '{field}' must be a number of epoch seconds, got {_short(value)}"
        if not _MIN_TIME <= value < _MAX_TIME:
            return (
                f"entity {eid}: '{field}' must be epoch seconds between 0 and {_MAX_TIME:.0f} "
                f"(years 1970 to 5138), got {value!r}; milliseconds or nanoseconds by mistake?"
            )
    return None


def _column_value(column: TableColumn, fields: dict[str, Any], context: dict[str, Any]) -> Any:
    """One column's value for a row: ``fields`` maps paths to the row's valid field values."""
    if column.op == CONTEXT:
        if column.context == "trace_code":
            return context["trace_id"]  # the tables number it
        return context[column.context]  # type: ignore[index]
    get = fields.get
    if column.op == FIELD:
        value = get(column.fields[0].path)
    elif column.op == FIRST:  # as Python's `or`: the first truthy, else the last
        for field in column.fields:
            value = get(field.path)
            if value:
                break
    else:
        value = " ".join(p for p in (get(f.path) for f in column.fields) if p) or None
    kind = column.kind
    if kind == "str":
        if type(value) is not str:
            return None
        return value.upper() if column.upper else value
    if kind == "bool":
        return value is True
    if kind == "time":
        return None if value is None else round(value * 1e6)
    return value


class Reader:
    """One pass over JSON values: documents become rows of ``tables`` (the C scanner's
    buffers, or :class:`~xraykit.io.columns.PythonTables`), problems go to ``problems``."""

    def __init__(self, problems: _Problems, native: bool = True) -> None:
        self.problems = problems
        self.tables = _columns.new_tables(native)
        self.native = hasattr(self.tables, "scan")
        self.seq = 0  # the number of the next entity, in reading order
        self.docs = DocumentStoreBuilder()
        self.doc_seqs: list[Any] = []
        self.doc_bytes = 0  # document text appended since the documents were last taken

    # -- routing -----------------------------------------------------------------------------

    def accept(self, value: Any, location: str, raw: bytes | str | None) -> None:
        """Route one parsed JSON value: a response, a trace, a document, a header or a list.

        ``raw`` is its JSON text when it came as text (kept as the document's text).
        """
        stack = [(value, location, raw)]
        while stack:
            value, location, raw = stack.pop()
            if type(value) is dict:
                self._object(value, location, raw)
            elif type(value) is list:
                texts = _item_texts(raw) if raw is not None else [None] * len(value)
                items = [
                    (v, f"{location}[{i}]", t)
                    for i, (v, t) in enumerate(zip(value, texts, strict=True))
                ]
                stack.extend(reversed(items))
            else:
                self.problems.add(
                    location,
                    f"expected a segment document, a list of them or a BatchGetTraces response "
                    f"(a JSON object or array), got {type(value).__name__} {_short(value)}",
                )

    def _object(self, value: dict[str, Any], location: str, raw: bytes | str | None) -> None:
        problems = self.problems
        if "Traces" in value:
            traces = value.get("Traces")
            if type(traces) is not list:
                problems.add(location, f"'Traces' must be a list, got {_short(traces)}")
                return
            for i, trace in enumerate(traces):
                self.trace(trace, f"{location} Traces[{i}]")
            unprocessed = value.get("UnprocessedTraceIds") or []
            if type(unprocessed) is list:
                for tid in unprocessed:
                    problems.add(
                        location,
                        f"BatchGetTraces could not return trace {tid} (UnprocessedTraceIds)",
                    )
        elif "Segments" in value and "Id" in value:
            self.trace(value, location)
        elif "format" in value and "version" in value and "id" not in value:
            fmt, version = value.get("format"), value.get("version")
            if not (isinstance(fmt, str) and fmt.lower() == "json" and version == 1):
                problems.add(
                    location,
                    f'daemon header must be {{"format": "json", "version": 1}}, got {_short(value)}',
                )
        elif "TraceSummaries" in value:
            problems.add(
                location,
                "this is a GetTraceSummaries response: summaries hold no segment documents. "
                "Fetch the traces themselves with BatchGetTraces (xraykit.fetch does both)",
            )
        else:
            self.document(value, location, raw)

    def trace(self, trace: Any, location: str) -> None:
        """One trace of a BatchGetTraces response: the documents of its ``Segments``."""
        problems = self.problems
        if type(trace) is not dict or type(trace.get("Segments")) is not list:
            problems.add(
                location, f"a trace must be an object with a 'Segments' list, got {_short(trace)}"
            )
            return
        if trace.get("LimitExceeded") is True:
            problems.add(
                location,
                f"trace {trace.get('Id')} reached X-Ray's size limit (LimitExceeded): some segments are missing",
            )
        for j, segment in enumerate(trace["Segments"]):
            doc = segment.get("Document") if type(segment) is dict else None
            where = f"{location}.Segments[{j}]"
            if type(doc) is str:
                if self.native and self._scan_text(doc.encode("utf-8", "surrogatepass"), _DOCUMENT):
                    continue
                try:
                    parsed = orjson.loads(doc)
                except orjson.JSONDecodeError as exc:
                    problems.add(where, f"the Document is not valid JSON: {exc}")
                    continue
                self.document(parsed, location, doc)
            elif type(doc) is dict:
                self.document(doc, where, None)
            else:
                problems.add(
                    where,
                    f"expected a segment with a 'Document' JSON string, got {_short(segment)}",
                )

    def _scan_text(self, text: bytes, mode: int = 1) -> bool:
        """Let the C scanner read one JSON value (or, ``mode`` 2, one document); False when
        Python must read it."""
        status, _pos, _line, self.seq = self.tables.scan(
            text, 0, 0, self.seq, _DOCUMENT_BYTES, mode
        )
        if status == _FULL:
            self.take_documents()
        return bool(status != _FALLBACK)

    # -- entities ----------------------------------------------------------------------------

    def document(self, doc: Any, location: str, text: bytes | str | None) -> None:
        """One top-level document: a segment, or a subsegment sent on its own."""
        problems = self.problems
        if type(doc) is not dict:
            problems.add(location, entity_error(doc) or "not a document")
            return
        error = entity_error(doc)
        tid: Any = doc.get("trace_id")
        if error is None and (type(tid) is not str or TRACE_ID.match(tid) is None):
            error = (
                f"entity {doc['id']}: 'trace_id' must look like 1-5759e988-bd862e3fe1be46a994272793 "
                f"(version, 8 hex digits of epoch seconds, 24 hex digits), got {_short(tid)}"
            )
        streamed = doc.get("type") == "subsegment"
        parent = doc.get("parent_id")
        if error is None and streamed and (type(parent) is not str or not parent):
            error = (
                f"subsegment {doc['id']} was sent on its own (type 'subsegment') but has no "
                f"'parent_id' naming its segment or subsegment, got {_short(parent)}"
            )
        if error is not None:
            problems.add(location, error)
            return
        eid = doc["id"]
        if text is None:
            text = _dumps(doc)
            if text is None:
                problems.add(
                    location,
                    f"entity {eid}: cannot be written as JSON text (a string that is not valid Unicode, or a value that is not JSON); skipped",
                )
                return
        fields, in_progress = self._fields(doc, eid, location)
        context = {
            "trace_id": tid,
            "in_progress": in_progress,
            "seq": self.seq,
            "streamed": streamed,
        }
        if streamed:
            context.update(segment_id=None, parent_id=parent, depth=1, anchor=eid)
            self._row("subsegments", fields, context)
        else:
            self._row("segments", fields, context)
        self._extras(fields, tid, eid, location)
        links = '"links"' in text if type(text) is str else b'"links"' in text
        context.update(entity_id=eid, text=text, has_links=links)
        self._row("documents", {}, context)
        self._row("document_index", {}, context)
        self.doc_bytes += len(text)
        self.seq += 1
        subs = fields.get("subsegments")
        if subs:
            self._nested(
                subs,
                tid,
                None if streamed else eid,
                eid,
                1 if streamed else 0,
                eid if streamed else None,
                location,
            )
        self._take_documents_if_full()

    def _nested(
        self,
        subs: list[Any],
        tid: str,
        segment_id: str | None,
        parent: str,
        depth0: int,
        anchor: str | None,
        location: str,
    ) -> None:
        """Subsegments at any depth (an explicit stack: no recursion)."""
        stack = [(subs, parent, depth0 + 1)]
        while stack:
            items, pid, depth = stack.pop()
            for child in items:
                error = entity_error(child)
                if error is not None:
                    # keep its valid children: they move up to the nearest valid ancestor
                    self.problems.add(location, f"subsegment under {pid}: {error}")
                    grandchildren = child.get("subsegments") if type(child) is dict else None
                    if type(grandchildren) is list and grandchildren:
                        stack.append((grandchildren, pid, depth))
                    elif grandchildren:
                        self.problems.add(
                            location,
                            f"entity {pid}: 'subsegments' must be a list, got {_short(grandchildren)}",
                        )
                    continue
                eid = child["id"]
                fields, in_progress = self._fields(child, eid, location)
                context = {
                    "trace_id": tid,
                    "segment_id": segment_id,
                    "parent_id": pid,
                    "depth": depth,
                    "in_progress": in_progress,
                    "streamed": False,
                    "anchor": anchor,
                    "seq": self.seq,
                }
                self._row("subsegments", fields, context)
                self._extras(fields, tid, eid, location)
                self.seq += 1
                grandchildren = fields.get("subsegments")
                if grandchildren:
                    stack.append((grandchildren, eid, depth + 1))

    def _fields(
        self, entity: dict[str, Any], eid: str, location: str
    ) -> tuple[dict[str, Any], bool]:
        """The entity's fields of a declared type, by path (others are problems), and whether
        it is in progress (no end, or it says so)."""
        fields = self._check(entity, ENTITY, eid, location, record=True)
        in_progress = fields.get("end_time") is None or fields.get("in_progress") is True
        if fields.get("end_time") is None and fields.get("in_progress") is not True:
            self.problems.add(
                location,
                f"entity {eid}: has neither 'end_time' nor 'in_progress': true; kept as in progress",
            )
        return fields, in_progress

    def _check(
        self,
        obj: dict[str, Any],
        root: Field,
        eid: str,
        location: str,
        record: bool,
        quiet: bool = False,
    ) -> dict[str, Any]:
        """Check ``obj``'s fields against ``root``; return the valid ones by path when
        ``record`` (array items are checked, not recorded). ``quiet``: report nothing."""
        found: dict[str, Any] = {}
        stack: list[tuple[dict[str, Any], Field, str, bool]] = [(obj, root, "", record)]
        while stack:
            current, spec, where, keep = stack.pop()
            for key, value in current.items():
                field = spec.fields.get(key)
                if field is None or value is None:
                    continue
                shown = f"{where}.{key}" if where else key
                if not _allowed(value, field.types):
                    if not quiet:
                        self.problems.add(
                            location,
                            f"entity {eid}: '{shown}' must be {_kinds(field.types)}, got {_short(value)}; "
                            "ignored, the entity loads without it",
                        )
                    continue
                if keep:
                    found[field.path] = value
                if field.fields and type(value) is dict:
                    stack.append((value, field, shown, keep))
                elif field.item is not None and type(value) is list:
                    item = field.item
                    for i, element in enumerate(value):
                        if element is None or not _allowed(element, item.types):
                            if not quiet:
                                self.problems.add(
                                    location,
                                    f"entity {eid}: '{shown}[{i}]' must be {_kinds(item.types)}, got "
                                    f"{_short(element)}; ignored",
                                )
                        elif item.fields and type(element) is dict:
                            stack.append((element, item, f"{shown}[{i}]", False))
        return found

    def _extras(self, fields: dict[str, Any], tid: str, eid: str, location: str) -> None:
        """Rows of the entity's annotations, metadata and exceptions."""
        row = self._row
        annotations = fields.get("annotations")
        for key, value in annotations.items() if annotations else ():
            kind = _ANNOTATION_TYPES.get(type(value))
            if kind is None:
                self.problems.add(
                    location,
                    f"entity {eid}: annotation {key!r} must be a string, number or boolean, "
                    f"got {_short(value)}; use metadata for structured values",
                )
                continue
            context = {
                "trace_id": tid,
                "entity_id": eid,
                "key": _text(key),
                "value": value,
                "value_type": kind,
                "seq": self.seq,
            }
            row("annotations", {}, context)
        metadata = fields.get("metadata")
        for namespace, entries in metadata.items() if metadata else ():
            context = {
                "trace_id": tid,
                "entity_id": eid,
                "namespace": _text(namespace),
                "seq": self.seq,
            }
            if type(entries) is dict:
                for key, value in entries.items():
                    row("metadata", {}, {**context, "key": _text(key), "value": value})
            else:  # a namespace holding a value of its own: no key
                row("metadata", {}, {**context, "key": None, "value": entries})
        if type(fields.get("cause")) is not dict:
            return
        for exception in fields.get("cause.exceptions") or ():
            if type(exception) is not dict:
                continue  # reported when the entity was checked
            found = self._check(exception, EXCEPTION, eid, location, record=True, quiet=True)
            stack = found.get(_STACK) or []
            top = None
            if stack and type(stack[0]) is dict:
                frame = self._check(stack[0], FRAME, eid, location, record=True, quiet=True)
                path, line, label = (frame.get(p, d) for p, d in _FRAME_PARTS)
                top = f"{path}:{line} {label}".rstrip()
            context = {
                "trace_id": tid,
                "entity_id": eid,
                "stack_depth": len(stack),
                "top_frame": top,
                "seq": self.seq,
            }
            row("exceptions", found, context)

    def _row(self, table: str, fields: dict[str, Any], context: dict[str, Any]) -> None:
        self.tables.append(table, tuple(_column_value(c, fields, context) for c in TABLES[table]))

    # -- output ------------------------------------------------------------------------------

    def _take_documents_if_full(self) -> None:
        if self.doc_bytes >= _DOCUMENT_BYTES:
            self.take_documents()

    def take_documents(self) -> None:
        """Compress the documents read so far."""
        self.doc_bytes = 0
        columns = self.tables.take(False)["documents"]
        self._add_documents(columns)

    def _add_documents(self, columns: list[Any]) -> None:
        (text,) = columns
        if text[0]:
            self.docs.add_texts(_columns.to_arrow("str", text))

    def frames(self) -> dict[str, Any]:
        """The frames of everything read (the reader is spent)."""
        taken = self.tables.take(True)
        self._add_documents(taken.pop("documents"))
        trace_ids = _columns.to_arrow("str", taken.pop("trace_ids"))
        index = _columns.to_frame("document_index", taken.pop("document_index"))
        docs = self.docs.finish_indexed(
            index["_trace"].to_numpy(),
            trace_ids,
            _columns.arrow(index["entity_id"]),
            index["in_progress"].to_numpy(),
            index["has_links"].to_numpy(),
        )
        doc_seqs = index["_seq"].to_numpy()
        del index
        frames = {name: _columns.to_frame(name, columns) for name, columns in taken.items()}
        del taken
        ids = _columns.entity_index(frames["segments"], frames["subsegments"])
        return assemble_frames(frames, docs, doc_seqs, self.problems, trace_ids, ids)


def _text(key: Any) -> str:
    """A dict key as text (documents given as dicts may have keys that are not strings)."""
    return key if type(key) is str else str(key)


def _dumps(doc: Any) -> str | None:
    """A document given as a dict, as JSON text; None when it has no valid JSON text."""
    try:
        return orjson.dumps(doc).decode()
    except (TypeError, orjson.JSONEncodeError):
        try:
            text = json.dumps(doc, default=str, ensure_ascii=False)
            text.encode("utf-8")  # a lone surrogate cannot be stored
        except (TypeError, ValueError, RecursionError):
            return None
        return text


_ARRAY_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')


def _item_texts(raw: bytes | str) -> list[bytes]:
    """The JSON text of each element of the JSON array ``raw`` (which is valid JSON).

    >>> _item_texts(b'[{"a": [1, 2]}, "x,y", 3 ]')
    [b'{"a": [1, 2]}', b'"x,y"', b'3']
    """
    text = raw.encode() if isinstance(raw, str) else bytes(raw)
    items: list[bytes] = []
    depth, start = 0, 0
    for match in _ARRAY_TOKENS.finditer(text):
        char = text[match.start()]
        if char == 0x22:  # a string
            continue
        if char in b"[{":
            depth += 1
            if depth == 1:
                start = match.end()
        elif char in b"]}":
            if depth == 1:
                last = text[start : match.start()].strip()
                if last or items:
                    items.append(last)
            depth -= 1
        elif depth == 1:  # a comma between elements
            items.append(text[start : match.start()].strip())
            start = match.end()
    return items

"""Read every input format into segment documents, and segment documents into frames.

One parser serves every source, so a sample, a saved file and a live pull behave alike:

* a ``BatchGetTraces`` response (one JSON object, or one per line, as a recorded pull is),
* a JSON array or JSON lines of raw segment documents,
* a daemon capture: what SDKs send over UDP, the header line ``{"format":"json","version":1}``
  and then the document, one pair per packet,
* gzip of any of these (detected from the bytes, not the file name).

The format is detected from the content. Documents then go through one pass that validates
them, flattens subsegments at any depth into rows, and collects annotations, metadata and
exceptions. JSON lines (what recorded pulls, samples and daemon captures are) are read by the
C scanner in ``_scan.c``, which writes the columns straight into Arrow buffers and leaves to
Python every line it cannot load exactly as Python would (problems, unusual types); other
input is read here in Python, row by row into Arrow chunks. The original documents go into a
compressed :class:`~xraykit.docstore.DocumentStore` as they come. After the pass, vectorised
steps stitch subsegments sent on their own under their parents (children may come first),
resolve duplicates (a complete document wins over an ``in_progress`` one, exact duplicates
count once) and compute the trace-level columns.

What cannot be read becomes a row of ``problems`` (source, location, reason) and never stops
the load: no valid record is dropped because a neighbour was bad. With ``on_error="raise"``
the first problem raises :class:`~xraykit.exceptions.TraceParseError` instead.

Examples
--------
>>> from xraykit.documents import frames_from_documents
>>> doc = {"name": "web", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979",
...        "start_time": 1478293361.271, "end_time": 1478293361.449,
...        "subsegments": [{"name": "DynamoDB", "id": "70de5b6f19ff9a0b", "namespace": "aws",
...                         "start_time": 1478293361.3, "end_time": 1478293361.4}]}
>>> frames = frames_from_documents([doc])
>>> frames["subsegments"][["name", "segment_id", "depth"]].values.tolist()
[['DynamoDB', '70de5b6f19ff9a0a', 1]]
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import io
import json
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.assemble import finish
from xraykit.docstore import DocumentStoreBuilder
from xraykit.exceptions import TraceParseError
from xraykit.schema import SCHEMAS, conform, empty_frame

try:  # the C fast path; without a compiler xraykit still works, only slower
    from xraykit import _scan
except ImportError:  # pragma: no cover - depends on the machine
    _scan = None
_FULL, _FALLBACK = (_scan.FULL, _scan.FALLBACK) if _scan is not None else (1, 2)

__all__ = [
    "DAEMON_HEADER",
    "OnError",
    "frames_from_documents",
    "frames_from_responses",
    "read_frames",
]

OnError = Literal["warn", "raise", "ignore"]

#: The header line SDKs put before every document they send to the daemon.
DAEMON_HEADER = b'{"format":"json","version":1}'

TRACE_ID = re.compile(r"\A\d+-[0-9A-Fa-f]{8}-[0-9A-Fa-f]{24}\Z")
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
CHUNK = 8_192  # entities per Arrow chunk: small enough to stay in the CPU cache
# The frames' Arrow buffers come from the C library's allocator: Arrow's default pool
# (mimalloc) kept about a quarter more memory resident after a load than it held.
_POOL = pa.system_memory_pool()

_EMPTY: dict[str, Any] = {}
_MIN_TIME, _MAX_TIME = 0.0, 1e11  # epoch seconds X-Ray could have recorded
_NUMBER = (float, int)


_POOL_LOCK = threading.Lock()
_LOADS = 0  # loads running now
_PREVIOUS_POOL: pa.MemoryPool | None = None


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    """Settings for the time of a load: no cyclic GC, and Arrow allocating with malloc.

    Loading creates millions of small containers and no reference cycles; with the collector
    running, its full passes over everything loaded so far made loading several times slower.

    Arrow's default allocator (mimalloc) keeps the memory of freed buffers: the temporary
    arrays of pandas' string operations during a load stayed resident, about 0.7 times the
    file's size on top of the frames. The C library's allocator returns large blocks at once.
    """
    global _LOADS, _PREVIOUS_POOL
    was_enabled = gc.isenabled()
    gc.disable()
    with _POOL_LOCK:  # loads in several threads: the first sets the pool, the last restores it
        if _LOADS == 0:
            _PREVIOUS_POOL = pa.default_memory_pool()
            pa.set_memory_pool(_POOL)
        _LOADS += 1
    try:
        yield
    finally:
        with _POOL_LOCK:
            _LOADS -= 1
            if _LOADS == 0 and _PREVIOUS_POOL is not None:
                pa.set_memory_pool(_PREVIOUS_POOL)
        if was_enabled:
            gc.enable()


class _Problems:
    """Collects what could not be read; raises at once under ``on_error="raise"``."""

    def __init__(self, source: str, on_error: OnError) -> None:
        if on_error not in ("warn", "raise", "ignore"):
            raise ValueError(
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


def _entity_error(d: Any) -> str | None:
    """Say what is wrong with an entity (segment or subsegment), or None when it is usable."""
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
        if type(value) not in _NUMBER:
            return f"entity {eid}: '{field}' must be a number of epoch seconds, got {_short(value)}"
        if not _MIN_TIME <= value < _MAX_TIME:
            return (
                f"entity {eid}: '{field}' must be epoch seconds between 0 and {_MAX_TIME:.0f} "
                f"(years 1970 to 5138), got {value!r}; milliseconds or nanoseconds by mistake?"
            )
    return None


def _valid_trace_id(tid: Any) -> bool:
    return type(tid) is str and TRACE_ID.match(tid) is not None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Builder:
    """One pass over documents: a row tuple per entity, flushed to Arrow in chunks.

    Each entity's fields are read right after its JSON was parsed, while the dict is still
    in the CPU cache; reading the same dicts column by column later is several times slower.
    """

    def __init__(self, problems: _Problems) -> None:
        self.problems = problems
        self.seq = 0
        self.seg_rows: list[tuple[Any, ...]] = []
        self.sub_rows: list[tuple[Any, ...]] = []
        # where each row came from (file:line ...), for problems found when converting
        self.seg_where: list[str] = []
        self.sub_where: list[str] = []
        self.doc_rows: list[tuple[Any, ...]] = []
        self.seg_tables: list[pa.Table] = []
        self.sub_tables: list[pa.Table] = []
        # the documents' text goes into the compressed store chunk by chunk
        self.docs = DocumentStoreBuilder()
        self.doc_seqs: list[np.ndarray] = []
        self.ann: list[tuple[Any, ...]] = []
        self.meta: list[tuple[Any, ...]] = []
        self.exc: list[tuple[Any, ...]] = []
        # long frames (annotations, metadata, exceptions) in reading order, chunk by chunk
        self.extra_parts: dict[str, list[pd.DataFrame]] = {
            "annotations": [],
            "metadata": [],
            "exceptions": [],
        }

    # -- input ---------------------------------------------------------------------------

    def add_document(self, doc: Any, location: str, text: str | bytes | None = None) -> None:
        """Add one top-level document (segment, or subsegment sent on its own)."""
        if type(doc) is not dict:
            self.problems.add(location, _entity_error(doc) or "not a document")
            return
        tid: Any = doc.get("trace_id")
        streamed = doc.get("type") == "subsegment"
        seq = self.seq
        if streamed:
            parent = doc.get("parent_id")
            row = _sub_row(doc, tid, None, parent, 1, doc.get("id"), True, seq)
        else:
            row = _seg_row(doc, tid, seq)
        if row is None or not _valid_trace_id(tid):
            err = _entity_error(doc) or (
                f"entity {doc['id']}: 'trace_id' must look like 1-5759e988-bd862e3fe1be46a994272793 "
                f"(version, 8 hex digits of epoch seconds, 24 hex digits), got {_short(tid)}"
            )
            self.problems.add(location, err)
            return
        eid = doc["id"]
        if streamed and (type(parent) is not str or not parent):
            self.problems.add(
                location,
                f"subsegment {eid} was sent on its own (type 'subsegment') but has no "
                f"'parent_id' naming its segment or subsegment, got {_short(parent)}",
            )
            return
        self.seq = seq + 1
        if streamed:
            self.sub_rows.append(row)
            self.sub_where.append(location)
        else:
            self.seg_rows.append(row)
            self.seg_where.append(location)
        if doc.get("end_time") is None:
            self._check_end(doc, location)
        if doc.get("annotations") or doc.get("metadata") or doc.get("cause"):
            self._extras(doc, tid, eid, seq, location)
        if text is None:
            text = _dumps(doc)
        elif type(text) is bytes:
            text = text.decode()
        self.doc_rows.append((tid, eid, row[9] if streamed else row[8], text, seq))
        subs = doc.get("subsegments")
        if subs:
            self._walk(
                subs,
                tid,
                None if streamed else eid,
                eid,
                1 if streamed else 0,
                eid if streamed else None,
                location,
            )
        if len(self.seg_rows) + len(self.sub_rows) >= CHUNK:
            self.flush()

    def _walk(
        self,
        subs: Any,
        tid: str,
        segment_id: str | None,
        parent: str,
        parent_depth: int,
        anchor: str | None,
        location: str,
    ) -> None:
        stack = [(subs, parent, parent_depth + 1)]
        append, sub_row, seq = self.sub_rows.append, _sub_row, self.seq
        where = self.sub_where.append
        while stack:
            items, pid, depth = stack.pop()
            if type(items) is not list:
                self.problems.add(
                    location, f"entity {pid}: 'subsegments' must be a list, got {_short(items)}"
                )
                continue
            for child in items:
                row = sub_row(child, tid, segment_id, pid, depth, anchor, False, seq)
                if row is None:
                    # keep its valid children: they move up to the nearest valid ancestor
                    self.problems.add(location, f"subsegment under {pid}: {_entity_error(child)}")
                    if type(child) is dict and child.get("subsegments"):
                        stack.append((child["subsegments"], pid, depth))
                    continue
                append(row)
                where(location)
                get = child.get
                if row[8] is None:
                    self._check_end(child, location)
                if get("annotations") or get("metadata") or get("cause"):
                    self._extras(child, tid, row[2], seq, location)
                seq += 1
                grandchildren = get("subsegments")
                if grandchildren:
                    stack.append((grandchildren, row[2], depth + 1))
        self.seq = seq

    def _check_end(self, d: dict[str, Any], location: str) -> None:
        if d.get("in_progress") is not True:
            self.problems.add(
                location,
                f"entity {d['id']}: has neither 'end_time' nor 'in_progress': true; "
                "kept as in progress",
            )

    def _extras(self, d: dict[str, Any], tid: str, eid: str, seq: int, location: str) -> None:
        """Collect annotations, metadata and exceptions of one entity."""
        problems = self.problems
        ann = d.get("annotations")
        if ann:
            if type(ann) is not dict:
                problems.add(
                    location, f"entity {eid}: 'annotations' must be an object, got {_short(ann)}"
                )
            else:
                for key, value in ann.items():
                    kind = _ANNOTATION_TYPES.get(type(value))
                    if kind is None:
                        problems.add(
                            location,
                            f"entity {eid}: annotation {key!r} must be a string, number or "
                            f"boolean, got {_short(value)}; use metadata for structured values",
                        )
                        continue
                    self.ann.append((tid, eid, key, value, kind, seq))
        meta = d.get("metadata")
        if meta:
            if type(meta) is not dict:
                problems.add(
                    location, f"entity {eid}: 'metadata' must be an object, got {_short(meta)}"
                )
            else:
                for namespace, entries in meta.items():
                    if type(entries) is dict:
                        for key, value in entries.items():
                            self.meta.append((tid, eid, namespace, key, value, seq))
                    else:
                        self.meta.append((tid, eid, namespace, None, entries, seq))
        cause = d.get("cause")
        if cause and type(cause) is not str:
            if type(cause) is not dict:
                problems.add(
                    location,
                    f"entity {eid}: 'cause' must be an object or an exception id string, got {_short(cause)}",
                )
                return
            excs = cause.get("exceptions") or []
            if type(excs) is not list:
                problems.add(
                    location, f"entity {eid}: 'cause.exceptions' must be a list, got {_short(excs)}"
                )
                return
            for e in excs:
                if type(e) is not dict:
                    problems.add(
                        location, f"entity {eid}: an exception must be an object, got {_short(e)}"
                    )
                    continue
                stack = e.get("stack")
                stack = stack if type(stack) is list else []
                top = stack[0] if stack and type(stack[0]) is dict else None
                self.exc.append(
                    (
                        tid,
                        eid,
                        _str_or_none(e.get("id")),
                        _str_or_none(e.get("type")),
                        _str_or_none(e.get("message")),
                        e.get("remote") is True,
                        _str_or_none(e.get("cause")),
                        _int_or_none(e.get("truncated")),
                        _int_or_none(e.get("skipped")),
                        len(stack),
                        None
                        if top is None
                        else f"{top.get('path', '?')}:{top.get('line', '?')} {top.get('label', '')}".rstrip(),
                        seq,
                    )
                )

    # -- chunks ----------------------------------------------------------------------------

    def flush_extras(self) -> None:
        for name, rows in (
            ("annotations", self.ann),
            ("metadata", self.meta),
            ("exceptions", self.exc),
        ):
            if rows:
                self.extra_parts[name].append(_object_frame(rows, name))
        self.ann, self.meta, self.exc = [], [], []

    def take_native(self, scanner: Any, everything: bool = True) -> None:
        """Append what the C scanner built, after the rows Python read before it.

        With ``everything`` false only the documents are taken (to be compressed now); the
        other tables keep growing in the scanner, so that each column ends as one buffer.
        """
        self.flush()
        self.flush_extras()
        out = scanner.take(everything)
        if out["documents"][0][0]:
            self.add_documents(_native_table(out["documents"], _NATIVE_DOC_ARROW))
        if not everything:
            return
        for tables, name, schema in (
            (self.seg_tables, "segments", _SEG_ARROW),
            (self.sub_tables, "subsegments", _SUB_ARROW),
        ):
            if out[name][0][0]:
                tables.append(_native_table(out[name], schema))
        for name, values in (
            ("annotations", out["annotation_values"]),
            ("metadata", out["metadata_values"]),
            ("exceptions", None),
        ):
            if out[name][0][0]:
                self.extra_parts[name].append(_native_extras(out[name], values, name))

    def flush(self) -> None:
        if self.seg_rows:
            self.seg_tables.append(_table(self.seg_rows, _SEG_ARROW, self.problems, self.seg_where))
            self.seg_rows, self.seg_where = [], []
        if self.sub_rows:
            self.sub_tables.append(_table(self.sub_rows, _SUB_ARROW, self.problems, self.sub_where))
            self.sub_rows, self.sub_where = [], []
        if self.doc_rows:
            self.add_documents(_table(self.doc_rows, _DOC_ARROW, self.problems))
            self.doc_rows = []

    def add_documents(self, table: pa.Table) -> None:
        has_links = table["has_links"] if "has_links" in table.column_names else None
        self.docs.add_chunk(
            table["trace_id"],
            table["entity_id"],
            table["in_progress"],
            table["document"],
            has_links,
        )
        self.doc_seqs.append(table["_seq"].to_numpy())

    # -- output ----------------------------------------------------------------------------

    def frames(self) -> dict[str, Any]:
        self.flush()
        seg = _to_pandas(self.seg_tables, _SEG_ARROW)
        sub = _to_pandas(self.sub_tables, _SUB_ARROW)
        self.seg_tables, self.sub_tables = [], []  # numbers were copied: let the tables go
        docs = self.docs.finish()
        doc_seqs = np.concatenate(self.doc_seqs) if self.doc_seqs else np.zeros(0, np.int64)
        self.flush_extras()
        ann, meta, exc = (_concat_extras(self.extra_parts[n], n) for n in _EXTRAS_ARROW)
        return finish(seg, sub, docs, doc_seqs, ann, meta, exc, self.problems)


_ANNOTATION_TYPES = {str: "string", bool: "boolean", int: "number", float: "number"}


def _object_frame(rows: list[tuple[Any, ...]], name: str) -> pd.DataFrame:
    """A long frame (annotations, metadata, exceptions) from row tuples, in schema dtypes."""
    schema = {**SCHEMAS[name], "_seq": "int64"}
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.items()})
    data = {}
    for (column, dtype), values in zip(schema.items(), zip(*rows, strict=True), strict=True):
        if dtype == "object":
            data[column] = _objects(values)
        elif dtype == "str":
            try:
                strings = pa.array(values, pa.large_string(), memory_pool=_POOL)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # keys of dicts built in Python
                strings = pa.array(
                    [_str_or_none(v) for v in values], pa.large_string(), memory_pool=_POOL
                )
            data[column] = pd.array(strings, dtype="str")
        else:
            data[column] = pd.array(list(values), dtype=dtype)
    return pd.DataFrame(data)


_ARROW_TYPES = {
    "str": pa.large_string(),
    "bool": pa.bool_(),
    "Int64": pa.int64(),
    "int64": pa.int64(),
}

#: Columns the C scanner builds for the long frames, in schema order: every column but
#: ``value`` (which comes as a list of objects), then ``_seq``.
_EXTRAS_ARROW = {
    name: {
        **{c: _ARROW_TYPES[t] for c, t in SCHEMAS[name].items() if c != "value"},
        "_seq": pa.int64(),
    }
    for name in ("annotations", "metadata", "exceptions")
}


def _native_table(columns: list[tuple[Any, ...]], schema: dict[str, pa.DataType]) -> pa.Table:
    """An Arrow table over the buffers the C scanner filled (no copy)."""
    arrays = []
    for typ, (rows, nulls, validity, values, data) in zip(schema.values(), columns, strict=True):
        buffers = [None if validity is None else pa.py_buffer(validity), pa.py_buffer(values)]
        if data is not None:
            buffers.append(pa.py_buffer(data))
        arrays.append(pa.Array.from_buffers(typ, rows, buffers, null_count=nulls))
    return pa.Table.from_arrays(arrays, names=list(schema))


def _native_extras(
    columns: list[tuple[Any, ...]], values: list[Any] | None, name: str
) -> pd.DataFrame:
    """A long frame (with ``_seq``) from the scanner's columns and its list of values."""
    table = _native_table(columns, _EXTRAS_ARROW[name])
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    frame["_seq"] = frame["_seq"].astype("int64")
    if values is not None:
        frame["value"] = _objects(values)
    return frame


def _objects(values: Any) -> pd.Series:
    """JSON values as an object column, kept as they are.

    An object array given to pandas as is gets its type inferred: values that are all strings
    or None became a string column, and None became NaN.
    """
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return pd.Series(array, dtype=object, copy=False)


def _concat_extras(parts: list[pd.DataFrame], name: str) -> pd.DataFrame:
    schema = {**SCHEMAS[name], "_seq": "int64"}
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.items()})
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return frame[list(schema)]


def _str_or_none(x: Any) -> str | None:
    if x is None or type(x) is str:
        return x
    return str(x)


def _int_or_none(x: Any) -> int | None:
    return x if _is_int64(x) else None


def _is_int64(x: Any) -> bool:
    """Whether ``x`` fits an int64 column (None does: it is missing, not wrong)."""
    return x is None or (type(x) is int and -(2**63) <= x < 2**63)


def _dumps(doc: Any) -> str | None:
    try:
        return orjson.dumps(doc).decode()
    except (TypeError, orjson.JSONEncodeError):
        try:
            return json.dumps(doc, default=str)
        except (TypeError, ValueError, RecursionError):
            return None


# -- rows -----------------------------------------------------------------------------------


def _usable(eid: Any, name: Any, start: Any, end: Any) -> bool:
    """Whether an entity has the fields X-Ray requires, of the right types and range."""
    return (
        type(eid) is str
        and bool(eid)
        and type(name) is str
        and type(start) in _NUMBER
        and _MIN_TIME <= start < _MAX_TIME
        and (end is None or (type(end) in _NUMBER and _MIN_TIME <= end < _MAX_TIME))
    )


def _http(http: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``request`` and ``response`` objects of an ``http`` block (empty when absent)."""
    if not http or type(http) is not dict:
        return _EMPTY, _EMPTY
    req = http.get("request") or _EMPTY
    resp = http.get("response") or _EMPTY
    return (req if type(req) is dict else _EMPTY), (resp if type(resp) is dict else _EMPTY)


def _seg_row(d: Any, tid: Any, seq: int) -> tuple[Any, ...] | None:
    """The segment columns of one document, or None when it lacks a required field."""
    if type(d) is not dict:
        return None
    g: Callable[[str], Any] = d.get
    eid, name, start, end = g("id"), g("name"), g("start_time"), g("end_time")
    if not _usable(eid, name, start, end):
        return None
    ec2 = _EMPTY
    req, resp = _http(g("http"))
    aws = g("aws")
    account = sdk = None
    if aws and type(aws) is dict:
        account = aws.get("account_id")
        ec2 = aws.get("ec2") or _EMPTY
        if type(ec2) is not dict:
            ec2 = _EMPTY
        xray = aws.get("xray")
        if xray and type(xray) is dict:
            sdk = " ".join(str(p) for p in (xray.get("sdk"), xray.get("sdk_version")) if p) or None
    service = g("service")
    cause = g("cause")
    return (
        tid,
        eid,
        g("parent_id"),
        name,
        g("origin"),
        g("inferred") is True,
        start,
        end,
        end is None or g("in_progress") is True,
        req.get("method"),
        req.get("url"),
        resp.get("status"),
        req.get("user_agent"),
        req.get("client_ip"),
        g("fault") is True,
        g("error") is True,
        g("throttle") is True,
        g("user"),
        account,
        g("resource_arn"),
        ec2.get("availability_zone"),
        ec2.get("instance_id"),
        sdk,
        service.get("version") if service and type(service) is dict else None,
        cause if type(cause) is str else None,
        seq,
    )


_NO_AWS = (None,) * 8
_NO_SQL = (None,) * 4


def _sub_row(
    d: Any,
    tid: Any,
    segment_id: str | None,
    parent: Any,
    depth: int,
    anchor: str | None,
    streamed: bool,
    seq: int,
) -> tuple[Any, ...] | None:
    """The subsegment columns of one entity, or None when it lacks a required field."""
    if type(d) is not dict:
        return None
    g: Callable[[str], Any] = d.get
    eid, name, start, end = g("id"), g("name"), g("start_time"), g("end_time")
    if not _usable(eid, name, start, end):
        return None
    req, resp = _http(g("http"))
    aws = g("aws")
    if aws and type(aws) is dict:
        a = aws.get
        aws_cols = (
            a("operation"),
            a("region"),
            a("account_id"),
            a("request_id"),
            a("table_name"),
            a("queue_url"),
            a("function_name"),
            a("topic_arn"),
        )
    else:
        aws_cols = _NO_AWS
    sql = g("sql")
    if sql and type(sql) is dict:
        s = sql.get
        sql_cols = (
            s("url") or s("connection_string"),
            s("database_type"),
            s("sanitized_query"),
            s("user"),
        )
    else:
        sql_cols = _NO_SQL
    cause = g("cause")
    return (
        tid,
        segment_id,
        eid,
        parent,
        depth,
        name,
        g("namespace"),
        start,
        end,
        end is None or g("in_progress") is True,
        req.get("method"),
        req.get("url"),
        resp.get("status"),
        g("fault") is True,
        g("error") is True,
        g("throttle") is True,
        g("traced") is True or req.get("traced") is True,
        *aws_cols,
        *sql_cols,
        streamed,
        cause if type(cause) is str else None,
        anchor,
        seq,
    )


# -- columns ---------------------------------------------------------------------------------

_SEG_ARROW = {
    "trace_id": pa.large_string(),
    "segment_id": pa.large_string(),
    "parent_id": pa.large_string(),
    "name": pa.large_string(),
    "origin": pa.large_string(),
    "inferred": pa.bool_(),
    "start": pa.float64(),
    "end": pa.float64(),
    "in_progress": pa.bool_(),
    "http_method": pa.large_string(),
    "http_url": pa.large_string(),
    "http_status": pa.int64(),
    "http_user_agent": pa.large_string(),
    "http_client_ip": pa.large_string(),
    "fault": pa.bool_(),
    "error": pa.bool_(),
    "throttle": pa.bool_(),
    "user": pa.large_string(),
    "account_id": pa.large_string(),
    "resource_arn": pa.large_string(),
    "availability_zone": pa.large_string(),
    "instance_id": pa.large_string(),
    "sdk": pa.large_string(),
    "service_version": pa.large_string(),
    "cause_id": pa.large_string(),
    "_seq": pa.int64(),
}

_SUB_ARROW = {
    "trace_id": pa.large_string(),
    "segment_id": pa.large_string(),
    "subsegment_id": pa.large_string(),
    "parent_id": pa.large_string(),
    "depth": pa.int64(),
    "name": pa.large_string(),
    "namespace": pa.large_string(),
    "start": pa.float64(),
    "end": pa.float64(),
    "in_progress": pa.bool_(),
    "http_method": pa.large_string(),
    "http_url": pa.large_string(),
    "http_status": pa.int64(),
    "fault": pa.bool_(),
    "error": pa.bool_(),
    "throttle": pa.bool_(),
    "traced": pa.bool_(),
    "aws_operation": pa.large_string(),
    "aws_region": pa.large_string(),
    "aws_account_id": pa.large_string(),
    "aws_request_id": pa.large_string(),
    "table_name": pa.large_string(),
    "queue_url": pa.large_string(),
    "function_name": pa.large_string(),
    "topic_arn": pa.large_string(),
    "sql_url": pa.large_string(),
    "sql_database_type": pa.large_string(),
    "sql_sanitized_query": pa.large_string(),
    "sql_user": pa.large_string(),
    "streamed": pa.bool_(),
    "cause_id": pa.large_string(),
    "_anchor": pa.large_string(),
    "_seq": pa.int64(),
}

_DOC_ARROW = {
    "trace_id": pa.large_string(),
    "entity_id": pa.large_string(),
    "in_progress": pa.bool_(),
    "document": pa.large_string(),
    "_seq": pa.int64(),
    "has_links": pa.bool_(),
}

#: the C scanner's document columns: it also says which texts hold trace links
_NATIVE_DOC_ARROW = {**_DOC_ARROW, "has_links": pa.bool_()}

_DOC_ARROW = {
    "trace_id": pa.large_string(),
    "entity_id": pa.large_string(),
    "in_progress": pa.bool_(),
    "document": pa.large_string(),
    "_seq": pa.int64(),
}

#: where a column's value sat in the document, for messages about wrong types
_FIELD_NAMES = {
    "http_method": "http.request.method",
    "http_url": "http.request.url",
    "http_status": "http.response.status",
    "http_user_agent": "http.request.user_agent",
    "http_client_ip": "http.request.client_ip",
    "account_id": "aws.account_id",
    "availability_zone": "aws.ec2.availability_zone",
    "instance_id": "aws.ec2.instance_id",
    "service_version": "service.version",
    "aws_operation": "aws.operation",
    "aws_region": "aws.region",
    "aws_account_id": "aws.account_id",
    "aws_request_id": "aws.request_id",
    "table_name": "aws.table_name",
    "queue_url": "aws.queue_url",
    "function_name": "aws.function_name",
    "topic_arn": "aws.topic_arn",
    "sql_url": "sql.url",
    "sql_database_type": "sql.database_type",
    "sql_sanitized_query": "sql.sanitized_query",
    "sql_user": "sql.user",
}


def _table(
    rows: list[tuple[Any, ...]],
    schema: dict[str, pa.DataType],
    problems: _Problems,
    where: list[str] | None = None,
) -> pa.Table:
    """Transpose row tuples into an Arrow table; wrong-typed values become null and a problem."""
    columns = list(zip(*rows, strict=True))
    id_col = 2 if "subsegment_id" in schema else 1
    arrays = {}
    for (name, typ), values in zip(schema.items(), columns, strict=True):
        try:
            if pa.types.is_integer(typ) and not all(_is_int64(v) for v in values):
                raise pa.ArrowInvalid("not integers")  # Arrow would quietly truncate 500.5
            arrays[name] = pa.array(values, typ, memory_pool=_POOL)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            field = _FIELD_NAMES.get(name, name)
            arrays[name] = _repair(values, typ, field, columns[id_col], where, problems)
    return pa.table(arrays)


def _repair(
    values: Any,
    typ: pa.DataType,
    field: str,
    ids: Any,
    where: list[str] | None,
    problems: _Problems,
) -> pa.Array:
    want: tuple[type, ...] = (
        (str,)
        if pa.types.is_string(typ) or pa.types.is_large_string(typ)
        else (int,)
        if pa.types.is_integer(typ)
        else (float, int)
    )
    ok: list[Any] = []
    kind = {"string": "a string", "large_string": "a string", "int64": "an integer"}.get(
        str(typ), "a number"
    )
    for i, (value, eid) in enumerate(zip(values, ids, strict=True)):
        if value is None or (
            type(value) in want and (want != (int,) or _is_int64(value)) and type(value) is not bool
        ):
            ok.append(value)
        else:
            problems.add(
                where[i] if where is not None else str(eid),
                f"entity {eid}: '{field}' should be {kind}, got {_short(value)} "
                "(the entity still loads, with this field empty)",
            )
            ok.append(None)
    return pa.array(ok, typ, memory_pool=_POOL)


def _to_pandas(tables: list[pa.Table], schema: dict[str, pa.DataType]) -> pd.DataFrame:
    if not tables:
        table = pa.table({k: pa.array([], t) for k, t in schema.items()})
    else:
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    seconds = {}
    for col in ("start", "end"):
        if col in schema:
            # keep the float seconds too: they give exact durations
            seconds[f"_{col}_s"] = table[col].to_numpy(zero_copy_only=False)
            i = table.schema.get_field_index(col)
            micros = pc.round(pc.multiply(table[col], 1e6, memory_pool=_POOL), memory_pool=_POOL)
            us = pc.cast(micros, pa.int64(), memory_pool=_POOL)
            table = table.set_column(
                i, col, pc.cast(us, pa.timestamp("us", tz="UTC"), memory_pool=_POOL)
            )
    frame = table.to_pandas(
        types_mapper={pa.int64(): pd.Int64Dtype()}.get, split_blocks=True, memory_pool=_POOL
    )
    for col, values in seconds.items():
        frame[col] = values
    return frame


# -- public entry points -----------------------------------------------------------------------


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
        raise TypeError(
            "from_documents() takes an iterable of segment documents (dicts or JSON strings), "
            f"but {type(documents).__name__} was passed. To read a file, use xraykit.load_file(path)."
        )
    problems = _Problems(source, on_error)
    builder = _Builder(problems)
    with _loading():
        return _from_items(builder, documents, source)


def _from_items(
    builder: _Builder, documents: Iterable[dict[str, Any] | str | bytes], source: str
) -> dict[str, Any]:
    problems = builder.problems
    for i, item in enumerate(documents):
        location = f"{source}[{i}]"
        if isinstance(item, str | bytes | bytearray | memoryview):
            text = bytes(item) if isinstance(item, bytearray | memoryview) else item
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                problems.add(location, f"not valid JSON: {exc}")
                continue
            _accept(builder, value, location, text)
        else:
            _accept(builder, item, location, None)
    return builder.frames()


def frames_from_responses(
    responses: Iterable[dict[str, Any]],
    *,
    source: str = "BatchGetTraces",
    on_error: OnError = "warn",
) -> dict[str, Any]:
    """Build the frames from ``BatchGetTraces`` response dicts (as boto3 returns them)."""
    return frames_from_documents(responses, source=source, on_error=on_error)


def _accept(builder: _Builder, value: Any, location: str, text: str | bytes | None) -> None:
    """Route one parsed JSON value: a response, a trace, a document, a header or a list."""
    problems = builder.problems
    if type(value) is dict:
        if "Traces" in value:
            _accept_response(builder, value, location)
        elif "Segments" in value and "Id" in value:
            _accept_trace(builder, value, location)
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
            builder.add_document(value, location, text)
    elif type(value) is list:
        for i, item in enumerate(value):
            _accept(builder, item, f"{location}[{i}]", None)
    else:
        problems.add(
            location,
            f"expected a segment document, a list of them or a BatchGetTraces response "
            f"(a JSON object or array), got {type(value).__name__} {_short(value)}",
        )


def _accept_response(builder: _Builder, value: dict[str, Any], location: str) -> None:
    traces = value.get("Traces")
    if type(traces) is not list:
        builder.problems.add(location, f"'Traces' must be a list, got {_short(traces)}")
        return
    for i, trace in enumerate(traces):
        _accept_trace(builder, trace, f"{location} Traces[{i}]")
    unprocessed = value.get("UnprocessedTraceIds") or []
    if type(unprocessed) is list:
        for tid in unprocessed:
            builder.problems.add(
                location, f"BatchGetTraces could not return trace {tid} (UnprocessedTraceIds)"
            )


def _accept_trace(builder: _Builder, trace: Any, location: str) -> None:
    problems = builder.problems
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
    loads, add, decode_error = orjson.loads, builder.add_document, orjson.JSONDecodeError
    for j, segment in enumerate(trace["Segments"]):
        doc = segment.get("Document") if type(segment) is dict else None
        if type(doc) is str:
            try:
                parsed = loads(doc)
            except decode_error as exc:
                problems.add(f"{location}.Segments[{j}]", f"the Document is not valid JSON: {exc}")
                continue
            add(parsed, location, doc)
        elif type(doc) is dict:
            add(doc, f"{location}.Segments[{j}]", None)
        else:
            problems.add(
                f"{location}.Segments[{j}]",
                f"expected a segment with a 'Document' JSON string, got {_short(segment)}",
            )


# -- files ----------------------------------------------------------------------------------


def read_frames(path: str | Path, *, on_error: OnError = "warn") -> dict[str, Any]:
    """Read a trace file in any supported format into frames.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    """
    path = Path(path)
    source = path.name
    problems = _Problems(source, on_error)
    builder = _Builder(problems)
    with _loading(), open(path, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        if head == GZIP_MAGIC:
            stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb")
            try:
                _read_stream(builder, stream, source)
            except (OSError, EOFError, zlib.error) as exc:
                problems.add(
                    f"{source}",
                    f"the gzip stream is damaged or truncated ({exc}); kept what came before",
                )
        else:
            _read_stream(builder, raw, source)
        return builder.frames()


def _read_stream(builder: _Builder, stream: io.BufferedIOBase, source: str) -> None:
    """Detect the layout from the first line: JSON lines, or one JSON value."""
    problems = builder.problems
    lines = _lines(stream)
    first = next(lines, None)
    while first is not None and not first[1].strip():
        first = next(lines, None)
    if first is None:
        return  # an empty file is an empty TraceSet
    number, line = first
    if line.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16, as Windows PowerShell's `>` writes
        text = line + b"".join(chunk for _, chunk in lines)
        try:
            utf8 = text.decode("utf-16").encode()
        except UnicodeDecodeError as exc:
            problems.add(f"{source}", f"the file starts like UTF-16 but cannot be decoded ({exc})")
            return
        _read_stream(builder, io.BytesIO(utf8), source)
        return
    if line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
        line = line[3:]
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        value = _NOT_JSON
    if value is not _NOT_JSON:
        if _scan is not None:  # the scanner reads the first line too: one chunk per column
            _read_rest(builder, stream, number, source, first=line)
            return
        _accept(builder, value, f"{source}:{number}", _line_text(line, value))
        _read_rest(builder, stream, number + 1, source)
        return
    # the first line alone is not JSON: a pretty-printed document, or a damaged first line
    rest = b"".join(chunk for _, chunk in lines)
    whole = line + rest
    try:
        value = orjson.loads(whole)
    except orjson.JSONDecodeError as exc:
        second = _first_json_line(rest)
        if second is not None:
            problems.add(f"{source}:{number}", f"not valid JSON: {exc}")
            _read_rest(builder, io.BytesIO(rest), number + 1, source)
        else:
            _salvage(builder, whole, source, exc)
        return
    _accept(builder, value, source, None)


_NOT_JSON = object()


def _line_text(line: bytes, value: Any) -> bytes | None:
    """A line is kept as the document's text when it is one raw document."""
    return line.strip() if type(value) is dict and "id" in value else None


def _lines(stream: io.BufferedIOBase, start: int = 1) -> Iterator[tuple[int, bytes]]:
    yield from enumerate(stream, start)


_BLOCK = 1 << 20  # bytes read at a time by the C scanner
_DOCUMENT_BYTES = 1 << 20  # document text the scanner holds before it is compressed


def _read_rest(
    builder: _Builder, stream: io.BufferedIOBase, number: int, source: str, first: bytes = b""
) -> None:
    """Read the remaining lines of a JSON-lines stream, the first of them numbered ``number``
    (``first``: that line, when it was already read from the stream)."""
    if _scan is None:
        if first:
            _read_lines(builder, iter([(number, first)]), source)
            number += 1
        _read_lines(builder, _lines(stream, start=number), source)
        return
    scanner = _scan.Scanner()
    carry = [first] if first else []  # the start of a line that continues in the next block
    damage: BaseException | None = None
    while True:
        block, damage = _read_block(stream)
        if block and damage is None and b"\n" not in block:
            carry.append(block)
            continue
        data = b"".join([*carry, block]) if carry else block
        # complete lines only, except the last line of an intact stream (it needs no newline);
        # the cut-off line of a damaged stream is dropped, as line-by-line reading drops it
        end = len(data) if not block and damage is None else data.rfind(b"\n") + 1
        carry = [data[end:]] if block and damage is None and end < len(data) else []
        number = _scan_lines(builder, scanner, data, end, number, source)
        if not block or damage is not None:
            break
    if scanner.pending():
        builder.take_native(scanner)
    if damage is not None:
        raise damage


def _read_block(stream: io.BufferedIOBase) -> tuple[bytes, BaseException | None]:
    """About ``_BLOCK`` bytes of the stream, and the error that cut them short, if any.

    A truncated gzip raises on the read after its last good data; reading in small steps
    keeps that data.
    """
    parts: list[bytes] = []
    size = 0
    try:
        while size < _BLOCK:
            part = stream.read1(_BLOCK - size)
            if not part:
                break
            parts.append(part)
            size += len(part)
    except (OSError, EOFError, zlib.error) as exc:
        return b"".join(parts), exc
    return b"".join(parts), None


def _scan_lines(
    builder: _Builder, scanner: Any, data: bytes, end: int, number: int, source: str
) -> int:
    """Read the lines in ``data[:end]`` with the C scanner, Python reading those it leaves;
    return the number of the next line."""
    view = memoryview(data)[:end]
    pos = 0
    while pos < end:
        status, pos, number, builder.seq = scanner.scan(
            view, pos, number, builder.seq, _DOCUMENT_BYTES
        )
        if status == _FULL:
            builder.take_native(scanner, everything=False)
        elif status == _FALLBACK:
            # problems and unusual types: Python reads this line, in its place
            if scanner.pending():
                builder.take_native(scanner)
            stop = data.find(b"\n", pos, end) + 1 or end
            _read_lines(builder, iter([(number, data[pos:stop])]), source)
            pos, number = stop, number + 1
    view.release()
    return number


def _read_lines(builder: _Builder, lines: Iterator[tuple[int, bytes]], source: str) -> None:
    loads, accept, problems = orjson.loads, _accept, builder.problems
    decode_error = orjson.JSONDecodeError
    for number, line in lines:
        try:
            value = loads(line)
        except decode_error as exc:
            if line.strip():
                problems.add(f"{source}:{number}", f"not valid JSON: {_reason(exc, line)}")
            continue
        accept(
            builder,
            value,
            f"{source}:{number}",
            line.strip() if type(value) is dict and "id" in value else None,
        )


def _reason(exc: Exception, line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"bytes that are not UTF-8 at column {bad.start + 1} ({line[bad.start : bad.start + 4]!r})"
    text = str(exc)
    if "recursion" in text.lower() or "depth" in text.lower():
        return f"nesting deeper than a JSON parser accepts ({text})"
    return text


def _first_json_line(rest: bytes) -> int | None:
    for number, line in enumerate(rest.splitlines(), 1):
        if line.strip():
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                return None
            return number
    return None


def _accept_trace_routed(
    builder: _Builder, value: Any, location: str, text: str | bytes | None
) -> None:
    _accept_trace(builder, value, location)


def _salvage(builder: _Builder, data: bytes, source: str, exc: Exception) -> None:
    """Recover the complete elements of a damaged or truncated JSON document.

    A top-level array yields its elements; a ``BatchGetTraces`` response yields its traces.
    Everything after the first damaged element is reported, not guessed at.
    """
    problems = builder.problems
    text = data.decode("utf-8", errors="surrogateescape")
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    if stripped.startswith("["):
        start, route = offset + 1, _accept
    else:
        m = re.search(r'"Traces"\s*:\s*\[', text)
        if m is None:
            problems.add(
                source, f"not valid JSON and nothing could be recovered: {_reason(exc, data)}"
            )
            return
        start = m.end()
        route = _accept_trace_routed
    decoder = json.JSONDecoder()
    pos, index = start, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as err:
            reason = (
                "nesting deeper than a JSON parser accepts"
                if isinstance(err, RecursionError)
                else err.msg
            )
            problems.add(
                f"{source}:{line}",
                f"damaged or truncated JSON from here on ({reason}); the {index} complete element(s) before it were kept",
            )
            return
        if re.search("[\udc80-\udcff]", text[pos:end]):
            problems.add(f"{source}:{line}", "bytes that are not UTF-8 in this element; skipped")
        else:
            route(builder, value, f"{source}:{line}", None)
        pos, index = end, index + 1


def summarise(problems: pd.DataFrame) -> str:
    """One sentence counting the problems by source, for the load warning."""
    counts = problems.groupby("source", sort=False).size()
    parts = ", ".join(f"{n} in {src}" for src, n in counts.items())
    return (
        f"{len(problems)} record(s) could not be read and were skipped or repaired ({parts}); "
        "every valid document was loaded. See the TraceSet's `problems` frame for what and where, "
        'or pass on_error="raise" to stop at the first one.'
    )

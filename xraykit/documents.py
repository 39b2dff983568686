"""Read every input format into segment documents, and segment documents into frames.

One parser serves every source, so a sample, a saved file and a live pull behave alike:

* a ``BatchGetTraces`` response (one JSON object, or one per line, as a recorded pull is),
* a JSON array or JSON lines of raw segment documents,
* a daemon capture: what SDKs send over UDP, the header line ``{"format":"json","version":1}``
  and then the document, one pair per packet,
* gzip of any of these (detected from the bytes, not the file name).

The format is detected from the content. Documents then go through one pass that validates
them, flattens subsegments at any depth into rows, and collects annotations, metadata and
exceptions. Columns are built in chunks as Arrow arrays, so memory stays close to the size
of the data instead of the size of the parsed Python objects. After the pass, vectorised
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

import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.exceptions import TraceParseError
from xraykit.schema import SCHEMAS, conform, empty_frame

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
CHUNK = 50_000  # entities per Arrow chunk

_EMPTY: dict[str, Any] = {}
_NUMBER = (float, int)


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
    start = d.get("start_time")
    if type(start) not in _NUMBER:
        return f"entity {eid}: 'start_time' must be a number of epoch seconds, got {_short(start)}"
    end = d.get("end_time")
    if end is not None and type(end) not in _NUMBER:
        return f"entity {eid}: 'end_time' must be a number of epoch seconds, got {_short(end)}"
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Builder:
    """One pass over documents, building Arrow chunks of segment and subsegment rows."""

    def __init__(self, problems: _Problems) -> None:
        self.problems = problems
        self.seq = 0
        # current chunk: the entity dicts and their context, flushed to Arrow every CHUNK
        self.seg: list[dict[str, Any]] = []
        self.seg_ctx: list[tuple[str, int]] = []  # (trace_id, seq)
        self.sub: list[dict[str, Any]] = []
        # (trace_id, segment_id, parent_id, depth, anchor, streamed, seq)
        self.sub_ctx: list[tuple[str, str | None, str, int, str | None, bool, int]] = []
        self.seg_tables: list[pa.Table] = []
        self.sub_tables: list[pa.Table] = []
        self.doc_rows: tuple[list[str], list[str], list[bool], list[str | None], list[int]] = (
            [],
            [],
            [],
            [],
            [],
        )
        self.doc_tables: list[pa.Table] = []
        self.ann: tuple[list[str], list[str], list[str], list[Any], list[str], list[int]] = (
            [],
            [],
            [],
            [],
            [],
            [],
        )
        self.meta: tuple[list[str], list[str], list[str], list[Any], list[Any], list[int]] = (
            [],
            [],
            [],
            [],
            [],
            [],
        )
        self.exc: list[tuple[Any, ...]] = []
        self.limit_exceeded: set[str] = set()

    # -- input ---------------------------------------------------------------------------

    def add_document(self, doc: Any, location: str, text: str | bytes | None = None) -> None:
        """Add one top-level document (segment, or subsegment sent on its own)."""
        err = _entity_error(doc)
        if err is None:
            tid = doc.get("trace_id")
            if type(tid) is not str or TRACE_ID.match(tid) is None:
                err = (
                    f"entity {doc['id']}: 'trace_id' must look like 1-5759e988-bd862e3fe1be46a994272793 "
                    f"(version, 8 hex digits of epoch seconds, 24 hex digits), got {_short(tid)}"
                )
        if err is not None:
            self.problems.add(location, err)
            return
        eid = doc["id"]
        self._check_end(doc, location)
        streamed = doc.get("type") == "subsegment"
        seq = self.seq
        self.seq += 1
        if streamed:
            parent = doc.get("parent_id")
            if type(parent) is not str or not parent:
                self.problems.add(
                    location,
                    f"subsegment {eid} was sent on its own (type 'subsegment') but has no "
                    f"'parent_id' naming its segment or subsegment, got {_short(parent)}",
                )
                self.seq -= 1
                return
            self.sub.append(doc)
            self.sub_ctx.append((tid, None, parent, 1, eid, True, seq))
            segment_id: str | None = None
        else:
            self.seg.append(doc)
            self.seg_ctx.append((tid, seq))
            segment_id = eid
        self._extras(doc, tid, eid, seq, location)
        if text is None:
            text = _dumps(doc)
        elif type(text) is bytes:
            text = text.decode()
        rows = self.doc_rows
        rows[0].append(tid)
        rows[1].append(eid)
        rows[2].append(doc.get("in_progress") is True)
        rows[3].append(text)  # type: ignore[arg-type]
        rows[4].append(seq)
        subs = doc.get("subsegments")
        if subs:
            self._walk(
                subs,
                tid,
                segment_id,
                eid,
                1 if streamed else 0,
                eid if streamed else None,
                location,
            )
        if len(self.seg) + len(self.sub) >= CHUNK:
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
        sub, ctx, streamed = self.sub, self.sub_ctx, False
        while stack:
            items, pid, depth = stack.pop()
            if type(items) is not list:
                self.problems.add(
                    location,
                    f"entity {pid}: 'subsegments' must be a list, got {type(items).__name__}",
                )
                continue
            for child in items:
                err = _entity_error(child)
                if err is not None:
                    # keep its valid children: they move up to the nearest valid ancestor
                    self.problems.add(location, f"subsegment under {pid}: {err}")
                    if type(child) is dict and child.get("subsegments"):
                        stack.append((child["subsegments"], pid, depth))
                    continue
                cid = child["id"]
                self._check_end(child, location)
                seq = self.seq
                self.seq += 1
                sub.append(child)
                ctx.append((tid, segment_id, pid, depth, anchor, streamed, seq))
                if child.get("annotations") or child.get("metadata") or child.get("cause"):
                    self._extras(child, tid, cid, seq, location)
                grandchildren = child.get("subsegments")
                if grandchildren:
                    stack.append((grandchildren, cid, depth + 1))

    def _check_end(self, d: dict[str, Any], location: str) -> None:
        if d.get("end_time") is None and d.get("in_progress") is not True:
            self.problems.add(
                location,
                f"entity {d['id']}: has neither 'end_time' nor 'in_progress': true; "
                "kept as in progress",
            )

    def _extras(self, d: dict[str, Any], tid: str, eid: str, seq: int, location: str) -> None:
        """Collect annotations, metadata and exceptions of one entity."""
        ann = d.get("annotations")
        if ann:
            if type(ann) is not dict:
                self.problems.add(
                    location, f"entity {eid}: 'annotations' must be an object, got {_short(ann)}"
                )
            else:
                a = self.ann
                for key, value in ann.items():
                    t = type(value)
                    if t is bool:
                        kind = "boolean"
                    elif t is int or t is float:
                        kind = "number"
                    elif t is str:
                        kind = "string"
                    else:
                        self.problems.add(
                            location,
                            f"entity {eid}: annotation {key!r} must be a string, number or "
                            f"boolean, got {_short(value)}; use metadata for structured values",
                        )
                        continue
                    a[0].append(tid)
                    a[1].append(eid)
                    a[2].append(key)
                    a[3].append(value)
                    a[4].append(kind)
                    a[5].append(seq)
        meta = d.get("metadata")
        if meta:
            if type(meta) is not dict:
                self.problems.add(
                    location, f"entity {eid}: 'metadata' must be an object, got {_short(meta)}"
                )
            else:
                m = self.meta
                for namespace, entries in meta.items():
                    items = entries.items() if type(entries) is dict else [(None, entries)]
                    for key, value in items:
                        m[0].append(tid)
                        m[1].append(eid)
                        m[2].append(namespace)
                        m[3].append(key)
                        m[4].append(value)
                        m[5].append(seq)
        cause = d.get("cause")
        if cause:
            if type(cause) is str:
                pass  # an exception id recorded elsewhere; kept in the cause_id column
            elif type(cause) is dict:
                excs = cause.get("exceptions") or []
                if type(excs) is not list:
                    self.problems.add(location, f"entity {eid}: 'cause.exceptions' must be a list")
                    return
                for e in excs:
                    if type(e) is not dict:
                        self.problems.add(
                            location,
                            f"entity {eid}: an exception must be an object, got {_short(e)}",
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
            else:
                self.problems.add(
                    location,
                    f"entity {eid}: 'cause' must be an object or an exception id string, got {_short(cause)}",
                )

    # -- chunks ----------------------------------------------------------------------------

    def flush(self) -> None:
        if self.seg:
            self.seg_tables.append(_segment_table(self.seg, self.seg_ctx, self.problems))
            self.seg, self.seg_ctx = [], []
        if self.sub:
            self.sub_tables.append(_subsegment_table(self.sub, self.sub_ctx, self.problems))
            self.sub, self.sub_ctx = [], []
        rows = self.doc_rows
        if rows[0]:
            self.doc_tables.append(
                pa.table(
                    {
                        "trace_id": pa.array(rows[0], pa.string()),
                        "entity_id": pa.array(rows[1], pa.string()),
                        "in_progress": pa.array(rows[2], pa.bool_()),
                        "document": pa.array(rows[3], pa.large_string()),
                        "_seq": pa.array(rows[4], pa.int64()),
                    }
                )
            )
            self.doc_rows = ([], [], [], [], [])

    # -- output ----------------------------------------------------------------------------

    def frames(self) -> dict[str, pd.DataFrame]:
        self.flush()
        seg = _to_pandas(self.seg_tables, _SEG_ARROW)
        sub = _to_pandas(self.sub_tables, _SUB_ARROW)
        docs = _to_pandas(self.doc_tables, _DOC_ARROW)
        a = self.ann
        ann = pd.DataFrame(
            {
                "trace_id": pd.array(a[0], dtype="str"),
                "entity_id": pd.array(a[1], dtype="str"),
                "key": pd.array(a[2], dtype="str"),
                "value": pd.array(a[3], dtype=object),
                "value_type": pd.array(a[4], dtype="str"),
                "_seq": np.asarray(a[5], dtype=np.int64),
            }
        )
        m = self.meta
        meta = pd.DataFrame(
            {
                "trace_id": pd.array(m[0], dtype="str"),
                "entity_id": pd.array(m[1], dtype="str"),
                "namespace": pd.array([_str_or_none(x) for x in m[2]], dtype="str"),
                "key": pd.array([_str_or_none(x) for x in m[3]], dtype="str"),
                "value": pd.array(m[4], dtype=object),
                "_seq": np.asarray(m[5], dtype=np.int64),
            }
        )
        exc_cols = [*SCHEMAS["exceptions"], "_seq"]
        exc = (
            pd.DataFrame(self.exc, columns=exc_cols) if self.exc else pd.DataFrame(columns=exc_cols)
        )
        return _finish(seg, sub, docs, ann, meta, exc, self.problems)


def _str_or_none(x: Any) -> str | None:
    if x is None or type(x) is str:
        return x
    return str(x)


def _int_or_none(x: Any) -> int | None:
    return x if type(x) is int else None


def _dumps(doc: Any) -> str | None:
    try:
        return orjson.dumps(doc).decode()
    except (TypeError, orjson.JSONEncodeError):
        try:
            return json.dumps(doc, default=str)
        except (TypeError, ValueError, RecursionError):
            return None


# -- columns ---------------------------------------------------------------------------------

_SEG_ARROW = {
    "trace_id": pa.string(),
    "segment_id": pa.string(),
    "parent_id": pa.string(),
    "name": pa.string(),
    "origin": pa.string(),
    "inferred": pa.bool_(),
    "start": pa.float64(),
    "end": pa.float64(),
    "in_progress": pa.bool_(),
    "http_method": pa.string(),
    "http_url": pa.string(),
    "http_status": pa.int64(),
    "http_user_agent": pa.string(),
    "http_client_ip": pa.string(),
    "fault": pa.bool_(),
    "error": pa.bool_(),
    "throttle": pa.bool_(),
    "user": pa.string(),
    "account_id": pa.string(),
    "resource_arn": pa.string(),
    "availability_zone": pa.string(),
    "instance_id": pa.string(),
    "sdk": pa.string(),
    "service_version": pa.string(),
    "cause_id": pa.string(),
    "_seq": pa.int64(),
}

_SUB_ARROW = {
    "trace_id": pa.string(),
    "segment_id": pa.string(),
    "subsegment_id": pa.string(),
    "parent_id": pa.string(),
    "depth": pa.int64(),
    "name": pa.string(),
    "namespace": pa.string(),
    "start": pa.float64(),
    "end": pa.float64(),
    "in_progress": pa.bool_(),
    "http_method": pa.string(),
    "http_url": pa.string(),
    "http_status": pa.int64(),
    "fault": pa.bool_(),
    "error": pa.bool_(),
    "throttle": pa.bool_(),
    "traced": pa.bool_(),
    "aws_operation": pa.string(),
    "aws_region": pa.string(),
    "aws_account_id": pa.string(),
    "aws_request_id": pa.string(),
    "table_name": pa.string(),
    "queue_url": pa.string(),
    "function_name": pa.string(),
    "topic_arn": pa.string(),
    "sql_url": pa.string(),
    "sql_database_type": pa.string(),
    "sql_sanitized_query": pa.string(),
    "sql_user": pa.string(),
    "streamed": pa.bool_(),
    "_anchor": pa.string(),
    "_seq": pa.int64(),
}

_DOC_ARROW = {
    "trace_id": pa.string(),
    "entity_id": pa.string(),
    "in_progress": pa.bool_(),
    "document": pa.large_string(),
    "_seq": pa.int64(),
}


def _objects(values: list[Any]) -> list[dict[str, Any]]:
    """Nested objects of a column; anything that is not a dict reads as empty."""
    return [v if type(v) is dict else _EMPTY for v in values]


def _column(
    values: list[Any], typ: pa.DataType, field: str, ids: list[str], problems: _Problems
) -> pa.Array:
    """Convert one column to Arrow; values of the wrong type become null and a problem."""
    try:
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    ok: list[Any] = []
    want: tuple[type, ...] = (
        (str,) if pa.types.is_string(typ) else (int,) if pa.types.is_integer(typ) else (float, int)
    )
    for value, eid in zip(values, ids, strict=True):
        if value is None or (type(value) in want and type(value) is not bool):
            ok.append(value)
        else:
            problems.add(
                eid, f"entity {eid}: '{field}' should be {typ}, got {_short(value)}; left empty"
            )
            ok.append(None)
    return pa.array(ok, typ)


def _flag(values: list[dict[str, Any]], key: str) -> pa.Array:
    return pa.array([d.get(key) is True for d in values], pa.bool_())


def _http_columns(
    ents: list[dict[str, Any]], ids: list[str], problems: _Problems
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    http = _objects([d.get("http") for d in ents])
    req = _objects([h.get("request") for h in http])
    resp = _objects([h.get("response") for h in http])
    return http, req, resp


def _segment_table(
    ents: list[dict[str, Any]], ctx: list[tuple[str, int]], problems: _Problems
) -> pa.Table:
    ids = [d["id"] for d in ents]
    _, req, resp = _http_columns(ents, ids, problems)
    aws = _objects([d.get("aws") for d in ents])
    ec2 = _objects([a.get("ec2") for a in aws])
    xray = _objects([a.get("xray") for a in aws])
    service = _objects([d.get("service") for d in ents])
    sdk = [
        None if not x else " ".join(str(p) for p in (x.get("sdk"), x.get("sdk_version")) if p)
        for x in xray
    ]
    col = _column
    cause = [d.get("cause") for d in ents]
    cols = {
        "trace_id": pa.array([c[0] for c in ctx], pa.string()),
        "segment_id": pa.array(ids, pa.string()),
        "parent_id": col(
            [d.get("parent_id") for d in ents], pa.string(), "parent_id", ids, problems
        ),
        "name": pa.array([d["name"] for d in ents], pa.string()),
        "origin": col([d.get("origin") for d in ents], pa.string(), "origin", ids, problems),
        "inferred": _flag(ents, "inferred"),
        "start": pa.array([d["start_time"] for d in ents], pa.float64()),
        "end": pa.array([d.get("end_time") for d in ents], pa.float64()),
        "in_progress": pa.array(
            [d.get("in_progress") is True or d.get("end_time") is None for d in ents], pa.bool_()
        ),
        "http_method": col(
            [r.get("method") for r in req], pa.string(), "http.request.method", ids, problems
        ),
        "http_url": col(
            [r.get("url") for r in req], pa.string(), "http.request.url", ids, problems
        ),
        "http_status": col(
            [r.get("status") for r in resp], pa.int64(), "http.response.status", ids, problems
        ),
        "http_user_agent": col(
            [r.get("user_agent") for r in req],
            pa.string(),
            "http.request.user_agent",
            ids,
            problems,
        ),
        "http_client_ip": col(
            [r.get("client_ip") for r in req], pa.string(), "http.request.client_ip", ids, problems
        ),
        "fault": _flag(ents, "fault"),
        "error": _flag(ents, "error"),
        "throttle": _flag(ents, "throttle"),
        "user": col([d.get("user") for d in ents], pa.string(), "user", ids, problems),
        "account_id": col(
            [a.get("account_id") for a in aws], pa.string(), "aws.account_id", ids, problems
        ),
        "resource_arn": col(
            [d.get("resource_arn") for d in ents], pa.string(), "resource_arn", ids, problems
        ),
        "availability_zone": col(
            [e.get("availability_zone") for e in ec2],
            pa.string(),
            "aws.ec2.availability_zone",
            ids,
            problems,
        ),
        "instance_id": col(
            [e.get("instance_id") for e in ec2], pa.string(), "aws.ec2.instance_id", ids, problems
        ),
        "sdk": pa.array(sdk, pa.string()),
        "service_version": col(
            [s.get("version") for s in service], pa.string(), "service.version", ids, problems
        ),
        "cause_id": pa.array([c if type(c) is str else None for c in cause], pa.string()),
        "_seq": pa.array([c[1] for c in ctx], pa.int64()),
    }
    return pa.table(cols)


def _subsegment_table(
    ents: list[dict[str, Any]],
    ctx: list[tuple[str, str | None, str, int, str | None, bool, int]],
    problems: _Problems,
) -> pa.Table:
    ids = [d["id"] for d in ents]
    _, req, resp = _http_columns(ents, ids, problems)
    aws = _objects([d.get("aws") for d in ents])
    sql = _objects([d.get("sql") for d in ents])
    col = _column
    cause = [d.get("cause") for d in ents]
    cols = {
        "trace_id": pa.array([c[0] for c in ctx], pa.string()),
        "segment_id": pa.array([c[1] for c in ctx], pa.string()),
        "subsegment_id": pa.array(ids, pa.string()),
        "parent_id": pa.array([c[2] for c in ctx], pa.string()),
        "depth": pa.array([c[3] for c in ctx], pa.int64()),
        "name": pa.array([d["name"] for d in ents], pa.string()),
        "namespace": col(
            [d.get("namespace") for d in ents], pa.string(), "namespace", ids, problems
        ),
        "start": pa.array([d["start_time"] for d in ents], pa.float64()),
        "end": pa.array([d.get("end_time") for d in ents], pa.float64()),
        "in_progress": pa.array(
            [d.get("in_progress") is True or d.get("end_time") is None for d in ents], pa.bool_()
        ),
        "http_method": col(
            [r.get("method") for r in req], pa.string(), "http.request.method", ids, problems
        ),
        "http_url": col(
            [r.get("url") for r in req], pa.string(), "http.request.url", ids, problems
        ),
        "http_status": col(
            [r.get("status") for r in resp], pa.int64(), "http.response.status", ids, problems
        ),
        "fault": _flag(ents, "fault"),
        "error": _flag(ents, "error"),
        "throttle": _flag(ents, "throttle"),
        "traced": pa.array(
            [
                d.get("traced") is True or r.get("traced") is True
                for d, r in zip(ents, req, strict=True)
            ],
            pa.bool_(),
        ),
        "aws_operation": col(
            [a.get("operation") for a in aws], pa.string(), "aws.operation", ids, problems
        ),
        "aws_region": col([a.get("region") for a in aws], pa.string(), "aws.region", ids, problems),
        "aws_account_id": col(
            [a.get("account_id") for a in aws], pa.string(), "aws.account_id", ids, problems
        ),
        "aws_request_id": col(
            [a.get("request_id") for a in aws], pa.string(), "aws.request_id", ids, problems
        ),
        "table_name": col(
            [a.get("table_name") for a in aws], pa.string(), "aws.table_name", ids, problems
        ),
        "queue_url": col(
            [a.get("queue_url") for a in aws], pa.string(), "aws.queue_url", ids, problems
        ),
        "function_name": col(
            [a.get("function_name") for a in aws], pa.string(), "aws.function_name", ids, problems
        ),
        "topic_arn": col(
            [a.get("topic_arn") for a in aws], pa.string(), "aws.topic_arn", ids, problems
        ),
        "sql_url": col(
            [s.get("url") or s.get("connection_string") for s in sql],
            pa.string(),
            "sql.url",
            ids,
            problems,
        ),
        "sql_database_type": col(
            [s.get("database_type") for s in sql], pa.string(), "sql.database_type", ids, problems
        ),
        "sql_sanitized_query": col(
            [s.get("sanitized_query") for s in sql],
            pa.string(),
            "sql.sanitized_query",
            ids,
            problems,
        ),
        "sql_user": col([s.get("user") for s in sql], pa.string(), "sql.user", ids, problems),
        "streamed": pa.array([c[5] for c in ctx], pa.bool_()),
        "cause_id": pa.array([c if type(c) is str else None for c in cause], pa.string()),
        "_anchor": pa.array([c[4] for c in ctx], pa.string()),
        "_seq": pa.array([c[6] for c in ctx], pa.int64()),
    }
    return pa.table(cols)


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
            us = pc.cast(pc.round(pc.multiply(table[col], 1e6)), pa.int64())
            table = table.set_column(i, col, pc.cast(us, pa.timestamp("us", tz="UTC")))
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get, split_blocks=True)
    for col, values in seconds.items():
        frame[col] = values
    return frame


# -- vectorised finishing steps -----------------------------------------------------------------


def _finish(
    seg: pd.DataFrame,
    sub: pd.DataFrame,
    docs: pd.DataFrame,
    ann: pd.DataFrame,
    meta: pd.DataFrame,
    exc: pd.DataFrame,
    problems: _Problems,
) -> dict[str, pd.DataFrame]:
    seg, sub, docs, dropped = _deduplicate(seg, sub, docs, problems)
    if dropped is not None:
        ann = ann[~ann["_seq"].isin(dropped)]
        meta = meta[~meta["_seq"].isin(dropped)]
        exc = exc[~exc["_seq"].isin(dropped)]
    sub = _stitch(seg, sub, problems)
    for frame in (seg, sub):
        frame["duration_s"] = frame["_end_s"] - frame["_start_s"]
        frame["http_method"] = frame["http_method"].str.upper()
    traces = _trace_rows(seg, sub)
    return {
        "traces": conform(traces, "traces"),
        "segments": conform(seg, "segments"),
        "subsegments": conform(sub, "subsegments"),
        "annotations": conform(ann, "annotations"),
        "metadata": conform(meta, "metadata"),
        "exceptions": conform(exc, "exceptions"),
        "problems": problems.frame(),
        "documents": conform(docs, "documents"),
    }


def _deduplicate(
    seg: pd.DataFrame, sub: pd.DataFrame, docs: pd.DataFrame, problems: _Problems
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray | None]:
    """Keep one row per entity id: complete beats in progress, then the last one read."""
    dropped: list[np.ndarray] = []
    out = []
    for frame, key in ((seg, "segment_id"), (sub, "subsegment_id")):
        keys = ["trace_id", key]
        dup = frame.duplicated(keys, keep=False)
        if not dup.any():
            out.append(frame)
            continue
        group = frame[dup]
        # the winner: not in progress first, then the latest read (highest _seq)
        order = group.sort_values(["in_progress", "_seq"], ascending=[True, False])
        winners = order.drop_duplicates(keys, keep="first")
        losers = group.loc[group.index.difference(winners.index)]
        complete = group[~group["in_progress"]]
        cols = ["name", "_start_s", "_end_s"]
        conflicts = complete.drop_duplicates([*keys, *cols]).duplicated(keys, keep=False)
        for eid in complete.loc[conflicts[conflicts].index, key].unique():
            problems.add(
                str(eid),
                f"two different complete documents share the id {eid}; kept the one read last",
            )
        dropped.append(losers["_seq"].to_numpy())
        out.append(frame.drop(index=losers.index))
    seg, sub = out
    if not dropped:
        return seg, sub, docs, None
    gone = np.concatenate(dropped)
    return seg, sub, docs[~docs["_seq"].isin(gone)], gone


def _stitch(seg: pd.DataFrame, sub: pd.DataFrame, problems: _Problems) -> pd.DataFrame:
    """Place subsegments that were sent on their own under their parents."""
    sub["orphan"] = False
    pending = sub["segment_id"].isna()
    if not pending.any():
        return sub
    # streamed subtrees hang from their "anchor" (the streamed subsegment itself);
    # resolve the anchors' parents, level by level (streamed anchors can nest)
    anchors = sub.loc[sub["streamed"], ["trace_id", "subsegment_id", "parent_id"]]
    known = pd.concat(
        [
            pd.DataFrame(
                {
                    "trace_id": seg["trace_id"],
                    "entity_id": seg["segment_id"],
                    "owner": seg["segment_id"],
                    "depth": 0,
                }
            ),
            pd.DataFrame(
                {
                    "trace_id": sub.loc[~pending, "trace_id"],
                    "entity_id": sub.loc[~pending, "subsegment_id"],
                    "owner": sub.loc[~pending, "segment_id"],
                    "depth": sub.loc[~pending, "depth"].astype("int64"),
                }
            ),
        ],
        ignore_index=True,
    )
    # anchor -> (owner segment, depth of the anchor); embedded rows of a streamed subtree
    # carry a depth relative to their anchor (the anchor itself has 1)
    rel = sub.loc[pending, ["trace_id", "_anchor"]]
    rel_depth = sub.loc[pending, "depth"].astype("int64")
    todo = anchors.rename(columns={"subsegment_id": "anchor"})
    resolved: dict[tuple[str, str], tuple[str, int]] = {}
    index = pd.MultiIndex.from_frame(known[["trace_id", "entity_id"]])
    owners = known["owner"].to_numpy()
    depths = known["depth"].to_numpy()
    while len(todo):
        pos = index.get_indexer(pd.MultiIndex.from_frame(todo[["trace_id", "parent_id"]]))
        hit = pos >= 0
        if not hit.any():
            break
        for (tid, anchor), p in zip(
            todo.loc[hit, ["trace_id", "anchor"]].itertuples(index=False), pos[hit], strict=True
        ):
            resolved[(tid, anchor)] = (owners[p], int(depths[p]) + 1)
        # newly placed anchors and their subtrees become known parents for the next level
        new_rows = sub.loc[pending & sub["_anchor"].isin(todo.loc[hit, "anchor"])]
        new = pd.DataFrame(
            {
                "trace_id": new_rows["trace_id"].to_numpy(),
                "entity_id": new_rows["subsegment_id"].to_numpy(),
                "owner": [
                    resolved[(t, a)][0]
                    for t, a in zip(new_rows["trace_id"], new_rows["_anchor"], strict=True)
                ],
                "depth": [
                    resolved[(t, a)][1] + int(d) - 1
                    for t, a, d in zip(
                        new_rows["trace_id"], new_rows["_anchor"], new_rows["depth"], strict=True
                    )
                ],
            }
        )
        known = pd.concat([known, new], ignore_index=True)
        index = pd.MultiIndex.from_frame(known[["trace_id", "entity_id"]])
        owners = known["owner"].to_numpy()
        depths = known["depth"].to_numpy()
        todo = todo[~hit]
    keys = list(zip(rel["trace_id"], rel["_anchor"], strict=True))
    owner = [resolved.get(k, (None, 0))[0] for k in keys]
    base = np.array([resolved.get(k, (None, 0))[1] for k in keys], dtype=np.int64)
    placed = np.array([o is not None for o in owner], dtype=bool)
    sub.loc[pending, "segment_id"] = pd.array(owner, dtype="str")
    depth = pd.array(np.where(placed, base + rel_depth.to_numpy() - 1, 0), dtype="Int64")
    depth[~placed] = pd.NA
    sub.loc[pending, "depth"] = depth
    orphan_rows = pending.copy()
    orphan_rows[pending] = ~placed
    sub["orphan"] = orphan_rows
    for tid, sid, pid in sub.loc[
        orphan_rows & sub["streamed"], ["trace_id", "subsegment_id", "parent_id"]
    ].itertuples(index=False):
        problems.add(
            str(sid),
            f"subsegment {sid} of trace {tid} names parent {pid}, which never arrived; "
            "kept as an orphan (column 'orphan')",
        )
    return sub


def seconds_to_time(seconds: np.ndarray) -> pd.DatetimeIndex:
    """Epoch seconds (float, NaN for none) to UTC times, exact to the microsecond."""
    micros = np.round(np.asarray(seconds, dtype="float64") * 1e6)
    values = np.where(np.isnan(micros), np.iinfo(np.int64).min, micros).astype("int64")
    return pd.DatetimeIndex(values.view("datetime64[us]")).tz_localize("UTC")


def _trace_rows(seg: pd.DataFrame, sub: pd.DataFrame) -> pd.DataFrame:
    """One row per trace with GetTraceSummaries semantics."""
    if seg.empty and sub.empty:
        return empty_frame("traces")
    ids = pd.concat([seg["segment_id"], sub["subsegment_id"]], ignore_index=True)
    # the root: a real segment whose caller is not in the trace, earliest first
    has_caller = seg["parent_id"].notna() & seg["parent_id"].isin(ids)
    seg_order = seg.assign(
        _rank=np.where(seg["inferred"], 2, np.where(has_caller, 1, 0))
    ).sort_values(["trace_id", "_rank", "_start_s"], kind="stable")
    root = seg_order.drop_duplicates("trace_id").set_index("trace_id")

    starts = pd.concat(
        [seg[["trace_id", "_start_s", "_end_s"]], sub[["trace_id", "_start_s", "_end_s"]]]
    )
    span = starts.groupby("trace_id", sort=False).agg(
        first=("_start_s", "min"), last=("_end_s", "max")
    )
    seg_flags = seg.groupby("trace_id", sort=False).agg(
        segment_count=("segment_id", "size"),
        seg_partial=("in_progress", "any"),
        seg_throttle=("throttle", "any"),
        seg_429=("http_status", lambda s: bool((s == 429).any())),
    )
    sub_flags = (
        sub.assign(_429=sub["http_status"].eq(429).fillna(False))
        .groupby("trace_id", sort=False)
        .agg(
            subsegment_count=("subsegment_id", "size"),
            sub_partial=("in_progress", "any"),
            sub_throttle=("throttle", "any"),
            sub_429=("_429", "any"),
        )
    )
    services = (
        seg.drop_duplicates(["trace_id", "name", "origin"]).groupby("trace_id", sort=False).size()
    )
    users = (
        seg_order.loc[seg_order["user"].notna()]
        .sort_values(["trace_id", "_start_s"])
        .drop_duplicates("trace_id")
    )
    out = span.join(seg_flags, how="left").join(sub_flags, how="left")
    out = out.join(
        root[
            [
                "segment_id",
                "name",
                "origin",
                "http_method",
                "http_url",
                "http_status",
                "http_client_ip",
                "http_user_agent",
                "fault",
                "error",
                "user",
                "_start_s",
                "_end_s",
            ]
        ].rename(columns={"_start_s": "root_start", "_end_s": "root_end", "user": "root_user"}),
        how="left",
    )
    out["any_user"] = users.set_index("trace_id")["user"]
    out["service_count"] = services
    for col in ("segment_count", "subsegment_count", "service_count"):
        out[col] = out[col].fillna(0).astype("int64")
    flags = {}
    for col in (
        "seg_partial",
        "seg_throttle",
        "seg_429",
        "sub_partial",
        "sub_throttle",
        "sub_429",
        "fault",
        "error",
    ):
        flags[col] = out[col].fillna(False).astype(bool)
    out = out.reset_index().rename(columns={"index": "trace_id"})
    frame = pd.DataFrame(
        {
            "trace_id": out["trace_id"],
            "start": seconds_to_time(out["first"].to_numpy()),
            "end": seconds_to_time(out["last"].to_numpy()),
            "duration_s": out["last"] - out["first"],
            "response_time_s": out["root_end"] - out["root_start"],
            "root_segment_id": out["segment_id"],
            "root_service": out["name"],
            "root_origin": out["origin"],
            "http_method": out["http_method"].str.upper(),
            "http_url": out["http_url"],
            "http_status": out["http_status"],
            "client_ip": out["http_client_ip"],
            "user_agent": out["http_user_agent"],
            "has_fault": flags["fault"].to_numpy(),
            "has_error": flags["error"].to_numpy(),
            "has_throttle": (
                flags["seg_throttle"] | flags["seg_429"] | flags["sub_throttle"] | flags["sub_429"]
            ).to_numpy(),
            "is_partial": (flags["seg_partial"] | flags["sub_partial"]).to_numpy(),
            "user": out["root_user"].fillna(out["any_user"]),
            "segment_count": out["segment_count"],
            "subsegment_count": out["subsegment_count"],
            "service_count": out["service_count"],
        }
    )
    return frame.sort_values(["start", "trace_id"], kind="stable").reset_index(drop=True)


# -- public entry points -----------------------------------------------------------------------


def frames_from_documents(
    documents: Iterable[dict[str, Any] | str | bytes],
    *,
    source: str = "<documents>",
    on_error: OnError = "warn",
) -> dict[str, pd.DataFrame]:
    """Build the frames from segment documents given as dicts or JSON text.

    Each item may also be a ``BatchGetTraces`` response, or a list of documents.
    """
    problems = _Problems(source, on_error)
    builder = _Builder(problems)
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
) -> dict[str, pd.DataFrame]:
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
    for j, segment in enumerate(trace["Segments"]):
        where = f"{location}.Segments[{j}]"
        doc = segment.get("Document") if type(segment) is dict else None
        if type(doc) is str:
            try:
                parsed = orjson.loads(doc)
            except orjson.JSONDecodeError as exc:
                problems.add(where, f"the Document is not valid JSON: {exc}")
                continue
            builder.add_document(parsed, where, doc)
        elif type(doc) is dict:
            builder.add_document(doc, where, None)
        else:
            problems.add(
                where, f"expected a segment with a 'Document' JSON string, got {_short(segment)}"
            )


# -- files ----------------------------------------------------------------------------------


def read_frames(path: str | Path, *, on_error: OnError = "warn") -> dict[str, pd.DataFrame]:
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
    with open(path, "rb") as raw:
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
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        value = _NOT_JSON
    if value is not _NOT_JSON:
        _accept(builder, value, f"{source}:{number}", _line_text(line, value))
        _read_lines(builder, lines, source)
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
            _read_lines(builder, _lines(io.BytesIO(rest), start=number + 1), source)
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
        start, route = m.end(), _accept_trace  # type: ignore[assignment]
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


Reader = Callable[..., dict[str, pd.DataFrame]]

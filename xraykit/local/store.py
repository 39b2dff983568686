"""The local X-Ray's storage: segment documents, groups and sampling rules in SQLite.

A :class:`Store` keeps the raw JSON text of every segment document (and of every subsegment
sent on its own) in one SQLite database through the standard library, with a row per trace
for time-window queries. A file survives restarts (journal in WAL mode); ``":memory:"``
lasts as long as the object. One connection, guarded by a lock, serves the daemon's writer
thread and the API's threads at once. Traces whose last document arrived more than
``retention_days`` ago (30, as X-Ray keeps them) are purged on open and, at most once a
minute, on :meth:`Store.put`. Every change moves :attr:`Store.revision` and is noted, with
the ids of the traces it touched, in a bounded journal (:meth:`Store.changes`), so that a
reader (:mod:`~xraykit.local.mirror`) can re-read only what changed; a small table of
settings keeps account-wide choices such as the encryption configuration.

Examples
--------
>>> store = Store(":memory:")
>>> doc = ('{"name": "web", "id": "70de5b6f19ff9a0a", "start_time": 1478293361.271,'
...        ' "trace_id": "1-581cf771-a006649127e371903a2de979", "end_time": 1478293361.449}')
>>> store.put([doc, '{"name": "web"}', "not json"])
PutResult(accepted=1, rejected=[(None, 'bad id'), (None, 'not JSON')])
>>> store.trace_ids(1478293361, 1478293362)
['1-581cf771-a006649127e371903a2de979']
>>> store.traceset().traces["root_service"].tolist()
['web']
>>> store.close()
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.traceset import from_documents

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["MAX_DOCUMENT_BYTES", "PutResult", "Store"]

MAX_DOCUMENT_BYTES = 64 * 1024
"""The largest segment document accepted, in bytes of UTF-8 (X-Ray's 64 KB limit)."""

TIME_RANGE_TYPES = ("TraceId", "Event", "Service")
_CHUNK = 1000  # documents parsed and written per transaction: what put holds at once
_PURGE_EVERY = 60.0  # seconds between automatic purges
_IDS_PER_QUERY = 500  # bound parameters per IN (...) clause
_SCHEMA_VERSION = 1
JOURNAL_IDS = 1_000_000
"""Trace ids the change journal holds; a reader further behind re-reads everything."""
_TRACE_ID = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
_ENTITY_ID = re.compile(r"[0-9a-f]{16}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    trace_id TEXT NOT NULL, id TEXT NOT NULL, in_progress INTEGER NOT NULL,
    start REAL NOT NULL, end REAL, received REAL NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (trace_id, id));
CREATE INDEX IF NOT EXISTS documents_start ON documents (start, trace_id);
CREATE INDEX IF NOT EXISTS documents_end ON documents (end, trace_id);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL, first_start REAL NOT NULL,
    last_time REAL NOT NULL, received REAL NOT NULL);
CREATE INDEX IF NOT EXISTS traces_epoch ON traces (epoch, first_start, trace_id);
CREATE INDEX IF NOT EXISTS traces_received ON traces (received);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, arn TEXT, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS groups_arn ON groups (arn);
CREATE TABLE IF NOT EXISTS rules (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, body TEXT NOT NULL);
"""

_PUT_DOCUMENT = """
INSERT INTO documents (trace_id, id, in_progress, start, end, received, body)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (trace_id, id) DO UPDATE SET
    in_progress = excluded.in_progress, start = excluded.start, end = excluded.end,
    received = excluded.received, body = excluded.body
WHERE excluded.in_progress = 0 OR documents.in_progress = 1
"""

_PUT_TRACE = """
INSERT INTO traces (trace_id, epoch, first_start, last_time, received) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (trace_id) DO UPDATE SET
    first_start = min(first_start, excluded.first_start),
    last_time = max(last_time, excluded.last_time),
    received = max(received, excluded.received)
"""


class PutResult(NamedTuple):
    """What :meth:`Store.put` did: how many documents it kept, and why it refused the others.

    ``rejected`` holds ``(id, reason)`` pairs; ``id`` is the document's ``id`` when it has a
    string one, else None. Reasons are short fixed phrases, fit to count by.
    """

    accepted: int
    rejected: list[tuple[str | None, str]]


class Store:
    """Segment documents, groups and sampling rules in one SQLite database.

    Parameters
    ----------
    path : str or os.PathLike
        A database file (created with its folder if missing) or ``":memory:"``.
    retention_days : float
        Traces whose last document arrived longer ago than this are purged (X-Ray keeps
        traces for 30 days). ``math.inf`` keeps everything.

    Examples
    --------
    >>> store = Store()
    >>> store.save_group({"GroupName": "slow", "GroupARN": "arn:aws:xray:local:000000000000:group/slow/1",
    ...                   "FilterExpression": "responsetime > 5"})
    >>> store.group("slow")["FilterExpression"], store.delete_group("slow"), store.groups()
    ('responsetime > 5', True, [])
    >>> store.save_rule({"RuleName": "checkout", "FixedRate": 0.5})
    >>> [r["RuleName"] for r in store.rules()]
    ['checkout']
    >>> store.close()
    """

    def __init__(
        self, path: str | os.PathLike[str] = ":memory:", *, retention_days: float = 30.0
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise ArgumentTypeError(
                f"`path` must be a file path or ':memory:', but a {type(path).__name__} was passed."
            )
        if (
            isinstance(retention_days, bool)
            or not isinstance(retention_days, int | float)
            or not retention_days > 0
        ):
            raise ArgumentError(
                f"`retention_days` must be a positive number of days, but {retention_days!r} "
                "was passed."
            )
        self.path = str(os.fspath(path))
        self.retention_days = float(retention_days)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified at every new revision
        # (revision, ids of the traces it touched), oldest first, at most JOURNAL_IDS ids
        self._journal: deque[tuple[int, tuple[str, ...]]] = deque()
        self._journal_ids = 0
        self._journal_floor = 0  # changes() answers for readers at this revision or later
        memory = self.path == ":memory:"
        if not memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self.path, timeout=10.0, check_same_thread=False, isolation_level=None
            )
            self._conn: sqlite3.Connection | None = conn
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                conn.close()
                raise ArgumentError(
                    f"{self.path} was written by a newer xraykit (store version {version}); "
                    "upgrade xraykit or choose another file."
                )
            if not memory:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except sqlite3.OperationalError as error:
            raise ArgumentError(
                f"Cannot open {self.path} ({error}); choose another file."
            ) from error
        except sqlite3.DatabaseError as error:
            raise ArgumentError(
                f"{self.path} is not an xraykit local store ({error}); choose another file."
            ) from error
        self._last_purge = time.monotonic()
        self._revision = 0
        self.purge()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"{self.count()} traces"
        return f"<Store {self.path}: {state}>"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (a file keeps everything for the next :class:`Store`)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._conn is None

    @property
    def revision(self) -> int:
        """A number that grows whenever stored documents change (put or purge), from 0 at open.

        Lets a reader cache what it built from the documents (a TraceSet) until it moves;
        :meth:`changes` tells which traces changed since a revision.
        """
        return self._revision

    def changes(self, since: int) -> tuple[int, set[str]] | None:
        """``(revision, ids)``: the ids of the traces put or deleted after revision ``since``.

        None when the journal no longer reaches back to ``since`` (the reader re-reads
        everything). A trace id in ``ids`` that :meth:`documents` no longer finds was deleted.

        Examples
        --------
        >>> store = Store()
        >>> doc = {"trace_id": "1-581cf771-a006649127e371903a2de979", "id": "70de5b6f19ff9a0a",
        ...        "name": "web", "start_time": 1478293390.0, "end_time": 1478293391.0}
        >>> before = store.revision
        >>> _ = store.put([doc])
        >>> store.changes(before) == (store.revision, {doc["trace_id"]}), store.changes(-1)
        (True, None)
        """
        with self._lock:
            if since < self._journal_floor:
                return None
            ids: set[str] = set()
            for revision, touched in reversed(self._journal):
                if revision <= since:
                    break
                ids.update(touched)
            return self._revision, ids

    def wait_for_change(self, revision: int, timeout: float) -> int:
        """Wait until :attr:`revision` differs from ``revision`` (or the store closes, or
        ``timeout`` seconds pass); return the revision then."""
        with self._changed:
            if self._revision == revision and self._conn is not None:
                self._changed.wait(timeout)
            return self._revision

    def _note_change(self, trace_ids: Iterable[str]) -> None:
        """Move the revision and journal the traces touched (call with the lock held)."""
        self._revision += 1
        touched = tuple(trace_ids)
        self._journal.append((self._revision, touched))
        self._journal_ids += len(touched)
        while self._journal_ids > JOURNAL_IDS and len(self._journal) > 1:
            revision, dropped = self._journal.popleft()
            self._journal_ids -= len(dropped)
            self._journal_floor = revision
        self._changed.notify_all()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ArgumentError(f"This Store ({self.path}) is closed; open a new Store(path).")
        return self._conn

    # -- documents -----------------------------------------------------------------------

    def put(
        self, documents: Iterable[str | bytes | dict[str, Any]], *, received: float | None = None
    ) -> PutResult:
        """Keep segment documents; refuse, with a reason, those X-Ray would not take.

        Never raises for a bad document. A document is a JSON object with ``trace_id``
        (``1-`` + 8 + 24 hex digits), ``id`` (16 hex digits), ``name`` and a numeric
        ``start_time``; at most :data:`MAX_DOCUMENT_BYTES`; a subsegment sent on its own
        (``"type": "subsegment"``) also needs ``parent_id``. The same id sent again
        replaces the stored document, except that an in-progress one never replaces a
        complete one. Documents are read and written a thousand at a time.

        Parameters
        ----------
        documents : iterable of str, bytes or dict
            JSON texts (kept as sent) or dicts (kept as compact JSON).
        received : float, optional
            When they arrived, epoch seconds (the clock of retention); default now.

        Returns
        -------
        PutResult

        Examples
        --------
        >>> store = Store()
        >>> store.put([{"trace_id": "1-581cf771-a006649127e371903a2de979", "id": "70de5b6f19ff9a0a",
        ...             "name": "web", "start_time": 1478293361.2, "in_progress": True}, 7])
        PutResult(accepted=1, rejected=[(None, 'not a document')])
        """
        now = time.time() if received is None else float(received)
        accepted = 0
        rejected: list[tuple[str | None, str]] = []
        for chunk in _chunks(documents, _CHUNK):
            rows = []
            traces: dict[str, list[float]] = {}
            for item in chunk:
                row = _document_row(item)
                if len(row) == 2:
                    rejected.append(row)
                    continue
                trace_id, entity_id, in_progress, start, end, body = row
                rows.append((trace_id, entity_id, in_progress, start, end, now, body))
                last = start if end is None else end
                span = traces.get(trace_id)
                if span is None:
                    traces[trace_id] = [start, last]
                else:
                    span[0] = min(span[0], start)
                    span[1] = max(span[1], last)
            if rows:
                trace_rows = [
                    (t, int(t[2:10], 16), first, last, now) for t, (first, last) in traces.items()
                ]
                with self._lock:
                    db = self._db()
                    db.execute("BEGIN")
                    try:
                        db.executemany(_PUT_DOCUMENT, rows)
                        db.executemany(_PUT_TRACE, trace_rows)
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
                    self._note_change(traces)
                accepted += len(rows)
        if time.monotonic() - self._last_purge >= _PURGE_EVERY:
            self.purge()
        return PutResult(accepted, rejected)

    def trace_ids(self, start: float, end: float, *, time_range_type: str = "TraceId") -> list[str]:
        """Ids of the traces in a time window, by first start time, then id.

        Parameters
        ----------
        start, end : float
            The window, epoch seconds, both ends included.
        time_range_type : {"TraceId", "Event", "Service"}
            ``"TraceId"``: the time in the trace id is in the window. ``"Event"``: a document
            of the trace (a segment, or a subsegment sent on its own) starts or ends in it.
            ``"Service"`` is answered as ``"Event"``.

        Examples
        --------
        >>> store = Store()
        >>> store.put([{"trace_id": "1-581cf771-a006649127e371903a2de979", "id": "70de5b6f19ff9a0a",
        ...             "name": "web", "start_time": 1478293390.0, "end_time": 1478293391.0}]).accepted
        1
        >>> store.trace_ids(1478293380, 1478293395), store.trace_ids(1478293380, 1478293395,
        ...                                                          time_range_type="Event")
        ([], ['1-581cf771-a006649127e371903a2de979'])
        """
        if time_range_type not in TIME_RANGE_TYPES:
            raise ArgumentError(
                f"`time_range_type` must be one of {TIME_RANGE_TYPES}, but "
                f"{time_range_type!r} was passed."
            )
        lo, hi = float(start), float(end)
        if time_range_type == "TraceId":
            sql = (
                "SELECT trace_id FROM traces WHERE epoch BETWEEN ? AND ? "
                "ORDER BY first_start, trace_id"
            )
            params: tuple[float, ...] = (math.ceil(lo), math.floor(hi))
        else:
            sql = (
                "SELECT trace_id FROM traces WHERE trace_id IN ("
                "SELECT trace_id FROM documents WHERE start BETWEEN ? AND ? UNION "
                "SELECT trace_id FROM documents WHERE end BETWEEN ? AND ?) "
                "ORDER BY first_start, trace_id"
            )
            params = (lo, hi, lo, hi)
        with self._lock:
            return [row[0] for row in self._db().execute(sql, params)]

    def documents(self, trace_ids: Sequence[str]) -> dict[str, list[str]]:
        """The stored texts of each trace asked for that is stored, by start time.

        Traces not stored are left out (BatchGetTraces lists them as unprocessed).
        """
        if isinstance(trace_ids, str):
            trace_ids = [trace_ids]
        found: dict[str, list[str]] = {}
        for part in _chunks(dict.fromkeys(trace_ids), _IDS_PER_QUERY):
            marks = ",".join("?" * len(part))
            # sorted here: an ORDER BY tempts SQLite to scan the whole start index
            sql = f"SELECT start, id, trace_id, body FROM documents WHERE trace_id IN ({marks})"
            with self._lock:
                rows = self._db().execute(sql, part).fetchall()
            rows.sort()
            for _, _, trace_id, body in rows:
                found.setdefault(trace_id, []).append(body)
        return {t: found[t] for t in dict.fromkeys(trace_ids) if t in found}

    def traceset(self, trace_ids: Sequence[str] | None = None) -> TraceSet:
        """A TraceSet of the traces asked for (all when None); bad documents are skipped.

        Subsegments sent on their own are stitched under their parents by the loader.
        """
        if trace_ids is None:
            with self._lock:
                texts = [r[0] for r in self._db().execute("SELECT body FROM documents")]
        else:
            texts = [t for texts in self.documents(trace_ids).values() for t in texts]
        return from_documents(texts, source=f"<local store {self.path}>", on_error="ignore")

    def count(self) -> int:
        """The number of traces stored."""
        with self._lock:
            return int(self._db().execute("SELECT count(*) FROM traces").fetchone()[0])

    def purge(self, now: float | None = None) -> int:
        """Delete the traces whose last document arrived over ``retention_days`` before ``now``.

        Returns the number of traces deleted.

        Examples
        --------
        >>> store = Store(retention_days=30)
        >>> doc = {"trace_id": "1-581cf771-a006649127e371903a2de979", "id": "70de5b6f19ff9a0a",
        ...        "name": "web", "start_time": 1478293390.0, "end_time": 1478293391.0}
        >>> store.put([doc], received=0.0).accepted
        1
        >>> store.purge(now=29 * 86400), store.purge(now=31 * 86400), store.count()
        (0, 1, 0)
        """
        when = time.time() if now is None else float(now)
        cutoff = when - self.retention_days * 86400.0
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            try:
                ids = [
                    row[0]
                    for row in db.execute(
                        "SELECT trace_id FROM traces WHERE received < ?", (cutoff,)
                    )
                ]
                db.execute(
                    "DELETE FROM documents WHERE trace_id IN "
                    "(SELECT trace_id FROM traces WHERE received < ?)",
                    (cutoff,),
                )
                gone = db.execute("DELETE FROM traces WHERE received < ?", (cutoff,)).rowcount
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self._last_purge = time.monotonic()
            if gone:
                self._note_change(ids)
        return int(gone)

    # -- groups and sampling rules -----------------------------------------------------

    def groups(self) -> list[dict[str, Any]]:
        """Every group (X-Ray ``Group`` dicts), in the order they were first saved."""
        with self._lock:
            rows = self._db().execute("SELECT body FROM groups ORDER BY rowid").fetchall()
        return [json.loads(r[0]) for r in rows]

    def group(self, name_or_arn: str) -> dict[str, Any] | None:
        """The group of this ``GroupName`` or ``GroupARN``, or None."""
        with self._lock:
            row = (
                self._db()
                .execute("SELECT body FROM groups WHERE name = ? OR arn = ?", (name_or_arn,) * 2)
                .fetchone()
            )
        return None if row is None else json.loads(row[0])

    def save_group(self, group: dict[str, Any]) -> None:
        """Create or replace a group, keyed by its ``GroupName``."""
        name = _key(group, "GroupName", "group")
        arn = group.get("GroupARN")
        body = _dumps(group, "group")
        with self._lock:
            self._db().execute(
                "INSERT INTO groups (name, arn, body) VALUES (?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET arn = excluded.arn, body = excluded.body",
                (name, arn if isinstance(arn, str) else None, body),
            )

    def delete_group(self, name_or_arn: str) -> bool:
        """Delete the group of this name or ARN; whether there was one."""
        with self._lock:
            cursor = self._db().execute(
                "DELETE FROM groups WHERE name = ? OR arn = ?", (name_or_arn,) * 2
            )
        return cursor.rowcount > 0

    def rules(self) -> list[dict[str, Any]]:
        """Every sampling rule (X-Ray ``SamplingRule`` dicts), in the order first saved."""
        with self._lock:
            rows = self._db().execute("SELECT body FROM rules ORDER BY rowid").fetchall()
        return [json.loads(r[0]) for r in rows]

    def save_rule(self, rule: dict[str, Any]) -> None:
        """Create or replace a sampling rule, keyed by its ``RuleName`` (not validated here)."""
        name = _key(rule, "RuleName", "rule")
        body = _dumps(rule, "rule")
        with self._lock:
            self._db().execute(
                "INSERT INTO rules (name, body) VALUES (?, ?) ON CONFLICT (name) "
                "DO UPDATE SET body = excluded.body",
                (name, body),
            )

    def delete_rule(self, name: str) -> bool:
        """Delete the sampling rule of this name; whether there was one."""
        with self._lock:
            cursor = self._db().execute("DELETE FROM rules WHERE name = ?", (name,))
        return cursor.rowcount > 0

    def setting(self, name: str) -> dict[str, Any] | None:
        """The account-wide setting of this name (a dict), or None when never saved.

        >>> store = Store()
        >>> store.save_setting("encryption", {"Type": "NONE"})
        >>> store.setting("encryption"), store.setting("other")
        ({'Type': 'NONE'}, None)
        """
        with self._lock:
            row = self._db().execute("SELECT body FROM settings WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def save_setting(self, name: str, value: dict[str, Any]) -> None:
        """Create or replace the setting ``name`` (a JSON-able dict)."""
        if not isinstance(value, dict):
            raise ArgumentTypeError(
                f"A setting must be a dict, but a {type(value).__name__} was passed."
            )
        body = _dumps(value, "setting")
        with self._lock:
            self._db().execute(
                "INSERT INTO settings (name, body) VALUES (?, ?) ON CONFLICT (name) "
                "DO UPDATE SET body = excluded.body",
                (name, body),
            )


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _document_row(item: object) -> tuple[Any, ...]:
    """``(trace_id, id, in_progress, start, end, text)`` of a good document, else ``(id, reason)``."""
    if isinstance(item, dict):
        try:
            text = orjson.dumps(item).decode()
        except (TypeError, orjson.JSONEncodeError):
            return (None, "not JSON")
        doc: object = item
        size = len(text)
    elif isinstance(item, str | bytes | bytearray | memoryview):
        size = len(item) if not isinstance(item, str) else len(item.encode("utf-8", "replace"))
        if size > MAX_DOCUMENT_BYTES:
            return (None, "too large")
        try:
            doc = orjson.loads(item)
        except orjson.JSONDecodeError:
            return (None, "not JSON")
        text = item if isinstance(item, str) else bytes(item).decode()
    else:
        return (None, "not a document")
    if not isinstance(doc, dict):
        return (None, "not a document")
    entity_id = doc.get("id")
    ident = entity_id if isinstance(entity_id, str) else None
    if size > MAX_DOCUMENT_BYTES:
        return (ident, "too large")
    if ident is None or not _ENTITY_ID.fullmatch(ident):
        return (ident, "bad id")
    trace_id = doc.get("trace_id")
    if not isinstance(trace_id, str) or not _TRACE_ID.fullmatch(trace_id):
        return (ident, "bad trace_id")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        return (ident, "no name")
    start = _number(doc.get("start_time"))
    if start is None:
        return (ident, "bad start_time")
    end = None
    if "end_time" in doc:
        end = _number(doc["end_time"])
        if end is None:
            return (ident, "bad end_time")
    if doc.get("type") == "subsegment":
        parent = doc.get("parent_id")
        if not isinstance(parent, str) or not _ENTITY_ID.fullmatch(parent):
            return (ident, "subsegment without parent_id")
    in_progress = doc.get("in_progress") is True or end is None
    return (trace_id, ident, int(in_progress), start, end, text)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _key(item: object, field: str, what: str) -> str:
    if not isinstance(item, dict):
        raise ArgumentTypeError(f"A {what} must be a dict, but a {type(item).__name__} was passed.")
    name = item.get(field)
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"A {what} needs a non-empty string {field}, but {name!r} was passed.")
    return name


def _dumps(item: dict[str, Any], what: str) -> str:
    try:
        return json.dumps(item)
    except (TypeError, ValueError) as error:
        raise ArgumentTypeError(f"A {what} must be JSON data: {error}.") from error

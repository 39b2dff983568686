"""The local X-Ray API's operations: traces, summaries, graphs, groups and sampling.

:class:`Operations` turns one parsed request body into one response body, as X-Ray's
rest-json API words them; :mod:`~xraykit.local.api` does the HTTP around it. A request
X-Ray would refuse raises an :mod:`xraykit.exceptions` error (``ArgumentError``,
``FilterExpressionError``, ``NotFoundError``, ``SamplingRuleError``), which the server
answers with ``InvalidRequestException`` and the error's message.

>>> from xraykit.local.store import Store
>>> ops = Operations(Store(":memory:"))
>>> ops.call("BatchGetTraces", {"TraceIds": ["1-5f84c7a9-0a1b2c3d4e5f6a7b8c9d0e1f"]})
{'Traces': [], 'UnprocessedTraceIds': ['1-5f84c7a9-0a1b2c3d4e5f6a7b8c9d0e1f']}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from xraykit.exceptions import ArgumentError, NotFoundError
from xraykit.graph import service_graph
from xraykit.local.graph_response import service_graph_response, trace_graph_response
from xraykit.local.mirror import Indexer, Mirror, Window
from xraykit.local.sampling_service import SamplingService
from xraykit.local.summaries import trace_summaries
from xraykit.query import validate

if TYPE_CHECKING:
    from xraykit.local.store import Store
    from xraykit.traceset import TraceSet

__all__ = ["MAX_BATCH_IDS", "MAX_WINDOW_S", "PAGE_SIZE", "ROUTES", "Operations"]

#: Trace ids ``BatchGetTraces`` takes at once (more: InvalidRequestException).
MAX_BATCH_IDS = 5
#: The longest ``GetTraceSummaries`` window, in seconds (six hours).
MAX_WINDOW_S = 6 * 3600.0
#: Summaries per ``GetTraceSummaries`` page.
PAGE_SIZE = 100
#: Seconds the later pages of a query list what its first page found.
SNAPSHOT_S = 600.0
#: TraceSummaries kept between calls while the store is unchanged (the oldest go first).
SUMMARY_CACHE = 50_000
#: Trace ids one ``GetTraceGraph`` call takes.
MAX_GRAPH_IDS = 100
#: Fraction of the traces ``Sampling=true`` keeps when no ``SamplingStrategy`` says.
DEFAULT_SAMPLE = 0.1

#: Request path -> operation name (botocore's X-Ray model, API version 2016-04-12).
ROUTES = {
    "/TraceSegments": "PutTraceSegments",
    "/Traces": "BatchGetTraces",
    "/TraceSummaries": "GetTraceSummaries",
    "/ServiceGraph": "GetServiceGraph",
    "/TraceGraph": "GetTraceGraph",
    "/CreateGroup": "CreateGroup",
    "/GetGroup": "GetGroup",
    "/Groups": "GetGroups",
    "/UpdateGroup": "UpdateGroup",
    "/DeleteGroup": "DeleteGroup",
    "/GetSamplingRules": "GetSamplingRules",
    "/CreateSamplingRule": "CreateSamplingRule",
    "/UpdateSamplingRule": "UpdateSamplingRule",
    "/DeleteSamplingRule": "DeleteSamplingRule",
    "/SamplingTargets": "GetSamplingTargets",
    "/EncryptionConfig": "GetEncryptionConfig",
    "/PutEncryptionConfig": "PutEncryptionConfig",
}
#: Encryption types ``PutEncryptionConfig`` takes (X-Ray's ``EncryptionType``).
ENCRYPTION_TYPES = ("NONE", "KMS")
_TIME_RANGE_TYPES = ("TraceId", "Event", "Service")


# --- reading request fields -------------------------------------------------------------


def _string(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise ArgumentError(f"{key} is required.")
        return None
    if not isinstance(value, str):
        raise ArgumentError(f"{key} must be a string, not {type(value).__name__}.")
    return value


def _number(body: Mapping[str, Any], key: str) -> float:
    value = body.get(key)
    if value is None:
        raise ArgumentError(f"{key} is required.")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentError(f"{key} must be a number of epoch seconds.")
    if not math.isfinite(value):
        raise ArgumentError(f"{key} must be a finite number.")
    return float(value)


def _strings(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        raise ArgumentError(f"{key} is required.")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArgumentError(f"{key} must be a list of strings.")
    return value


def _window(body: Mapping[str, Any]) -> tuple[float, float]:
    start, end = _number(body, "StartTime"), _number(body, "EndTime")
    if end < start:
        raise ArgumentError("EndTime must be after StartTime.")
    return start, end


# --- stitching BatchGetTraces documents -------------------------------------------------


def _stitch(texts: Sequence[str]) -> tuple[list[tuple[str, str]], float]:
    """The segments of one trace as (id, document) and the trace's duration.

    Subsegments sent on their own go under their parents, as X-Ray returns processed
    documents; one whose parent is not there stays a document of its own.
    """
    docs: list[tuple[dict[str, Any], str]] = []
    for text in texts:
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, dict):
            docs.append((doc, text))
    starts = [d["start_time"] for d, _ in docs if _is_number(d.get("start_time"))]
    ends = [d["end_time"] for d, _ in docs if _is_number(d.get("end_time"))]
    duration = max(0.0, max(ends) - min(starts)) if starts and ends else 0.0
    where: dict[str, tuple[dict[str, Any], int]] = {}  # entity id -> (entity, its document)
    for position, (doc, _) in enumerate(docs):
        _index(doc, position, where)
    changed: set[int] = set()
    moved: set[int] = set()
    for position, (doc, _) in enumerate(docs):
        if doc.get("type") != "subsegment":
            continue
        parent, top = where.get(str(doc.get("parent_id")), (None, -1))
        if parent is None or top == position:
            continue
        for key in ("trace_id", "parent_id", "type"):
            doc.pop(key, None)
        subsegments = parent.get("subsegments")
        if not isinstance(subsegments, list):
            subsegments = parent["subsegments"] = []
        subsegments.append(doc)
        _index(doc, top, where, force=True)
        changed.add(top)
        moved.add(position)
    segments = []
    for position, (doc, text) in enumerate(docs):
        if position not in moved:
            document = json.dumps(doc) if position in changed else text
            segments.append((str(doc.get("id", "")), document))
    return segments, round(duration, 6)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _index(
    entity: dict[str, Any],
    top: int,
    into: dict[str, tuple[dict[str, Any], int]],
    *,
    force: bool = False,
    depth: int = 0,
) -> None:
    """Record ``entity`` and its nested subsegments as held by document ``top``."""
    key = entity.get("id")
    if isinstance(key, str) and (force or key not in into):
        into[key] = (entity, top)
    subsegments = entity.get("subsegments")
    if isinstance(subsegments, list) and depth < 64:
        for sub in subsegments:
            if isinstance(sub, dict):
                _index(sub, top, into, force=force, depth=depth + 1)


# --- paging -------------------------------------------------------------------------------


def _token(digest: str, snapshot: str, last_id: str, offset: int) -> str:
    raw = json.dumps({"q": digest, "s": snapshot, "a": last_id, "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _read_token(token: str, digest: str) -> tuple[str, str, int]:
    """(snapshot, last id, offset) of a NextToken of this query."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        snapshot, last, offset, query = data["s"], data["a"], data["o"], data["q"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise ArgumentError("NextToken is not valid.") from None
    if not (isinstance(snapshot, str) and isinstance(last, str) and isinstance(offset, int)):
        raise ArgumentError("NextToken is not valid.")
    if query != digest or offset < 0:
        raise ArgumentError("NextToken does not belong to this query.")
    return snapshot, last, offset


def _sampled(trace_id: str, rate: float) -> bool:
    """Whether a trace is in a ``Sampling=true`` subset (decided by its random id part)."""
    try:
        return int(trace_id[-8:], 16) / 2**32 < rate
    except ValueError:
        return False


class _Cache:
    """TraceSets (and filter matches) of recent windows, valid while the store is unchanged."""

    def __init__(self, size: int = 4) -> None:
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = build()
            self._put(key, value)
            return value

    def peek(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._items.get(key)

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        with self._lock:
            self._put(key, value)

    def _put(self, key: tuple[Any, ...], value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class Operations:
    """X-Ray's operations over a :class:`~xraykit.local.store.Store`.

    Parameters
    ----------
    store : Store
        Where traces, groups and sampling rules are.
    sampling : SamplingService, optional
        The sampling rules and targets; default one over ``store``.
    """

    def __init__(
        self, store: Store, *, sampling: SamplingService | None = None, index: bool = True
    ) -> None:
        self.store = store
        self.sampling = SamplingService(store) if sampling is None else sampling
        # the traces kept parsed, and the thread that parses them as they arrive
        self.mirror = Mirror(store)
        self.indexer: Indexer | None = Indexer(self.mirror).start() if index else None
        if self.indexer is not None:  # the thread ends with this object if not before
            weakref.finalize(self, self.indexer.stop, 0.0)
        self.use_mirror = True  # False: every query takes the per-window path (tests compare)
        self._tracesets = _Cache(2)
        self._matches = _Cache(16)
        self._snapshots = _Cache(32)  # the matches of paged queries, for their next pages
        self._ids = _Cache(8)  # trace ids of recent windows
        # TraceSummary (as JSON text) of each trace summarized since the store last changed
        # (X-Ray computes a summary once, when the trace arrives; ours when a page first
        # shows the trace)
        self._summaries: dict[str, str] = {}
        self._summaries_revision = -1
        self._summaries_lock = threading.Lock()

    def call(self, operation: str, body: Mapping[str, Any], *, region: str = "us-east-1") -> Any:
        """Answer one request of ``operation`` (a name of :data:`ROUTES`)."""
        handlers: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "PutTraceSegments": self.put_trace_segments,
            "BatchGetTraces": self.batch_get_traces,
            "GetTraceSummaries": self.get_trace_summaries,
            "GetServiceGraph": self.get_service_graph,
            "GetTraceGraph": self.get_trace_graph,
            "CreateGroup": lambda b: self.create_group(b, region=region),
            "GetGroup": self.get_group,
            "GetGroups": self.get_groups,
            "UpdateGroup": self.update_group,
            "DeleteGroup": self.delete_group,
            "GetSamplingRules": lambda b: self.sampling.get_rules(),
            "CreateSamplingRule": lambda b: self.sampling.create_rule(b),
            "UpdateSamplingRule": lambda b: self.sampling.update_rule(b),
            "DeleteSamplingRule": lambda b: self.sampling.delete_rule(b),
            "GetSamplingTargets": lambda b: self.sampling.targets(b),
            "GetEncryptionConfig": self.get_encryption_config,
            "PutEncryptionConfig": self.put_encryption_config,
        }
        if operation not in handlers:
            raise NotFoundError(f"Unknown operation {operation!r}.")
        return handlers[operation](body)

    # --- traces ---------------------------------------------------------------------

    def put_trace_segments(self, body: Mapping[str, Any]) -> dict[str, Any]:
        documents = _strings(body, "TraceSegmentDocuments")
        result = self.store.put(documents)
        unprocessed = [
            {"Id": seg_id or "", "ErrorCode": "InvalidSegment", "Message": reason}
            for seg_id, reason in result.rejected
        ]
        return {"UnprocessedTraceSegments": unprocessed}

    def batch_get_traces(self, body: Mapping[str, Any]) -> dict[str, Any]:
        ids = list(dict.fromkeys(_strings(body, "TraceIds")))
        if len(ids) > MAX_BATCH_IDS:
            raise ArgumentError(f"Exceeding maximum query size: {MAX_BATCH_IDS}")
        found = self.store.documents(ids)
        traces = []
        for trace_id in ids:
            texts = found.get(trace_id)
            if not texts:
                continue
            segments, duration = _stitch(texts)
            traces.append(
                {
                    "Id": trace_id,
                    "Duration": duration,
                    "LimitExceeded": False,
                    "Segments": [{"Id": i, "Document": d} for i, d in segments],
                }
            )
        missing = [t for t in ids if not found.get(t)]
        return {"Traces": traces, "UnprocessedTraceIds": missing}

    def close(self) -> None:
        """Stop the background indexer (the store stays open)."""
        if self.indexer is not None:
            self.indexer.stop()

    def _window(self, ids: list[str]) -> Window:
        """The TraceSet of ``ids`` read from the store and its shared frames, kept while the
        store is unchanged (the per-window path, when the mirror does not hold the window)."""
        digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()
        key = (self.store.revision, digest)
        window: Window = self._tracesets.get(key, lambda: Window(self.store.traceset(ids)))
        return window

    def _traceset(self, ids: list[str]) -> TraceSet:
        """The TraceSet of ``ids``, shared between calls while the store is unchanged."""
        return self._window(ids).ts

    def _trace_ids(self, start: float, end: float, kind: str) -> list[str]:
        """``Store.trace_ids`` of a window, kept while the store is unchanged."""
        key = (self.store.revision, start, end, kind)
        ids: list[str] = self._ids.get(
            key, lambda: self.store.trace_ids(start, end, time_range_type=kind)
        )
        return ids

    def _page_summaries(self, page: list[str], window: list[str] | None) -> list[dict[str, Any]]:
        """The TraceSummary of each trace of ``page``, in order, computed once per revision.

        The traces not summarized yet are taken from the window's cached TraceSet when
        there is one, else read from the store. The mirror, when it holds them, keeps each
        trace's summary until the trace changes.
        """
        if self.use_mirror:
            found = self.mirror.summaries(page)
            if found is not None:
                return found
        revision = self.store.revision
        with self._summaries_lock:
            if revision != self._summaries_revision:
                self._summaries = {}
                self._summaries_revision = revision
            known = {t: self._summaries[t] for t in page if t in self._summaries}
        missing = [t for t in page if t not in known]
        if missing:
            digest = hashlib.sha1("\n".join(window or ()).encode()).hexdigest()
            held = self._tracesets.peek((revision, digest)) if window else None
            ts = held.ts.select(missing) if held is not None else self.store.traceset(missing)
            fresh = {s["Id"]: json.dumps(s) for s in trace_summaries(ts)}
            known.update(fresh)
            with self._summaries_lock:
                if revision == self._summaries_revision:
                    self._summaries.update(fresh)
                    for oldest in list(self._summaries)[: len(self._summaries) - SUMMARY_CACHE]:
                        del self._summaries[oldest]
        return [json.loads(known[t]) for t in page if t in known]

    def group_expressions(self) -> dict[str, str]:
        """Group name and ARN -> filter expression, for ``group.name`` / ``group.arn``."""
        out: dict[str, str] = {}
        for group in self.store.groups():
            expression = group.get("FilterExpression")
            if expression:
                out[group["GroupName"]] = expression
                out[group["GroupARN"]] = expression
        return out

    def _matching(self, ids: list[str], expression: str | None) -> list[str]:
        """The ids (kept in order) of the traces matching ``expression``."""
        if not expression or not ids:
            return ids
        groups = self.group_expressions()
        if self.use_mirror:
            found = self.mirror.matches(ids, expression, groups)
            if found is not None:
                return found

        def build() -> list[str]:
            window = self._window(ids)
            mask = window.evaluate(expression, groups)
            hits = set(window.ts.traces.loc[mask, "trace_id"])
            return [t for t in ids if t in hits]

        digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()
        key = (self.store.revision, digest, expression, tuple(sorted(groups.items())))
        return self._matches.get(key, build)

    def get_trace_summaries(self, body: Mapping[str, Any]) -> dict[str, Any]:
        start, end = _window(body)
        if end - start > MAX_WINDOW_S:
            raise ArgumentError(
                "Time range between StartTime and EndTime cannot exceed 6 hours "
                f"(asked for {(end - start) / 3600:.4g} hours)."
            )
        kind = _string(body, "TimeRangeType") or "TraceId"
        if kind not in _TIME_RANGE_TYPES:
            raise ArgumentError(f"TimeRangeType must be one of {', '.join(_TIME_RANGE_TYPES)}.")
        expression = _string(body, "FilterExpression")
        if expression is not None:
            if len(expression) > 2000:
                raise ArgumentError("FilterExpression is longer than 2000 characters.")
            validate(expression)
        rate = self._sample_rate(body)
        digest = hashlib.sha1(repr((start, end, kind, expression, rate)).encode()).hexdigest()
        token = _string(body, "NextToken")
        begin, last = 0, None
        snapshot = secrets.token_hex(8)
        if token:
            snapshot, last, begin = _read_token(token, digest)
        # the next pages of a query list what its first page found, if not long ago
        kept = self._snapshots.peek((snapshot,)) if token else None
        window: list[str] | None = None  # the window's ids when its TraceSet is cached
        processed = 0  # a page served from the first page's snapshot scans nothing again
        if kept is not None and time.monotonic() - kept[0] < SNAPSHOT_S:
            scanned, matches = kept[1], kept[2]
        else:
            # X-Ray lists the most recent traces first.
            ids = self._trace_ids(start, end, kind)[::-1]
            scanned = processed = len(ids)
            if rate < 1.0:
                ids = [t for t in ids if _sampled(t, rate)]
            matches = self._matching(ids, expression)
            window = ids if expression else None
            if last is not None:
                position = {t: i for i, t in enumerate(matches)}.get(last)
                begin = begin if position is None else position + 1
        page = matches[begin : begin + PAGE_SIZE]
        summaries = self._page_summaries(page, window) if page else []
        out: dict[str, Any] = {
            "TraceSummaries": summaries,
            "ApproximateTime": end,
            "TracesProcessedCount": processed,
        }
        if begin + PAGE_SIZE < len(matches):
            out["NextToken"] = _token(digest, snapshot, page[-1], begin + len(page))
            if not token:
                self._snapshots.put((snapshot,), (time.monotonic(), scanned, matches))
        return out

    @staticmethod
    def _sample_rate(body: Mapping[str, Any]) -> float:
        sampling = body.get("Sampling")
        if sampling is not None and not isinstance(sampling, bool):
            raise ArgumentError("Sampling must be true or false.")
        strategy = body.get("SamplingStrategy")
        if strategy is not None and not isinstance(strategy, dict):
            raise ArgumentError("SamplingStrategy must be an object with Name and Value.")
        if not sampling:
            return 1.0
        if not strategy:
            return DEFAULT_SAMPLE
        name = _string(strategy, "Name")
        if name is not None and name not in ("PartialScan", "FixedRate"):
            raise ArgumentError("SamplingStrategy Name must be PartialScan or FixedRate.")
        value = strategy.get("Value")
        if value is None:
            return DEFAULT_SAMPLE
        if not _is_number(value) or not 0 <= value <= 1:
            raise ArgumentError("SamplingStrategy Value must be a number from 0 to 1.")
        return float(value)

    # --- graphs ---------------------------------------------------------------------

    def get_service_graph(self, body: Mapping[str, Any]) -> dict[str, Any]:
        start, end = _window(body)
        name = _string(body, "GroupName") or _string(body, "GroupARN")
        ids = self.store.trace_ids(start, end, time_range_type="Event")
        if name is not None:
            group = self.store.group(name)
            if group is None:
                raise NotFoundError("Group not found")
            ids = self._matching(ids, group.get("FilterExpression") or None)
        ts = self._traceset(ids)
        return service_graph_response(service_graph(ts), start, end)

    def get_trace_graph(self, body: Mapping[str, Any]) -> dict[str, Any]:
        ids = list(dict.fromkeys(_strings(body, "TraceIds")))
        if len(ids) > MAX_GRAPH_IDS:
            raise ArgumentError(f"Exceeding maximum query size: {MAX_GRAPH_IDS}")
        return trace_graph_response(service_graph(self.store.traceset(ids)))

    # --- groups ---------------------------------------------------------------------

    def _group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _string(body, "GroupName") or _string(body, "GroupARN")
        if name is None:
            raise ArgumentError("GroupName or GroupARN is required.")
        group = self.store.group(name)
        if group is None:
            raise NotFoundError("Group not found")
        return group

    @staticmethod
    def _check_expression(body: Mapping[str, Any]) -> str | None:
        expression = _string(body, "FilterExpression")
        if expression:
            validate(expression)
        return expression

    @staticmethod
    def _insights(body: Mapping[str, Any], default: dict[str, Any]) -> dict[str, Any]:
        value = body.get("InsightsConfiguration")
        if value is None:
            return default
        if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
            raise ArgumentError("InsightsConfiguration must map its settings to true or false.")
        return {**default, **value}

    def create_group(self, body: Mapping[str, Any], *, region: str = "us-east-1") -> dict[str, Any]:
        name = _string(body, "GroupName", required=True)
        assert name is not None
        if not 1 <= len(name) <= 32 or name == "Default" or "/" in name:
            raise ArgumentError("GroupName must be 1 to 32 characters, without '/', not Default.")
        if self.store.group(name) is not None:
            raise ArgumentError(f"Group {name} already exists.")
        expression = self._check_expression(body)
        group_id = base64.b32encode(os.urandom(20)).decode()
        group = {
            "GroupName": name,
            "GroupARN": f"arn:aws:xray:{region}:000000000000:group/{name}/{group_id}",
            "InsightsConfiguration": self._insights(
                body, {"InsightsEnabled": False, "NotificationsEnabled": False}
            ),
        }
        if expression:
            group["FilterExpression"] = expression
        self.store.save_group(group)
        return {"Group": group}

    def get_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"Group": self._group(body)}

    def get_groups(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"Groups": sorted(self.store.groups(), key=lambda g: g["GroupName"])}

    def update_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        group = dict(self._group(body))
        if "FilterExpression" in body:
            expression = self._check_expression(body)
            group.pop("FilterExpression", None)
            if expression:
                group["FilterExpression"] = expression
        group["InsightsConfiguration"] = self._insights(
            body, group.get("InsightsConfiguration") or {}
        )
        self.store.save_group(group)
        return {"Group": group}

    def delete_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        self.store.delete_group(group["GroupARN"])
        return {}

    # --- encryption -----------------------------------------------------------------

    def get_encryption_config(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The account's encryption configuration: ``NONE`` (X-Ray's default encryption at
        rest) until ``PutEncryptionConfig`` chose a KMS key; kept in the store."""
        config = self.store.setting("encryption") or {"Type": "NONE"}
        return {"EncryptionConfig": {**config, "Status": "ACTIVE"}}

    def put_encryption_config(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Choose ``NONE`` or ``KMS`` with a ``KeyId`` (an alias, key id or ARN; a local
        X-Ray has no KMS to ask whether the key exists, so any well-formed name is taken).
        A ``KeyId`` sent with ``NONE`` is not kept."""
        kind = _string(body, "Type", required=True)
        if kind not in ENCRYPTION_TYPES:
            raise ArgumentError(
                f"1 validation error detected: Value {kind!r} at 'type' failed to satisfy "
                f"constraint: Member must satisfy enum value set: [{', '.join(ENCRYPTION_TYPES)}]"
            )
        key = _string(body, "KeyId")
        config: dict[str, Any] = {"Type": kind}
        if kind == "KMS":
            if not key or len(key) > 3000 or any(c.isspace() for c in key):
                raise ArgumentError(
                    "KeyId is required with Type KMS: a KMS key id, alias (alias/name) or ARN "
                    f"of 1 to 3000 characters without spaces, not {key!r}."
                )
            config["KeyId"] = key
        self.store.save_setting("encryption", config)
        return {"EncryptionConfig": {**config, "Status": "ACTIVE"}}

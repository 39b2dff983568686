"""The local X-Ray's traces kept parsed in memory, up to date with the store, for fast queries.

Answering ``GetTraceSummaries`` from the store means reading a window's documents from
SQLite, parsing them into a TraceSet and building the service graph's rows that
``service()`` / ``edge()`` filters read: seconds for 100,000 traces, paid by the first call
after every change. A :class:`Mirror` does that work once per trace instead, when the trace
arrives or changes, and an :class:`Indexer` thread does it in the background as documents
come in (X-Ray, too, indexes a trace when it arrives, not when it is searched).

How it stays right:

- The store journals the ids of the traces each revision touched
  (:meth:`~xraykit.local.store.Store.changes`). :meth:`Mirror.sync` re-reads exactly those
  traces, every document of each (a later subsegment makes the whole trace new; a trace the
  store no longer has was deleted), parses them into a new immutable *chunk* (a TraceSet and
  its graph rows) and marks their older copies dead. The indexer, when idle, merges newer,
  smaller chunks and mostly dead ones by re-reading their live traces; there are never more
  than :data:`MAX_CHUNKS`.
- A filter is evaluated per chunk and its hits cached in the chunk; a window is a selection
  of the mirror's traces (its ids, from the store as before). Whether a trace matches depends
  on its own documents only, with one exception handled apart: a trace *linked* from
  another trace (SQS) has a link edge only when that trace is in the same window, so such
  traces are evaluated again on the window's own TraceSet.
- A query first brings the mirror to the store's revision (waiting for the indexer when it
  is at work), so answers equal those of the per-window path, which stays the fallback.

Memory is bounded: at most :data:`MAX_TRACES` live traces (beyond, the mirror empties
itself and queries take the per-window path until the store is small enough again; about
6 KB per trace of three segments, graph rows included), at most as many dead copies as live
ones before a chunk is rebuilt, and :data:`SUMMARY_CACHE` summaries (the indexer computes
those of the :data:`PRECOMPUTE` most recent traces ahead of any query; about 2 KB each).

Examples
--------
>>> from xraykit.local.store import Store
>>> store = Store()
>>> doc = {"trace_id": "1-581cf771-a006649127e371903a2de979", "id": "70de5b6f19ff9a0a",
...        "name": "web", "start_time": 1478293361.2, "end_time": 1478293361.5, "fault": True}
>>> _ = store.put([doc])
>>> mirror = Mirror(store)
>>> mirror.matches([doc["trace_id"]], "fault", {}), mirror.matches([doc["trace_id"]], "ok", {})
(['1-581cf771-a006649127e371903a2de979'], [])
>>> mirror.summaries([doc["trace_id"]])[0]["HasFault"]
True
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from xraykit.graph.links import _link_documents
from xraykit.local.summaries import trace_summaries
from xraykit.query import parse
from xraykit.query.evaluator import Evaluator
from xraykit.schema import isin
from xraykit.traceset import TraceSet, concat, from_documents

if TYPE_CHECKING:
    from xraykit.local.store import Store

__all__ = ["MAX_CHUNKS", "MAX_TRACES", "PRECOMPUTE", "SUMMARY_CACHE", "Indexer", "Mirror", "Window"]

_LOG = logging.getLogger(__name__)

#: Live traces a mirror holds at most; a bigger store is queried per window.
MAX_TRACES = 150_000
#: Chunks a mirror keeps at most (each query evaluates every chunk).
MAX_CHUNKS = 10
_GROWTH = 4  # a new chunk takes in a newer chunk at most this many times its size
#: TraceSummaries kept (as JSON text) until their trace changes; the oldest go first.
SUMMARY_CACHE = 50_000
#: The most recent traces whose summaries the indexer computes before any query asks.
PRECOMPUTE = 10_000
#: Filter results kept per chunk (per expression and groups).
_HITS_PER_CHUNK = 32
_PER_TRACE_FRAMES = ("traces", "segments", "subsegments", "annotations", "metadata", "exceptions")

#: Evaluator cache keys whose values depend on the TraceSet alone (the service graph's node and
#: edge rows): shared by every expression evaluated over one TraceSet.
_SHARED_KEYS = frozenset({"graph", "nodes", "edges", "nodes+", "edges+"})


class _SharedEvaluator(Evaluator):
    """An :class:`~xraykit.query.evaluator.Evaluator` reusing one TraceSet's graph frames."""

    def __init__(
        self,
        ts: TraceSet,
        groups: Mapping[str, str] | None,
        expression: str,
        shared: dict[Any, Any],
    ) -> None:
        super().__init__(ts, groups, expression)
        self.shared = shared

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        if key in _SHARED_KEYS:
            if key not in self.shared:
                self.shared[key] = make()
            return self.shared[key]
        return super().cached(key, make)


class Window:
    """One TraceSet with the frames derived from it that filters share (built with it).

    >>> import xraykit
    >>> window = Window(xraykit.load_sample("shop"))
    >>> int(window.evaluate("fault", {}).sum()) == int(window.ts.traces.has_fault.sum())
    True
    """

    def __init__(self, ts: TraceSet) -> None:
        self.ts = ts
        self.shared: dict[Any, Any] = {}
        # the service graph's rows, as ``service()`` / ``edge()`` filters read them, are
        # computed with the TraceSet (X-Ray indexes a trace's services when it arrives)
        _SharedEvaluator(ts, None, "", self.shared).graph()

    def evaluate(self, expression: str, groups: Mapping[str, str] | None) -> np.ndarray:
        """Boolean mask over ``ts.traces`` (as :func:`xraykit.query.evaluate`)."""
        tree = parse(expression)
        evaluator = _SharedEvaluator(self.ts, groups, expression, self.shared)
        return np.asarray(evaluator.mask(tree), dtype=bool)


class _Chunk(Window):
    """Traces parsed together; immutable but for its cache of filter hits."""

    def __init__(self, ts: TraceSet, ids: Iterable[str]) -> None:
        super().__init__(ts)
        self.ids = frozenset(ids)  # every trace read for it (some may have no rows)
        self.trace_ids = ts.traces["trace_id"].to_numpy(dtype=object)
        # trace -> the other traces it is linked from (its link edges need them present)
        self.linked_from: dict[str, set[str]] = {}
        for consumer, _, producer, _ in _link_documents(ts):
            if producer != consumer:
                self.linked_from.setdefault(consumer, set()).add(producer)
        self._hits: OrderedDict[tuple[Any, ...], frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def hits(self, expression: str, groups: Mapping[str, str]) -> frozenset[str]:
        """Ids of the chunk's traces (live or dead) matching ``expression``."""
        key = (expression, tuple(sorted(groups.items())))
        with self._lock:
            found = self._hits.get(key)
            if found is not None:
                self._hits.move_to_end(key)
                return found
        found = frozenset(self.trace_ids[self.evaluate(expression, groups)])
        with self._lock:
            self._hits[key] = found
            while len(self._hits) > _HITS_PER_CHUNK:
                self._hits.popitem(last=False)
        return found


class _State:
    """One revision of a mirror: its chunks and where each trace lives (never modified)."""

    def __init__(
        self,
        revision: int,
        chunks: tuple[_Chunk, ...] = (),
        where: dict[str, _Chunk] | None = None,
        *,
        on: bool = True,
    ) -> None:
        self.revision = revision
        self.chunks = chunks
        self.where: dict[str, _Chunk] = {} if where is None else where
        self.on = on  # False: the store holds more than the mirror may
        self.dead = (
            {id(c): c.ids.difference(t for t in c.ids if self.where.get(t) is c) for c in chunks}
            if chunks
            else {}
        )
        self.linked_from: dict[str, set[str]] = {}
        for chunk in chunks:
            for trace, sources in chunk.linked_from.items():
                if self.where.get(trace) is chunk:
                    self.linked_from[trace] = sources


def _live(
    chunks: Iterable[_Chunk], where: Mapping[str, _Chunk], leaving: set[str]
) -> dict[int, int]:
    """Live traces per chunk (by ``id``), not counting those in ``leaving``."""
    live = {id(c): 0 for c in chunks}
    for trace_id, chunk in where.items():
        if trace_id not in leaving:
            live[id(chunk)] += 1
    return live


def _select(ts: TraceSet, trace_ids: list[str]) -> TraceSet:
    """``ts.select(trace_ids)`` by Arrow's hash kernel (pandas' isin is slow on big frames)."""
    frames: dict[str, Any] = {}
    for name in _PER_TRACE_FRAMES:
        frame = getattr(ts, name)
        frames[name] = frame[isin(frame["trace_id"], trace_ids)]
    frames["documents"] = ts.document_store.select_traces(trace_ids)
    return TraceSet(frames)


class Mirror:
    """The traces of a :class:`~xraykit.local.store.Store`, parsed, per revision.

    Parameters
    ----------
    store : Store
        What to mirror.
    max_traces : int
        The most live traces held (:data:`MAX_TRACES`); a store holding more is not mirrored
        (queries answer ``None``: use the per-window path).
    """

    def __init__(self, store: Store, *, max_traces: int = MAX_TRACES) -> None:
        self.store = store
        self.max_traces = int(max_traces)
        self._state = _State(-1)
        self._sync_lock = threading.Lock()  # one sync at a time
        self._summaries: OrderedDict[str, bytes] = OrderedDict()
        self._summaries_lock = threading.Lock()
        self._newest: tuple[_State, list[str]] | None = None  # what precompute() works on
        self._queries = 0  # queries being answered (precompute() gives way to them)
        self._last_query = 0.0
        self._queries_lock = threading.Lock()
        self.stats = {
            "syncs": 0,
            "traces_read": 0,
            "seconds": 0.0,
            "rebuilds": 0,
            "compactions": 0,
        }

    def __repr__(self) -> str:
        state = self._state
        shown = f"{len(state.where)} traces in {len(state.chunks)} chunks" if state.on else "off"
        return f"<Mirror of {self.store.path} at revision {state.revision}: {shown}>"

    @property
    def revision(self) -> int:
        """The store revision the mirror holds (-1 before the first :meth:`sync`)."""
        return self._state.revision

    def __len__(self) -> int:
        return len(self._state.where)

    # -- keeping up ---------------------------------------------------------------------------

    def sync(self) -> _State:
        """Bring the mirror to the store's revision (re-reading the traces that changed)."""
        state = self._state
        if state.revision == self.store.revision:
            return state
        with self._sync_lock:  # another sync may have done it meanwhile
            state = self._state
            if state.revision != self.store.revision:
                began = time.perf_counter()
                state, changed = self._next(state)
                with self._summaries_lock:  # summaries of the old versions go with them
                    self._state = state
                    if changed is None:
                        self._summaries.clear()
                    else:
                        for trace_id in changed:
                            self._summaries.pop(trace_id, None)
                self.stats["syncs"] += 1
                self.stats["seconds"] += time.perf_counter() - began
            return state

    def _next(self, state: _State) -> tuple[_State, set[str] | None]:
        """The state of the store's revision, and the traces changed (None: maybe all)."""
        changes = self.store.changes(state.revision) if state.on else None
        if changes is None:  # first sync, too far behind, or off: read everything
            revision = self.store.revision
            if self.store.count() > self.max_traces:
                return _State(revision, on=False), None
            every = self.store.trace_ids(0, 2**32)
            self.stats["rebuilds"] += 1
            return self._with(_State(revision), revision, every), None
        revision, changed = changes
        grown = len(state.where) + sum(1 for t in changed if t not in state.where)
        if grown > self.max_traces and self.store.count() > self.max_traces:
            return _State(revision, on=False), None
        return self._with(state, revision, list(changed)), changed

    def _with(self, state: _State, revision: int, ids: list[str]) -> _State:
        """``state`` with the traces ``ids`` read again from the store into a new chunk.

        No merging here (a query may be waiting), unless there would be more than
        :data:`MAX_CHUNKS`: then the smallest chunks go into the new one.
        """
        where = dict(state.where)
        changed = set(ids)
        live = _live(state.chunks, where, changed)
        chunks = [c for c in state.chunks if live[id(c)]]
        absorbed: list[_Chunk] = []
        for chunk in sorted(chunks, key=lambda c: live[id(c)]):
            if len(chunks) - len(absorbed) < MAX_CHUNKS:
                break
            absorbed.append(chunk)
        again = changed.union(t for t, c in where.items() if c in absorbed and t not in changed)
        chunks = [c for c in chunks if c not in absorbed]
        for trace_id in again:
            where.pop(trace_id, None)
        found = self.store.documents(sorted(again)) if again else {}
        if found:  # the ids not found were deleted
            chunk = self._chunk(found)
            chunks.append(chunk)
            for trace_id in found:
                where[trace_id] = chunk
        return _State(revision, tuple(chunks), where)

    def compact(self) -> bool:
        """Merge chunks by re-reading their live traces; False when there is nothing to merge.

        The newest chunk takes in the chunks before it while each is at most
        :data:`_GROWTH` times what it holds so far (chunk sizes then fall geometrically
        from the oldest, and a trace is re-read a logarithmic number of times), and any
        chunk mostly dead. The reading and parsing run outside the sync lock (queries go
        on meanwhile); a trace that changed since is read again by the next sync.
        """
        state = self._state
        if not state.on or not state.chunks:
            return False
        live = _live(state.chunks, state.where, set())
        dead = [c for c in state.chunks if live[id(c)] * 2 < len(c.ids)]
        plan = [state.chunks[-1]]
        total = live[id(plan[0])]
        for chunk in reversed(state.chunks[:-1]):
            if live[id(chunk)] > _GROWTH * max(total, 1):
                break
            plan.append(chunk)
            total += live[id(chunk)]
        plan += [c for c in dead if c not in plan]
        if len(plan) < 2 and not dead:
            return False
        ids = [t for t, c in state.where.items() if c in plan]
        found = self.store.documents(ids) if ids else {}
        merged = self._chunk(found) if found else None
        with self._sync_lock:
            current = self._state
            if current.on:
                where = dict(current.where)
                for trace_id in ids:
                    if where.get(trace_id) in plan:  # not read again by a sync meanwhile
                        if merged is not None and trace_id in found:
                            where[trace_id] = merged
                        else:
                            where.pop(trace_id)
                chunks = [c for c in current.chunks if c not in plan]
                if merged is not None:
                    chunks.append(merged)
                with self._summaries_lock:
                    self._state = _State(current.revision, tuple(chunks), where)
        self.stats["compactions"] += 1
        return True

    def _chunk(self, documents: dict[str, list[str]]) -> _Chunk:
        texts = [text for texts in documents.values() for text in texts]
        ts = from_documents(texts, source=f"<local store {self.store.path}>", on_error="ignore")
        self.stats["traces_read"] += len(documents)
        return _Chunk(ts, documents)

    # -- answering ----------------------------------------------------------------------------

    def busy(self, pause: float = 0.5) -> bool:
        """Whether a query is being answered or ended less than ``pause`` seconds ago."""
        with self._queries_lock:
            return self._queries > 0 or time.monotonic() - self._last_query < pause

    @contextlib.contextmanager
    def _query(self) -> Iterator[None]:
        with self._queries_lock:
            self._queries += 1
        try:
            yield
        finally:
            with self._queries_lock:
                self._queries -= 1
                self._last_query = time.monotonic()

    def _covering(self, trace_ids: list[str]) -> _State | None:
        """The current state when it holds every trace of ``trace_ids``, else None."""
        state = self.sync()
        if not state.on:
            return None
        where = state.where
        for trace_id in trace_ids:
            if trace_id not in where:
                return None
        return state

    def matches(
        self, trace_ids: list[str], expression: str, groups: Mapping[str, str]
    ) -> list[str] | None:
        """The ids of ``trace_ids`` (in order) matching ``expression``; None when the mirror
        does not hold them all (use the per-window path)."""
        with self._query():
            return self._matches(trace_ids, expression, groups)

    def _matches(
        self, trace_ids: list[str], expression: str, groups: Mapping[str, str]
    ) -> list[str] | None:
        state = self._covering(trace_ids)
        if state is None:
            return None
        hits: set[str] = set()
        for chunk in state.chunks:
            found = chunk.hits(expression, groups)
            dead = state.dead.get(id(chunk))
            hits.update(found - dead if dead else found)
        if state.linked_from:
            hits = self._relink(state, trace_ids, expression, groups, hits)
        return [t for t in trace_ids if t in hits]

    def _relink(
        self,
        state: _State,
        trace_ids: list[str],
        expression: str,
        groups: Mapping[str, str],
        hits: set[str],
    ) -> set[str]:
        """Evaluate the linked traces of a window again, with exactly the window's traces
        they are linked from (a link edge needs both ends in the TraceSet)."""
        window = set(trace_ids)
        linked = [t for t in state.linked_from if t in window]
        if not linked:
            return hits
        needed = set(linked)
        for trace_id in linked:
            needed.update(s for s in state.linked_from[trace_id] if s in window)
        ts = self._traceset(state, sorted(needed))
        mask = Window(ts).evaluate(expression, groups)
        again = set(ts.traces["trace_id"].to_numpy(dtype=object)[mask])
        return (hits - set(linked)) | (again & set(linked))

    def _traceset(self, state: _State, trace_ids: list[str]) -> TraceSet:
        parts: dict[int, tuple[_Chunk, list[str]]] = {}
        for trace_id in trace_ids:
            chunk = state.where[trace_id]
            parts.setdefault(id(chunk), (chunk, []))[1].append(trace_id)
        tracesets = [_select(chunk.ts, ids) for chunk, ids in parts.values()]
        return tracesets[0] if len(tracesets) == 1 else concat(tracesets)

    def traceset(self, trace_ids: list[str]) -> TraceSet | None:
        """The TraceSet of ``trace_ids``, or None when the mirror does not hold them all."""
        state = self._covering(trace_ids)
        return None if state is None else self._traceset(state, trace_ids)

    def summaries(self, trace_ids: list[str]) -> list[dict[str, Any]] | None:
        """The TraceSummary of each trace of ``trace_ids``, in order (computed once per
        version of a trace); None when the mirror does not hold them all."""
        with self._query():
            state = self._covering(trace_ids)
            if state is None:
                return None
            with self._summaries_lock:
                known = {t: self._summaries[t] for t in trace_ids if t in self._summaries}
            missing = [t for t in trace_ids if t not in known]
            if missing:
                known.update(self._summarize(state, missing))
            return [orjson.loads(known[t]) for t in trace_ids if t in known]

    def _summarize(self, state: _State, trace_ids: list[str]) -> dict[str, bytes]:
        """Summaries (JSON) of traces of ``state``, kept while ``state`` is current."""
        ts = self._traceset(state, trace_ids)
        fresh = {s["Id"]: orjson.dumps(s) for s in trace_summaries(ts)}
        with self._summaries_lock:
            if self._state is state:  # not replaced meanwhile by a newer revision
                self._summaries.update(fresh)
                while len(self._summaries) > SUMMARY_CACHE:
                    self._summaries.popitem(last=False)
        return fresh

    def precompute(self, limit: int, batch: int = 250) -> bool:
        """Summarize up to ``batch`` of the ``limit`` most recent traces not summarized yet
        (X-Ray lists the most recent first); False when there is nothing left to do."""
        state = self._state
        if not state.on or not state.where or limit <= 0:
            return False
        if self._newest is None or self._newest[0] is not state:
            newest: list[tuple[Any, str]] = []
            for chunk in state.chunks:
                traces = chunk.ts.traces
                starts = traces["start"].to_numpy(dtype="datetime64[us]").astype("int64")
                newest.extend(
                    (start, t)
                    for start, t in zip(starts.tolist(), chunk.trace_ids.tolist(), strict=True)
                    if state.where.get(t) is chunk
                )
            newest.sort(reverse=True)
            self._newest = (state, [t for _, t in newest[:limit]])
        with self._summaries_lock:
            todo = [t for t in self._newest[1] if t not in self._summaries]
        if not todo:
            return False
        self._summarize(state, todo[:batch])
        return True


class Indexer:
    """A background thread keeping a :class:`Mirror` in step with its store.

    It wakes when the store changes, waits until ``quiet`` seconds pass without a change
    (or ``max_lag`` seconds since the first change it saw, under a steady flood), then
    syncs, so a burst is parsed in a few batches and the daemon's writer keeps its pace.
    When the mirror is current it merges chunks (:meth:`Mirror.compact`) and summarizes the
    ``precompute`` most recent traces, a few hundred at a time, giving way to queries and to
    any new change. At start it parses one filter
    expression, so that the parser is loaded (a one-off cost) before the first query. It
    stops with :meth:`stop`, when the store closes, and never raises (an error is logged and
    the next change tries again).
    """

    def __init__(
        self,
        mirror: Mirror,
        *,
        quiet: float = 0.2,
        max_lag: float = 2.0,
        precompute: int = PRECOMPUTE,
    ) -> None:
        self.mirror = mirror
        self.quiet = quiet
        self.max_lag = max_lag
        self.precompute = precompute
        self.warm = threading.Event()  # set once the parser is loaded
        self.settled = threading.Event()  # set while current and nothing left to summarize
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Indexer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="xraykit-local-indexer", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        store = self.mirror.store
        with store._changed:
            store._changed.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_current(self, timeout: float = 60.0) -> bool:
        """Wait until the mirror holds the store's current revision; False on timeout."""
        deadline = time.monotonic() + timeout
        mirror = self.mirror
        while mirror.revision != mirror.store.revision:
            if time.monotonic() >= deadline or self._thread is None:
                return False
            time.sleep(0.01)
        return True

    def wait_settled(self, timeout: float = 60.0) -> bool:
        """Wait until the mirror is current and the recent summaries are computed."""
        deadline = time.monotonic() + timeout
        while self.wait_current(max(0.0, deadline - time.monotonic())):
            if self.settled.wait(0.05) and self.mirror.revision == self.mirror.store.revision:
                return True
            if time.monotonic() >= deadline:
                break
        return False

    def _run(self) -> None:
        try:
            parse('service("warm-up") { ok }')  # loads the parser (lark) once
        except Exception:  # pragma: no cover - the parser is part of the package
            _LOG.debug("parser warm-up failed", exc_info=True)
        self.warm.set()
        mirror, store = self.mirror, self.mirror.store
        while not self._stop.is_set() and not store.closed:
            try:
                if mirror.revision != store.revision:
                    self.settled.clear()
                    self._debounce()
                    if not self._stop.is_set() and not store.closed:
                        mirror.sync()
                    continue
                if mirror.busy():  # queries first: merge and summarize when they are answered
                    self._stop.wait(0.1)
                    continue
                if mirror.compact() or mirror.precompute(self.precompute):
                    continue
            except Exception:
                if store.closed:
                    break
                _LOG.warning("indexing the local store failed", exc_info=True)
                self._stop.wait(1.0)
                continue
            self.settled.set()
            store.wait_for_change(mirror.revision, timeout=0.5)

    def _debounce(self) -> None:
        """Wait for a pause in the changes (at most ``max_lag`` seconds)."""
        store = self.mirror.store
        first, seen = time.monotonic(), store.revision
        while not self._stop.wait(self.quiet):
            now = store.revision
            if now == seen or time.monotonic() - first >= self.max_lag:
                return
            seen = now

"""The pull of one account: the query, its summaries (every window, every page), the full
traces (``BatchGetTraces`` five ids at a time on a thread pool, or Transaction Search
retrieval), the cache around them, merged into one TraceSet with its cost.

:func:`build_query`, :class:`Query` and :func:`pull` are shared with
:mod:`xraykit.aws.accounts`; use :func:`xraykit.aws.fetch`.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from datetime import timedelta
from typing import Any

import pandas as pd

from xraykit.aws.cache import SETTLED_AFTER, _Cache, _cache_root
from xraykit.aws.client import (
    Connection,
    RetryPolicy,
    _account_id,
    _Caller,
    _Exhausted,
    _Interrupted,
)
from xraykit.aws.cost import CostEstimate
from xraykit.aws.errors import _validate_filter
from xraykit.aws.summaries import summaries_frame
from xraykit.aws.windows import _resolve_window, time_windows
from xraykit.exceptions import ArgumentError, LiveAccessError, XrayKitWarning, require
from xraykit.schema import conform
from xraykit.traceset import TraceSet, concat, from_responses

__all__ = ["MAX_IDS_PER_BATCH", "Query", "build_query", "pull", "pull_window"]

#: ``BatchGetTraces`` rejects more than five trace ids per call.
MAX_IDS_PER_BATCH = 5
#: ``StartTraceRetrieval`` takes at most this many ids.
MAX_IDS_PER_RETRIEVAL = 100

_TIME_RANGE_TYPES = ("TraceId", "Event", "Service")


@dataclasses.dataclass
class Query:
    """One GetTraceSummaries query (from :func:`build_query`); its settled results are cached.

    The cache key is the window, the expression sent (the group's *name* clause ANDed with
    the caller's filter), the time-range type and ``max_traces``: a group whose filter
    expression changed keeps the same key (see :func:`xraykit.aws.fetch`, ``group``).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    filter_expression: str | None
    group: str | None
    time_range_type: str
    max_traces: int | None

    @property
    def expression(self) -> str | None:
        """The filter expression sent to AWS: the group's, ANDed with the caller's."""
        if self.group is None:
            return self.filter_expression
        key = "group.arn" if self.group.startswith("arn:") else "group.name"
        clause = f"{key} = {json.dumps(self.group)}"
        return (
            clause if self.filter_expression is None else f"{clause} AND ({self.filter_expression})"
        )

    def cache_key(self) -> str:
        text = json.dumps(
            [self.start.isoformat(), self.end.isoformat(), self.expression,
             self.time_range_type, self.max_traces]
        )  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclasses.dataclass
class _Outcome:
    summaries: list[dict[str, Any]]
    responses: list[dict[str, Any]]
    problems: list[dict[str, str]]
    scanned: int
    interrupted: bool
    complete_summaries: bool


class _Puller:
    """One pull: summaries on the calling thread, traces on a pool, results under a lock."""

    def __init__(
        self,
        caller: _Caller,
        *,
        concurrency: int,
        progress: bool,
        transaction_search: bool | cf.Future[bool],
        skip_ids: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ArgumentError(
                f"`concurrency` must be a positive int, but {concurrency!r} was passed."
            )
        self.caller = caller
        self.concurrency = concurrency
        self.progress = progress
        self._transaction_search = transaction_search
        self.skip_ids = skip_ids
        self._lock = threading.Lock()
        self._fetched: set[str] = set()
        self.responses: list[dict[str, Any]] = []
        self.problems: list[dict[str, str]] = []

    @property
    def transaction_search(self) -> bool:
        """Whether to use Transaction Search retrieval (the check may still be running)."""
        if isinstance(self._transaction_search, cf.Future):
            self._transaction_search = self._transaction_search.result()
        return self._transaction_search

    # -- summaries ---------------------------------------------------------------------

    def summary_pages(self, query: Query) -> Iterator[tuple[dict[str, Any], bool]]:
        """Yield (page, last page of its window) for every window, newest first."""
        for lower, upper in time_windows(query.start, query.end):
            params: dict[str, Any] = {
                "StartTime": lower.to_pydatetime(),
                "EndTime": upper.to_pydatetime(),
                "TimeRangeType": query.time_range_type,
            }
            if query.expression is not None:
                params["FilterExpression"] = query.expression
            while True:
                try:
                    page = self.caller.call("GetTraceSummaries", **params)
                except _Exhausted as exc:
                    self.problems.append(
                        {
                            "source": "GetTraceSummaries",
                            "location": f"{lower.isoformat()}/{upper.isoformat()}",
                            "reason": f"the summaries of this window could not be read: {exc.reason}",
                        }
                    )
                    break
                token = page.get("NextToken")
                yield page, not token
                if not token:
                    break
                params["NextToken"] = token

    # -- traces ------------------------------------------------------------------------

    def _keep(self, traces: Sequence[dict[str, Any]], source: str) -> int:
        """Record traces not seen before; return how many were new."""
        kept = []
        with self._lock:
            for trace in traces:
                trace_id = trace.get("Id")
                if trace_id in self._fetched:
                    continue
                self._fetched.add(str(trace_id))
                kept.append(trace)
                if trace.get("LimitExceeded"):
                    self.problems.append(
                        {
                            "source": source,
                            "location": str(trace_id),
                            "reason": "LimitExceeded: the trace is larger than X-Ray returns; "
                            "some of its segments are missing",
                        }
                    )
            if kept:
                self.responses.append({"Traces": kept, "UnprocessedTraceIds": []})
        return len(kept)

    def _failed(self, ids: Iterable[str], source: str, reason: str) -> None:
        with self._lock:
            self.problems.extend({"source": source, "location": i, "reason": reason} for i in ids)

    def get_batch(self, ids: list[str]) -> int:
        """Retrieve up to five traces; ask again for unprocessed ones only."""
        pending = ids
        attempt = 0
        got = 0
        while pending:
            try:
                response = self.caller.call("BatchGetTraces", TraceIds=pending)
            except _Exhausted as exc:
                self._failed(pending, "BatchGetTraces", f"not retrieved: {exc.reason}")
                return got
            traces = [t for t in response.get("Traces") or [] if t.get("Id") in pending]
            got += self._keep(traces, "BatchGetTraces")
            returned = {t.get("Id") for t in traces}
            pending = [i for i in pending if i not in returned]
            if not pending:
                break
            attempt += 1
            if attempt >= self.caller.policy.max_attempts:
                self._failed(
                    pending,
                    "BatchGetTraces",
                    f"still in UnprocessedTraceIds after {attempt} attempts",
                )
                break
            self.caller.backoff(attempt)
        return got

    def retrieve(self, ids: list[str], start: pd.Timestamp, end: pd.Timestamp) -> int:
        """Transaction Search: StartTraceRetrieval, then poll ListRetrievedTraces (X-Ray format)."""
        source = "ListRetrievedTraces"
        try:
            token = self.caller.call(
                "StartTraceRetrieval",
                TraceIds=ids,
                StartTime=start.to_pydatetime(),
                EndTime=end.to_pydatetime(),
            )["RetrievalToken"]
            traces: list[dict[str, Any]] = []
            polls = 0
            params: dict[str, Any] = {"RetrievalToken": token, "TraceFormat": "XRAY"}
            while True:
                page = self.caller.call("ListRetrievedTraces", **params)
                status = page.get("RetrievalStatus", "COMPLETE")
                if status in ("FAILED", "CANCELLED", "TIMEOUT"):
                    self._failed(ids, source, f"trace retrieval ended with status {status}")
                    return 0
                if status != "COMPLETE":
                    polls += 1
                    if polls > 120:
                        self._failed(ids, source, "trace retrieval did not complete in time")
                        return 0
                    self.caller.sleep(min(1.0 * polls, 5.0))
                    continue
                for item in page.get("Traces") or []:
                    traces.append(
                        {
                            "Id": item.get("Id"),
                            "Duration": item.get("Duration"),
                            "Segments": [
                                {"Id": span.get("Id"), "Document": span.get("Document")}
                                for span in item.get("Spans") or []
                            ],
                        }
                    )
                if not page.get("NextToken"):
                    break
                params["NextToken"] = page["NextToken"]
        except _Exhausted as exc:
            self._failed(ids, source, f"not retrieved: {exc.reason}")
            return 0
        kept = self._keep([t for t in traces if t.get("Id") in set(ids)], source)
        returned = {t.get("Id") for t in traces}
        self._failed([i for i in ids if i not in returned], source, "not returned by the retrieval")
        return kept

    # -- the whole pull ----------------------------------------------------------------

    def _guarded(self, work: Callable[..., int], *args: Any) -> int:
        """Run ``work`` on a worker; an interrupt or fatal error there stops every worker."""
        try:
            return work(*args)
        except BaseException:
            self.caller.stop.set()
            raise

    def run(self, query: Query, ids: list[str] | None = None) -> _Outcome:
        """List the summaries (or take ``ids``) and retrieve the traces, pipelined."""
        summaries: list[dict[str, Any]] = []
        seen: set[str] = set()
        scanned = 0
        interrupted = False
        complete = True
        buffer: list[str] = []
        bar = _progress_bar(self.progress)
        pool = cf.ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="xraykit")
        futures: dict[cf.Future[int], int] = {}
        queued = 0

        def submit(batch: list[str]) -> None:
            nonlocal queued
            if self.transaction_search:
                future = pool.submit(self._guarded, self.retrieve, batch, query.start, query.end)
            else:
                future = pool.submit(self._guarded, self.get_batch, batch)
            futures[future] = len(batch)
            queued += len(batch)
            if bar is not None:
                bar.total = queued
                bar.refresh()

        def collect(block: bool) -> None:
            if not futures:
                return
            done, _ = cf.wait(
                list(futures), timeout=0.2 if block else 0, return_when=cf.FIRST_COMPLETED
            )
            for future in done:
                size = futures.pop(future)
                future.result()  # re-raises LiveAccessError and KeyboardInterrupt
                if bar is not None:
                    bar.update(size)

        def pages() -> Iterator[dict[str, Any]]:
            if ids is None:
                for page, _last in self.summary_pages(query):
                    yield page
            else:
                yield {"TraceSummaries": [{"Id": i} for i in ids], "TracesProcessedCount": 0}

        try:
            for page in pages():
                scanned += int(page.get("TracesProcessedCount") or 0)
                for summary in page.get("TraceSummaries") or []:
                    trace_id = summary.get("Id")
                    if trace_id in seen:
                        continue
                    if query.max_traces is not None and len(seen) >= query.max_traces:
                        complete = False
                        break
                    seen.add(trace_id)
                    summaries.append(summary)
                    if trace_id not in self.skip_ids:
                        buffer.append(trace_id)
                chunk = MAX_IDS_PER_RETRIEVAL if self.transaction_search else MAX_IDS_PER_BATCH
                while len(buffer) >= chunk:
                    submit(buffer[:chunk])
                    del buffer[:chunk]
                collect(block=False)
                if not complete:
                    break
            if any(p["source"] == "GetTraceSummaries" for p in self.problems):
                complete = False
            if buffer:
                submit(buffer)
                buffer = []
            while futures:
                collect(block=True)
        except (KeyboardInterrupt, _Interrupted):
            interrupted = True
            complete = False
        finally:
            self.caller.stop.set()  # wakes sleeping workers; queued batches are cancelled
            pool.shutdown(wait=True, cancel_futures=True)
            if bar is not None:
                bar.close()
        return _Outcome(
            summaries=summaries,
            responses=self.responses,
            problems=self.problems,
            scanned=scanned,
            interrupted=interrupted,
            complete_summaries=complete,
        )


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None
    tqdm_auto = require("tqdm.auto", "aws")
    return tqdm_auto.tqdm(total=0, unit="trace", desc="BatchGetTraces")  # type: ignore[attr-defined]


# client -> does its account use Transaction Search; weak, so a dropped client is forgotten.
# Written from the destination-check threads of concurrent pulls: under a lock.
_DESTINATION_CACHE: MutableMapping[Any, bool] = weakref.WeakKeyDictionary()
_DESTINATION_LOCK = threading.Lock()


def _uses_transaction_search(conn: Connection, caller: _Caller) -> bool:
    """True when the account sends segments to CloudWatch Logs (Transaction Search).

    Asked once per client (two pulls racing on one client may both ask; the answers agree).
    """
    with _DESTINATION_LOCK:
        known = _DESTINATION_CACHE.get(conn.client)
    if known is not None:
        return known
    try:
        answer = caller.call("GetTraceSegmentDestination")
    except (LiveAccessError, _Exhausted):
        # older endpoints, local stand-ins and narrow policies lack the call: classic X-Ray
        result = False
    else:
        result = answer.get("Destination") == "CloudWatchLogs" and answer.get("Status") != "PENDING"
    with _DESTINATION_LOCK:
        _DESTINATION_CACHE[conn.client] = result
    return result


def build_query(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    filter_expression: str | None = None,
    group: str | None = None,
    time_range_type: str = "TraceId",
    max_traces: int | None = None,
) -> Query:
    """Check the query arguments of :func:`xraykit.aws.fetch`; return the :class:`Query`.

    Shared with :mod:`xraykit.aws.accounts`. Bad arguments raise what ``fetch`` documents
    (:class:`~xraykit.exceptions.ArgumentError`,
    :class:`~xraykit.exceptions.LiveFilterExpressionError`) before any API call.
    """
    _check_common(time_range_type, max_traces)
    _validate_filter(filter_expression)
    window = _resolve_window(since, start, end)
    return Query(window[0], window[1], filter_expression, group, time_range_type, max_traces)


def _check_common(time_range_type: str, max_traces: int | None) -> None:
    if time_range_type not in _TIME_RANGE_TYPES:
        raise ArgumentError(
            f"`time_range_type` must be one of {list(_TIME_RANGE_TYPES)}, "
            f"but {time_range_type!r} was passed."
        )
    if max_traces is not None and (
        not isinstance(max_traces, int) or isinstance(max_traces, bool) or max_traces < 1
    ):
        raise ArgumentError(
            f"`max_traces` must be a positive int or None, but {max_traces!r} was passed."
        )


def _problems_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    return conform(pd.DataFrame(rows, columns=["source", "location", "reason"]), "problems")


def pull(
    conn: Connection,
    query: Query,
    *,
    concurrency: int,
    cache: bool,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
    retry: RetryPolicy | None,
    account_id: str | None = None,
    fill_account: bool = False,
    cancel: threading.Event | None = None,
) -> TraceSet:
    """Pull one account: summaries, cached traces, fresh traces, merged into one TraceSet.

    Shared with :mod:`xraykit.aws.accounts`.
    ``account_id`` keys the cache (asked from STS when None and ``cache``);
    ``fill_account`` writes it into ``segments.account_id`` where a document has none;
    ``cancel`` stops the pull from another thread.
    """
    return pull_window(conn, query, concurrency=concurrency, cache=cache, cache_dir=cache_dir,
                       progress=progress, retry=retry, account_id=account_id,
                       fill_account=fill_account, cancel=cancel, stacklevel=4)[0]  # fmt: skip


def pull_window(
    conn: Connection,
    query: Query,
    *,
    concurrency: int,
    cache: bool,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
    retry: RetryPolicy | None,
    account_id: str | None = None,
    fill_account: bool = False,
    cancel: threading.Event | None = None,
    quiet: bool = False,
    stacklevel: int = 3,
) -> tuple[TraceSet, bool, bool]:
    """:func:`pull`, whether the pull is complete (every summary listed, every trace
    retrieved, not interrupted) and whether it was interrupted. ``quiet``: no warnings (the
    caller reports)."""
    policy = retry or RetryPolicy()
    caller = _Caller(conn.client, policy, cancel)
    store: _Cache | None = None
    if cache and account_id is None:
        account_id = _account_id(conn, policy)  # None (warned): no cache for this pull
    if cache and account_id is not None:
        store = _Cache(_cache_root(cache_dir), account_id, conn.region)
    settled = query.end <= pd.Timestamp.now(tz="UTC") - SETTLED_AFTER

    cached_summaries = store.summaries(query) if (store is not None and settled) else None
    if cached_summaries is not None:
        summary_records, scanned = cached_summaries[0], 0
        wanted = [str(s.get("Id")) for s in summary_records]
    else:
        summary_records, wanted, scanned = [], [], 0

    cached_ts = store.traces(wanted) if (store is not None and wanted) else None
    cached_ids: set[str] = set(cached_ts.traces["trace_id"]) if cached_ts is not None else set()
    transaction_search: bool | cf.Future[bool] = False
    if cached_summaries is None or set(wanted) - cached_ids:
        # ask for the trace segment destination while the summaries are being listed
        checker = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="xraykit-destination")
        transaction_search = checker.submit(_uses_transaction_search, conn, caller)
        checker.shutdown(wait=False)
    if store is not None and cached_summaries is None:
        # ids are not known before the summaries are read: skip every trace stored already
        cached_ids = set(store.index()["trace_id"])

    puller = _Puller(
        caller,
        concurrency=concurrency,
        progress=progress,
        transaction_search=transaction_search,
        skip_ids=cached_ids,
    )
    if cached_summaries is not None:
        outcome = puller.run(query, ids=[i for i in wanted if i not in cached_ids])
        outcome.summaries = summary_records
    else:
        outcome = puller.run(query)
        summary_records = outcome.summaries
        scanned = outcome.scanned
        if store is not None:
            cached_ts = store.traces(str(s.get("Id")) for s in summary_records)

    fresh = from_responses(outcome.responses, source="BatchGetTraces")
    if store is not None:
        try:
            store.add_traces(fresh)
            if settled and cached_summaries is None and outcome.complete_summaries:
                store.add_summaries(query, summary_records, scanned)
        except OSError as exc:
            warnings.warn(
                f"The cache under {str(store.folder)!r} could not be written ({exc}); the "
                "traces were fetched but will be fetched again next time. Pass cache=False "
                "or cache_dir= to silence this.",
                XrayKitWarning,
                stacklevel=stacklevel,
            )
    result = concat([cached_ts, fresh]) if cached_ts is not None else fresh
    if outcome.problems:
        result.problems = _problems_frame([*result.problems.to_dict("records"), *outcome.problems])
    if fill_account and account_id:
        segments = result.segments.copy()
        segments["account_id"] = segments["account_id"].fillna(account_id)
        result.segments = segments

    summaries = summaries_frame(summary_records)
    if fill_account and account_id:
        summaries.insert(1, "account_id", pd.Series(account_id, index=summaries.index, dtype="str"))
    result.summaries = summaries
    result.region = conn.region  # console links (ts.console_links, timelines, the explorer)
    result.cost = CostEstimate(
        traces_scanned=scanned,
        traces_retrieved=sum(len(r["Traces"]) for r in outcome.responses),
        api_calls=dict(caller.calls),
        retries=caller.retries,
        throttles=caller.throttles,
        cached_traces=len(cached_ts) if cached_ts is not None else 0,
    )
    failed = [p for p in outcome.problems if p["source"] != "GetTraceSummaries"]
    complete = outcome.complete_summaries and not outcome.interrupted and not outcome.problems
    if quiet:
        return result, complete, outcome.interrupted
    if outcome.interrupted:
        warnings.warn(
            f"Interrupted: returning the {len(result)} traces fetched so far (of "
            f"{len(summary_records)} listed). They are cached; call again to fetch the rest.",
            XrayKitWarning,
            stacklevel=stacklevel,
        )
    if failed or len(outcome.problems) > len(failed):
        warnings.warn(
            f"{len(failed)} trace(s) and {len(outcome.problems) - len(failed)} summary "
            "window(s) could not be fetched after every retry; see `ts.problems`.",
            XrayKitWarning,
            stacklevel=stacklevel,
        )
    return result, complete, outcome.interrupted

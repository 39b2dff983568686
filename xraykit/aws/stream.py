"""Streaming a pull into a partitioned dataset, one window at a time.

``xraykit.fetch(..., to=path)`` cuts its range into clock-aligned windows
(:func:`aligned_windows`), pulls each with :func:`xraykit.aws.pull.pull_window` and writes it
with :class:`xraykit.partitions.write.DatasetWriter` before pulling the next, so memory holds
one window; windows that finished, settled and pulled completely are recorded in the
dataset's manifest and skipped by a resumed pull (:func:`pull_to_dataset`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from datetime import timedelta
from typing import Any

import pandas as pd

from xraykit.aws.cache import SETTLED_AFTER
from xraykit.aws.client import Connection, RetryPolicy, _account_id
from xraykit.aws.cost import CostEstimate
from xraykit.aws.pull import Query, pull_window
from xraykit.exceptions import XrayKitWarning
from xraykit.partitions.write import DatasetWriter

__all__ = ["aligned_windows", "pull_to_dataset"]


def aligned_windows(
    start: pd.Timestamp, end: pd.Timestamp, size: timedelta
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``[start, end)`` cut at multiples of ``size`` since the epoch, newest first.

    Aligned cuts make two pulls over overlapping ranges share their inner windows, so a
    resumed (or widened) pull finds the windows it wrote before.

    >>> w = aligned_windows(pd.Timestamp("2024-05-01 00:30", tz="UTC"),
    ...                     pd.Timestamp("2024-05-01 02:10", tz="UTC"), timedelta(hours=1))
    >>> [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in w]
    [('02:00', '02:10'), ('01:00', '02:00'), ('00:30', '01:00')]
    """
    step = pd.Timedelta(size)
    windows = []
    upper = end
    while upper > start:
        lower = max(start, (upper - pd.Timedelta(1, "us")).floor(step))
        windows.append((lower, upper))
        upper = lower
    return windows


def _window_key(query: Query, lower: pd.Timestamp, upper: pd.Timestamp) -> str:
    text = json.dumps(
        [lower.isoformat(), upper.isoformat(), query.expression, query.time_range_type]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def pull_to_dataset(
    conn: Connection,
    query: Query,
    path: str | os.PathLike[str],
    *,
    window: timedelta,
    concurrency: int,
    cache: bool,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
    retry: RetryPolicy | None,
    account_id: str | None = None,
) -> tuple[Any, CostEstimate, int]:
    """Pull window after window, writing each into the dataset at ``path`` as it finishes.

    Memory holds one window's traces at a time (plus, for the ``Event`` and ``Service``
    time-range types, whose windows can list a trace twice, the ids written in this pull).
    A window that is settled and complete is recorded in the dataset's manifest and skipped
    by a later pull with the same filter; another is written again (its files replaced).
    Returns the writer, the summed cost and the number of windows skipped.
    """
    writer = DatasetWriter(path)
    policy = retry or RetryPolicy()
    if cache and account_id is None:
        account_id = _account_id(conn, policy)  # once, not per window
    done = writer.done
    settled_before = pd.Timestamp.now(tz="UTC") - SETTLED_AFTER
    cost = CostEstimate()
    skipped = 0
    left = query.max_traces
    written_ids: set[str] = set()
    for lower, upper in aligned_windows(query.start, query.end, window):
        key = _window_key(query, lower, upper)
        if key in done:
            skipped += 1
            continue
        part = dataclasses.replace(query, start=lower, end=upper, max_traces=left)
        ts, complete, interrupted = pull_window(conn, part, concurrency=concurrency, cache=cache,
                                   cache_dir=cache_dir, progress=progress, retry=retry,
                                   account_id=account_id, quiet=True)  # fmt: skip
        if ts.cost is not None:
            cost = cost + ts.cost
        if query.time_range_type != "TraceId":
            ts = ts.select(ts.traces.loc[~ts.traces["trace_id"].isin(written_ids), "trace_id"])
            written_ids.update(ts.traces["trace_id"])
        writer.remove(key)
        writer.write(ts, key, default_account=account_id,
                     problems_partition=(lower.strftime("%Y-%m-%d"), account_id or "unknown"))  # fmt: skip
        if complete and upper <= settled_before:
            writer.mark_done(key, {"start": lower.isoformat(), "end": upper.isoformat(),
                                   "filter_expression": query.expression,
                                   "time_range_type": query.time_range_type, "traces": len(ts)})  # fmt: skip
        if left is not None:
            left -= len(ts)
            if left <= 0:
                break
        if interrupted:
            warnings.warn(
                f"Interrupted: the windows written so far are in {str(writer.root)!r}; call "
                "again with the same arguments to pull the rest.",
                XrayKitWarning,
                stacklevel=3,
            )
            break
    return writer, cost, skipped

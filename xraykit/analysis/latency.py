"""Latency and impact measures: percentiles, SLA shares, throttles and impacted users.

Each reads the requests of one level (:func:`xraykit.analysis.requests_frame`) and returns
a new DataFrame; latencies are float seconds (``_s``), X-Ray's own unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from xraykit import graph as _graph
from xraykit.analysis._common import _check_seconds, _node_names
from xraykit.analysis.requests import LEVELS, Level, _measurements, _root_throttled
from xraykit.arguments import check_choice, check_freq, check_traceset
from xraykit.exceptions import ArgumentError

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["IMPACT_KINDS", "impacted_users", "percentiles", "sla", "throttles"]

#: The problems :func:`impacted_users` looks for, in X-Ray's filter words.
IMPACT_KINDS: tuple[str, ...] = ("fault", "error", "throttle", "responsetime")
_BY_KEYS = ("url", "method", "status", "user")


def group_keys(level: str, by: str | Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The group columns of ``level`` followed by those of ``by``, and the annotation keys.

    ``"service"`` (and ``service_type``) is the level's group at ``level="service"``; at
    ``level="trace"`` it may be asked for in ``by`` (the entry-point service).
    """
    check_choice("level", level, LEVELS)
    items = [] if by is None else [by] if isinstance(by, str) else list(by)
    cols = {"trace": [], "service": ["service", "service_type"], "edge": ["edge"]}[level]
    annotation_keys: list[str] = []
    for item in items:
        if isinstance(item, str) and item.startswith("annotation.") and len(item) > 11:
            annotation_keys.append(item[11:])
            cols = [*cols, item]
        elif item in _BY_KEYS:
            cols = [*cols, item]
        elif item == "service" and level != "edge":
            cols = [*cols, "service", "service_type"]
        elif item in ("service", "edge"):
            raise ArgumentError(
                f"`by` cannot hold {item!r} at level={level!r}: the level says what is "
                f"measured; pass level={item!r} to measure {item}s."
            )
        else:
            raise ArgumentError(
                f"`by` entries must be among {_BY_KEYS} or 'annotation.<key>' (and 'service' "
                f"at levels 'trace' and 'service'), but {item!r} was passed."
            )
    return list(dict.fromkeys(cols)), annotation_keys


def _groups(frame: pd.DataFrame, keys: list[str]) -> tuple[pd.Series, pd.DataFrame]:
    """Group ids (missing key values form their own group) and the key values of each group.

    Grouping by an id sidesteps pandas reductions (``quantile``) that drop missing-key groups.
    No keys: one group of every request.
    """
    if not keys:
        gid = pd.Series(0, index=frame.index, dtype="int64")
        return gid, pd.DataFrame(index=pd.RangeIndex(1 if len(frame) else 0))
    gid = frame.groupby(keys, dropna=False, sort=True).ngroup()
    values = frame[keys].groupby(gid).first()
    return gid, values


def _summarise(
    frame: pd.DataFrame, keys: list[str], percentiles: Sequence[float], *, rates: bool = False
) -> pd.DataFrame:
    """Count, mean and percentiles of ``latency_s`` per group (and the outcome rates)."""
    gid, out = _groups(frame, keys)
    grouped = frame.groupby(gid)
    out["count"] = grouped.size()
    out["mean_s"] = grouped["latency_s"].mean()
    for p in percentiles:
        out[f"p{p:g}_s"] = grouped["latency_s"].quantile(p / 100) if len(frame) else np.nan
    if rates:
        for flag in ("error", "fault", "throttle"):
            out[f"{flag}_rate"] = grouped[flag].mean().astype("float64")
    return out.reset_index(drop=True)


def percentiles(
    ts: TraceSet,
    *,
    level: Level = "service",
    by: str | Sequence[str] | None = None,
    percentiles: Sequence[float] = (50, 90, 99),
) -> pd.DataFrame:
    """Return latency percentiles and counts per service (or edge), grouped further by ``by``.

    ``level`` says what is measured: ``"service"``, each service's own segments (how long the
    service worked on each request); ``"edge"``, the callers' subsegments (the round trip the
    caller waited for); ``"trace"``, whole traces (the response time the client saw). ``by``
    then groups those requests by their own URL, method, status or user, or by the trace's
    annotation value.

    Parameters
    ----------
    ts : TraceSet
    level : {"service", "edge", "trace"}
        The requests measured, and the first group columns: ``service, service_type``,
        ``edge``, or none (all traces together).
    by : str or list of str, optional
        Grouping keys among ``"url"``, ``"method"``, ``"status"``, ``"user"`` and
        ``"annotation.<key>"`` (the first value of that annotation in the trace); at the
        trace level also ``"service"`` (the entry point).
    percentiles : sequence of float
        Percentiles to compute (0-100); each gives a column ``p<percentile>_s``.

    Returns
    -------
    DataFrame
        The group columns (``service`` comes with ``service_type``: Lambda's service and
        function nodes share a name), then ``count, mean_s`` and ``p50_s, p90_s, p99_s``;
        missing group values form their own group.

    Raises
    ------
    ArgumentError
        For an unknown ``level`` or ``by`` entry, or a level named in ``by``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import percentiles
    >>> ts = xraykit.load_sample("shop")
    >>> table = percentiles(ts, by="status")
    >>> list(table.columns[:5])
    ['service', 'service_type', 'status', 'count', 'mean_s']
    >>> bool((table["p50_s"] <= table["p99_s"]).all())
    True
    >>> int(percentiles(ts, level="trace", by="status")["count"].sum()) == len(ts)
    True
    """
    check_traceset(ts)
    cols, annotation_keys = group_keys(level, by)
    frame = _measurements(ts, level, annotation_keys)
    return _summarise(frame, cols, percentiles)


def sla(
    ts: TraceSet,
    threshold_s: float,
    *,
    level: Level = "service",
    freq: str | None = None,
) -> pd.DataFrame:
    """Return the share of requests answered within ``threshold_s``, per service and over time.

    Parameters
    ----------
    ts : TraceSet
    threshold_s : float
        The time objective in seconds; a request meets it when its latency is at most this.
    level : {"service", "edge", "trace"}
        ``"service"``: each service's own segments; ``"edge"``: the callers' subsegments
        (what the caller waited for); ``"trace"``: the response time the client saw, grouped
        by entry-point service.
    freq : str, optional
        A pandas frequency such as ``"5min"``: one row per time bin (by request start) and group.

    Returns
    -------
    DataFrame
        ``[time,]`` the group (``service, service_type`` or ``edge``), ``count, within``
        (requests meeting the objective), ``share`` (``within / count``), ``p90_s``. Requests
        still in progress (no latency) count as not within.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import sla
    >>> ts = xraykit.load_sample("shop")
    >>> table = sla(ts, 0.5, level="trace")
    >>> bool(table["share"].between(0, 1).all())
    True
    """
    check_traceset(ts)
    check_freq(freq)
    check_choice("level", level, LEVELS)
    threshold_s = _check_seconds(threshold_s)
    frame = _measurements(ts, level)
    frame["within"] = frame["latency_s"] <= threshold_s
    keys = ["edge"] if level == "edge" else ["service", "service_type"]
    if freq is not None:
        frame["time"] = frame["start"].dt.floor(freq)
        keys = ["time", *keys]
    gid, out = _groups(frame, keys)
    grouped = frame.groupby(gid)
    out["count"] = grouped.size()
    out["within"] = grouped["within"].sum().astype("int64")
    out["p90_s"] = grouped["latency_s"].quantile(0.9) if len(frame) else np.nan
    out.insert(len(keys) + 2, "share", out["within"] / out["count"])
    return out.reset_index(drop=True)


def throttles(ts: TraceSet, *, freq: str | None = None) -> pd.DataFrame:
    """Return where throttling (HTTP 429) happens: caller, callee, operation, counts.

    Throttles are read from the calls along each edge of the service graph (the caller's
    subsegment; for the client edge, the root segment), so a DynamoDB table that throttles a
    service shows up as that service calling ``DynamoDB`` with its operation.

    Parameters
    ----------
    ts : TraceSet
    freq : str, optional
        A pandas frequency such as ``"1min"``: counts per time bin (by call start).

    Returns
    -------
    DataFrame
        One row per (caller, callee, operation) that was throttled at least once, most
        throttles first: ``[time,] caller, callee, callee_type, operation`` (the AWS operation,
        else the HTTP method), ``calls, throttled, throttle_rate, traces`` (distinct traces
        with a throttled call). With ``freq``, every bin in which that edge had calls.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import throttles
    >>> table = throttles(xraykit.load_sample("shop"))
    >>> bool((table["throttled"] > 0).all())
    True
    """
    check_traceset(ts)
    check_freq(freq)
    nodes, calls = _graph.graph_frames(ts)
    names = _node_names(nodes).set_index("node_id")
    sub = ts.subsegments
    ops = pd.DataFrame(
        {
            "trace_id": sub["trace_id"],
            "entity_id": sub["subsegment_id"],
            "operation": sub["aws_operation"].fillna(sub["http_method"]),
        }
    )
    seg = ts.segments
    ops = pd.concat(
        [
            ops,
            pd.DataFrame(
                {
                    "trace_id": seg["trace_id"],
                    "entity_id": seg["segment_id"],
                    "operation": seg["http_method"],
                }
            ),
        ],
        ignore_index=True,
    ).drop_duplicates(["trace_id", "entity_id"])
    frame = pd.DataFrame(
        {
            "trace_id": calls["trace_id"],
            "entity_id": calls["entity_id"],
            "caller": calls["source"].map(names["name"]).fillna(calls["source"]),
            "callee": calls["target"].map(names["name"]).fillna(calls["target"]),
            "callee_type": calls["target"].map(names["type"]),
            "throttle": calls["throttle"].astype(bool),
            "start": calls["start"],
        }
    ).merge(ops, on=["trace_id", "entity_id"], how="left")
    frame["throttled_trace"] = frame["trace_id"].where(frame["throttle"])
    keys = ["caller", "callee", "callee_type", "operation"]
    hit = frame.groupby(keys, dropna=False)["throttle"].transform("any")
    frame = frame.loc[hit.astype(bool)]
    if freq is not None:
        frame = frame.assign(time=frame["start"].dt.floor(freq))
        keys = ["time", *keys]
    grouped = frame.groupby(keys, dropna=False, sort=True)
    out = pd.DataFrame(
        {
            "calls": grouped.size(),
            "throttled": grouped["throttle"].sum().astype("int64"),
            "traces": grouped["throttled_trace"].nunique(),
        }
    )
    out.insert(2, "throttle_rate", out["throttled"] / out["calls"])
    out = out.reset_index()
    order = ["throttled", "caller"] if freq is None else ["time", "throttled"]
    ascending = [False, True] if freq is None else [True, False]
    return out.sort_values(order, ascending=ascending, ignore_index=True)


ImpactKind = Literal["fault", "error", "throttle", "responsetime"]


def impacted_users(
    ts: TraceSet,
    kind: ImpactKind = "fault",
    *,
    user: str = "user",
    threshold_s: float | None = None,
) -> pd.DataFrame:
    """Return the users (or annotation values) whose requests failed or answered too slowly.

    A trace is impacted when the client saw the problem: its root segment faulted (``fault``,
    HTTP 5xx), errored (``error``, 4xx) or was throttled (``throttle``: the root's throttle
    flag or HTTP 429), or its response time exceeded ``threshold_s`` (``responsetime``). A
    throttle deeper in the trace that was retried away does not count: the client did not see it
    (:func:`throttles` and ``ts.traces.has_throttle`` show every throttle). A trace belongs to
    every user named in any of its segments (X-Ray's ``Users`` field), or to every value of
    the annotation.

    Parameters
    ----------
    ts : TraceSet
    kind : {"fault", "error", "throttle", "responsetime"}
        X-Ray's filter words for the problem the client saw.
    user : str
        What identifies a user: ``"user"`` (the segments' ``user`` field) or
        ``"annotation.<key>"`` (the values of that annotation).
    threshold_s : float, optional
        The response time in seconds above which a request counts; required for
        ``kind="responsetime"``.

    Returns
    -------
    DataFrame
        One row per impacted user or value, most impacted traces first: the value (column
        ``user`` or ``annotation.<key>``), ``traces`` (all of its traces), ``impacted``,
        ``impacted_share``, ``first_impacted``, ``last_impacted`` (trace start times).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import impacted_users
    >>> users = impacted_users(xraykit.load_sample("shop"), kind="fault")
    >>> bool((users["impacted"] <= users["traces"]).all())
    True
    """
    check_traceset(ts)
    check_choice("kind", kind, IMPACT_KINDS)
    tr = ts.traces
    if kind == "responsetime":
        if threshold_s is None:
            raise ArgumentError(
                "`kind='responsetime'` needs `threshold_s`, the response time in seconds above "
                "which a request counts as too slow, e.g. "
                "impacted_users(ts, kind='responsetime', threshold_s=1.0)."
            )
        hit = tr["response_time_s"] > _check_seconds(threshold_s)
    elif kind == "throttle":
        hit = pd.Series(_root_throttled(ts), index=tr.index)
    else:
        hit = tr[{"fault": "has_fault", "error": "has_error"}[kind]]
    impacted = pd.DataFrame(
        {"trace_id": tr["trace_id"], "impacted": hit.astype(bool), "start": tr["start"]}
    )
    if user == "user":
        seg = ts.segments
        values = pd.concat(
            [
                pd.DataFrame({"trace_id": seg["trace_id"], "user": seg["user"]}),
                pd.DataFrame({"trace_id": tr["trace_id"], "user": tr["user"]}),
            ],
            ignore_index=True,
        )
    elif isinstance(user, str) and user.startswith("annotation.") and len(user) > 11:
        ann = ts.annotations
        ann = ann.loc[ann["key"] == user[11:]]
        values = pd.DataFrame({"trace_id": ann["trace_id"], user: ann["value"]})
    else:
        raise ArgumentError(
            f"`user` must be 'user' or 'annotation.<key>', but {user!r} was passed."
        )
    values = values.dropna().drop_duplicates().merge(impacted, on="trace_id")
    values["impacted_start"] = values["start"].where(values["impacted"])
    grouped = values.groupby(user, sort=True)
    out = pd.DataFrame(
        {
            "traces": grouped["trace_id"].nunique(),
            "impacted": grouped["impacted"].sum().astype("int64"),
            "first_impacted": grouped["impacted_start"].min(),
            "last_impacted": grouped["impacted_start"].max(),
        }
    )
    out.insert(2, "impacted_share", out["impacted"] / out["traces"])
    out = out.loc[out["impacted"] > 0].reset_index()
    return out.sort_values(["impacted", user], ascending=[False, True], ignore_index=True)

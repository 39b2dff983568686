"""Requests measured at one level — trace, service or edge — the rows the latency analyses read.

:func:`requests_frame` gives one row per request with its latency, start, HTTP status and
X-Ray's outcome flags. Two views of "how long did a service take", as in the X-Ray console:

* ``"service"`` (a node): the service's own segments, how long *it* says it worked
  (:func:`xraykit.graph.node_segments`);
* ``"edge"``: the *caller's* subsegments, the round trip the caller waited for, network and
  queueing included (:func:`xraykit.graph.edge_calls`); an edge can be slower than its node;
* ``"trace"``: the response time the client saw, with the root's own outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from xraykit import graph as _graph
from xraykit.analysis._common import _first_annotation, _node_names
from xraykit.arguments import check_choice, check_traceset
from xraykit.schema import TIME, isin
from xraykit.status import flags

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["LEVELS", "Level", "requests_frame"]

#: The measurement levels, the values of every ``level=``.
LEVELS: tuple[str, ...] = ("trace", "service", "edge")
Level = Literal["trace", "service", "edge"]


def _measurements(ts: TraceSet, level: str, annotation_keys: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`requests_frame` without its public signature's keyword-only checks."""
    check_choice("level", level, LEVELS)
    if level == "trace":
        tr = ts.traces
        frame = pd.DataFrame(
            {
                "trace_id": tr["trace_id"],
                "service": tr["root_service"],
                "service_type": tr["root_origin"],
                "latency_s": tr["response_time_s"],
                "start": tr["start"],
                "url": tr["http_url"],
                "method": tr["http_method"],
                "status": tr["http_status"],
                "user": tr["user"],
                "error": tr["has_error"].astype(bool),
                "fault": tr["has_fault"].astype(bool),
                "throttle": _root_throttled(ts),
                "throttled_inside": tr["has_throttle"].astype(bool),
            }
        )
    else:
        if level == "edge":  # both frames, from one pass
            nodes, calls = _graph.graph_frames(ts)
        else:
            nodes = _graph.node_segments(ts)
        seg, sub = ts.segments, ts.subsegments
        http = pd.concat(
            [
                pd.DataFrame(
                    {
                        "trace_id": seg["trace_id"],
                        "entity_id": seg["segment_id"],
                        "url": seg["http_url"],
                        "method": seg["http_method"],
                        "user": seg["user"],
                    }
                ),
                pd.DataFrame(
                    {
                        "trace_id": sub["trace_id"],
                        "entity_id": sub["subsegment_id"],
                        "url": sub["http_url"],
                        "method": sub["http_method"],
                        "user": pd.Series(pd.NA, index=sub.index, dtype="str"),
                    }
                ),
            ],
            ignore_index=True,
        ).drop_duplicates(["trace_id", "entity_id"])
        if level == "service":
            base = pd.DataFrame(
                {
                    "trace_id": nodes["trace_id"],
                    "entity_id": nodes["entity_id"],
                    "service": nodes["name"],
                    "service_type": nodes["type"],
                }
            )
            calls = nodes
        else:
            calls = calls.loc[calls["edge_type"] != "link"]
            names = _node_names(nodes).set_index("node_id")["name"]
            source = calls["source"].map(names).fillna(calls["source"])
            target = calls["target"].map(names).fillna(calls["target"])
            base = pd.DataFrame(
                {
                    "trace_id": calls["trace_id"],
                    "entity_id": calls["entity_id"],
                    "edge": (source + " → " + target).astype("str"),
                    "source": calls["source"],
                    "target": calls["target"],
                }
            )
        # Series, not arrays: aligned on the same index, and the dtypes survive an empty
        # frame (``to_numpy`` of a tz-aware column is an object array)
        base = base.assign(
            latency_s=calls["response_time_s"].astype("float64"),
            start=calls["start"].astype(TIME),
            status=calls["http_status"].astype("Int64"),
            error=calls["error"].astype(bool),
            fault=calls["fault"].astype(bool),
            throttle=calls["throttle"].astype(bool),
        )
        frame = base.merge(http, on=["trace_id", "entity_id"], how="left")
    for key in annotation_keys:
        frame = frame.merge(_first_annotation(ts, key), on="trace_id", how="left")
    return frame


def _root_throttled(ts: TraceSet) -> np.ndarray:
    """Per row of ``ts.traces``: did the client see a throttle (root flag or HTTP 429)?

    ``ts.traces.has_throttle`` is a throttle *anywhere* in the trace, often retried away
    before the client noticed.
    """
    tr = ts.traces
    seg = ts.segments
    flagged = seg.loc[seg["throttle"].astype(bool)]
    root_keys = tr["trace_id"] + "/" + tr["root_segment_id"]
    root_flag = isin(root_keys, flagged["trace_id"] + "/" + flagged["segment_id"])
    return flags(tr["http_status"], throttle=root_flag).throttle


def requests_frame(
    ts: TraceSet,
    *,
    level: Level = "trace",
    annotation_keys: Sequence[str] = (),
) -> pd.DataFrame:
    """Return one row per request seen at ``level``: what the latency analyses measure.

    The frame behind :func:`percentiles`, :func:`sla`, :func:`compare` and the charts.

    * ``"trace"``: one row per trace; ``service`` is the entry point (root service),
      ``latency_s`` the response time the client saw, and the flags are the root's own, as
      the client saw them: ``fault`` (5xx), ``error`` (4xx), ``throttle`` (the root throttled
      or answered 429). ``throttled_inside`` is ``ts.traces.has_throttle``: a throttle anywhere
      in the trace, whether or not the client saw it.
    * ``"service"``: one row per node occurrence
      (:func:`xraykit.graph.node_segments`): the service's own view.
    * ``"edge"``: one row per call along an edge (:func:`xraykit.graph.edge_calls`,
      links left out): the caller's view, with ``edge`` (``"caller → callee"``),
      ``source`` and ``target`` node ids.

    Parameters
    ----------
    ts : TraceSet
        Not modified.
    level : {"trace", "service", "edge"}
    annotation_keys : sequence of str
        Adds ``annotation.<key>``: the first value of that annotation in the request's trace.

    Returns
    -------
    DataFrame
        ``trace_id``, ``service, service_type`` (trace, service) or ``edge, source, target``
        (edge), ``latency_s``, ``start`` (UTC), ``status`` (HTTP, Int64), ``error, fault,
        throttle`` (bool), ``url, method, user``, then ``throttled_inside`` (trace level) and
        the annotation columns. Requests still in progress have a NaN ``latency_s``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import requests_frame
    >>> ts = xraykit.load_sample("shop")
    >>> frame = requests_frame(ts)
    >>> len(frame) == len(ts)
    True
    >>> bool((frame["throttle"] <= frame["throttled_inside"]).all())  # seen ⇒ happened
    True
    """
    check_traceset(ts)
    return _measurements(ts, level, annotation_keys)

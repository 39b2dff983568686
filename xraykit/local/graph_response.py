"""``GetServiceGraph`` and ``GetTraceGraph`` responses built from a :class:`~xraykit.graph.ServiceGraph`.

Every node becomes a ``Service`` (its ``ReferenceId``, name, type, account, counts by outcome,
total response time and histograms), every edge an ``Edge`` of its caller pointing at the
callee's ``ReferenceId``; callers of root services are ``client`` services, one per root
service and named after it, as X-Ray returns them. Times are epoch seconds.
:func:`xraykit.graph.service_graph_from_response` reads them back into the same graph.

Examples
--------
>>> import xraykit
>>> from xraykit.graph import service_graph, service_graph_from_response
>>> graph = service_graph(xraykit.load_sample("cross-account"))
>>> back = service_graph_from_response(service_graph_response(graph, None, None))
>>> sorted(back.nodes.node_id) == sorted(graph.nodes.node_id)
True
"""

from __future__ import annotations

import math
import numbers
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.graph import CLIENT, ServiceGraph

__all__ = ["service_graph_response", "trace_graph_response"]


def _epoch(value: Any) -> float | None:
    """Epoch seconds of a Timestamp, datetime, ISO text or number (None for NaT / None)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
        return None if math.isnan(seconds) else seconds
    if isinstance(value, datetime | str | np.datetime64):
        try:
            stamp = pd.Timestamp(value)
        except ValueError as error:
            raise ArgumentError(f"Expected a time, but got {value!r}.") from error
        if stamp is pd.NaT:
            return None
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.value / 1e9
    raise ArgumentTypeError(
        f"Expected a time as a datetime, pandas Timestamp or epoch seconds, but got "
        f"{type(value).__name__} {value!r}."
    )


def _histogram(entries: Any) -> list[dict[str, Any]]:
    if not isinstance(entries, list | tuple):
        return []
    return [{"Value": float(value), "Count": int(count)} for value, count in entries]


def _statistics(row: Any) -> dict[str, Any]:
    """``SummaryStatistics`` (service or edge) from a node or edge row."""
    error, throttle, fault = int(row.error_count), int(row.throttle_count), int(row.fault_count)
    stats: dict[str, Any] = {
        "OkCount": int(row.ok_count),
        "ErrorStatistics": {
            "ThrottleCount": throttle,
            "OtherCount": error - throttle,
            "TotalCount": error,
        },
        "FaultStatistics": {"OtherCount": fault, "TotalCount": fault},
        "TotalCount": int(row.total_count),
    }
    if not pd.isna(row.total_response_time_s):
        stats["TotalResponseTime"] = float(row.total_response_time_s)
    return stats


def _times(row: Any) -> dict[str, float]:
    out = {}
    for key, value in (("StartTime", row.start), ("EndTime", row.end)):
        seconds = _epoch(value)
        if seconds is not None:
            out[key] = seconds
    return out


def _edge(row: Any, reference_id: int) -> dict[str, Any]:
    edge: dict[str, Any] = {"ReferenceId": reference_id, **_times(row)}
    edge["SummaryStatistics"] = _statistics(row)
    histogram = _histogram(row.response_time_histogram)
    if histogram:
        edge["ResponseTimeHistogram"] = histogram
    edge["Aliases"] = []
    if row.edge_type:
        edge["EdgeType"] = str(row.edge_type)
    ages = _histogram(row.event_age_histogram)
    if ages:
        edge["ReceivedEventAgeHistogram"] = ages
    return edge


def _services(graph: ServiceGraph) -> list[dict[str, Any]]:
    """The ``Services`` list: client services first, then one per node of ``graph``."""
    if not isinstance(graph, ServiceGraph):
        raise ArgumentTypeError(
            f"`graph` must be a ServiceGraph (from xraykit.graph.service_graph), but a "
            f"{type(graph).__name__} was passed."
        )
    nodes = graph.nodes.loc[graph.nodes["node_id"] != CLIENT]
    edges = graph.edges
    client_edges = edges.loc[edges["source"] == CLIENT]
    has_client = bool((graph.nodes["node_id"] == CLIENT).any()) or len(client_edges) > 0
    n_clients = max(len(client_edges), 1) if has_client else 0
    reference = {node_id: n_clients + i for i, node_id in enumerate(nodes["node_id"])}
    name_of = dict(zip(nodes["node_id"], nodes["name"], strict=True))
    missing = sorted(
        set(edges["target"]) - set(reference) | set(edges["source"]) - set(reference) - {CLIENT}
    )
    if missing:
        raise ArgumentError(
            f"The graph's edges name node(s) {missing!r} that are not among its nodes. "
            "Pass a graph from xraykit.graph.service_graph (or one whose edges and nodes agree)."
        )
    out_edges: dict[str, list[dict[str, Any]]] = {}
    for row in edges.loc[edges["source"] != CLIENT].itertuples(index=False):
        out_edges.setdefault(row.source, []).append(_edge(row, reference[row.target]))

    services: list[dict[str, Any]] = []
    clients = list(client_edges.itertuples(index=False)) or [None] * n_clients
    for i, row in enumerate(clients):
        name = CLIENT if row is None else str(name_of[row.target])
        services.append(
            {
                "ReferenceId": i,
                "Name": name,
                "Names": [name],
                "Root": False,
                "Type": "client",
                "State": "unknown",
                **({} if row is None else _times(row)),
                "Edges": [] if row is None else [_edge(row, reference[row.target])],
                "SummaryStatistics": {},
                "DurationHistogram": [],
                "ResponseTimeHistogram": [],
            }
        )
    for row in nodes.itertuples(index=False):
        service: dict[str, Any] = {
            "ReferenceId": reference[row.node_id],
            "Name": str(row.name),
            "Names": [str(row.name)],
            "Root": bool(row.root),
        }
        if isinstance(row.account_id, str) and row.account_id:
            service["AccountId"] = row.account_id
        histogram = _histogram(row.response_time_histogram)
        service.update(
            {
                "Type": str(row.type),
                "State": "unknown" if row.inferred else "active",
                **_times(row),
                "Edges": out_edges.get(row.node_id, []),
                "SummaryStatistics": _statistics(row),
                # the graph measures one time per request; X-Ray's two histograms then agree
                "DurationHistogram": histogram,
                "ResponseTimeHistogram": histogram,
            }
        )
        services.append(service)
    return services


def service_graph_response(graph: ServiceGraph, start: Any, end: Any) -> dict[str, Any]:
    """Return the ``GetServiceGraph`` output for ``graph`` over the window ``start``-``end``.

    Parameters
    ----------
    graph : ServiceGraph
        From :func:`xraykit.graph.service_graph`.
    start, end : datetime, Timestamp, epoch seconds or None
        The window asked for (``StartTime`` / ``EndTime``); None takes the graph's own.

    Returns
    -------
    dict
        ``StartTime``, ``EndTime`` (epoch seconds), ``Services`` (see the module) and
        ``ContainsOldGroupVersions`` (False: groups here have one version).

    Raises
    ------
    ArgumentTypeError
        When ``graph`` is not a ServiceGraph, or a time is not a time.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import service_graph
    >>> response = service_graph_response(
    ...     service_graph(xraykit.load_sample("shop")), 1741078800, 1741082400)
    >>> client = response["Services"][0]
    >>> client["Type"], client["Name"], client["Edges"][0]["SummaryStatistics"]["TotalCount"]
    ('client', 'shop-api/prod', 2000)
    """
    services = _services(graph)
    response: dict[str, Any] = {}
    for key, value, fallback in (("StartTime", start, graph.start), ("EndTime", end, graph.end)):
        seconds = _epoch(fallback if value is None else value)
        if seconds is not None:
            response[key] = seconds
    response["Services"] = services
    response["ContainsOldGroupVersions"] = False
    return response


def trace_graph_response(graph: ServiceGraph) -> dict[str, Any]:
    """Return the ``GetTraceGraph`` output for ``graph`` (the graph of a few traces).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import service_graph
    >>> ts = xraykit.load_sample("cross-account")
    >>> response = trace_graph_response(service_graph(ts.select(ts.traces.trace_id[:1])))
    >>> sorted(response), len(response["Services"]) > 1
    (['Services'], True)
    """
    return {"Services": _services(graph)}

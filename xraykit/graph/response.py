"""A :class:`~xraykit.graph.ServiceGraph` from a ``GetServiceGraph`` or ``GetTraceGraph`` response.

The API's services and edges become rows keyed like a computed graph's (``"name|type|account"``,
``"client"``), edges resolved by ``ReferenceId``; pages are merged, with means and percentiles
recomputed from the summed totals and histograms. A live graph and a computed one then
compare and draw alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xraykit.exceptions import TraceParseError
from xraykit.graph.columns import (
    CLIENT,
    EDGE_COLUMNS,
    NODE_COLUMNS,
    _client_node,
    _conform,
    _empty,
)
from xraykit.graph.servicegraph import ServiceGraph

__all__ = ["service_graph_from_response"]

#: Origins of services that send their own segments; other node types in a
#: GetServiceGraph response (AWS::DynamoDB::Table, AWS::SNS, remote, ...) are inferred.
_SEGMENT_ORIGINS = frozenset(
    {
        "",
        "AWS::EC2::Instance",
        "AWS::ECS::Container",
        "AWS::EKS::Container",
        "AWS::ElasticBeanstalk::Environment",
        "AWS::Lambda",
        "AWS::Lambda::Function",
        "AWS::ApiGateway::Stage",
        "AWS::AppSync::GraphQLAPI",
        "AWS::StepFunctions::StateMachine",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
    }
)

# Lower-cased AWS SDK service names (endpoint prefixes from the Python SDK, service ids


def _finish_nodes(nodes: pd.DataFrame) -> pd.DataFrame:
    nodes = (
        nodes.assign(_not_client=nodes["node_id"] != CLIENT)
        .sort_values(["_not_client", "node_id"], kind="stable")
        .drop(columns="_not_client")
        .reset_index(drop=True)
    )
    nodes["reference_id"] = np.arange(len(nodes), dtype=np.int64)
    return _conform(nodes, NODE_COLUMNS)


def _timestamp(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return pd.Timestamp(value, unit="s", tz="UTC")
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _weighted_quantile(histogram: Sequence[tuple[float, int]], q: float) -> float:
    if not histogram:
        return math.nan
    values = np.array([v for v, _ in histogram], dtype=float)
    counts = np.array([c for _, c in histogram], dtype=float)
    order = np.argsort(values)
    values, counts = values[order], counts[order]
    total = counts.sum()
    if total <= 0:
        return math.nan
    cumulative = np.cumsum(counts)
    return float(
        values[np.searchsorted(cumulative, q * total, side="left").clip(0, len(values) - 1)]
    )


def _response_stats(
    summary: Mapping[str, Any] | None, histogram: Any, where: str
) -> dict[str, Any]:
    summary = summary or {}
    if not isinstance(summary, Mapping):
        raise TraceParseError(
            f"Expected SummaryStatistics to be an object at {where}, but got {summary!r}. "
            "Pass the response of get_service_graph / get_trace_graph unchanged.",
            source="GetServiceGraph",
            location=where,
        )
    errors = summary.get("ErrorStatistics") or {}
    faults = summary.get("FaultStatistics") or {}
    ok = int(summary.get("OkCount") or 0)
    error = int(errors.get("TotalCount") or 0)
    fault = int(faults.get("TotalCount") or 0)
    total = int(summary.get("TotalCount") or (ok + error + fault))
    total_rt = (
        float(summary["TotalResponseTime"])
        if summary.get("TotalResponseTime") is not None
        else math.nan
    )
    hist = _histogram_entries(histogram, where)
    return {
        "ok_count": ok,
        "error_count": error,
        "throttle_count": int(errors.get("ThrottleCount") or 0),
        "fault_count": fault,
        "total_count": total,
        "in_progress_count": 0,
        "total_response_time_s": total_rt,
        "mean_response_time_s": total_rt / total if total else math.nan,
        "p50_response_time_s": _weighted_quantile(hist, 0.5),
        "p90_response_time_s": _weighted_quantile(hist, 0.9),
        "p99_response_time_s": _weighted_quantile(hist, 0.99),
        "response_time_histogram": hist,
    }


def _histogram_entries(histogram: Any, where: str) -> list[tuple[float, int]]:
    if histogram is None:
        return []
    try:
        return sorted((float(h["Value"]), int(h["Count"])) for h in histogram)
    except (TypeError, KeyError, ValueError) as exc:
        raise TraceParseError(
            f"Expected a histogram as a list of {{'Value': seconds, 'Count': n}} at {where}, "
            f"but got {histogram!r}.",
            source="GetServiceGraph",
            location=where,
        ) from exc


def service_graph_from_response(
    response: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> ServiceGraph:
    """Turn a ``GetServiceGraph`` or ``GetTraceGraph`` response into a :class:`ServiceGraph`.

    Parameters
    ----------
    response : dict or list of dict
        What ``boto3`` returns (times as datetimes) or the raw JSON (times as epoch
        seconds); a list of pages is merged.

    Returns
    -------
    ServiceGraph
        Nodes keyed like computed graphs (``"name|type|account"``; the ``client`` node is
        ``"client"``), edges resolved by ``ReferenceId``. Percentiles are read from the
        response-time histograms.

    Raises
    ------
    TraceParseError
        When the response does not have the ``Services`` shape of the X-Ray API.

    Examples
    --------
    >>> from xraykit.graph import service_graph_from_response
    >>> response = {"Services": [
    ...     {"ReferenceId": 0, "Name": "web", "Type": "client", "Edges": [
    ...         {"ReferenceId": 1, "SummaryStatistics": {"OkCount": 2, "TotalCount": 2,
    ...          "TotalResponseTime": 0.5}}]},
    ...     {"ReferenceId": 1, "Name": "web", "Type": "AWS::EC2::Instance", "Root": True,
    ...      "SummaryStatistics": {"OkCount": 2, "TotalCount": 2, "TotalResponseTime": 0.4}}]}
    >>> graph = service_graph_from_response(response)
    >>> graph.edges[["source", "target", "mean_response_time_s"]].values.tolist()
    [['client', 'web|AWS::EC2::Instance|', 0.25]]
    """
    pages: Sequence[Mapping[str, Any]] = [response] if isinstance(response, Mapping) else response
    services: dict[Any, Mapping[str, Any]] = {}
    starts, ends = [], []
    operation = "GetTraceGraph"
    for p, page in enumerate(pages):
        if not isinstance(page, Mapping) or not isinstance(page.get("Services"), list):
            raise TraceParseError(
                f"Expected a GetServiceGraph/GetTraceGraph response with a 'Services' list, "
                f"but got {type(page).__name__} with keys "
                f"{sorted(page) if isinstance(page, Mapping) else page!r}. Pass what "
                "`client.get_service_graph(...)` returns (or a list of its pages).",
                source="GetServiceGraph",
                location=f"page {p}",
            )
        if "StartTime" in page or "EndTime" in page:
            operation = "GetServiceGraph"
        starts.append(_timestamp(page.get("StartTime")))
        ends.append(_timestamp(page.get("EndTime")))
        for s, service in enumerate(page["Services"]):
            if not isinstance(service, Mapping) or "ReferenceId" not in service:
                raise TraceParseError(
                    f"Expected each service to be an object with a 'ReferenceId', but got "
                    f"{service!r}.",
                    source=operation,
                    location=f"page {p}, Services[{s}]",
                )
            services[service["ReferenceId"]] = service

    ids: dict[Any, str] = {}
    node_rows = []
    for ref, service in services.items():
        type_ = str(service.get("Type") or "")
        name = str(service.get("Name") or "")
        account = str(service.get("AccountId") or "")
        node_id = CLIENT if type_ == "client" else f"{name}|{type_}|{account}"
        ids[ref] = node_id
        if type_ == "client":
            continue
        where = f"service {name!r} (ReferenceId {ref})"
        row = {
            "node_id": node_id,
            "name": name,
            "type": type_,
            "account_id": account,
            "root": bool(service.get("Root", False)),
            "inferred": not service.get("Root", False) and type_ not in _SEGMENT_ORIGINS,
            "start": _timestamp(service.get("StartTime")),
            "end": _timestamp(service.get("EndTime")),
        }
        row.update(
            _response_stats(
                service.get("SummaryStatistics"), service.get("ResponseTimeHistogram"), where
            )
        )
        node_rows.append(row)

    edge_rows = []
    for ref, service in services.items():
        for e, edge in enumerate(service.get("Edges") or []):
            where = f"service {service.get('Name')!r} (ReferenceId {ref}), Edges[{e}]"
            target = ids.get(edge.get("ReferenceId"))
            if target is None:
                raise TraceParseError(
                    f"Edge points at ReferenceId {edge.get('ReferenceId')!r}, which no service "
                    f"in the response has (known: {sorted(ids)!r}). Merge all pages first.",
                    source=operation,
                    location=where,
                )
            edge_type = str(edge.get("EdgeType") or "")
            row = {
                "source": ids[ref],
                "target": target,
                "edge_type": edge_type,
                "start": _timestamp(edge.get("StartTime")),
                "end": _timestamp(edge.get("EndTime")),
            }
            row.update(
                _response_stats(
                    edge.get("SummaryStatistics"), edge.get("ResponseTimeHistogram"), where
                )
            )
            age = _histogram_entries(edge.get("ReceivedEventAgeHistogram"), where)
            row["event_age_histogram"] = age
            n_age = sum(c for _, c in age)
            row["mean_event_age_s"] = sum(v * c for v, c in age) / n_age if n_age else math.nan
            edge_rows.append(row)

    nodes = (
        pd.DataFrame(node_rows) if node_rows else _empty(NODE_COLUMNS).drop(columns="reference_id")
    )
    if CLIENT in ids.values():
        client = pd.DataFrame([_client_node()])
        nodes = client if nodes.empty else pd.concat([client, nodes], ignore_index=True)
    if not nodes.empty:
        nodes = nodes.groupby("node_id", sort=False, as_index=False).agg(_merge_rules(nodes))
        nodes = _finish_nodes(_recompute_means(nodes))
    else:
        nodes = _empty(NODE_COLUMNS)
    edges = pd.DataFrame(edge_rows) if edge_rows else _empty(EDGE_COLUMNS)
    if len(edges):
        edges = edges.groupby(["source", "target", "edge_type"], sort=True, as_index=False).agg(
            _merge_rules(edges)
        )
        edges = _recompute_means(edges)
    start = min((s for s in starts if s is not None), default=None)
    end = max((e for e in ends if e is not None), default=None)
    if start is None and len(nodes):
        start = nodes["start"].min()
        end = nodes["end"].max()
    return ServiceGraph(
        nodes, _conform(edges, EDGE_COLUMNS), start=start, end=end, origin=operation
    )


def _merge_rules(frame: pd.DataFrame) -> dict[str, Any]:
    """How to merge duplicate nodes/edges (one per page, or several client nodes)."""
    rules: dict[str, Any] = {}
    for col in frame.columns:
        if col in ("node_id", "source", "target", "edge_type"):
            continue
        if col.endswith("_count"):
            rules[col] = "sum"
        elif col == "total_response_time_s":
            rules[col] = lambda s: s.sum(min_count=1)
        elif col == "start":
            rules[col] = "min"
        elif col == "end":
            rules[col] = "max"
        elif col == "root":
            rules[col] = "any"
        elif col.endswith("histogram"):
            rules[col] = lambda s: sorted(_sum_histograms(s))
        else:
            rules[col] = "first"
    return rules


def _recompute_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Means and percentiles after merging pages: from the summed totals and histograms."""
    frame = frame.copy()
    total = frame["total_count"].astype(float)
    frame["mean_response_time_s"] = (frame["total_response_time_s"] / total).where(total > 0)
    for q in (50, 90, 99):
        frame[f"p{q}_response_time_s"] = [
            _weighted_quantile(h, q / 100) for h in frame["response_time_histogram"]
        ]
    return frame


def _sum_histograms(histograms: Iterable[list[tuple[float, int]]]) -> list[tuple[float, int]]:
    total: dict[float, int] = {}
    for hist in histograms:
        for value, count in hist:
            total[value] = total.get(value, 0) + count
    return list(total.items())

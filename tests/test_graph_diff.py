"""graph_diff: new, gone, worse, better and same judged with hand-set counts and latencies."""

from __future__ import annotations

import dataclasses
import html

import pandas as pd
import pytest

import xraykit
from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.graph.diff import CHANGES, DIFF_COLORS, graph_diff


@pytest.fixture(scope="module")
def graph():
    return xraykit.service_graph(xraykit.load_sample("shop"))


def _with(graph, node_name, **values):
    """A copy of ``graph`` whose node ``node_name`` (every type) has ``values`` set."""
    nodes = graph.nodes.copy()
    rows = nodes.name == node_name
    assert rows.any()
    for column, value in values.items():
        nodes.loc[rows, column] = value
    return dataclasses.replace(graph, nodes=nodes)


def _row(diff, name):
    return diff.nodes[diff.nodes.name == name].iloc[0]


def test_same_graph_is_all_same(graph):
    diff = graph_diff(graph, graph)
    assert set(diff.nodes.change) == {"same"}
    assert set(diff.edges.change) == {"same"}
    assert len(diff.nodes) == len(graph.nodes) and len(diff.edges) == len(graph.edges)
    assert list(diff.summary().index) == list(CHANGES)


def test_fault_share_rise_beyond_threshold_is_worse(graph):
    before = _with(graph, "orders", total_count=100, fault_count=1, error_count=0)
    after = _with(graph, "orders", total_count=100, fault_count=7, error_count=0)
    row = _row(graph_diff(before, after), "orders")
    assert (row.change, row.health, row.latency) == ("worse", "worse", "same")
    assert row.fault_rate_before == pytest.approx(0.01) and row.fault_rate_after == pytest.approx(
        0.07
    )
    # 6 points is within a 0.1 threshold
    assert _row(graph_diff(before, after, health_threshold=0.1), "orders").change == "same"


def test_error_share_fall_is_better(graph):
    before = _with(graph, "orders", total_count=200, fault_count=0, error_count=40)
    after = _with(graph, "orders", total_count=200, fault_count=0, error_count=10)
    row = _row(graph_diff(before, after), "orders")
    assert (row.change, row.health) == ("better", "better")


def test_latency_rules_relative_and_absolute_floor(graph):
    base = _with(graph, "orders", total_count=100, fault_count=0, error_count=0)
    slow = dataclasses.replace(base, nodes=base.nodes.copy())
    slow.nodes.loc[slow.nodes.name == "orders", "p90_response_time_s"] = 0.130
    fast = dataclasses.replace(base, nodes=base.nodes.copy())
    fast.nodes.loc[fast.nodes.name == "orders", "p90_response_time_s"] = 0.100
    # 0.100 -> 0.130 is 30 % slower: worse at 20 %, same at 50 %
    assert _row(graph_diff(fast, slow), "orders").latency == "worse"
    assert _row(graph_diff(fast, slow, latency_threshold=0.5), "orders").latency == "same"
    assert _row(graph_diff(slow, fast), "orders").latency == "better"
    assert _row(graph_diff(fast, slow), "orders").latency_ratio == pytest.approx(1.3)
    # 30 ms is below a 50 ms floor
    assert _row(graph_diff(fast, slow, min_latency_s=0.05), "orders").latency == "same"
    # another statistic is compared when asked: p99 untouched
    assert _row(graph_diff(fast, slow, latency="p99"), "orders").latency == "same"


def test_worse_wins_over_better(graph):
    before = _with(graph, "orders", total_count=100, fault_count=10, error_count=0,
                   p90_response_time_s=0.1)  # fmt: skip
    after = _with(graph, "orders", total_count=100, fault_count=0, error_count=0,
                  p90_response_time_s=0.2)  # fmt: skip
    row = _row(graph_diff(before, after), "orders")
    assert (row.health, row.latency, row.change) == ("better", "worse", "worse")


def test_too_few_requests_are_not_judged(graph):
    before = _with(graph, "orders", total_count=5, fault_count=0, error_count=0)
    after = _with(graph, "orders", total_count=5, fault_count=5, error_count=5)
    assert _row(graph_diff(before, after), "orders").change == "same"
    assert _row(graph_diff(before, after, min_count=5), "orders").change == "worse"


def test_new_and_gone_nodes_and_edges(graph):
    orders = graph.nodes[graph.nodes.name == "orders"].node_id.tolist()
    smaller = dataclasses.replace(
        graph,
        nodes=graph.nodes[~graph.nodes.node_id.isin(orders)],
        edges=graph.edges[~graph.edges.target.isin(orders)],
    )
    gone = graph_diff(graph, smaller)
    assert set(gone.nodes.loc[gone.nodes.node_id.isin(orders), "change"]) == {"gone"}
    assert set(gone.edges.loc[gone.edges.target.isin(orders), "change"]) == {"gone"}
    row = gone.nodes[gone.nodes.node_id.isin(orders)].iloc[0]
    assert row["name"] == "orders" and row.count_after == 0 and row.count_before > 0
    new = graph_diff(smaller, graph)
    assert set(new.nodes.loc[new.nodes.node_id.isin(orders), "change"]) == {"new"}
    assert new.summary().loc["new", "edges"] == (graph.edges.target.isin(orders)).sum()


def test_two_halves_of_a_sample(graph):
    ts = xraykit.load_sample("shop")
    cut = ts.traces.start.sort_values().iloc[len(ts.traces) // 2]
    early = ts.select(ts.traces.trace_id[ts.traces.start < cut])
    late = ts.select(ts.traces.trace_id[ts.traces.start >= cut])
    diff = graph_diff(xraykit.service_graph(early), xraykit.service_graph(late))
    # recompute one node's verdict by hand from the two graphs
    a, b = diff.before.nodes.set_index("node_id"), diff.after.nodes.set_index("node_id")
    for node_id in a.index.intersection(b.index):
        x, y = a.loc[node_id], b.loc[node_id]
        row = diff.nodes[diff.nodes.node_id == node_id].iloc[0]
        if min(x.total_count, y.total_count) < 20:
            assert row.change == "same"
            continue
        worse = (
            y.fault_count / y.total_count - x.fault_count / x.total_count > 0.05
            or y.error_count / y.total_count - x.error_count / x.total_count > 0.05
            or (
                y.p90_response_time_s > 1.2 * x.p90_response_time_s
                and y.p90_response_time_s - x.p90_response_time_s >= 0.001
            )
        )
        assert (row.change == "worse") == bool(worse), node_id


def test_map_escapes_and_colours(graph):
    nodes = graph.nodes.copy()
    nodes.loc[nodes.name == "orders", "name"] = '<script>alert("x")</script>'
    hostile = dataclasses.replace(graph, nodes=nodes)
    after = _with(hostile, '<script>alert("x")</script>', total_count=100, fault_count=50)
    diff = graph_diff(hostile, after)
    source = diff.map().source
    assert "<script>" not in source
    assert html.escape('<script>alert("x")</script>') in source
    assert DIFF_COLORS["worse"] in source
    pytest.importorskip("graphviz")


@pytest.mark.dot
def test_map_renders_svg(graph):
    bundle = graph_diff(graph, graph)._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith(("<?xml", "<svg"))
    assert "GraphDiff" in bundle["text/plain"]


def test_errors(graph):
    with pytest.raises(ArgumentTypeError, match="must be a ServiceGraph"):
        graph_diff(graph.nodes, graph)
    with pytest.raises(ArgumentError, match="`latency` must be one of"):
        graph_diff(graph, graph, latency="p95")
    with pytest.raises(ArgumentError, match="`health_threshold` must be a number"):
        graph_diff(graph, graph, health_threshold=-1)
    with pytest.raises(ArgumentError, match="`min_count`"):
        graph_diff(graph, graph, min_count=float("nan"))


def test_frames_have_documented_columns(graph):
    diff = graph_diff(graph, graph)
    for part in ("count", "fault_rate", "error_rate", "latency_s"):
        assert f"{part}_before" in diff.nodes and f"{part}_after" in diff.edges
    assert list(diff.edges.columns[:6]) == [
        "source",
        "target",
        "edge_type",
        "change",
        "health",
        "latency",
    ]
    assert isinstance(diff.nodes.count_before.dtype, type(pd.Series([1]).dtype))

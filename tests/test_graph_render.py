"""Tests of xraykit.graph.render and service_map: the DOT text of service maps (and, with the
dot marker, that Graphviz renders them)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import graphviz
import pandas as pd
import pytest

import xraykit
from xraykit.exceptions import ArgumentError, ArgumentTypeError, NotFoundError
from xraykit.graph import service_graph, service_graph_from_response, service_map
from xraykit.graph.render import draw
from xraykit.status import COLORS

DATA = Path(__file__).parent / "data"


def load(*names: str) -> xraykit.TraceSet:
    docs: list[dict] = []
    for name in names:
        docs += json.loads((DATA / f"graph_{name}.json").read_text())
    return xraykit.from_documents(docs, on_error="raise")


def node_lines(source: str) -> dict[str, str]:
    """{node name (bold label) -> its DOT line}."""
    out = {}
    for line in source.splitlines():
        found = re.search(r"xlabel=<<B>(.*?)</B>", line)
        if found and re.match(r"\s*n\d+ \[", line):
            out.setdefault(found.group(1), line)
    return out


def edge_lines(source: str) -> list[str]:
    return [line for line in source.splitlines() if "->" in line]


@pytest.fixture(scope="module")
def chain() -> xraykit.TraceSet:
    return load("chain")


def test_map_is_a_digraph_with_one_node_per_graph_node(chain):
    g = service_map(chain, legend=False)
    assert isinstance(g, graphviz.Digraph)
    names = node_lines(g.source)
    assert set(names) == {"Clients", "web", "orders", "inventory"}
    assert len(edge_lines(g.source)) == 3
    assert "legend" not in g.source
    assert "rankdir=LR" in g.source


def test_node_labels_show_name_type_latency_and_rate(chain):
    line = node_lines(service_map(chain).source)["web"]
    assert "AWS::EC2::Instance" in line
    # mean 500 ms; a window shorter than a minute shows the number of requests, not a rate
    assert "500 ms · 2 requests" in line
    assert "t/min" not in line
    assert f'fillcolor="{COLORS["ok"]}"' in line and "style=filled" in line


def test_rates_per_minute_over_a_window_of_a_minute_or_more(chain):
    graph = service_graph(chain)
    assert graph.window_s < 60
    for minutes, rate in ((2, "1.0 t/min"), (1, "2.0 t/min")):
        wide = dataclasses.replace(graph, end=graph.start + pd.Timedelta(minutes=minutes))
        line = node_lines(service_map(wide).source)["web"]
        assert f"500 ms · {rate}" in line
    one = node_lines(service_map(chain.trace(chain.traces.trace_id[0])).source)["web"]
    assert "· 1 request<" in one


def test_status_shares_are_drawn_as_wedges_in_console_colours():
    lines = node_lines(service_map(load("fanout")).source)
    carts = lines["carts"]  # 2 ok, 1 throttled
    assert "style=wedged" in carts
    assert f"{COLORS['ok']};0.6667:{COLORS['throttle']}" in carts
    external = lines["api.example.com"]  # 2 ok, 1 other 4xx
    assert f"{COLORS['ok']};0.6667:{COLORS['error']}" in external
    fault = node_lines(service_map(load("downstream_fault")).source)["pricing"]
    assert f"{COLORS['ok']};0.6667:{COLORS['fault']}" in fault


def test_edges_show_caller_latency_and_links_are_dashed():
    g = service_map(load("sqs_link"))
    edges = edge_lines(g.source)
    dashed = [e for e in edges if "style=dashed" in e]
    assert len(dashed) == 1
    assert "age 2.00 s" in dashed[0]
    solid = [e for e in edges if "style=dashed" not in e]
    assert any('label="50 ms\\n1 request"' in e for e in solid)  # web -> jobs (SendMessage)


def test_legend_lists_the_four_colours(chain):
    source = service_map(chain).source
    assert "cluster_legend" in source
    for color in COLORS.values():
        assert color in source.split("cluster_legend")[1]


def test_focus_and_hops_draw_a_neighbourhood(chain):
    assert set(node_lines(service_map(chain, focus="orders").source)) == {
        "web",
        "orders",
        "inventory",
    }
    assert set(node_lines(service_map(chain, focus="orders", hops=0).source)) == {"orders"}
    assert set(node_lines(service_map(chain, focus="orders", hops=2).source)) == {
        "Clients",
        "web",
        "orders",
        "inventory",
    }
    focused = service_map(chain, focus="inventory|AWS::EC2::Instance|", hops=1)
    assert set(node_lines(focused.source)) == {"orders", "inventory"}
    assert len(edge_lines(focused.source)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hops": 1}, "`hops` needs `focus`"),
        ({"focus": "web", "hops": -1}, "`hops` must be an integer >= 0"),
        ({"layout": "spring"}, "`layout` must be one of"),
        ({"rankdir": "up"}, "`rankdir` must be one of"),
    ],
)
def test_bad_arguments_say_what_is_allowed(chain, kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        service_map(chain, **kwargs)
    with pytest.raises(ValueError, match=message):  # the builtin a user would catch
        draw(service_graph(chain), **kwargs)


def test_a_focus_that_names_no_node_is_not_found(chain):
    with pytest.raises(NotFoundError, match="`focus` must name a node"):
        service_map(chain, focus="nope")


def test_data_must_be_a_traceset_or_a_graph(chain):
    with pytest.raises(ArgumentTypeError, match="`data` must be a TraceSet"):
        service_map(chain.traces)


def test_by_account_clusters_nodes_per_account():
    source = service_map(load("accounts"), by_account=True).source
    clusters = re.findall(r'label="Account (\d+)"', source)
    assert clusters == ["111111111111", "222222222222"]
    block_a = source.split("cluster_account_0")[1].split("}")[0]
    block_b = source.split("cluster_account_1")[1].split("}")[0]
    assert "<B>front</B>" in block_a and "<B>ledger</B>" not in block_a
    assert "<B>ledger</B>" in block_b and "AWS::DynamoDB::Table" in block_b


def test_shared_names_show_their_account_when_not_clustered():
    source = service_map(load("accounts")).source
    assert "account 111111111111" in source and "account 222222222222" in source
    assert "cluster_account" not in source


def test_highlight_a_trace_marks_its_path_and_fades_the_rest():
    ts = load("chain", "downstream_fault")
    shop_trace = ts.traces.loc[ts.traces["root_service"] == "shop", "trace_id"].iloc[0]
    source = service_map(ts, highlight=shop_trace).source
    lit = [e for e in edge_lines(source) if "#0073bb" in e]
    assert len(lit) == 2  # client -> shop -> pricing
    lines = node_lines(source)
    assert "penwidth=3" in lines["shop"] and "penwidth=3" in lines["pricing"]
    assert "#d0d0d0" in lines["web"]
    same = service_map(ts, highlight=ts.trace(shop_trace)).source
    assert same == source
    with pytest.raises(LookupError):
        service_map(ts, highlight="1-00000000-000000000000000000000000")


def test_highlight_needs_traces_behind_a_response_graph():
    graph = service_graph_from_response(
        json.loads((DATA / "graph_get_service_graph.json").read_text())
    )
    with pytest.raises(ArgumentError, match="no traces behind it"):
        service_map(graph, highlight="1-67c6c11c-50ea62aa45baf444bb7e21bf")
    source = service_map(graph).source
    assert "2025-03-04 09:00–09:10 UTC" in source
    assert len(edge_lines(source)) == 8


def test_long_names_are_shortened_in_labels_but_not_in_tooltips():
    doc = {
        "id": "a" * 16,
        "trace_id": "1-6553f100-" + "0" * 24,
        "name": "x" * 40,
        "start_time": 1700000000.0,
        "end_time": 1700000000.5,
    }
    source = service_map(xraykit.from_documents([doc], on_error="raise")).source
    assert "<B>" + "x" * 31 + "…</B>" in source
    assert 'tooltip="' + "x" * 40 + "||" in source


def test_names_are_escaped_in_html_labels():
    doc = {
        "id": "a" * 16,
        "trace_id": "1-6553f100-" + "0" * 24,
        "name": "a<b>&c",
        "start_time": 1700000000.0,
        "end_time": 1700000000.5,
    }
    source = service_map(xraykit.from_documents([doc], on_error="raise")).source
    assert "<B>a&lt;b&gt;&amp;c</B>" in source


def test_graph_and_traces_draw_the_same(chain):
    assert service_map(service_graph(chain)).source == service_map(chain).source


@pytest.mark.dot
@pytest.mark.parametrize("layout", ["dot", "neato", "fdp"])
def test_maps_render_with_graphviz(layout, tmp_path):
    g = service_map(
        load("fanout", "lambda", "sqs_link", "accounts"), layout=layout, by_account=True
    )
    svg = g.pipe(format="svg", encoding="utf-8")
    assert "<svg" in svg and ">carts</text>" in svg
    assert g.pipe(format="png")[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", xraykit.sample_names())
def test_every_sample_draws(name):
    ts = xraykit.load_sample(name)
    graph = service_graph(ts)
    source = service_map(graph).source
    statements = re.findall(r"^\s*n\d+ \[", source, flags=re.M)
    assert len(statements) == len(graph.nodes)  # Lambda's two nodes share a name
    assert len(edge_lines(source)) == len(graph.edges)


@pytest.mark.dot
def test_shop_sample_renders(tmp_path):
    graph = service_graph(xraykit.load_sample("shop"))
    svg = graph.save(tmp_path / "shop.svg").read_text()
    assert "shop&#45;api/prod" in svg  # Graphviz writes "-" as &#45; in SVG text


def test_in_progress_only_trace_draws_with_requests_in_progress():
    ts = xraykit.load_file(DATA / "in_progress.json")
    partial = ts.trace(ts.traces.loc[ts.traces["is_partial"], "trace_id"].item())
    source = service_map(partial).source
    lines = node_lines(source)
    assert set(lines) == {"Clients", "checkout", "payments"}
    assert "0 requests: 0 ok" in lines["checkout"] and "1 in progress" in lines["checkout"]
    assert 'fillcolor="#ffffff"' in lines["checkout"]  # no outcome yet: no status colour
    assert "– · 0 requests" in lines["checkout"]  # no mean response time yet
    assert len(edge_lines(source)) == 2

"""Tests of xraykit.graph.render and service_map: the DOT text of service maps (and, with the
dot marker, that Graphviz renders them)."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import graphviz
import pandas as pd
import pytest

import xraykit
from xraykit.exceptions import ArgumentError, ArgumentTypeError, NotFoundError
from xraykit.graph import service_graph, service_graph_from_response, service_map
from xraykit.graph.render import draw, responsive_svg
from xraykit.status import COLORS

DATA = Path(__file__).parent / "data"


def load(*names: str) -> xraykit.TraceSet:
    docs: list[dict] = []
    for name in names:
        docs += json.loads((DATA / f"graph_{name}.json").read_text())
    return xraykit.from_documents(docs, on_error="raise")


def node_lines(source: str) -> dict[str, str]:
    """{node name (bold label) -> its circle's DOT line and its label node's, joined}."""
    circles = dict(re.findall(r"^\s*n(\d+) (\[.*)$", source, flags=re.M))
    out = {}
    for ref, line in re.findall(r"^\s*l(\d+) (\[.*)$", source, flags=re.M):
        found = re.search(r"label=<<B>(.*?)</B>", line)
        if found:
            out.setdefault(found.group(1), circles[ref] + " " + line)
    return out


def edge_lines(source: str) -> list[str]:
    """The drawn edges (not the invisible ones that keep a label with its circle)."""
    return [line for line in source.splitlines() if "->" in line and "style=invis" not in line]


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


def test_legend_lists_the_four_colours_under_the_title(chain):
    source = service_map(chain).source
    title = re.search(r"^\tbgcolor=.*label=(<<TABLE.*</TABLE>>)", source, flags=re.M).group(1)
    for color in COLORS.values():
        assert f'BGCOLOR="{color}"' in title
    assert "Throttled (429)" in title and "async link" in title
    bare = service_map(chain, legend=False).source
    assert "BGCOLOR" not in bare and "Service map" in bare


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
    block_a = source.split("cluster_account_0")[1].split("cluster_account_1")[0]
    block_b = source.split("cluster_account_1")[1]
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
    assert "<B>" + "x" * 25 + "…</B>" in source
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


# -- the map at a notebook's width ------------------------------------------------------------

SVG_NS = "{http://www.w3.org/2000/svg}"


def _numbers(element: ET.Element) -> list[tuple[float, float]]:
    """The (x, y) points an SVG shape is drawn through: paths, polygons, ellipses."""
    points: list[tuple[float, float]] = []
    for shape in element.iter():
        tag = shape.tag.removeprefix(SVG_NS)
        if tag == "path":
            values = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", shape.get("d", ""))]
            points += list(zip(values[::2], values[1::2], strict=False))
        elif tag == "polygon":
            values = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", shape.get("points", ""))]
            points += list(zip(values[::2], values[1::2], strict=False))
        elif tag == "ellipse":
            cx, cy = float(shape.get("cx", 0)), float(shape.get("cy", 0))
            rx, ry = float(shape.get("rx", 0)), float(shape.get("ry", 0))
            points += [(cx - rx, cy - ry), (cx + rx, cy + ry)]
    return points


def _bbox(element: ET.Element) -> tuple[float, float, float, float]:
    xs, ys = zip(*_numbers(element), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def _texts(element: ET.Element) -> list[tuple[float, float, float]]:
    """(x, baseline y, font size) of every text in an SVG group."""
    return [
        (float(t.get("x", 0)), float(t.get("y", 0)), float(t.get("font-size", 10)))
        for t in element.iter(f"{SVG_NS}text")
    ]


def _groups(svg: str, kind: str) -> dict[str, ET.Element]:
    """{title: group} of the SVG's ``node`` or ``cluster`` groups."""
    root = ET.fromstring(svg)
    return {
        g.findtext(f"{SVG_NS}title"): g for g in root.iter(f"{SVG_NS}g") if g.get("class") == kind
    }


def _svg(g: graphviz.Digraph) -> str:
    return g.pipe(format="svg", encoding="utf-8")


def test_the_map_displays_as_a_responsive_svg(chain):
    g = service_map(chain)
    bundle = g._repr_mimebundle_()
    assert set(bundle) == {"image/svg+xml", "text/html"}
    root = ET.fromstring(bundle["image/svg+xml"])
    natural = _svg(g)
    width_pt = re.search(r'<svg width="([\d.]+)pt"', natural).group(1)
    assert root.get("viewBox")
    assert root.get("width") == "100%" and root.get("height") is None
    assert f"max-width: {width_pt}pt" in root.get("style") and "height: auto" in root.get("style")
    html_out = bundle["text/html"]
    assert html_out.startswith('<div class="xraykit-service-map" style="max-width: 100%')
    assert "<?xml" not in html_out and "<!DOCTYPE" not in html_out
    assert '<svg width="100%"' in html_out and g._repr_html_() == html_out
    assert set(g._repr_mimebundle_(include=["image/png"])) == {"image/png"}
    assert g._repr_mimebundle_(include=["text/html"], exclude=["text/html"]) == {}
    # a ServiceGraph left at the end of a cell shows the same map
    assert service_graph(chain)._repr_mimebundle_()["text/html"] == html_out
    # saved files keep Graphviz's absolute size (for slides and reports)
    assert re.search(r'<svg width="[\d.]+pt" height="[\d.]+pt"', natural)


def test_responsive_svg_needs_an_svg_element():
    with pytest.raises(ArgumentError, match="must contain an <svg> element"):
        responsive_svg("<html></html>")
    assert responsive_svg('<svg viewBox="0 0 1 1"></svg>').startswith(
        '<svg width="100%" style="height: auto"'
    )


def test_deep_maps_go_top_to_bottom_and_stay_narrow(shop, chain):
    graph = service_graph(shop)
    auto = service_map(graph, rankdir="auto")
    assert "rankdir=TB" in auto.source  # nine ranks deep: left to right would be too wide
    assert auto.source == draw(graph).source == graph.to_digraph().source  # draw's default
    assert "rankdir=LR" in service_map(chain, rankdir="auto").source  # four ranks fit
    assert "rankdir=LR" in service_map(graph, rankdir="LR").source
    width = float(re.search(r'<svg width="([\d.]+)pt"', _svg(auto)).group(1))
    lr = _svg(service_map(graph, rankdir="LR"))
    wide = float(re.search(r'<svg width="([\d.]+)pt"', lr).group(1))
    assert width < 712 < wide  # a notebook's width: about 950 px = 712 pt


@pytest.mark.dot
@pytest.mark.parametrize(
    ("sample", "options"),
    [
        ("shop", {}),
        ("shop", {"rankdir": "LR"}),
        ("cross-account", {"by_account": True}),
        ("lambda-cold-starts", {"rankdir": "TB"}),
    ],
)
def test_every_label_sits_under_its_circle(sample, options):
    svg = _svg(service_map(xraykit.load_sample(sample), **options))
    nodes = _groups(svg, "node")
    circles = {t[1:]: g for t, g in nodes.items() if t.startswith("n")}
    labels = {t[1:]: g for t, g in nodes.items() if t.startswith("l")}
    assert circles and set(circles) == set(labels)
    for ref, circle in circles.items():
        left, _, right, bottom = _bbox(circle)
        texts = _texts(labels[ref])
        top_of_label = min(y - size for _, y, size in texts)
        assert top_of_label >= bottom - 1, f"label of n{ref} is not under its circle"
        assert top_of_label - bottom < 40, f"label of n{ref} is far from its circle"
        assert min(x for x, _, _ in texts) <= (left + right) / 2, f"label of n{ref} is aside"


@pytest.mark.dot
def test_account_box_labels_and_node_labels_stay_inside_the_box():
    svg = _svg(service_map(xraykit.load_sample("cross-account"), by_account=True))
    clusters = {t: g for t, g in _groups(svg, "cluster").items() if t.startswith("cluster_acc")}
    assert len(clusters) == 3
    nodes = _groups(svg, "node")
    for title, box in clusters.items():
        x0, y0, x1, y1 = _bbox(box)
        ((x, y, size),) = _texts(box)
        assert x0 <= x <= x1 and y0 <= y - size and y <= y1, f"{title} label outside its box"
    # every label of a boxed service lies inside its account's box
    graph = service_graph(xraykit.load_sample("cross-account"))
    accounts = sorted(a for a in graph.nodes.account_id.unique() if a)
    for i, account in enumerate(accounts):
        x0, y0, x1, y1 = _bbox(clusters[f"cluster_account_{i}"])
        refs = graph.nodes.loc[graph.nodes.account_id == account, "reference_id"]
        assert len(refs)
        for ref in refs:
            for x, y, size in _texts(nodes[f"l{ref}"]):
                assert x0 <= x <= x1 and y0 <= y - size and y <= y1, f"label of n{ref} outside"

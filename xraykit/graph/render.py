"""Drawing a service graph with Graphviz, in the style of the X-Ray console's service map.

Each service is a circle whose colours show its share of requests by outcome, in the
console's colours (:data:`xraykit.status.COLORS`): green for OK (2xx), yellow for errors
(4xx), purple for throttles (429) and red for faults (5xx). Graphviz cannot draw the
console's ring, so the shares fill the circle as a pie (``style=wedged``). Next to the
circle: the name, the type, the mean response time and the requests per minute over the
graph's window (the number of requests when the window is under a minute); the tooltip
holds the counts by outcome. Edges carry the caller's mean response time and the call rate;
``link`` edges (SQS → Lambda) are dashed and show the mean age of the received events.

:func:`draw` takes a graph; :func:`xraykit.graph.service_map` takes traces or a graph.

Examples
--------
>>> import xraykit
>>> from xraykit.graph import service_graph
>>> from xraykit.graph.render import draw
>>> g = draw(service_graph(xraykit.load_sample("shop")))
>>> type(g).__name__
'Digraph'
>>> "style=wedged" in g.source or "style=filled" in g.source
True
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import pandas as pd

from xraykit.exceptions import ArgumentError, NotFoundError
from xraykit.graph.columns import CLIENT
from xraykit.graph.occurrences import edge_calls
from xraykit.status import COLORS

if TYPE_CHECKING:
    import graphviz

    from xraykit.graph.servicegraph import ServiceGraph
    from xraykit.traceset import TraceSet

__all__ = ["check_options", "draw"]

_CLIENT_COLOR = "#c9ccd1"
_EDGE_COLOR = "#8c8c8c"
_HIGHLIGHT = "#0073bb"
_FADED = "#d0d0d0"
_FONT = "Helvetica"
_LAYOUTS = ("dot", "neato", "fdp", "sfdp", "circo", "twopi", "osage")
_RANKDIRS = ("LR", "TB", "RL", "BT")


# -- formatting -------------------------------------------------------------------------------------


def _latency(seconds: float) -> str:
    if seconds is None or pd.isna(seconds):
        return "–"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 0.00995:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def _rate(count: float, window_s: float) -> str:
    """Requests per minute over the window; a window under a minute shows the count."""
    if window_s < 60:
        n = int(count)
        return f"{n:,} request" if n == 1 else f"{n:,} requests"
    per_minute = count / (window_s / 60)
    return f"{per_minute:.1f} t/min" if per_minute < 10 else f"{per_minute:,.0f} t/min"


def _shares(row: pd.Series) -> list[tuple[str, int]]:
    """Counts per colour: ok, error other than throttle, throttle, fault."""
    return [
        ("ok", int(row["ok_count"])),
        ("error", int(row["error_count"]) - int(row["throttle_count"])),
        ("throttle", int(row["throttle_count"])),
        ("fault", int(row["fault_count"])),
    ]


def _fill(row: pd.Series) -> dict[str, str]:
    """Graphviz style and fill colour showing the status shares of a node."""
    parts = [(COLORS[k], n) for k, n in _shares(row) if n > 0]
    total = sum(n for _, n in parts)
    if total == 0:
        return {"style": "filled", "fillcolor": "#ffffff"}
    if len(parts) == 1:
        return {"style": "filled", "fillcolor": parts[0][0]}
    # every colour but the last gets its fraction; the last takes the rest (sums to 1)
    spec = [f"{color};{n / total:.4f}" for color, n in parts[:-1]] + [parts[-1][0]]
    return {"style": "wedged", "fillcolor": ":".join(spec)}


def _status_text(row: pd.Series) -> str:
    text = (
        f"{int(row['total_count'])} requests: {int(row['ok_count'])} ok, "
        f"{int(row['error_count'])} error ({int(row['throttle_count'])} throttled), "
        f"{int(row['fault_count'])} fault"
    )
    in_progress = int(row.get("in_progress_count", 0) or 0)
    return text + (f"; {in_progress} in progress" if in_progress else "")


# -- selection --------------------------------------------------------------------------------------


def _resolve(nodes: pd.DataFrame, name: str, what: str) -> set[str]:
    hit = nodes.loc[(nodes["node_id"] == name) | (nodes["name"] == name), "node_id"]
    if hit.empty:
        known = sorted(set(nodes["name"].dropna()))
        raise NotFoundError(
            f"`{what}` must name a node of the graph (a name such as {known[:5]!r}, or a "
            f"node_id), but {name!r} was passed. Names: {known!r}."
        )
    return set(hit)


def _neighbourhood(edges: pd.DataFrame, start: set[str], hops: int) -> set[str]:
    keep = set(start)
    frontier = set(start)
    for _ in range(hops):
        src = edges["source"].isin(frontier)
        tgt = edges["target"].isin(frontier)
        reached = set(edges.loc[src, "target"]) | set(edges.loc[tgt, "source"])
        frontier = reached - keep
        if not frontier:
            break
        keep |= frontier
    return keep


def _highlighted(
    graph: ServiceGraph, highlight: str | TraceSet
) -> tuple[set[str], set[tuple[str, str, str]]]:
    if isinstance(highlight, str):
        if graph.ts is None:
            raise ArgumentError(
                "`highlight` was given a trace id, but this graph has no traces behind it "
                f"(it came from {graph.origin}). Pass the TraceSet of that trace instead: "
                "highlight=ts.trace(trace_id)."
            )
        selected = graph.ts.trace(highlight)
    else:
        selected = highlight
    calls = edge_calls(selected)
    edges = set(calls[["source", "target", "edge_type"]].itertuples(index=False, name=None))
    nodes = set(calls["source"]) | set(calls["target"])
    return nodes, edges


# -- drawing ----------------------------------------------------------------------------------------


def _short(text: str, limit: int = 32) -> str:
    """Shorten long names (SQL connection names, hosts) for labels; tooltips keep them whole."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node_label(row: pd.Series, window_s: float, show_account: bool) -> str:
    name = html.escape(_short(str(row["name"])))
    lines = [f"<B>{name}</B>"]
    if row["type"]:
        lines.append(f'<FONT POINT-SIZE="9" COLOR="#555555">{html.escape(str(row["type"]))}</FONT>')
    if show_account and row["account_id"]:
        lines.append(
            f'<FONT POINT-SIZE="9" COLOR="#555555">account {html.escape(str(row["account_id"]))}</FONT>'
        )
    stats = f"{_latency(row['mean_response_time_s'])} · {_rate(row['total_count'], window_s)}"
    lines.append(f'<FONT POINT-SIZE="9">{html.escape(stats)}</FONT>')
    return "<" + "<BR/>".join(lines) + ">"


def _legend(graph: graphviz.Digraph) -> None:
    rows = "".join(
        f'<TR><TD BGCOLOR="{COLORS[key]}" WIDTH="12" HEIGHT="12" FIXEDSIZE="TRUE"></TD>'
        f'<TD ALIGN="LEFT">{text}</TD></TR>'
        for key, text in (
            ("ok", "OK (2xx)"),
            ("error", "Error (4xx)"),
            ("throttle", "Throttled (429)"),
            ("fault", "Fault (5xx)"),
        )
    )
    rows += '<TR><TD>- -</TD><TD ALIGN="LEFT">async link (SQS → Lambda)</TD></TR>'
    rows += (
        '<TR><TD></TD><TD ALIGN="LEFT">mean latency · requests per minute '
        "(or the count, for data spanning under a minute)</TD></TR>"
    )
    table = f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3">{rows}</TABLE>>'
    with graph.subgraph(name="cluster_legend") as legend:
        legend.attr(label="Legend", style="rounded", color="#bbbbbb", fontsize="10")
        legend.node("legend", label=table, shape="plaintext", fontsize="9", fixedsize="false")


def check_options(*, layout: str, rankdir: str, focus: str | None, hops: int | None) -> None:
    """Raise :class:`~xraykit.exceptions.ArgumentError` for drawing options out of range.

    >>> check_options(layout="dot", rankdir="up", focus=None, hops=None)
    Traceback (most recent call last):
    ...
    xraykit.exceptions.ArgumentError: `rankdir` must be one of ('LR', 'TB', 'RL', 'BT'), but 'up' was passed.
    """
    if layout not in _LAYOUTS:
        raise ArgumentError(f"`layout` must be one of {_LAYOUTS}, but {layout!r} was passed.")
    if rankdir not in _RANKDIRS:
        raise ArgumentError(f"`rankdir` must be one of {_RANKDIRS}, but {rankdir!r} was passed.")
    if hops is not None and focus is None:
        raise ArgumentError("`hops` needs `focus`: pass the node to draw the neighbourhood of.")
    if hops is not None and (not isinstance(hops, int) or hops < 0):
        raise ArgumentError(f"`hops` must be an integer >= 0, but {hops!r} was passed.")


def draw(
    graph: ServiceGraph,
    *,
    layout: str = "dot",
    focus: str | None = None,
    hops: int | None = None,
    by_account: bool = False,
    highlight: str | TraceSet | None = None,
    legend: bool = True,
    rankdir: str = "LR",
) -> graphviz.Digraph:
    """Draw a service graph as a ``graphviz.Digraph``; the options are those of ``service_map``.

    ``graph`` is read through its ``nodes``, ``edges``, ``start``, ``end``, ``window_s``,
    ``origin`` and ``traces``: this module does not import the ServiceGraph class.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import service_graph
    >>> graph = service_graph(xraykit.load_sample("shop"))
    >>> "shop-api/prod" in draw(graph, focus="shop-api/prod", hops=1).source
    True
    """
    import graphviz

    check_options(layout=layout, rankdir=rankdir, focus=focus, hops=hops)
    nodes, edges = graph.nodes, graph.edges
    if focus is not None:
        keep = _neighbourhood(edges, _resolve(nodes, focus, "focus"), 1 if hops is None else hops)
        nodes = nodes[nodes["node_id"].isin(keep)]
        edges = edges[edges["source"].isin(keep) & edges["target"].isin(keep)]

    lit_nodes: set[str] = set()
    lit_edges: set[tuple[str, str, str]] = set()
    if highlight is not None:
        lit_nodes, lit_edges = _highlighted(graph, highlight)

    window_s = graph.window_s
    dot = graphviz.Digraph("service_map", engine=layout)
    title = "Service map"
    if graph.window_s:
        title += f" · {graph.start:%Y-%m-%d %H:%M}–{graph.end:%H:%M} UTC"
    dot.attr(
        rankdir=rankdir,
        forcelabels="true",
        nodesep="0.7",
        ranksep="1.2",
        fontname=_FONT,
        fontsize="12",
        label=title,
        labelloc="t",
        bgcolor="white",
        outputorder="edgesfirst",
    )
    dot.attr("node", fontname=_FONT, fontsize="10", shape="circle", fixedsize="true", label="")
    dot.attr(
        "edge",
        fontname=_FONT,
        fontsize="9",
        color=_EDGE_COLOR,
        fontcolor="#333333",
        arrowsize="0.7",
    )

    names_in_accounts = nodes.loc[nodes["account_id"] != "", ["name", "account_id"]]
    shared_names = set(
        names_in_accounts.groupby("name")["account_id"].nunique().loc[lambda s: s > 1].index
    )
    ids = dict(zip(nodes["node_id"], "n" + nodes["reference_id"].astype(str), strict=True))

    def draw_node(target: graphviz.Digraph, row: pd.Series) -> None:
        node_id = row["node_id"]
        attrs: dict[str, str] = {"tooltip": f"{node_id}\\n{_status_text(row)}"}
        if node_id == CLIENT:
            attrs.update(
                style="filled",
                fillcolor=_CLIENT_COLOR,
                width="0.5",
                color="#888888",
                xlabel="<<B>Clients</B>>",
            )
        else:
            total = int(row["total_count"])
            width = min(1.1, 0.5 + 0.15 * math.log10(1 + total))
            attrs.update(_fill(row))
            attrs.update(
                width=f"{width:.2f}",
                xlabel=_node_label(
                    row, window_s, show_account=not by_account and row["name"] in shared_names
                ),
            )
        if highlight is not None:
            if node_id in lit_nodes:
                attrs.update(penwidth="3", color=_HIGHLIGHT)
            else:
                attrs.update(color=_FADED, fontcolor="#999999")
        target.node(ids[node_id], **attrs)

    if by_account:
        accounts = sorted(a for a in nodes["account_id"].unique() if a)
        for i, account in enumerate(accounts):
            with dot.subgraph(name=f"cluster_account_{i}") as box:
                box.attr(
                    label=f"Account {account}",
                    style="rounded,dashed",
                    color="#7f7f7f",
                    fontsize="10",
                )
                for _, row in nodes[nodes["account_id"] == account].iterrows():
                    draw_node(box, row)
        rest = nodes[nodes["account_id"] == ""]
    else:
        rest = nodes
    # iterrows over the nodes of a graph (tens of rows), not over trace data
    for _, row in rest.iterrows():
        draw_node(dot, row)

    for _, row in edges.iterrows():
        key = (row["source"], row["target"], row["edge_type"])
        is_link = row["edge_type"] == "link"
        latency = (
            f"age {_latency(row['mean_event_age_s'])}"
            if is_link
            else _latency(row["mean_response_time_s"])
        )
        attrs = {
            "label": f"{latency}\\n{_rate(row['total_count'], window_s)}",
            "tooltip": f"{row['source']} → {row['target']}\\n{_status_text(row)}",
        }
        if is_link:
            attrs["style"] = "dashed"
        if highlight is not None:
            if key in lit_edges:
                attrs.update(color=_HIGHLIGHT, penwidth="2.5", fontcolor=_HIGHLIGHT)
            else:
                attrs.update(color=_FADED, fontcolor="#aaaaaa")
        dot.edge(ids[row["source"]], ids[row["target"]], **attrs)

    if legend:
        _legend(dot)
    return dot

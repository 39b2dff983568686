"""Drawing a service graph with Graphviz, in the style of the X-Ray console's service map.

Each service is a circle whose colours show its share of requests by outcome, in the
console's colours (:data:`xraykit.status.COLORS`): green for OK (2xx), yellow for errors
(4xx), purple for throttles (429) and red for faults (5xx). Graphviz cannot draw the
console's ring, so the shares fill the circle as a pie (``style=wedged``). Under the circle
(a label node kept next to it in an invisible cluster, so account boxes enclose it): the
name, the type, the mean response time and the requests per minute over the graph's window
(the number of requests when the window is under a minute); the tooltip holds the counts by
outcome. Edges carry the caller's mean response time and the call rate; ``link`` edges
(SQS → Lambda) are dashed and show the mean age of the received events. The legend is one
row under the title, so it never widens the map.

In Jupyter the map scales to the notebook's width: :func:`responsive_svg` drops the fixed
size of Graphviz's SVG (the ``viewBox`` keeps the proportions) and caps it at its natural
size; the map object shows itself as that SVG inline in HTML.

:func:`draw` takes a graph; :func:`xraykit.graph.service_map` takes traces or a graph.

Examples
--------
>>> import xraykit
>>> from xraykit.graph import service_graph
>>> from xraykit.graph.render import draw
>>> g = draw(service_graph(xraykit.load_sample("shop")))
>>> import graphviz
>>> isinstance(g, graphviz.Digraph)
True
>>> "style=wedged" in g.source or "style=filled" in g.source
True
"""

from __future__ import annotations

import functools
import html
import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from xraykit.exceptions import ArgumentError, NotFoundError
from xraykit.graph.columns import CLIENT
from xraykit.graph.occurrences import edge_calls
from xraykit.status import COLORS

if TYPE_CHECKING:
    import graphviz

    from xraykit.graph.servicegraph import ServiceGraph
    from xraykit.traceset import TraceSet

__all__ = ["check_options", "draw", "responsive_svg"]

_CLIENT_COLOR = "#c9ccd1"
_EDGE_COLOR = "#8c8c8c"
_HIGHLIGHT = "#0073bb"
_FADED = "#d0d0d0"
_FONT = "Helvetica"
_LAYOUTS = ("dot", "neato", "fdp", "sfdp", "circo", "twopi", "osage")
_RANKDIRS = ("auto", "LR", "TB", "RL", "BT")
#: Rough widths (points) of one rank of an LR map and of one node side by side in a TB map;
#: an LR map up to ``_FITS_PT`` wide reads at a notebook's width (about 950 px).
_LR_RANK_PT = 190
_TB_NODE_PT = 130
_FITS_PT = 960


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


def _short(text: str, limit: int = 26) -> str:
    """Shorten long names (SQL connection names, hosts) for labels; tooltips keep them whole."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node_label(row: pd.Series, window_s: float, show_account: bool) -> str:
    name = html.escape(_short(str(row["name"])))
    lines = [f"<B>{name}</B>"]
    if row["type"]:
        lines.append(f'<FONT POINT-SIZE="8" COLOR="#555555">{html.escape(str(row["type"]))}</FONT>')
    if show_account and row["account_id"]:
        lines.append(
            f'<FONT POINT-SIZE="8" COLOR="#555555">account {html.escape(str(row["account_id"]))}</FONT>'
        )
    stats = f"{_latency(row['mean_response_time_s'])} · {_rate(row['total_count'], window_s)}"
    lines.append(f'<FONT POINT-SIZE="8">{html.escape(stats)}</FONT>')
    return "<" + "<BR/>".join(lines) + ">"


_LEGEND_ITEMS = (
    ("ok", "OK (2xx)"),
    ("error", "Error (4xx)"),
    ("throttle", "Throttled (429)"),
    ("fault", "Fault (5xx)"),
)


def _title(text: str, legend: bool) -> str:
    """The graph label: the title and, under it, the legend as one compact row."""
    title = f'<TR><TD COLSPAN="12"><FONT POINT-SIZE="12">{html.escape(text)}</FONT></TD></TR>'
    if not legend:
        return f'<<TABLE BORDER="0" CELLBORDER="0">{title}</TABLE>>'
    cells = "".join(
        f'<TD BGCOLOR="{COLORS[key]}" WIDTH="9" HEIGHT="9" FIXEDSIZE="TRUE"></TD>'
        f'<TD ALIGN="LEFT"><FONT POINT-SIZE="8">{text}</FONT></TD>'
        for key, text in _LEGEND_ITEMS
    )
    cells += '<TD><FONT POINT-SIZE="8">- - -</FONT></TD><TD ALIGN="LEFT">'
    cells += '<FONT POINT-SIZE="8">async link (SQS → Lambda)</FONT></TD>'
    note = (
        '<TR><TD COLSPAN="12"><FONT POINT-SIZE="8" COLOR="#555555">under each node: mean '
        "latency · requests per minute (t/min), or the count for data spanning under a minute"
        "</FONT></TD></TR>"
    )
    return (
        f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2">{title}<TR>{cells}</TR>{note}</TABLE>>'
    )


def responsive_svg(svg: str) -> str:
    """Make Graphviz's SVG scale to its container: relative width, capped at the natural size.

    The fixed ``width``/``height`` attributes go; ``width="100%"`` and a ``style`` capping
    the width at the drawing's natural size (``max-width``) take their place, with the height
    following the ``viewBox``'s proportions. The XML prolog and DOCTYPE are dropped, so the
    result can be written inline in HTML.

    Examples
    --------
    >>> svg = '<?xml version="1.0"?><svg width="800pt" height="200pt" viewBox="0 0 800 200">'
    >>> responsive_svg(svg + "</svg>")
    '<svg width="100%" style="max-width: 800pt; height: auto" viewBox="0 0 800 200"></svg>'
    """
    start = svg.find("<svg")
    if start < 0:
        raise ArgumentError(f"`svg` must contain an <svg> element, but {svg[:60]!r} was passed.")
    body = svg[start:]
    head_end = body.index(">")
    head, rest = body[:head_end], body[head_end:]
    width = re.search(r'\swidth="([0-9.]+)(pt|px)?"', head)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    cap = f"max-width: {width.group(1)}{width.group(2) or 'px'}; " if width else ""
    head = head.replace("<svg", f'<svg width="100%" style="{cap}height: auto"', 1)
    return head + rest


def _map_html(svg: str) -> str:
    """The map for Jupyter's HTML output: inline, scaled to the width, scrolling if need be."""
    return (
        '<div class="xraykit-service-map" style="max-width: 100%; overflow-x: auto">'
        f"{responsive_svg(svg)}</div>"
    )


@functools.cache
def _service_map_class() -> type[graphviz.Digraph]:
    """A ``graphviz.Digraph`` that shows itself scaled to the notebook's width."""
    import graphviz

    class ServiceMapDigraph(graphviz.Digraph):
        """A service map: a Digraph whose Jupyter display scales to the page width."""

        def _repr_image_svg_xml(self) -> str:
            return responsive_svg(self.pipe(format="svg", encoding="utf-8"))

        def _repr_mimebundle_(
            self,
            include: Iterable[str] | None = None,
            exclude: Iterable[str] | None = None,
            **_: Any,
        ) -> dict[str, bytes | str]:
            wanted = set(include) if include is not None else {"image/svg+xml", "text/html"}
            wanted -= set(exclude or ())
            others = wanted - {"image/svg+xml", "text/html"}
            bundle = dict(super()._repr_mimebundle_(others)) if others else {}
            if wanted & {"image/svg+xml", "text/html"}:
                raw = self.pipe(format="svg", encoding="utf-8")
                if "image/svg+xml" in wanted:
                    bundle["image/svg+xml"] = responsive_svg(raw)
                if "text/html" in wanted:
                    bundle["text/html"] = _map_html(raw)
            return bundle

        def _repr_html_(self) -> str:
            return _map_html(self.pipe(format="svg", encoding="utf-8"))

    ServiceMapDigraph.__module__ = __name__
    return ServiceMapDigraph


def _auto_rankdir(nodes: pd.DataFrame, edges: pd.DataFrame) -> str:
    """``"LR"`` (the console's direction) unless that is too wide and ``"TB"`` is narrower.

    The depth of each node is its longest distance from a node that nobody calls (or from
    the first node, in a cycle), walked breadth first; an LR map is about ``depth`` ranks
    wide, a TB map about as wide as its most crowded rank.
    """
    calls = edges[edges["source"] != edges["target"]]
    depth = dict.fromkeys(nodes["node_id"], 0)
    frontier = set(depth) - set(calls["target"]) or set(list(depth)[:1])
    for step in range(1, len(depth) + 1):  # at most one step per node: cycles stop
        reached = set(calls.loc[calls["source"].isin(frontier), "target"]) & set(depth)
        if not reached:
            break
        for node_id in reached:
            depth[node_id] = step
        frontier = reached
    ranks = pd.Series(depth, dtype="int64")
    lr_width = (int(ranks.max()) + 1 if len(ranks) else 1) * _LR_RANK_PT
    tb_width = (int(ranks.value_counts().max()) if len(ranks) else 1) * _TB_NODE_PT
    return "TB" if lr_width > _FITS_PT and tb_width < lr_width else "LR"


def check_options(*, layout: str, rankdir: str, focus: str | None, hops: int | None) -> None:
    """Raise :class:`~xraykit.exceptions.ArgumentError` for drawing options out of range.

    >>> check_options(layout="dot", rankdir="up", focus=None, hops=None)
    Traceback (most recent call last):
    ...
    xraykit.exceptions.ArgumentError: `rankdir` must be one of ('auto', 'LR', 'TB', 'RL', 'BT'), but 'up' was passed.
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
    rankdir: str = "auto",
) -> graphviz.Digraph:
    """Draw a service graph as a ``graphviz.Digraph``; the options are those of ``service_map``.

    ``graph`` is read through its ``nodes``, ``edges``, ``start``, ``end``, ``window_s``,
    ``origin`` and ``traces``: this module does not import the ServiceGraph class.
    ``rankdir="auto"`` draws left to right unless the map would be narrower top to bottom
    (a deep chain of calls). Left to right, each label sits under its circle; top to bottom,
    the label takes the rank under its circle and the calls leave from under the label.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import service_graph
    >>> graph = service_graph(xraykit.load_sample("shop"))
    >>> "shop-api/prod" in draw(graph, focus="shop-api/prod", hops=1).source
    True
    """
    check_options(layout=layout, rankdir=rankdir, focus=focus, hops=hops)
    nodes, edges = graph.nodes, graph.edges
    if focus is not None:
        keep = _neighbourhood(edges, _resolve(nodes, focus, "focus"), 1 if hops is None else hops)
        nodes = nodes[nodes["node_id"].isin(keep)]
        edges = edges[edges["source"].isin(keep) & edges["target"].isin(keep)]

    if rankdir == "auto":
        rankdir = _auto_rankdir(nodes, edges)
    across = rankdir in ("LR", "RL")  # labels share their circle's rank: under it

    lit_nodes: set[str] = set()
    lit_edges: set[tuple[str, str, str]] = set()
    if highlight is not None:
        lit_nodes, lit_edges = _highlighted(graph, highlight)

    window_s = graph.window_s
    dot = _service_map_class()("service_map", engine=layout)
    title = "Service map"
    if graph.window_s:
        title += f" · {graph.start:%Y-%m-%d %H:%M}–{graph.end:%H:%M} UTC"
    dot.attr(
        rankdir=rankdir,
        newrank="true",  # rank=same inside clusters: a label sits in its circle's rank
        nodesep="0.12",
        ranksep="0.3" if across else "0.08",  # top to bottom, edge labels space the ranks
        fontname=_FONT,
        fontsize="10",
        label=_title(title, legend),
        labelloc="t",
        bgcolor="white",
        outputorder="edgesfirst",
    )
    dot.attr("node", fontname=_FONT, fontsize="9", shape="circle", fixedsize="true", label="")
    dot.attr(
        "edge",
        fontname=_FONT,
        fontsize="8",
        color=_EDGE_COLOR,
        fontcolor="#333333",
        arrowsize="0.6",
    )

    names_in_accounts = nodes.loc[nodes["account_id"] != "", ["name", "account_id"]]
    shared_names = set(
        names_in_accounts.groupby("name")["account_id"].nunique().loc[lambda s: s > 1].index
    )
    refs = nodes["reference_id"].astype(str)
    ids = dict(zip(nodes["node_id"], "n" + refs, strict=True))
    label_ids = dict(zip(nodes["node_id"], "l" + refs, strict=True))

    def draw_node(target: graphviz.Digraph, row: pd.Series) -> None:
        """The circle and, in an invisible cluster with it, its label node underneath."""
        node_id = row["node_id"]
        attrs: dict[str, str] = {"tooltip": f"{node_id}\\n{_status_text(row)}"}
        label_attrs: dict[str, str] = {}
        if node_id == CLIENT:
            attrs.update(style="filled", fillcolor=_CLIENT_COLOR, width="0.3", color="#888888")
            label = "<<B>Clients</B>>"
        else:
            total = int(row["total_count"])
            width = min(0.6, 0.3 + 0.08 * math.log10(1 + total))
            attrs.update(_fill(row))
            attrs["width"] = f"{width:.2f}"
            show_account = not by_account and row["name"] in shared_names
            label = _node_label(row, window_s, show_account=show_account)
        if highlight is not None:
            if node_id in lit_nodes:
                attrs.update(penwidth="3", color=_HIGHLIGHT)
            else:
                attrs.update(color=_FADED)
                label_attrs["fontcolor"] = "#999999"
        with target.subgraph(name=f"cluster_{ids[node_id]}") as pair:
            pair.attr(style="invis", margin="2", label="")
            label_node = {
                "label": label,
                "shape": "plaintext",
                "fixedsize": "false",
                "width": "0.1",  # as small as the text: no default 0.75 x 0.5 in box
                "height": "0.1",
                "margin": "0",
                "tooltip": attrs["tooltip"],
                **label_attrs,
            }
            if across:
                with pair.subgraph() as rank:
                    rank.attr(rank="same")
                    rank.node(ids[node_id], **attrs)
                    rank.node(label_ids[node_id], **label_node)
                    # a flat edge from the label to the circle puts the label under it
                    rank.edge(label_ids[node_id], ids[node_id], style="invis")
            else:
                # TB/BT: the label takes the rank after its circle; calls leave from the label
                pair.node(ids[node_id], **attrs)
                pair.node(label_ids[node_id], **label_node)
                pair.edge(ids[node_id], label_ids[node_id], style="invis", weight="100")

    if by_account:
        accounts = sorted(a for a in nodes["account_id"].unique() if a)
        for i, account in enumerate(accounts):
            with dot.subgraph(name=f"cluster_account_{i}") as box:
                box.attr(
                    label=f"Account {account}",
                    style="rounded,dashed",
                    color="#7f7f7f",
                    fontsize="9",
                    margin="6",
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
        tail = ids[row["source"]] if across else label_ids[row["source"]]
        dot.edge(tail, ids[row["target"]], **attrs)
    return dot

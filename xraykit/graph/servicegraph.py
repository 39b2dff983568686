"""The :class:`ServiceGraph` — nodes, edges and their time window — computed from traces.

:func:`service_graph` aggregates the node occurrences and edge calls of a TraceSet into one
row per node and per edge; :func:`service_map` draws traces or a graph. A ServiceGraph shows
itself as a service map in Jupyter, or says how to install Graphviz's ``dot`` when it is
missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xraykit.arguments import check_traceset
from xraykit.exceptions import ArgumentError
from xraykit.graph import render
from xraykit.graph.arrays import _bools
from xraykit.graph.columns import (
    CLIENT,
    EDGE_COLUMNS,
    NODE_COLUMNS,
    _client_node,
    _conform,
    _empty,
)
from xraykit.graph.occurrences import graph_frames
from xraykit.graph.statistics import _group_codes, _statistics

if TYPE_CHECKING:
    import graphviz

    from xraykit.traceset import TraceSet

__all__ = ["ServiceGraph", "service_graph", "service_map"]

#: How to install Graphviz's ``dot`` program, shown when a map cannot be drawn without it.
INSTALL_DOT = (
    "conda install -c conda-forge graphviz, or sudo apt-get install graphviz (Debian/Ubuntu), "
    "or brew install graphviz (macOS)"
)


@dataclass(eq=False)
class ServiceGraph:
    """A service graph: ``nodes`` and ``edges`` DataFrames and the time window they cover.

    Build one with :func:`service_graph` (from traces) or :func:`service_graph_from_response`
    (from a ``GetServiceGraph``/``GetTraceGraph`` response). In Jupyter it displays itself as
    a service map (see :func:`service_map`), or, without Graphviz's ``dot`` program, as its
    summary and the command that installs ``dot``.

    Attributes
    ----------
    nodes : DataFrame
        One row per node: ``node_id, reference_id, name, type, account_id, root, inferred``,
        the counts ``ok_count, error_count, throttle_count, fault_count, total_count``
        (ok + error + fault = total; throttle is part of error) of completed requests,
        ``in_progress_count`` (requests without an end yet, in no other count),
        ``total_response_time_s,
        mean_response_time_s, p50_response_time_s, p90_response_time_s,
        p99_response_time_s``, ``response_time_histogram`` (list of ``(seconds, count)``)
        and ``start, end``. The client node has zero counts.
    edges : DataFrame
        One row per edge: ``source, target`` (node ids), ``edge_type`` (``""`` or
        ``"link"``), the same statistics, and for links ``mean_event_age_s`` and
        ``event_age_histogram``.
    start, end : Timestamp or None
        The time window of the data.
    origin : str
        ``"traces"`` or the API operation the graph came from.
    ts : TraceSet or None
        The TraceSet the graph was computed from (used by ``highlight`` and ``traces_for_*``).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import service_graph
    >>> graph = service_graph(xraykit.load_sample("shop"))
    >>> graph
    <ServiceGraph from traces: 19 nodes, 20 edges, 2025-03-04 09:00 to 09:59 UTC>
    >>> api = graph.node("shop-api/prod")
    >>> int(api.total_count.item()) == len(graph.ts.traces.query("root_service == 'shop-api/prod'"))
    True
    >>> graph.edges.loc[graph.edges.edge_type == "link", ["source", "target"]].values.tolist()
    [['order-events|AWS::SQS::Queue|123456789012', 'order-worker|AWS::Lambda|']]
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame
    _: KW_ONLY
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    origin: str = "traces"
    ts: TraceSet | None = field(default=None, repr=False)

    @property
    def window_s(self) -> float:
        """Length of the time window in seconds (0 when unknown)."""
        if self.start is None or self.end is None or pd.isna(self.start) or pd.isna(self.end):
            return 0.0
        return max(0.0, (self.end - self.start).total_seconds())

    def node(self, name: str) -> pd.DataFrame:
        """Return the node rows whose ``node_id`` or ``name`` is ``name``."""
        nodes = self.nodes
        return nodes[(nodes["node_id"] == name) | (nodes["name"] == name)]

    def __repr__(self) -> str:
        when = ""
        if self.window_s:
            when = f", {self.start:%Y-%m-%d %H:%M} to {self.end:%H:%M} UTC"
        return (
            f"<ServiceGraph from {self.origin}: {len(self.nodes)} nodes, "
            f"{len(self.edges)} edges{when}>"
        )

    def to_digraph(self, **kwargs: Any) -> graphviz.Digraph:
        """Return the service map (a ``graphviz.Digraph``); keywords go to :func:`service_map`."""
        return render.draw(self, **kwargs)

    def to_dot(self, **kwargs: Any) -> str:
        """Return the DOT source of the service map; keywords go to ``service_map``.

        >>> import xraykit
        >>> from xraykit.graph import service_graph
        >>> service_graph(xraykit.load_sample("shop")).to_dot().startswith("digraph")
        True
        """
        return str(self.to_digraph(**kwargs).source)

    def save(self, path: str | Path, *, format: str | None = None, **kwargs: Any) -> Path:
        """Save the service map as SVG, PNG, PDF or DOT and return the path.

        Parameters
        ----------
        path : str or Path
            Where to write.
        format : {"svg", "png", "pdf", "dot"}, optional
            Taken from the file suffix when not given (``.gv`` is DOT).
        **kwargs
            Passed to :func:`xraykit.service_map`.

        Raises
        ------
        ArgumentError
            For an unknown format.
        """
        path = Path(path)
        fmt = (format or path.suffix.lstrip(".") or "svg").lower()
        fmt = {"gv": "dot", "jpeg": "jpg"}.get(fmt, fmt)
        allowed = ("svg", "png", "pdf", "dot", "jpg")
        if fmt not in allowed:
            raise ArgumentError(
                f"`format` must be one of {allowed}, but {fmt!r} was passed "
                f"(or found as the suffix of {str(path)!r})."
            )
        graph = self.to_digraph(**kwargs)
        if fmt == "dot":
            path.write_text(graph.source, encoding="utf-8")
        else:
            path.write_bytes(graph.pipe(format=fmt))
        return path

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The map as SVG for Jupyter, or a message saying how to install ``dot``; never raises."""
        import graphviz

        try:
            bundle: dict[str, Any] = self.to_digraph()._repr_mimebundle_(include, exclude)
        except graphviz.ExecutableNotFound:
            message = (
                f"{self!r}\nThe service map needs Graphviz's `dot` program, which was not "
                f"found on PATH. Install it ({INSTALL_DOT}), then display the graph again."
            )
            return {"text/plain": message}
        except graphviz.CalledProcessError as exc:
            message = f"{self!r}\nGraphviz's `dot` could not draw the service map: {exc}"
            return {"text/plain": message}
        bundle.setdefault("text/plain", repr(self))
        return bundle


def service_graph(ts: TraceSet) -> ServiceGraph:
    """Compute the service graph of a TraceSet with X-Ray's rules.

    Parameters
    ----------
    ts : TraceSet
        The traces; not modified.

    Returns
    -------
    ServiceGraph
        ``nodes`` and ``edges`` (see :class:`ServiceGraph`), the time window of the traces,
        and the traces themselves.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import service_graph
    >>> graph = service_graph(xraykit.load_sample("shop"))
    >>> lam = graph.nodes[graph.nodes.type.str.startswith("AWS::Lambda")]
    >>> sorted(lam.type.unique())
    ['AWS::Lambda', 'AWS::Lambda::Function']
    >>> counts = graph.nodes[["ok_count", "error_count", "fault_count"]].sum(axis=1)
    >>> bool((counts == graph.nodes.total_count).all())
    True
    """
    check_traceset(ts, "ts")
    occurrences, calls = graph_frames(ts)
    span = ts.time_span if len(ts) else None
    start, end = span if span else (None, None)
    if occurrences.empty:
        return ServiceGraph(
            _empty(NODE_COLUMNS), _empty(EDGE_COLUMNS), start=start, end=end, origin="traces", ts=ts
        )

    # nodes, sorted by node id after the client
    codes, first = _group_codes(occurrences, ["node_id"])
    size = np.bincount(codes)
    columns: dict[str, Any] = {
        c: occurrences[c].array.take(first) for c in ("node_id", "name", "type", "account_id")
    }
    columns["root"] = np.bincount(codes, weights=_bools(occurrences["root"])) > 0
    columns["inferred"] = np.bincount(codes, weights=_bools(occurrences["inferred"])) == size
    columns.update(_statistics(occurrences, codes, len(first)))
    nodes = pd.DataFrame(columns, copy=False)
    if (calls["source"] == CLIENT).any():
        client = _conform(pd.DataFrame([_client_node()]), {c: NODE_COLUMNS[c] for c in nodes})
        nodes = pd.concat([client, nodes], ignore_index=True)
    nodes.insert(1, "reference_id", np.arange(len(nodes), dtype=np.int64))

    # edges, sorted by (source, target, type); links also get the received event age
    keys = ["source", "target", "edge_type"]
    codes, first = _group_codes(calls, keys)
    columns = {k: calls[k].array.take(first) for k in keys}
    columns.update(_statistics(calls, codes, len(first)))
    histograms = np.empty(len(first), dtype=object)
    histograms[:] = [[] for _ in range(len(first))]
    columns["mean_event_age_s"] = np.full(len(first), np.nan)
    columns["event_age_histogram"] = histograms
    link = (calls["edge_type"] == "link").to_numpy()
    if link.any():
        linked = np.unique(codes[link])
        ages = _statistics(
            calls.loc[link], np.searchsorted(linked, codes[link]), len(linked), value="event_age_s"
        )
        columns["mean_event_age_s"][linked] = ages["mean_response_time_s"]
        histograms[linked] = ages["response_time_histogram"]
    edges = pd.DataFrame(columns, copy=False)
    return ServiceGraph(nodes, edges, start=start, end=end, origin="traces", ts=ts)


def service_map(
    data: TraceSet | ServiceGraph,
    *,
    layout: str = "dot",
    focus: str | None = None,
    hops: int | None = None,
    by_account: bool = False,
    highlight: str | TraceSet | None = None,
    legend: bool = True,
    rankdir: str = "auto",
) -> graphviz.Digraph:
    """Draw a service map like the X-Ray console's, as a ``graphviz.Digraph``.

    The result displays inline in JupyterLab; export it with ``.pipe(format="png")``,
    ``.render(...)`` or ``.source`` (DOT), or use :meth:`ServiceGraph.save`.

    Parameters
    ----------
    data : TraceSet or ServiceGraph
        Traces (the graph is computed with :func:`service_graph`) or a graph, for instance
        from :func:`xraykit.service_graph_from_response`. Not modified.
    layout : {"dot", "neato", "fdp", "sfdp", "circo", "twopi", "osage"}
        The Graphviz layout engine.
    focus : str, optional
        A node name or node id: draw only its neighbourhood.
    hops : int, optional
        How many edges away from ``focus`` to draw (default 1 when ``focus`` is given).
    by_account : bool
        Draw the nodes of each AWS account in a box of their own (cross-account maps).
    highlight : str or TraceSet, optional
        A trace id (of the traces behind the graph) or a TraceSet: draw their path in blue
        and fade the rest.
    legend : bool
        Add the colour legend.
    rankdir : {"auto", "LR", "TB", "RL", "BT"}
        Direction of the ``dot`` layout; ``"auto"`` draws left to right unless that is wider
        than about 960 pt and top to bottom is narrower (deep call chains).

    Returns
    -------
    graphviz.Digraph

    Raises
    ------
    ArgumentError
        For an unknown ``layout``/``rankdir``, ``hops`` without ``focus`` or below 0, or a
        trace id to highlight on a graph without traces.
    ArgumentTypeError
        When ``data`` is neither a TraceSet nor a ServiceGraph.
    NotFoundError
        For a ``focus`` that names no node, or a trace id to highlight that is not in the
        traces.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import service_map
    >>> ts = xraykit.load_sample("shop")
    >>> g = service_map(ts, focus="shop-api/prod", hops=1)
    >>> "shop-api/prod" in g.source
    True
    >>> tid = ts.traces.trace_id[0]
    >>> "#0073bb" in service_map(ts, highlight=tid).source
    True
    """
    render.check_options(layout=layout, rankdir=rankdir, focus=focus, hops=hops)
    if isinstance(data, ServiceGraph):
        graph = data
    else:
        check_traceset(data, "data")
        graph = service_graph(data)
    return render.draw(
        graph,
        layout=layout,
        focus=focus,
        hops=hops,
        by_account=by_account,
        highlight=highlight,
        legend=legend,
        rankdir=rankdir,
    )

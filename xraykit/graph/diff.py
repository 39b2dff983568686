"""What changed between two service graphs: nodes and edges new, gone, worse or better.

:func:`graph_diff` lines two :class:`~xraykit.graph.ServiceGraph` up by node id (name, type,
account) and by edge (caller, callee, edge type), and judges each pair on two measures:

- **health** — the share of requests that were faults, and the share that were errors
  (throttles included, as X-Ray counts them): *worse* when either grew by more than
  ``health_threshold`` (absolute, 0.05 = five percentage points), *better* when either fell
  by as much and neither grew;
- **latency** — a response-time statistic (``latency="p90"`` by default): *worse* when it
  grew by more than ``latency_threshold`` (relative, 0.2 = 20 %) and by at least
  ``min_latency_s``, *better* when it shrank by the same factor.

Only pairs with at least ``min_count`` requests on both sides are judged, so a node seen
twice does not flip colour. Each row's ``change`` is ``new``, ``gone``, ``worse`` (either
measure worse), ``better`` (one better, none worse) or ``same``. ``GraphDiff.map()`` draws it:
new in blue, gone dashed grey, worse red, better green — the console's fault and ok colours.

Examples
--------
>>> import xraykit
>>> ts = xraykit.load_sample("shop")
>>> cut = ts.traces.start.min() + (ts.traces.start.max() - ts.traces.start.min()) / 2
>>> early = ts.select(ts.traces.trace_id[ts.traces.start < cut])
>>> late = ts.select(ts.traces.trace_id[ts.traces.start >= cut])
>>> diff = graph_diff(xraykit.service_graph(early), xraykit.service_graph(late))
>>> list(diff.nodes.columns[:7])
['node_id', 'name', 'type', 'account_id', 'change', 'health', 'latency']
>>> set(diff.nodes.change) <= {"new", "gone", "worse", "better", "same"}
True
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xraykit.arguments import check_choice
from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.graph.render import responsive_svg
from xraykit.graph.servicegraph import INSTALL_DOT, ServiceGraph
from xraykit.status import COLORS

if TYPE_CHECKING:
    import graphviz

__all__ = ["CHANGES", "DIFF_COLORS", "GraphDiff", "graph_diff"]

#: The kinds of change, in the order a reader scans them.
CHANGES: tuple[str, ...] = ("worse", "new", "gone", "better", "same")

#: Colour of each kind of change on the diff map (worse and better reuse the console's fault
#: and ok colours).
DIFF_COLORS: dict[str, str] = {
    "worse": COLORS["fault"],
    "better": COLORS["ok"],
    "new": "#0073bb",
    "gone": "#8c8c8c",
    "same": "#c9ccd1",
}

_LATENCIES = ("mean", "p50", "p90", "p99")
_NODE_KEY = ["node_id"]
_EDGE_KEY = ["source", "target", "edge_type"]


def _measures(frame: pd.DataFrame, latency: str) -> pd.DataFrame:
    """Count, fault rate, error rate and the latency statistic of each row."""
    total = frame["total_count"].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        fault_rate = frame["fault_count"] / total.where(total > 0)
        error_rate = frame["error_count"] / total.where(total > 0)
    return pd.DataFrame(
        {
            "count": frame["total_count"].astype("int64"),
            "fault_rate": fault_rate.astype("float64"),
            "error_rate": error_rate.astype("float64"),
            "latency_s": frame[f"{latency}_response_time_s"].astype("float64"),
        },
        index=frame.index,
    )


def _judge(
    merged: pd.DataFrame,
    *,
    health_threshold: float,
    latency_threshold: float,
    min_latency_s: float,
    min_count: int,
) -> pd.DataFrame:
    """Add ``health``, ``latency`` and ``change`` to rows of before/after measures."""
    before, after = merged["_merge"] != "right_only", merged["_merge"] != "left_only"
    judged = (
        before
        & after
        & (merged["count_before"].fillna(0) >= min_count)
        & (merged["count_after"].fillna(0) >= min_count)
    )
    fault = merged["fault_rate_after"] - merged["fault_rate_before"]
    error = merged["error_rate_after"] - merged["error_rate_before"]
    grew = (fault > health_threshold) | (error > health_threshold)
    fell = (fault < -health_threshold) | (error < -health_threshold)
    health = np.select([judged & grew, judged & fell], ["worse", "better"], "same")
    old, new = merged["latency_s_before"], merged["latency_s_after"]
    factor = 1.0 + latency_threshold
    slower = (new > old * factor) & (new - old >= min_latency_s)
    faster = (new * factor < old) & (old - new >= min_latency_s)
    latency = np.select([judged & slower, judged & faster], ["worse", "better"], "same")
    change = np.select(
        [
            ~before,
            ~after,
            (health == "worse") | (latency == "worse"),
            (health == "better") | (latency == "better"),
        ],
        ["new", "gone", "worse", "better"],
        "same",
    )
    out = merged.drop(columns="_merge")
    out.insert(0, "latency", latency)
    out.insert(0, "health", health)
    out.insert(0, "change", change)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["latency_ratio"] = (new / old.where(old > 0)).astype("float64")
    out["count_before"] = out["count_before"].fillna(0).astype("int64")
    out["count_after"] = out["count_after"].fillna(0).astype("int64")
    return out


def _pair(
    before: pd.DataFrame, after: pd.DataFrame, key: list[str], labels: list[str], latency: str
) -> pd.DataFrame:
    """Before and after measures side by side, one row per key seen on either side."""
    left = pd.concat([before[key + labels], _measures(before, latency)], axis=1)
    right = pd.concat([after[key + labels], _measures(after, latency)], axis=1)
    merged = left.merge(
        right, on=key, how="outer", suffixes=("_before", "_after"), indicator=True, sort=True
    )
    for label in labels:  # a label from whichever side has the row
        merged[label] = merged[f"{label}_after"].where(
            merged["_merge"] != "left_only", merged[f"{label}_before"]
        )
        merged = merged.drop(columns=[f"{label}_before", f"{label}_after"])
    return merged[key + labels + [c for c in merged.columns if c not in key + labels]]


@dataclass(eq=False)
class GraphDiff:
    """The difference between two service graphs (see :func:`graph_diff`).

    Attributes
    ----------
    nodes : DataFrame
        One row per node seen in either graph: ``node_id, name, type, account_id, change,
        health, latency``, then ``count``, ``fault_rate``, ``error_rate`` and ``latency_s``
        with ``_before`` and ``_after`` suffixes, and ``latency_ratio`` (after / before).
    edges : DataFrame
        The same per edge, keyed by ``source, target, edge_type`` (node ids).
    before, after : ServiceGraph
        The two graphs compared.
    latency : str
        The statistic compared: ``"mean"``, ``"p50"``, ``"p90"`` or ``"p99"``.
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame
    before: ServiceGraph
    after: ServiceGraph
    latency: str = "p90"

    def summary(self) -> pd.DataFrame:
        """How many nodes and edges of each kind of change, in :data:`CHANGES` order.

        >>> import xraykit
        >>> g = xraykit.service_graph(xraykit.load_sample("shop"))
        >>> int(graph_diff(g, g).summary().loc["same", "nodes"]) == len(g.nodes)
        True
        """
        counts = {
            "nodes": self.nodes["change"].value_counts(),
            "edges": self.edges["change"].value_counts(),
        }
        return pd.DataFrame(counts).reindex(list(CHANGES)).fillna(0).astype("int64")

    def __repr__(self) -> str:
        parts = ", ".join(f"{n} {c}" for c, n in self.nodes["change"].value_counts().items())
        return f"<GraphDiff: {len(self.nodes)} nodes ({parts or 'none'}), {len(self.edges)} edges>"

    def map(self, *, rankdir: str = "LR") -> graphviz.Digraph:
        """The diff as a Graphviz map: each node and edge coloured by its change.

        A node's label gives its name, type and the measures that changed (before → after).
        Gone nodes and edges are dashed. Text from the traces is escaped.
        """
        import graphviz

        check_choice("rankdir", rankdir, ("LR", "TB", "RL", "BT"))
        dot = graphviz.Digraph("graph_diff")
        dot.attr(rankdir=rankdir, fontname="Helvetica", bgcolor="white", nodesep="0.35")
        dot.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10")
        dot.attr("edge", fontname="Helvetica", fontsize="9")
        for row in self.nodes.itertuples(index=False):
            color = DIFF_COLORS[row.change]
            dot.node(
                _dot_id(row.node_id),
                label=_node_label(row, self.latency),
                tooltip=html.escape(str(row.name)),
                color=color,
                fillcolor="white" if row.change != "gone" else "#f4f4f4",
                penwidth="2.5" if row.change in ("worse", "better", "new") else "1",
                style="rounded,filled,dashed" if row.change == "gone" else "rounded,filled",
            )
        for row in self.edges.itertuples(index=False):
            color = DIFF_COLORS[row.change]
            dot.edge(
                _dot_id(row.source),
                _dot_id(row.target),
                color=color,
                penwidth="2.5" if row.change in ("worse", "better", "new") else "1",
                style="dashed" if row.change == "gone" else "solid",
                label=_edge_label(row, self.latency),
                fontcolor=color,
            )
        with dot.subgraph(name="cluster_legend") as legend:
            legend.attr(label="change", fontsize="10", color="#d0d0d0", rank="same")
            legend.attr("node", shape="box", style="rounded", fontsize="9")
            for change in CHANGES:
                legend.node(f"legend_{change}", change, color=DIFF_COLORS[change], penwidth="2")
        return dot

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The diff map as SVG for Jupyter; without Graphviz's ``dot``, the summary."""
        import graphviz

        try:
            svg = self.map().pipe(format="svg", encoding="utf-8")
        except (graphviz.ExecutableNotFound, graphviz.CalledProcessError) as exc:
            message = (
                f"{self!r}\nThe diff map needs Graphviz's `dot` program ({exc}). Install it "
                f"({INSTALL_DOT}), then display the diff again."
            )
            return {"text/plain": message}
        svg = responsive_svg(svg)  # scaled to the notebook's width, never wider than drawn
        return {
            "text/html": f'<div style="max-width: 100%; overflow-x: auto">{svg}</div>',
            "image/svg+xml": svg,
            "text/plain": repr(self),
        }


def _dot_id(node_id: Any) -> str:
    return "n_" + str(node_id).encode("utf-8").hex()


def _percent(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:.0%}"


def _seconds(value: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _changes(row: Any, latency: str) -> list[str]:
    lines = []
    if row.change in ("new", "gone"):
        lines.append(f"{row.count_before} → {row.count_after} requests")
    if row.health != "same":
        lines.append(
            f"faults {_percent(row.fault_rate_before)} → {_percent(row.fault_rate_after)}, "
            f"errors {_percent(row.error_rate_before)} → {_percent(row.error_rate_after)}"
        )
    if row.latency != "same":
        lines.append(
            f"{latency} {_seconds(row.latency_s_before)} → {_seconds(row.latency_s_after)}"
        )
    return lines


def _node_label(row: Any, latency: str) -> str:
    """An HTML-like Graphviz label: name, type, then what changed; all text escaped."""
    name = str(row.name)
    name = name if len(name) <= 40 else name[:39] + "…"
    parts = [f"<B>{html.escape(name)}</B>"]
    if row.type:
        parts.append(f'<FONT POINT-SIZE="8">{html.escape(str(row.type))}</FONT>')
    parts += [
        f'<FONT POINT-SIZE="8" COLOR="{DIFF_COLORS[row.change]}">{html.escape(line)}</FONT>'
        for line in [row.change.upper(), *_changes(row, latency)]
    ]
    return "<" + "<BR/>".join(parts) + ">"


def _edge_label(row: Any, latency: str) -> str:
    if row.change == "same":
        return ""
    return "\n".join([row.change, *_changes(row, latency)])


def graph_diff(
    before: ServiceGraph,
    after: ServiceGraph,
    *,
    latency: str = "p90",
    latency_threshold: float = 0.2,
    health_threshold: float = 0.05,
    min_latency_s: float = 0.001,
    min_count: int = 20,
) -> GraphDiff:
    """Compare two service graphs: which nodes and edges appeared, disappeared, got worse or
    better (see the module docstring for the rules).

    Parameters
    ----------
    before, after : ServiceGraph
        E.g. ``service_graph(ts_last_week)`` and ``service_graph(ts_today)``, or two graphs
        read from ``GetServiceGraph`` responses.
    latency : {"mean", "p50", "p90", "p99"}
        The response-time statistic compared.
    latency_threshold : float
        Relative change that counts (0.2: 20 % slower is worse, 1/1.2 as fast is better).
    health_threshold : float
        Absolute change in the fault or error share that counts (0.05: five points).
    min_latency_s : float
        A latency change smaller than this (in seconds) never counts.
    min_count : int
        Rows with fewer requests on either side are only ``new``, ``gone`` or ``same``.

    Returns
    -------
    GraphDiff
        ``nodes`` and ``edges`` frames with ``change``, ``health``, ``latency`` and the
        measures before and after; ``.map()`` draws it, ``.summary()`` counts it.

    Raises
    ------
    ArgumentTypeError
        When ``before`` or ``after`` is not a ServiceGraph.
    ArgumentError
        For an unknown statistic or a negative threshold.
    """
    for name, value in (("before", before), ("after", after)):
        if not isinstance(value, ServiceGraph):
            raise ArgumentTypeError(
                f"`{name}` must be a ServiceGraph (from xraykit.service_graph(ts) or "
                f"service_graph_from_response), but a {type(value).__name__} was passed."
            )
    check_choice("latency", latency, _LATENCIES)
    for name, number in (
        ("latency_threshold", latency_threshold),
        ("health_threshold", health_threshold),
        ("min_latency_s", min_latency_s),
        ("min_count", min_count),
    ):
        if not isinstance(number, int | float) or isinstance(number, bool) or not number >= 0:
            raise ArgumentError(f"`{name}` must be a number at least 0, but {number!r} was passed.")
    rules: dict[str, Any] = {
        "health_threshold": float(health_threshold),
        "latency_threshold": float(latency_threshold),
        "min_latency_s": float(min_latency_s),
        "min_count": int(min_count),
    }
    labels = ["name", "type", "account_id"]
    nodes = _judge(_pair(before.nodes, after.nodes, _NODE_KEY, labels, latency), **rules)
    edges = _judge(_pair(before.edges, after.edges, _EDGE_KEY, [], latency), **rules)
    edges = edges[[*_EDGE_KEY, *[c for c in edges.columns if c not in _EDGE_KEY]]]
    nodes = nodes[
        ["node_id", *labels, *[c for c in nodes.columns if c not in (*labels, "node_id")]]
    ]
    return GraphDiff(
        nodes.reset_index(drop=True), edges.reset_index(drop=True), before, after, latency
    )

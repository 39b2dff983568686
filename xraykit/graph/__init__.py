"""The service graph: nodes and edges computed from traces with X-Ray's rules, and the map.

One node per service (name, type, account), one edge per caller → callee pair, each with
counts by outcome and response-time statistics, as ``GetServiceGraph`` returns them; the
rules are in ``docs/service-graph.md``. Modules, in data-flow order:

- ``columns`` — the column contracts of the graph's frames and the client node;
- ``arrays`` — Arrow and numpy helpers, integer keys of (trace id, entity id) pairs;
- ``nodes`` — the node a downstream call (``aws``/``remote``/SQL subsegment) stands for;
- ``links`` — the ``link`` edges from an SQS queue to the consumer it triggered;
- ``occurrences`` — one row per node occurrence and per edge call (``graph_frames``);
- ``statistics`` — counts by outcome and response-time statistics per node or edge;
- ``render`` — drawing a graph with Graphviz, in the console's colours;
- ``servicegraph`` — the ``ServiceGraph``, ``service_graph(ts)`` and ``service_map(data)``;
- ``response`` — a ServiceGraph from a ``GetServiceGraph``/``GetTraceGraph`` response;
- ``selection`` — the traces behind a node or an edge;
- ``diff`` — what changed between two graphs (``graph_diff``) and the map of it.

Examples
--------
>>> import xraykit
>>> from xraykit.graph import node_segments, service_graph
>>> ts = xraykit.load_sample("shop")
>>> graph = service_graph(ts)
>>> graph.nodes.loc[graph.nodes.node_id == "client", "type"].item()
'client'
>>> client = graph.edges[graph.edges.source == "client"]
>>> occ = node_segments(ts)
>>> int(client.total_count.sum()) == int((occ.root & ~occ.linked).sum())
True
"""

from __future__ import annotations

from xraykit.graph.columns import (
    CLIENT,
    EDGE_CALL_COLUMNS,
    EDGE_COLUMNS,
    NODE_COLUMNS,
    NODE_SEGMENT_COLUMNS,
)
from xraykit.graph.diff import GraphDiff, graph_diff
from xraykit.graph.occurrences import edge_calls, graph_frames, node_segments
from xraykit.graph.response import service_graph_from_response
from xraykit.graph.selection import traces_for_edge, traces_for_node
from xraykit.graph.servicegraph import ServiceGraph, service_graph, service_map

__all__ = [
    "CLIENT",
    "EDGE_CALL_COLUMNS",
    "EDGE_COLUMNS",
    "NODE_COLUMNS",
    "NODE_SEGMENT_COLUMNS",
    "GraphDiff",
    "ServiceGraph",
    "edge_calls",
    "graph_diff",
    "graph_frames",
    "node_segments",
    "service_graph",
    "service_graph_from_response",
    "service_map",
    "traces_for_edge",
    "traces_for_node",
]

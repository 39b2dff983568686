"""The traces behind a node or an edge of the graph ("click a node, see its traces").

:func:`traces_for_node` and :func:`traces_for_edge` match node names or node ids against the
node occurrences and edge calls of a TraceSet and return the matching traces as a TraceSet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from xraykit.arguments import check_traceset
from xraykit.graph.columns import CLIENT
from xraykit.graph.occurrences import edge_calls, graph_frames, node_segments

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["traces_for_edge", "traces_for_node"]


def _match_nodes(
    frame: pd.DataFrame, name: str, type_: str | None, account_id: str | None
) -> pd.Series:
    mask = (frame["node_id"] == name) | (frame["name"] == name)
    if type_ is not None:
        mask &= frame["type"] == type_
    if account_id is not None:
        mask &= frame["account_id"] == account_id
    return mask


def traces_for_node(
    ts: TraceSet, name: str, *, type: str | None = None, account_id: str | None = None
) -> TraceSet:
    """Return the traces in which a node occurs ("click a node, see its traces").

    Parameters
    ----------
    ts : TraceSet
        The traces; not modified.
    name : str
        A node name (``"orders-api"``), a node id (``"orders-api|AWS::ECS::Container|"``),
        or ``"client"`` (every trace with a client edge: a root segment not reached by a
        ``link``).
    type, account_id : str, optional
        Narrow a name shared by several nodes (``type="AWS::Lambda::Function"``).

    Returns
    -------
    TraceSet
        The matching traces, in their original order (empty when none match).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import traces_for_node
    >>> ts = xraykit.load_sample("shop")
    >>> api = traces_for_node(ts, "shop-api/prod")
    >>> 0 < len(api) <= len(ts)
    True
    """
    check_traceset(ts, "ts")
    if name == CLIENT:
        calls = edge_calls(ts)
        ids = calls.loc[calls["source"] == CLIENT, "trace_id"]
    else:
        nodes = node_segments(ts)
        ids = nodes.loc[_match_nodes(nodes, name, type, account_id), "trace_id"]
    return ts.select(ids.unique())


def traces_for_edge(
    ts: TraceSet, source: str, target: str, *, edge_type: str | None = None
) -> TraceSet:
    """Return the traces that contain a call along an edge ("click an edge, see its traces").

    Parameters
    ----------
    ts : TraceSet
        The traces; not modified.
    source, target : str
        Node names or node ids (``"client"`` for the client).
    edge_type : {"", "link"}, optional
        Only calls of that kind. For a ``link`` edge both the consumer's trace and the linked
        producer's trace are returned when they are in ``ts``.

    Returns
    -------
    TraceSet
        The matching traces, in their original order.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import traces_for_edge
    >>> ts = xraykit.load_sample("shop")
    >>> hit = traces_for_edge(ts, "client", "shop-api/prod")
    >>> len(hit) > 0
    True
    """
    check_traceset(ts, "ts")
    nodes, calls = graph_frames(ts)
    names = nodes.drop_duplicates("node_id").set_index("node_id")["name"]
    source_name = calls["source"].map(names).fillna(calls["source"])
    target_name = calls["target"].map(names).fillna(calls["target"])
    mask = ((calls["source"] == source) | (source_name == source)) & (
        (calls["target"] == target) | (target_name == target)
    )
    if edge_type is not None:
        mask &= calls["edge_type"] == edge_type
    hit = calls[mask]
    ids = pd.concat([hit["trace_id"], hit["linked_trace_id"].dropna()], ignore_index=True)
    return ts.select(ids.unique())

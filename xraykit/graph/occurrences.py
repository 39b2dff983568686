"""The backbone of the graph: one row per occurrence of a node and per call along an edge.

:func:`graph_frames` walks a TraceSet's segments and subsegments once (vectorised, with
Arrow) and returns the node occurrences (:func:`node_segments`) and the edge calls
(:func:`edge_calls`) with the times, response time and outcome of each. The service graph,
the filter expressions' ``service()``/``edge()`` blocks and the latency tables at
``level="service"``/``"edge"`` all start from these rows. The rules: docs/service-graph.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit import status
from xraykit.arguments import check_traceset
from xraykit.graph.arrays import (
    _BAR,
    _NO_TEXT,
    _bools,
    _concat,
    _Keys,
    _mask,
    _micros,
    _repeat,
    _str,
    _strings,
    _take,
    _time_array,
)
from xraykit.graph.columns import (
    _NAT,
    CLIENT,
    EDGE_CALL_COLUMNS,
    NODE_SEGMENT_COLUMNS,
    _empty,
)
from xraykit.graph.links import _link_documents, _link_edges
from xraykit.graph.nodes import _downstream_identity, _is_call

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["edge_calls", "graph_frames", "node_segments"]


def _entity_statistics(segs: pd.DataFrame, subs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Times, response time, status and outcome flags of every entity: segments, then subsegments.

    The flags follow X-Ray's rule (:func:`xraykit.status.flags`: a flag missing from a
    document is completed from the HTTP status); ``ok`` is none of them, on a completed entity
    (one still in progress has no outcome yet).
    """
    status_f = np.concatenate(
        [
            segs["http_status"].to_numpy(dtype="float64", na_value=np.nan),
            subs["http_status"].to_numpy(dtype="float64", na_value=np.nan),
        ]
    )
    outcome = status.flags(
        status_f,
        **{
            f: np.concatenate([_bools(segs[f]), _bools(subs[f])])
            for f in ("fault", "error", "throttle")
        },
    )
    end = np.concatenate([_micros(segs["end"]), _micros(subs["end"])])
    return {
        "start": np.concatenate([_micros(segs["start"]), _micros(subs["start"])]),
        "end": end,
        "response_time_s": np.concatenate(
            [segs["duration_s"].to_numpy(dtype=float), subs["duration_s"].to_numpy(dtype=float)]
        ),
        "status": np.nan_to_num(status_f, nan=0).astype(np.int64),
        "no_status": np.isnan(status_f),
        "ok": ~(outcome.fault | outcome.error) & (end != _NAT),  # in progress: no outcome yet
        "error": outcome.error,
        "throttle": outcome.throttle,
        "fault": outcome.fault,
    }


def graph_frames(ts: TraceSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the node occurrences and the edge calls of a TraceSet, computed in one pass.

    ``graph_frames(ts)`` is ``(node_segments(ts), edge_calls(ts))`` at the cost of one: use it
    when you need both (the filter expressions' ``service()`` and ``edge()`` blocks, the
    latency tables at ``level="edge"``). Nothing is cached: edit a frame of ``ts`` and call it
    again to see the change.

    Parameters
    ----------
    ts : TraceSet
        The traces; not modified.

    Returns
    -------
    tuple of DataFrame
        ``(nodes, edges)``, with the columns of :func:`node_segments` and
        :func:`edge_calls`.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import graph_frames
    >>> nodes, edges = graph_frames(xraykit.load_sample("shop"))
    >>> set(edges.target) <= set(nodes.node_id)
    True
    >>> int((edges.source == "client").sum()) == int((nodes.root & ~nodes.linked).sum())
    True
    """
    check_traceset(ts, "ts")
    segs, subs = ts.segments, ts.subsegments
    if segs.empty:
        return _empty(NODE_SEGMENT_COLUMNS), _empty(EDGE_CALL_COLUMNS)
    n_seg, n_sub = len(segs), len(subs)
    links = _link_documents(ts)
    seg_trace, sub_trace = _strings(segs["trace_id"]), _strings(subs["trace_id"])
    seg_id, sub_id = _strings(segs["segment_id"]), _strings(subs["subsegment_id"])
    keys = _Keys(
        {
            "seg": seg_trace,
            "sub": sub_trace,
            "trace": _strings(ts.traces["trace_id"]),
            "consumer": _strings([link[0] for link in links]),
            "producer": _strings([link[2] for link in links]),
        },
        {
            "seg": ("seg", seg_id),
            "seg_parent": ("seg", _strings(segs["parent_id"])),
            "sub": ("sub", sub_id),
            "sub_owner": ("sub", _strings(subs["segment_id"])),
            "sub_parent": ("sub", _strings(subs["parent_id"])),
            "root": ("trace", _strings(ts.traces["root_segment_id"])),
            "consumer": ("consumer", _strings([link[1] for link in links])),
            "producer": ("producer", _strings([link[3] for link in links])),
        },
    )
    seg_first, sub_first = keys.position("seg"), keys.position("sub")

    stats = _entity_statistics(segs, subs)  # segments first, then subsegments

    # ---- who calls each segment: a subsegment of another segment, or a segment
    any_parent_sub = sub_first[keys.key["seg_parent"]]  # the parent subsegment, owned or not
    sub_owned = np.r_[subs["segment_id"].notna().to_numpy(), False]  # (-1 reads the pad)
    parent_sub = np.where(sub_owned[any_parent_sub], any_parent_sub, -1)
    parent_seg = seg_first[keys.key["seg_parent"]]
    owner = np.r_[seg_first[keys.key["sub_owner"]], -1]  # each subsegment's segment row

    # ---- downstream calls and the nodes they stand for
    is_call, is_sql = _is_call(subs)
    call_rows = np.flatnonzero(is_call)
    call_of_sub = np.full(n_sub + 1, -1, dtype=np.int64)
    call_of_sub[call_rows] = np.arange(len(call_rows))
    seg_account = _strings(segs["account_id"])
    owner_account = _take(seg_account, owner[call_rows])
    ident = _downstream_identity(subs, call_rows, is_sql[call_rows], owner_account)

    # ---- segment nodes: real ones by (name, origin, account); inferred ones like derived ones
    inferred = _bools(segs["inferred"])
    parent_call = np.where(inferred & (any_parent_sub >= 0), call_of_sub[any_parent_sub], -1)
    name = pc.fill_null(_strings(segs["name"]), _NO_TEXT)
    type_ = pc.fill_null(_strings(segs["origin"]), _NO_TEXT)
    account = pc.fill_null(seg_account, _NO_TEXT)
    known = parent_call >= 0
    if known.any():
        i_name, i_type, i_account = (_take(a, parent_call) for a in ident)
        no_type = _mask(pc.equal(type_, _NO_TEXT))
        same_kind = known & (_mask(pc.equal(type_, i_type)) | no_type)
        no_account = known & _mask(pc.equal(account, _NO_TEXT))
        name = pc.if_else(pa.array(same_kind), i_name, name)
        type_ = pc.if_else(pa.array(known & no_type), i_type, type_)
        account = pc.if_else(pa.array(no_account), i_account, account)

    # ---- derived inferred nodes: calls with no segment of their own
    claimed = np.zeros(n_sub + 1, dtype=bool)
    claimed[any_parent_sub[any_parent_sub >= 0]] = True
    call_parent = sub_first[keys.key["sub_parent"][call_rows]]
    free = (
        ~claimed[call_rows]
        & ~np.r_[is_call, False][call_parent]  # a call inside a call is not a node of its own
        & ~_bools(subs["orphan"])[call_rows]
        & sub_owned[call_rows]
    )
    derived = np.flatnonzero(free)  # positions among the calls
    node_name = _concat([name, ident[0].take(derived)])
    node_type = _concat([type_, ident[1].take(derived)])
    node_account = _concat([account, ident[2].take(derived)])
    node_id = pc.binary_join_element_wise(node_name, node_type, node_account, _BAR)
    node_entity = np.concatenate([np.arange(n_seg), n_seg + call_rows[derived]])

    # ---- links (SQS -> consumer), from the documents that carry them
    linked, link_parts = _link_edges(
        links, keys, segs, inferred, seg_first, sub_first, call_of_sub, ident, node_id, stats
    )

    # ---- the root: exactly the trace's root segment (traces.root_segment_id); the client
    # ---- calls it unless a link from the queue reaches it
    root = np.zeros(n_seg, dtype=bool)
    found_root = seg_first[keys.key["root"]]
    root[found_root[found_root >= 0]] = True
    client = np.flatnonzero(root & ~linked)

    nodes = pd.DataFrame(
        {
            "trace_id": _str(_concat([seg_trace, sub_trace.take(call_rows[derived])])),
            "entity_id": _str(_concat([seg_id, sub_id.take(call_rows[derived])])),
            "node_id": _str(node_id),
            "name": _str(node_name),
            "type": _str(node_type),
            "account_id": _str(node_account),
            "inferred": np.r_[inferred, np.ones(len(derived), dtype=bool)],
            "derived": np.r_[np.zeros(n_seg, dtype=bool), np.ones(len(derived), dtype=bool)],
            "root": np.r_[root, np.zeros(len(derived), dtype=bool)],
            "linked": np.r_[linked, np.zeros(len(derived), dtype=bool)],
            **_stat_columns(stats, node_entity),
        },
        copy=False,
    )

    # ---- edges: client -> root, caller subsegment -> segment, segment -> segment,
    # ---- caller -> derived node, queue -> linked consumer
    via_sub = np.flatnonzero(owner[parent_sub] >= 0)  # (-1 reads the pad)
    via_seg = np.flatnonzero(parent_seg >= 0)
    derived_owner = owner[call_rows[derived]]
    with_owner = np.flatnonzero(derived_owner >= 0)
    entity = np.concatenate(
        [
            client,
            n_seg + parent_sub[via_sub],
            parent_seg[via_seg],
            n_seg + call_rows[derived][with_owner],
        ]
    )
    source_rows = np.concatenate(
        [owner[parent_sub[via_sub]], parent_seg[via_seg], derived_owner[with_owner]]
    )
    target = np.concatenate([client, via_sub, via_seg, n_seg + with_owner])
    n_client, n_call = len(client), len(source_rows)
    source = _concat([_repeat(CLIENT, n_client), node_id.take(source_rows)])
    n_link = len(link_parts.get("entity", ()))
    if n_link:
        entity = np.concatenate([entity, link_parts["entity"]])
        target = np.concatenate([target, link_parts["target"]])
        source = _concat([source, link_parts["source"]])
    n_plain = n_client + n_call
    edge_stats = _stat_columns(stats, entity)
    if n_link:
        rt = edge_stats["response_time_s"].copy()
        rt[n_plain:] = np.nan
        edge_stats["response_time_s"] = rt
    linked_trace = _concat(
        [pa.nulls(n_plain, pa.large_string()), link_parts.get("linked_trace_id", _strings([]))]
    )
    age = np.full(n_plain + n_link, np.nan)
    if n_link:
        age[n_plain:] = link_parts["event_age_s"]
    ent_trace, ent_id = _concat([seg_trace, sub_trace]), _concat([seg_id, sub_id])
    node_entity_id = nodes["entity_id"].array
    edges = pd.DataFrame(
        {
            "trace_id": _str(ent_trace.take(entity)),
            "source": _str(source),
            "target": _str(node_id.take(target)),
            "edge_type": _str(_concat([_repeat("", n_plain), _repeat("link", n_link)])),
            "entity_id": _str(ent_id.take(entity)),
            "target_entity_id": node_entity_id.take(target),
            "linked_trace_id": _str(linked_trace),
            "start": edge_stats.pop("start"),
            "end": edge_stats.pop("end"),
            "response_time_s": edge_stats.pop("response_time_s"),
            "event_age_s": age,
            **edge_stats,
        },
        copy=False,
    )
    return nodes, edges


def _stat_columns(stats: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, Any]:
    """The statistics columns of the entities at ``rows`` (positions in ``stats``)."""
    return {
        "start": _time_array(stats["start"][rows]),
        "end": _time_array(stats["end"][rows]),
        "response_time_s": stats["response_time_s"][rows],
        "http_status": pd.arrays.IntegerArray(stats["status"][rows], stats["no_status"][rows]),
        "ok": stats["ok"][rows],
        "error": stats["error"][rows],
        "throttle": stats["throttle"][rows],
        "fault": stats["fault"][rows],
    }


def node_segments(ts: TraceSet) -> pd.DataFrame:
    """Return one row per occurrence of a service-graph node in each trace.

    Every segment (inferred ones included) is a row; so is every downstream call
    (``aws``/``remote``/SQL subsegment) that has no segment of its own: X-Ray would infer a
    node for it (``derived`` is True for those). The client is not a row.

    ``root`` marks X-Ray's "first service hit": exactly the trace's root segment
    (``ts.traces.root_segment_id``), one row per trace. An SQS-triggered consumer whose segment
    carries ``links`` is ``linked``; when it is its trace's root (the usual case) it is
    reached through the ``link`` edge from the queue, not through a client edge.
    Use :func:`graph_frames` when you also need :func:`edge_calls`.

    Parameters
    ----------
    ts : TraceSet
        The traces; not modified.

    Returns
    -------
    DataFrame
        ``trace_id, entity_id`` (segment id, or the subsegment id of a derived node),
        ``node_id`` (``"name|type|account"``), ``name, type, account_id, inferred, derived,
        root, linked, start, end, response_time_s, http_status`` and the status flags ``ok,
        error, throttle, fault`` (flags as in the documents, completed from the HTTP status;
        they can stack; ``ok`` is none of them on a completed entity: an entity still in
        progress has ``end`` NaT and is not ``ok``).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import node_segments
    >>> ts = xraykit.load_sample("shop")
    >>> occ = node_segments(ts)
    >>> bool(occ.derived.any())  # the shop's documents come with their inferred segments
    False
    >>> int(occ.root.sum()) == len(ts)  # one entry point per trace, linked consumers included
    True
    >>> sorted(occ.loc[occ.linked, "name"].unique())  # reached by a link from the SQS queue
    ['order-worker']
    >>> sorted(occ.loc[occ.name == "shop-api/prod", "type"].unique())
    ['AWS::ApiGateway::Stage']
    """
    return graph_frames(ts)[0]


def edge_calls(ts: TraceSet) -> pd.DataFrame:
    """Return one row per call along a service-graph edge in each trace.

    The client → root edge is included (one row per trace whose root segment is not reached
    by a ``link``; see :func:`node_segments`). Edge statistics come from
    the caller's subsegment (the round trip as the caller saw it); for the ``AWS::Lambda`` →
    ``AWS::Lambda::Function`` edge, from the Lambda service segment; for client edges, from
    the root segment.

    Parameters
    ----------
    ts : TraceSet
        The traces; not modified.

    Returns
    -------
    DataFrame
        ``trace_id, source, target`` (node ids; the client is ``"client"``), ``edge_type``
        (``""`` or ``"link"``), ``entity_id`` (the caller's subsegment id, the caller segment
        for segment → segment calls, the root segment for client edges, the linked segment for
        links), ``target_entity_id`` (the callee's entity), ``linked_trace_id`` (links only),
        ``start, end, response_time_s`` (NaN for links), ``event_age_s`` (links only),
        ``http_status, ok, error, throttle, fault``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import edge_calls, node_segments
    >>> ts = xraykit.load_sample("shop")
    >>> calls = edge_calls(ts)
    >>> occ = node_segments(ts)
    >>> int((calls.source == "client").sum()) == int((occ.root & ~occ.linked).sum())
    True
    """
    return graph_frames(ts)[1]

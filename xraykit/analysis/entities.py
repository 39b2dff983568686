"""The entity tree of every trace: segments, subsegments and inferred downstreams, linked.

:func:`entities_frame` is the tree the timeline draws and the critical path and root causes
walk; each entity carries its service-map node (name, type, account) and X-Ray's outcome
flags (:func:`xraykit.status.flags`). Also the first exception of each entity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xraykit import graph as _graph
from xraykit.analysis._common import _seconds
from xraykit.arguments import check_traceset
from xraykit.schema import isin
from xraykit.status import flags

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["entities_frame"]

_CALL_NAMESPACES = ("aws", "remote")


def _outcome(frame: pd.DataFrame) -> dict[str, object]:
    """The ``fault, error, throttle`` columns of an entity frame, by X-Ray's rule."""
    outcome = flags(
        frame["http_status"],
        fault=frame["fault"],
        error=frame["error"],
        throttle=frame["throttle"],
    )
    return {"fault": outcome.fault, "error": outcome.error, "throttle": outcome.throttle}


def _entities(ts: TraceSet) -> pd.DataFrame:
    """One row per entity (segment, subsegment, derived inferred downstream) with tree links.

    Columns: ``trace_id, entity_id, key, parent_key, is_segment, name, inferred, start_s,
    end_s, fault, error, throttle, remote, service_key, service_name, service_type,
    account_id, is_root, cause_id``. ``key`` is ``trace_id/entity_id``; a segment's tree parent
    is the subsegment named by its ``parent_id`` when that entity is in the trace, else it is
    the root of a tree. Service identity (name, type, account) is the service graph's node
    (:func:`xraykit.graph.node_segments`); a call to a downstream that sent no segment
    of its own gets that derived node as a child, keyed ``<call key>#inferred``.
    """
    nodes = _graph.node_segments(ts)
    node_key = nodes["trace_id"] + "/" + nodes["entity_id"]
    derived_mask = nodes["derived"].to_numpy(dtype=bool)
    identity = pd.DataFrame(
        {
            "service_name": nodes["name"].to_numpy(),
            "service_type": nodes["type"].to_numpy(),
            "account_id": nodes["account_id"].to_numpy(),
        },
        index=node_key.to_numpy(),
    )
    seg_identity = identity.loc[~derived_mask]
    seg_identity = seg_identity.loc[~seg_identity.index.duplicated()]

    seg = ts.segments
    sub = ts.subsegments
    sub = sub.loc[~sub["orphan"] & sub["segment_id"].notna()]
    tr = ts.traces
    root_keys = (tr["trace_id"] + "/" + tr["root_segment_id"]).dropna()  # THE root (loader)
    seg_key = seg["trace_id"] + "/" + seg["segment_id"]
    sub_key = sub["trace_id"] + "/" + sub["subsegment_id"]
    seg_parent = seg["trace_id"] + "/" + seg["parent_id"]
    seg_parent = seg_parent.where(isin(seg_parent, pd.concat([sub_key, seg_key])))
    seg_parent = _without_cycles(
        seg_key, seg_parent, sub_key, sub["trace_id"] + "/" + sub["segment_id"]
    )
    segments = pd.DataFrame(
        {
            "trace_id": seg["trace_id"],
            "entity_id": seg["segment_id"],
            "key": seg_key,
            "parent_key": seg_parent,
            "is_segment": True,
            "name": seg["name"],
            "inferred": seg["inferred"],
            "start_s": _seconds(seg["start"]),
            "end_s": _seconds(seg["end"]),
            **_outcome(seg),
            "remote": False,
            "service_key": seg_key,
            "service_name": seg_key.map(seg_identity["service_name"]).fillna(seg["name"]),
            "service_type": seg_key.map(seg_identity["service_type"]).fillna(seg["origin"]),
            "account_id": seg_key.map(seg_identity["account_id"]).fillna(seg["account_id"]),
            "is_root": isin(seg_key, root_keys),
            "cause_id": seg["cause_id"],
        }
    )
    is_call = sub["namespace"].isin(_CALL_NAMESPACES) | sub["sql_url"].notna()
    is_call |= sub["sql_database_type"].notna()
    owner_key = sub["trace_id"] + "/" + sub["segment_id"]
    owner = segments.set_index("key")
    owner = owner.loc[~owner.index.duplicated()]
    subsegments = pd.DataFrame(
        {
            "trace_id": sub["trace_id"],
            "entity_id": sub["subsegment_id"],
            "key": sub_key,
            "parent_key": sub["trace_id"] + "/" + sub["parent_id"],
            "is_segment": False,
            "name": sub["name"],
            "inferred": False,
            "start_s": _seconds(sub["start"]),
            "end_s": _seconds(sub["end"]),
            **_outcome(sub),
            "remote": is_call,
            "service_key": owner_key,
            "service_name": owner_key.map(owner["service_name"]),
            "service_type": owner_key.map(owner["service_type"]),
            "account_id": owner_key.map(owner["account_id"]),
            "is_root": False,
            "cause_id": sub["cause_id"],
        }
    )
    # a call with no segment of its own below it: the downstream node X-Ray would infer
    derived_keys = node_key.loc[derived_mask]
    bare = subsegments.loc[isin(subsegments["key"], set(derived_keys))]
    derived_identity = identity.loc[derived_mask]
    derived_identity = derived_identity.loc[~derived_identity.index.duplicated()]
    derived = bare.assign(
        key=bare["key"] + "#inferred",
        parent_key=bare["key"],
        is_segment=True,
        inferred=True,
        remote=False,
        service_name=bare["key"].map(derived_identity["service_name"]),
        service_type=bare["key"].map(derived_identity["service_type"]),
        account_id=bare["key"].map(derived_identity["account_id"]),
        cause_id=pd.Series(pd.NA, index=bare.index, dtype="str"),
    )
    derived["service_key"] = derived["key"]
    frames = [f for f in (segments, subsegments, derived) if len(f)]
    if not frames:
        return segments
    return pd.concat(frames, ignore_index=True)


def _without_cycles(
    seg_key: pd.Series, seg_parent: pd.Series, sub_key: pd.Series, sub_owner: pd.Series
) -> pd.Series:
    """``seg_parent`` with the links that close a loop removed.

    A segment's parent is an entity of another document, so a damaged or hostile file can
    make segments each other's ancestors; every walk up or down the tree would then never
    end. The segments where such chains end, on the loop, become tree roots, as a segment
    whose parent is missing is. Vectorised: each segment points at the segment that holds its parent, and pointer
    doubling finds where every chain ends.

    >>> keys = pd.Series(["t/a", "t/b", "t/c"])
    >>> parents = pd.Series(["t/b1", "t/a1", "t/a1"])  # a under b, b under a, c under a
    >>> cut = _without_cycles(keys, parents, pd.Series(["t/a1", "t/b1"]), pd.Series(["t/a", "t/b"]))
    >>> cut.isna().tolist()
    [True, True, False]
    """
    n = len(seg_key)
    if n == 0 or not seg_parent.notna().any():
        return seg_parent
    holder = pd.Series(
        pd.concat([seg_key, sub_owner], ignore_index=True).to_numpy(),
        index=pd.concat([seg_key, sub_key], ignore_index=True).to_numpy(),
    )
    holder = holder.loc[~holder.index.duplicated()]
    position = pd.Index(seg_key.to_numpy()).get_indexer(seg_parent.map(holder).to_numpy())
    up = np.arange(n)
    has_up = position >= 0
    up[has_up] = position[has_up]
    end = up.copy()
    for _ in range(int(np.ceil(np.log2(n + 1))) + 1):
        end = end[end]
    looped = up[end] != end  # the chain ends on a loop, not on a root
    if not looped.any():
        return seg_parent
    on_loop = np.zeros(n, dtype=bool)
    on_loop[end[looped]] = True  # at least one segment of each loop: cutting it opens it
    return seg_parent.where(~on_loop, None)


def _levels(ent: pd.DataFrame) -> pd.Series:
    """Depth of each entity in its tree (0 for tree roots), one vectorised step per level."""
    level = pd.Series(-1, index=ent.index, dtype="int64")
    frontier = ent["parent_key"].isna()
    depth = 0
    while frontier.any() and depth <= len(ent):
        level[frontier] = depth
        keys = set(ent.loc[frontier, "key"])
        frontier = isin(ent["parent_key"], keys) & (level < 0)
        depth += 1
    return level


def _exceptions(ts: TraceSet, ent: pd.DataFrame) -> pd.DataFrame:
    """The first exception of each entity (following a bare-string cause to its exception)."""
    exc = ts.exceptions
    key = exc["trace_id"] + "/" + exc["entity_id"]
    first = pd.DataFrame(
        {"key": key, "exception_name": exc["type"], "exception_message": exc["message"]}
    ).drop_duplicates("key")
    by_id = pd.DataFrame(
        {
            "cause_ref": exc["trace_id"] + "/" + exc["exception_id"],
            "exception_name": exc["type"],
            "exception_message": exc["message"],
        }
    ).drop_duplicates("cause_ref")
    out = ent[["key"]].merge(first, on="key", how="left")
    ref = ent["trace_id"] + "/" + ent["cause_id"]
    linked = pd.DataFrame({"cause_ref": ref.to_numpy()}).merge(by_id, on="cause_ref", how="left")
    for col in ("exception_name", "exception_message"):
        out[col] = out[col].fillna(linked[col])
    return out


def entities_frame(ts: TraceSet) -> pd.DataFrame:
    """Return every entity of every trace as a tree: segments, subsegments, inferred nodes.

    The tree the timeline draws and the critical path and root causes walk. A subsegment's
    parent is its enclosing entity; a segment's parent is the subsegment that called it when
    that subsegment is in the trace (else the segment is the top of a tree); a call
    (namespace ``aws``/``remote``, or SQL) to a downstream that sent no segment of its own
    gets that downstream, as the service map infers it, as its child.

    Parameters
    ----------
    ts : TraceSet
        Not modified.

    Returns
    -------
    DataFrame
        One row per entity: ``trace_id, entity_id, key`` (``"<trace_id>/<entity_id>"``; an
        inferred downstream's is its call's key plus ``"#inferred"``), ``parent_key``
        (missing at the top of a tree), ``depth`` (0 at the top), ``is_segment, name,
        inferred, start_s, end_s`` (epoch seconds, NaN while in progress), ``fault, error,
        throttle`` (the entity's flags completed from its HTTP status by
        :func:`xraykit.status.flags`), ``remote`` (a call subsegment), ``service_key,
        service_name, service_type, account_id`` (the service-map node the entity belongs
        to), ``is_root`` (the trace's root segment) and ``cause_id``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import entities_frame
    >>> ts = xraykit.load_sample("shop")
    >>> tree = entities_frame(ts.trace(ts.traces["trace_id"].iloc[0]))
    >>> int(tree["is_root"].sum()), int(tree.loc[tree["is_root"], "depth"].iloc[0])
    (1, 0)
    """
    check_traceset(ts)
    ent = _entities(ts)
    return ent.assign(depth=_levels(ent).to_numpy())

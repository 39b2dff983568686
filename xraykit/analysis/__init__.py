"""Answer the analyst's questions from a TraceSet: SLA, throttling, impacted users, root causes,
critical paths, comparisons and percentiles.

Every function takes a :class:`~xraykit.TraceSet`, never modifies it, and returns a new
DataFrame. Latencies are float seconds (``_s``), X-Ray's own unit.

Two views of "how long did a service take" appear throughout, as in the X-Ray console:

* **per service (node)** — the service's own segments: how long *it* says it worked on each
  request (``xraykit.graph.node_segments``);
* **per edge** — the *caller's* subsegments: the round trip the caller waited for, network and
  queueing included (``xraykit.graph.edge_calls``). An edge can therefore be slower than
  the node it points to.

Examples
--------
>>> import xraykit
>>> from xraykit import analysis
>>> ts = xraykit.load_sample("shop")
>>> table = analysis.percentiles(ts, by="service")
>>> list(table.columns[:4])
['service', 'service_type', 'count', 'mean_s']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from xraykit import graph as _graph
from xraykit.arguments import check_choice, check_freq
from xraykit.schema import TIME, isin

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = [
    "compare",
    "critical_path",
    "critical_path_share",
    "entities_frame",
    "impacted_users",
    "percentiles",
    "requests_frame",
    "root_cause_paths",
    "root_causes",
    "sla",
    "throttles",
]

_EPOCH = pd.Timestamp(0, tz="UTC")
_SECOND = pd.Timedelta(1, "s")
_CALL_NAMESPACES = ("aws", "remote")
_TIE_MIN_S = 0.001  # children ending this close to the latest end count as ending together
_TIE_SHARE = 0.02  # ... or this share of the parent's window, whichever is larger
ROOT_CAUSE_KINDS = ("fault", "error", "responsetime")


# ----------------------------------------------------------------------------------------------
# small helpers


def _seconds(times: pd.Series) -> np.ndarray:
    """Epoch seconds of a tz-aware datetime column as floats (NaN for NaT)."""
    return np.asarray((times - _EPOCH) / _SECOND, dtype="float64")


def _times(seconds: np.ndarray | pd.Series) -> pd.Series:
    """Epoch seconds back to UTC times, rounded to X-Ray's microsecond resolution."""
    micros = np.round(np.asarray(seconds, dtype="float64") * 1e6)
    return pd.Series(pd.to_datetime(micros, unit="us", utc=True)).astype(TIME)


def _check_traces(value: object, name: str = "traces") -> None:
    from xraykit.traceset import TraceSet

    if not isinstance(value, TraceSet):
        raise TypeError(
            f"`{name}` must be a TraceSet (from xraykit.load_sample, load_file or fetch), but "
            f"a {type(value).__name__} was passed. For a DataFrame of traces, pass the "
            "TraceSet it came from, or ts.select(frame['trace_id'])."
        )


def _check_seconds(value: object, name: str = "threshold_s") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(
            f"`{name}` must be a positive number of seconds such as 0.5, but {value!r} was passed."
        )
    if not (np.isfinite(value) and value > 0):
        raise ValueError(
            f"`{name}` must be a positive number of seconds such as 0.5, but {value!r} was passed."
        )
    return float(value)


def _node_names(nodes: pd.DataFrame) -> pd.DataFrame:
    """node_id -> name, type for every node (the client node included)."""
    names = nodes.drop_duplicates("node_id")[["node_id", "name", "type"]]
    client = pd.DataFrame({"node_id": ["client"], "name": ["client"], "type": ["client"]})
    return pd.concat([names, client], ignore_index=True).astype(
        {"node_id": "str", "name": "str", "type": "str"}
    )


def _first_annotation(traces: TraceSet, key: str) -> pd.DataFrame:
    """trace_id -> the first value of annotation ``key`` in each trace."""
    ann = traces.annotations
    ann = ann.loc[ann["key"] == key, ["trace_id", "value"]].drop_duplicates("trace_id")
    return ann.rename(columns={"value": f"annotation.{key}"})


# ----------------------------------------------------------------------------------------------
# the entity tree: segments and subsegments of every trace, with X-Ray's parent links


def _entities(traces: TraceSet) -> pd.DataFrame:
    """One row per entity (segment, subsegment, derived inferred downstream) with tree links.

    Columns: ``trace_id, entity_id, key, parent_key, is_segment, name, inferred, start_s,
    end_s, fault, error, throttle, remote, service_key, service_name, service_type,
    account_id, is_root, cause_id``. ``key`` is ``trace_id/entity_id``; a segment's tree parent
    is the subsegment named by its ``parent_id`` when that entity is in the trace, else it is
    the root of a tree. Service identity (name, type, account) is the service graph's node
    (:func:`xraykit.graph.node_segments`); a call to a downstream that sent no segment
    of its own gets that derived node as a child, keyed ``<call key>#inferred``.
    """
    nodes = _graph.node_segments(traces)
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

    seg = traces.segments
    sub = traces.subsegments
    sub = sub.loc[~sub["orphan"] & sub["segment_id"].notna()]
    tr = traces.traces
    root_keys = (tr["trace_id"] + "/" + tr["root_segment_id"]).dropna()  # THE root (loader)
    seg_key = seg["trace_id"] + "/" + seg["segment_id"]
    sub_key = sub["trace_id"] + "/" + sub["subsegment_id"]
    seg_parent = seg["trace_id"] + "/" + seg["parent_id"]
    seg_parent = seg_parent.where(isin(seg_parent, pd.concat([sub_key, seg_key])))
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
            "fault": seg["fault"],
            "error": seg["error"],
            "throttle": seg["throttle"],
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
            "fault": sub["fault"],
            "error": sub["error"],
            "throttle": sub["throttle"],
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


def _exceptions(traces: TraceSet, ent: pd.DataFrame) -> pd.DataFrame:
    """The first exception of each entity (following a bare-string cause to its exception)."""
    exc = traces.exceptions
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


# ----------------------------------------------------------------------------------------------
# critical path


def _critical_windows(ent: pd.DataFrame, root_keys: pd.Series) -> pd.DataFrame:
    """Critical-path windows below each root: ``key, level, win_start_s, win_end_s, self_s``.

    Work backwards from the end of a parent's window: the child whose (clipped) end is latest
    is on the path; the cursor moves to that child's start and the search repeats among the
    children that started earlier. The parent's uncovered time is its ``self_s``. Each step is
    vectorised over all parents of a level. When several children end within
    ``max(1 ms, 2 % of the parent's window)`` of the latest end, one that has children of its
    own is preferred: it explains the same time in more detail (Lambda's ``Invocation``
    subsegment spans the time of the handler's subsegments).
    """
    info = ent.set_index("key")
    win = pd.DataFrame({"key": root_keys.to_numpy()})
    win["win_start_s"] = win["key"].map(info["start_s"])
    win["win_end_s"] = win["key"].map(info["end_s"])
    win = win.dropna(subset=["win_start_s", "win_end_s"])
    win["level"] = 0
    out = []
    children = ent.loc[ent["parent_key"].notna(), ["key", "parent_key", "start_s", "end_s"]]
    children = children.assign(has_kids=isin(children["key"], set(children["parent_key"])))
    level = 0
    while len(win):
        kids = children.merge(
            win[["key", "win_start_s", "win_end_s"]].rename(columns={"key": "parent_key"}),
            on="parent_key",
        )
        kids["cs"] = np.maximum(kids["start_s"], kids["win_start_s"])
        # an in-progress child (no end) is treated as running to the end of its parent's window
        kids["ce"] = np.minimum(kids["end_s"].fillna(kids["win_end_s"]), kids["win_end_s"])
        kids = kids.loc[kids["ce"] > kids["cs"]].sort_values(["parent_key", "cs"])
        cursor = win.set_index("key")["win_end_s"]
        picked = []
        while len(kids):
            kids = kids.loc[kids["cs"] < kids["parent_key"].map(cursor)]
            if kids.empty:
                break
            eff_end = np.minimum(kids["ce"], kids["parent_key"].map(cursor))
            latest = eff_end.groupby(kids["parent_key"], sort=False).transform("max")
            tolerance = np.maximum(
                _TIE_MIN_S, _TIE_SHARE * (kids["win_end_s"] - kids["win_start_s"])
            )
            ranked = pd.DataFrame(
                {
                    "parent_key": kids["parent_key"],
                    "near": eff_end >= latest - tolerance,
                    "has_kids": kids["has_kids"],
                    "eff_end": eff_end,
                }
            ).sort_values(["parent_key", "near", "has_kids", "eff_end"], kind="stable")
            best = ranked.index[~ranked["parent_key"].duplicated(keep="last")]
            pick = kids.loc[best, ["key", "parent_key", "cs"]].assign(
                ce=eff_end.loc[best].to_numpy()
            )
            picked.append(pick)
            cursor = pick.set_index("parent_key")["cs"].combine_first(cursor)
            kids = kids.drop(index=best)
        chosen = (
            pd.concat(picked, ignore_index=True)
            if picked
            else pd.DataFrame(columns=["key", "parent_key", "cs", "ce"])
        )
        covered = (chosen["ce"] - chosen["cs"]).groupby(chosen["parent_key"]).sum()
        win["self_s"] = (win["win_end_s"] - win["win_start_s"]) - win["key"].map(covered).fillna(
            0.0
        )
        out.append(win)
        level += 1
        win = pd.DataFrame(
            {
                "key": chosen["key"].to_numpy(),
                "win_start_s": chosen["cs"].to_numpy(dtype="float64"),
                "win_end_s": chosen["ce"].to_numpy(dtype="float64"),
                "level": level,
            }
        )
    if not out:
        return pd.DataFrame(
            {
                "key": pd.Series(dtype="str"),
                "win_start_s": pd.Series(dtype="float64"),
                "win_end_s": pd.Series(dtype="float64"),
                "level": pd.Series(dtype="int64"),
                "self_s": pd.Series(dtype="float64"),
            }
        )
    return pd.concat(out, ignore_index=True)


def _main_roots(traces: TraceSet, ent: pd.DataFrame) -> pd.Series:
    roots = ent.loc[ent["is_root"], ["trace_id", "key"]].drop_duplicates("trace_id")
    return roots["key"]


def _critical_frame(traces: TraceSet, ent: pd.DataFrame | None = None) -> pd.DataFrame:
    if ent is None:
        ent = _entities(traces)
    win = _critical_windows(ent, _main_roots(traces, ent))
    frame = win.merge(ent, on="key", how="left")
    root_len = (frame["win_end_s"] - frame["win_start_s"]).where(frame["level"] == 0)
    total = root_len.groupby(frame["trace_id"]).transform("max")
    frame["share"] = frame["self_s"] / total
    return frame


def critical_path(traces: TraceSet, trace_id: str) -> pd.DataFrame:
    """Return the chain of entities that determines one trace's response time.

    Starting from the root segment, work backwards from its end: the child (subsegment, or the
    downstream segment a subsegment called) whose end is latest is on the critical path; the
    search then continues, from that child's start, among the children that started earlier.
    Children that end together (within 1 ms or 2 % of the parent's time) are resolved in
    favour of one with children of its own, which explains the time in more detail.
    Each chosen child is clipped to the part that was still blocking its parent and is
    examined the same way. Time a parent spends with no child on the path is its own
    (``critical_s``); the ``critical_s`` of all rows add up to the root's response time.

    Parameters
    ----------
    traces : TraceSet
    trace_id : str
        A trace in ``traces``.

    Returns
    -------
    DataFrame
        In timeline order: ``trace_id, entity_id, name, service, service_type, depth,
        start, end`` (the part of the entity on the path), ``critical_s`` (its own time on the
        path), ``share`` (``critical_s`` over the root's response time).

    Raises
    ------
    LookupError
        When ``trace_id`` is not in ``traces`` (as :meth:`TraceSet.trace`).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import critical_path
    >>> ts = xraykit.load_sample("shop")
    >>> path = critical_path(ts, ts.traces["trace_id"].iloc[0])
    >>> round(float(path["share"].sum()), 6)
    1.0
    """
    _check_traces(traces)
    frame = _critical_frame(traces.trace(trace_id))  # LookupError for an unknown id
    frame = frame.sort_values(["win_start_s", "level"], kind="stable")
    return pd.DataFrame(
        {
            "trace_id": frame["trace_id"].astype("str"),
            "entity_id": frame["entity_id"].astype("str"),
            "name": frame["name"].astype("str"),
            "service": frame["service_name"].astype("str"),
            "service_type": frame["service_type"].astype("str"),
            "depth": frame["level"].astype("int64"),
            "start": _times(frame["win_start_s"]).array,
            "end": _times(frame["win_end_s"]).array,
            "critical_s": frame["self_s"].astype("float64"),
            "share": frame["share"].astype("float64"),
        }
    ).reset_index(drop=True)


def critical_path_share(traces: TraceSet) -> pd.DataFrame:
    """Return each service's share of the time on the critical path, across all traces.

    The critical path of each trace is found as in :func:`critical_path`. Each entity's own
    time on it is credited to a service: a segment's to its service, a subsegment's to the
    service that owns it, and a call to a downstream that sends no segment (DynamoDB, an
    external API) to the downstream, as X-Ray's inferred node.

    Returns
    -------
    DataFrame
        One row per service, largest share first: ``service, service_type, traces`` (traces
        whose critical path it is on), ``critical_s`` (total seconds), ``share`` (of the summed
        response time of all traces), ``mean_share`` (the mean per-trace share, 0 where absent).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import critical_path_share
    >>> shares = critical_path_share(xraykit.load_sample("shop"))
    >>> round(float(shares["share"].sum()), 6)
    1.0
    """
    _check_traces(traces)
    frame = _critical_frame(traces)
    frame["service_type"] = frame["service_type"].fillna("")
    n_traces = max(frame["trace_id"].nunique(), 1)
    total = float((frame["win_end_s"] - frame["win_start_s"]).where(frame["level"] == 0).sum())
    per_trace = frame.groupby(["service_name", "service_type", "trace_id"], dropna=False).agg(
        critical_s=("self_s", "sum"), share=("share", "sum")
    )
    grouped = per_trace.groupby(level=["service_name", "service_type"], dropna=False)
    out = pd.DataFrame(
        {
            "traces": grouped.size(),
            "critical_s": grouped["critical_s"].sum(),
            "share": grouped["critical_s"].sum() / total if total > 0 else np.nan,
            "mean_share": grouped["share"].sum() / n_traces,
        }
    ).reset_index()
    out = out.rename(columns={"service_name": "service"})
    out["service_type"] = out["service_type"].replace("", pd.NA)
    return out.sort_values("share", ascending=False, ignore_index=True).astype(
        {"service": "str", "service_type": "str"}
    )


# ----------------------------------------------------------------------------------------------
# root causes


def _paths_to(ent: pd.DataFrame, leaves: pd.DataFrame) -> pd.DataFrame:
    """For each leaf (``cause`` column), its ancestors up to its tree root, root first."""
    parent_of = pd.Series(ent["parent_key"].to_numpy(), index=ent["key"].to_numpy())
    steps = []
    current = pd.DataFrame({"cause": leaves["cause"].to_numpy(), "key": leaves["key"].to_numpy()})
    height = 0
    while len(current) and height <= len(ent):
        steps.append(current.assign(height=height))
        parents = parent_of.reindex(current["key"].to_numpy()).to_numpy()
        current = pd.DataFrame({"cause": current["cause"].to_numpy(), "key": parents})
        current = current.loc[current["key"].notna()]
        height += 1
    rows = pd.concat(steps, ignore_index=True)
    rows["entity_count"] = rows.groupby("cause")["height"].transform("max") + 1
    rows["entity_index"] = rows["entity_count"] - 1 - rows["height"]
    return rows.sort_values(["cause", "entity_index"], ignore_index=True)


_PATH_COLUMNS = {
    "trace_id": "str",
    "cause_index": "int64",
    "service_name": "str",
    "service_type": "str",
    "account_id": "str",
    "inferred": "bool",
    "entity_index": "int64",
    "entity_count": "int64",
    "entity_name": "str",
    "entity_id": "str",
    "remote": "bool",
    "coverage": "float64",
    "exception_name": "str",
    "exception_message": "str",
    "service_index": "int64",
    "client_impacting": "bool",
}


def root_cause_paths(
    traces: TraceSet,
    kind: Literal["fault", "error", "responsetime"] = "fault",
    *,
    threshold_s: float | None = None,
) -> pd.DataFrame:
    """Return, per trace, the root-cause entity paths X-Ray's TraceSummary would list.

    The rules (X-Ray does not publish its own; these reproduce the shape and meaning of
    ``FaultRootCauses``, ``ErrorRootCauses`` and ``ResponseTimeRootCauses``):

    * **entities** are segments and subsegments; a subsegment's parent is its enclosing
      entity, a segment's parent is the caller subsegment its ``parent_id`` names, and a call
      subsegment (namespace ``aws``/``remote``, or SQL) to a downstream that sent no segment
      gets an inferred downstream below it, as on the service map.
    * **fault / error**: a root cause is a deepest flagged entity — one whose ``fault``
      (``error`` for ``kind="error"``) flag is set while no entity below it (at any depth)
      has it. A flagged entity with a flagged descendant is explained by that descendant,
      even when the flags do not form an unbroken chain (API Gateway returns 502 because the
      function below the non-faulting Lambda service segment raised). Each one is
      a separate cause (``cause_index``, ordered by start; causes with identical paths, such
      as retries of one failing call, are listed once). Its exception is the entity's first
      exception (a bare-string ``cause`` is followed to the exception it names).
    * **responsetime**: one cause per trace: the entity on the critical path (see
      :func:`critical_path`) with the most time of its own on it; ``coverage`` of every
      entity on the path is its time on the path over the root's response time.
    * **path**: from the trace's root segment down to the cause, one row per entity. Rows of
      one service (a segment and the subsegments under it, or an inferred downstream) share
      ``service_index`` and form that service's ``EntityPath``; the services in order form
      the cause's ``Services``. ``remote`` marks call subsegments. ``client_impacting`` is set
      when the root segment itself carries the flag (for response time: always).

    Parameters
    ----------
    traces : TraceSet
    kind : {"fault", "error", "responsetime"}
    threshold_s : float, optional
        Response time only: consider only traces slower than this.

    Returns
    -------
    DataFrame
        ``trace_id, cause_index, service_name, service_type, account_id, inferred,
        entity_index, entity_count, entity_name, entity_id, remote, coverage,
        exception_name, exception_message, service_index, client_impacting``. Traces without
        that kind of root cause have no rows.

    Raises
    ------
    ValueError
        For an unknown ``kind``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import root_cause_paths
    >>> paths = root_cause_paths(xraykit.load_sample("shop"), "responsetime")
    >>> bool((paths.groupby("trace_id")["cause_index"].max() == 0).all())
    True
    """
    _check_traces(traces)
    if threshold_s is not None:
        threshold_s = _check_seconds(threshold_s)
    check_choice("kind", kind, ROOT_CAUSE_KINDS)
    ent = _entities(traces)
    if kind == "responsetime":
        crit = _critical_frame(traces, ent)
        if threshold_s is not None:
            slow = set(
                traces.traces.loc[traces.traces["response_time_s"] > threshold_s, "trace_id"]
            )
            crit = crit.loc[isin(crit["trace_id"], slow)]
        if crit.empty:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _PATH_COLUMNS.items()})
        leaves = crit.loc[crit.groupby("trace_id")["self_s"].idxmax().to_numpy(), ["key"]]
        leaves = leaves.assign(cause=leaves["key"])
        coverage_of = pd.Series(
            (
                (crit["win_end_s"] - crit["win_start_s"])
                / crit["trace_id"].map(_root_lengths(crit))
            ).to_numpy(),
            index=crit["key"].to_numpy(),
        )
    else:
        flag = ent[kind].astype(bool)
        flagged = ent.loc[flag, ["key"]].assign(cause=lambda f: f["key"])
        above = _paths_to(ent, flagged) if len(flagged) else pd.DataFrame({"key": [], "height": []})
        explained = set(above.loc[above["height"] > 0, "key"])
        leaves = ent.loc[flag & ~isin(ent["key"], explained), ["key", "start_s"]]
        leaves = leaves.sort_values("start_s", kind="stable").assign(cause=lambda f: f["key"])
        coverage_of = None
    if leaves.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _PATH_COLUMNS.items()})

    rows = _paths_to(ent, leaves)
    info = ent.set_index("key")
    for col in (
        "trace_id",
        "entity_id",
        "name",
        "service_key",
        "service_name",
        "service_type",
        "account_id",
        "remote",
        "is_root",
        "fault",
        "error",
    ):
        rows[col] = rows["key"].map(info[col])
    rows["inferred"] = rows["service_key"].map(info["inferred"]).fillna(False).astype(bool)
    # a cause whose path repeats an earlier cause of the same trace (retries) is listed once
    step = rows["service_name"].fillna("") + ":" + rows["name"].fillna("")
    signature = step.groupby(rows["cause"], sort=False).agg("|".join)
    first_seen = pd.DataFrame({"cause": signature.index, "sig": signature.to_numpy()})
    first_seen["trace_id"] = first_seen["cause"].map(info["trace_id"])
    keep = set(first_seen.drop_duplicates(["trace_id", "sig"])["cause"])
    rows = rows.loc[isin(rows["cause"], keep)]
    order = leaves.loc[isin(leaves["cause"], keep), "cause"].reset_index(drop=True)
    cause_rank = pd.Series(np.arange(len(order)), index=order.to_numpy())
    rows = rows.assign(rank=rows["cause"].map(cause_rank)).sort_values(
        ["rank", "entity_index"], ignore_index=True
    )
    cause_traces = rows.drop_duplicates("cause")[["cause", "trace_id", "rank"]]
    cause_traces["cause_index"] = cause_traces.groupby("trace_id").cumcount()
    rows["cause_index"] = rows["cause"].map(cause_traces.set_index("cause")["cause_index"])
    new_service = rows["service_key"].ne(rows["service_key"].shift()) | rows["entity_index"].eq(0)
    rows["service_index"] = new_service.astype("int64").groupby(rows["cause"]).cumsum() - 1
    if kind == "responsetime":
        rows["client_impacting"] = True
        rows["coverage"] = rows["key"].map(coverage_of).astype("float64")
    else:
        top = rows.loc[rows["entity_index"] == 0]
        hit = pd.Series((top["is_root"] & top[kind]).to_numpy(), index=top["cause"].to_numpy())
        rows["client_impacting"] = rows["cause"].map(hit).astype(bool)
        rows["coverage"] = np.nan
    exc = _exceptions(traces, ent).set_index("key")
    rows["exception_name"] = rows["key"].map(exc["exception_name"])
    rows["exception_message"] = rows["key"].map(exc["exception_message"])
    rows["entity_name"] = rows["name"]
    out = rows[list(_PATH_COLUMNS)].sort_values(
        ["trace_id", "cause_index", "entity_index"], ignore_index=True
    )
    return out.astype(_PATH_COLUMNS)


def _root_lengths(crit: pd.DataFrame) -> pd.Series:
    root = crit.loc[crit["level"] == 0]
    return pd.Series(
        (root["win_end_s"] - root["win_start_s"]).to_numpy(), index=root["trace_id"].to_numpy()
    )


def root_causes(
    traces: TraceSet,
    kind: Literal["fault", "error", "responsetime"] = "fault",
    *,
    threshold_s: float | None = None,
) -> pd.DataFrame:
    """Count root causes across traces: which service, entity path and exception, how often.

    Each trace's causes come from :func:`root_cause_paths` (read its rules there). A cause
    is summarised by its last service (the one X-Ray blames), the entity path inside that
    service, and the deepest entity's exception.

    Parameters
    ----------
    traces : TraceSet
    kind : {"fault", "error", "responsetime"}
    threshold_s : float, optional
        Response time only: consider only traces slower than this.

    Returns
    -------
    DataFrame
        One row per distinct cause, most frequent first: ``service_name, service_type,
        entity_path`` (names joined with ``" > "``), ``exception_name, traces`` (traces with
        this cause), ``client_impacting`` (of those, the ones whose client saw it), ``share``
        (``traces`` over all traces in the set) and ``mean_coverage`` (response time only).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import root_causes
    >>> table = root_causes(xraykit.load_sample("shop"), "fault")
    >>> list(table.columns[:4])
    ['service_name', 'service_type', 'entity_path', 'exception_name']
    """
    _check_traces(traces)
    paths = root_cause_paths(traces, kind, threshold_s=threshold_s)
    cause = paths["trace_id"] + "#" + paths["cause_index"].astype("str")
    last_service = paths["service_index"] == paths.groupby(cause)["service_index"].transform("max")
    tail = paths.loc[last_service]
    tail_cause = cause.loc[last_service]
    per_cause = pd.DataFrame(
        {
            "trace_id": tail.groupby(tail_cause)["trace_id"].first(),
            "service_name": tail.groupby(tail_cause)["service_name"].first(),
            "service_type": tail.groupby(tail_cause)["service_type"].first(),
            "entity_path": tail.groupby(tail_cause)["entity_name"].agg(" > ".join),
            # the deepest exception on the whole path: an inferred downstream has none of its
            # own, the caller's subsegment carries it
            "exception_name": paths.groupby(cause)["exception_name"].last(),
            "client_impacting": tail.groupby(tail_cause)["client_impacting"].first(),
            "coverage": tail.groupby(tail_cause)["coverage"].last(),
        }
    )
    keys = ["service_name", "service_type", "entity_path", "exception_name"]
    per_cause["impacted_trace"] = per_cause["trace_id"].where(per_cause["client_impacting"])
    grouped = per_cause.groupby(keys, dropna=False)
    out = pd.DataFrame(
        {
            "traces": grouped["trace_id"].nunique(),
            "client_impacting": grouped["impacted_trace"].nunique(),
            "share": grouped["trace_id"].nunique() / max(len(traces), 1),
            "mean_coverage": grouped["coverage"].mean(),
        }
    ).reset_index()
    out = out.astype({"traces": "int64", "client_impacting": "int64"})
    return out.sort_values(["traces", "service_name"], ascending=[False, True], ignore_index=True)


# ----------------------------------------------------------------------------------------------
# measurements: one row per request, at the trace, service (node) or edge level

Level = Literal["trace", "service", "edge"]
LEVELS = ("trace", "service", "edge")
_BY_KEYWORDS = ("service", "edge", "url", "method", "status", "user")


def _measurements(
    traces: TraceSet, level: str, annotation_keys: Sequence[str] = ()
) -> pd.DataFrame:
    """:func:`requests_frame` without its public signature's keyword-only checks."""
    check_choice("level", level, LEVELS)
    if level == "trace":
        tr = traces.traces
        frame = pd.DataFrame(
            {
                "trace_id": tr["trace_id"],
                "service": tr["root_service"],
                "service_type": tr["root_origin"],
                "latency_s": tr["response_time_s"],
                "start": tr["start"],
                "url": tr["http_url"],
                "method": tr["http_method"],
                "status": tr["http_status"],
                "user": tr["user"],
                "error": tr["has_error"].astype(bool),
                "fault": tr["has_fault"].astype(bool),
                "throttle": _root_throttled(traces),
                "throttled_inside": tr["has_throttle"].astype(bool),
            }
        )
    else:
        sg = _graph
        if level == "edge":  # both frames, from one pass
            nodes, calls = sg.graph_frames(traces)
        else:
            nodes = sg.node_segments(traces)
        seg, sub = traces.segments, traces.subsegments
        http = pd.concat(
            [
                pd.DataFrame(
                    {
                        "trace_id": seg["trace_id"],
                        "entity_id": seg["segment_id"],
                        "url": seg["http_url"],
                        "method": seg["http_method"],
                        "user": seg["user"],
                    }
                ),
                pd.DataFrame(
                    {
                        "trace_id": sub["trace_id"],
                        "entity_id": sub["subsegment_id"],
                        "url": sub["http_url"],
                        "method": sub["http_method"],
                        "user": pd.Series(pd.NA, index=sub.index, dtype="str"),
                    }
                ),
            ],
            ignore_index=True,
        ).drop_duplicates(["trace_id", "entity_id"])
        if level == "service":
            base = pd.DataFrame(
                {
                    "trace_id": nodes["trace_id"],
                    "entity_id": nodes["entity_id"],
                    "service": nodes["name"],
                    "service_type": nodes["type"],
                }
            )
            calls = nodes
        else:
            calls = calls.loc[calls["edge_type"] != "link"]
            names = _node_names(nodes).set_index("node_id")["name"]
            source = calls["source"].map(names).fillna(calls["source"])
            target = calls["target"].map(names).fillna(calls["target"])
            base = pd.DataFrame(
                {
                    "trace_id": calls["trace_id"],
                    "entity_id": calls["entity_id"],
                    "edge": (source + " → " + target).astype("str"),
                    "source": calls["source"],
                    "target": calls["target"],
                }
            )
        # Series, not arrays: aligned on the same index, and the dtypes survive an empty
        # frame (``to_numpy`` of a tz-aware column is an object array)
        base = base.assign(
            latency_s=calls["response_time_s"].astype("float64"),
            start=calls["start"].astype(TIME),
            status=calls["http_status"].astype("Int64"),
            error=calls["error"].astype(bool),
            fault=calls["fault"].astype(bool),
            throttle=calls["throttle"].astype(bool),
        )
        frame = base.merge(http, on=["trace_id", "entity_id"], how="left")
    for key in annotation_keys:
        frame = frame.merge(_first_annotation(traces, key), on="trace_id", how="left")
    return frame


def _root_throttled(traces: TraceSet) -> np.ndarray:
    """Per row of ``traces.traces``: did the client see a throttle (root flag or HTTP 429)?

    ``traces.has_throttle`` is a throttle *anywhere* in the trace, often retried away
    before the client noticed.
    """
    tr = traces.traces
    seg = traces.segments
    flagged = seg.loc[seg["throttle"].astype(bool)]
    root_keys = tr["trace_id"] + "/" + tr["root_segment_id"]
    root_flag = isin(root_keys, flagged["trace_id"] + "/" + flagged["segment_id"])
    return root_flag | tr["http_status"].eq(429).fillna(False).to_numpy(dtype=bool)


def requests_frame(
    traces: TraceSet,
    *,
    level: Level = "trace",
    annotation_keys: Sequence[str] = (),
) -> pd.DataFrame:
    """Return one row per request seen at ``level``: what the latency analyses measure.

    The frame behind :func:`percentiles`, :func:`sla`, :func:`compare` and the charts.

    * ``"trace"``: one row per trace; ``service`` is the entry point (root service),
      ``latency_s`` the response time the client saw, and the flags are the root's own, as
      the client saw them: ``fault`` (5xx), ``error`` (4xx), ``throttle`` (the root throttled
      or answered 429). ``throttled_inside`` is ``traces.has_throttle``: a throttle anywhere
      in the trace, whether or not the client saw it.
    * ``"service"``: one row per node occurrence
      (:func:`xraykit.graph.node_segments`): the service's own view.
    * ``"edge"``: one row per call along an edge (:func:`xraykit.graph.edge_calls`,
      links left out): the caller's view, with ``edge`` (``"caller → callee"``),
      ``source`` and ``target`` node ids.

    Parameters
    ----------
    traces : TraceSet
        Not modified.
    level : {"trace", "service", "edge"}
    annotation_keys : sequence of str
        Adds ``annotation.<key>``: the first value of that annotation in the request's trace.

    Returns
    -------
    DataFrame
        ``trace_id``, ``service, service_type`` (trace, service) or ``edge, source, target``
        (edge), ``latency_s``, ``start`` (UTC), ``status`` (HTTP, Int64), ``error, fault,
        throttle`` (bool), ``url, method, user``, then ``throttled_inside`` (trace level) and
        the annotation columns. Requests still in progress have a NaN ``latency_s``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import requests_frame
    >>> ts = xraykit.load_sample("shop")
    >>> frame = requests_frame(ts)
    >>> len(frame) == len(ts)
    True
    >>> bool((frame["throttle"] <= frame["throttled_inside"]).all())  # seen ⇒ happened
    True
    """
    _check_traces(traces)
    return _measurements(traces, level, annotation_keys)


def entities_frame(traces: TraceSet) -> pd.DataFrame:
    """Return every entity of every trace as a tree: segments, subsegments, inferred nodes.

    The tree the timeline draws and the critical path and root causes walk. A subsegment's
    parent is its enclosing entity; a segment's parent is the subsegment that called it when
    that subsegment is in the trace (else the segment is the top of a tree); a call
    (namespace ``aws``/``remote``, or SQL) to a downstream that sent no segment of its own
    gets that downstream, as the service map infers it, as its child.

    Parameters
    ----------
    traces : TraceSet
        Not modified.

    Returns
    -------
    DataFrame
        One row per entity: ``trace_id, entity_id, key`` (``"<trace_id>/<entity_id>"``; an
        inferred downstream's is its call's key plus ``"#inferred"``), ``parent_key``
        (missing at the top of a tree), ``depth`` (0 at the top), ``is_segment, name,
        inferred, start_s, end_s`` (epoch seconds, NaN while in progress), ``fault, error,
        throttle, remote`` (a call subsegment), ``service_key, service_name, service_type,
        account_id`` (the service-map node the entity belongs to), ``is_root`` (the trace's
        root segment) and ``cause_id``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import entities_frame
    >>> ts = xraykit.load_sample("shop")
    >>> tree = entities_frame(ts.trace(ts.traces["trace_id"].iloc[0]))
    >>> int(tree["is_root"].sum()), int(tree.loc[tree["is_root"], "depth"].iloc[0])
    (1, 0)
    """
    _check_traces(traces)
    ent = _entities(traces)
    return ent.assign(depth=_levels(ent).to_numpy())


def _parse_by(by: str | Sequence[str], allowed: Sequence[str] = _BY_KEYWORDS) -> list[str]:
    items = [by] if isinstance(by, str) else list(by)
    for item in items:
        if item not in allowed and not (
            isinstance(item, str) and item.startswith("annotation.") and len(item) > 11
        ):
            raise ValueError(
                f"`by` entries must be among {tuple(allowed)} or 'annotation.<key>', "
                f"but {item!r} was passed."
            )
    if "service" in items and "edge" in items:
        raise ValueError(
            "`by` cannot hold both 'service' (the services' own segments) and 'edge' (the "
            "callers' subsegments); pick one."
        )
    return items


def _level_of(items: Sequence[str]) -> str:
    return "edge" if "edge" in items else "service" if "service" in items else "trace"


def _group_columns(items: Sequence[str]) -> list[str]:
    cols: list[str] = []
    for item in items:
        cols += ["service", "service_type"] if item == "service" else [item]
    return cols


def _groups(frame: pd.DataFrame, keys: list[str]) -> tuple[pd.Series, pd.DataFrame]:
    """Group ids (missing key values form their own group) and the key values of each group.

    Grouping by an id sidesteps pandas reductions (``quantile``) that drop missing-key groups.
    """
    gid = frame.groupby(keys, dropna=False, sort=True).ngroup()
    values = frame[keys].groupby(gid).first()
    return gid, values


def _summarise(
    frame: pd.DataFrame, keys: list[str], q: Sequence[float], *, rates: bool = False
) -> pd.DataFrame:
    gid, out = _groups(frame, keys)
    grouped = frame.groupby(gid)
    out["count"] = grouped.size()
    out["mean_s"] = grouped["latency_s"].mean()
    for p in q:
        out[f"p{p:g}_s"] = grouped["latency_s"].quantile(p / 100) if len(frame) else np.nan
    if rates:
        for flag in ("error", "fault", "throttle"):
            out[f"{flag}_rate"] = grouped[flag].mean().astype("float64")
    return out.reset_index(drop=True)


def percentiles(
    traces: TraceSet,
    by: str | Sequence[str] = "service",
    *,
    q: Sequence[float] = (50, 90, 99),
) -> pd.DataFrame:
    """Return latency percentiles and counts grouped by any mix of service, URL, status, …

    What is measured depends on ``by``: with ``"service"``, each service's own segments
    (how long the service worked on each request); with ``"edge"``, the callers'
    subsegments (the round trip the caller waited for); otherwise whole traces (the response
    time the client saw). The other keys then group those requests by their own URL,
    method, status or user, or by the trace's annotation value.

    Parameters
    ----------
    traces : TraceSet
    by : str or list of str
        Among ``"service"``, ``"edge"``, ``"url"``, ``"method"``, ``"status"``, ``"user"`` and
        ``"annotation.<key>"`` (the first value of that annotation in the trace).
    q : sequence of float
        Percentiles to compute (0-100); each gives a column ``p<q>_s``.

    Returns
    -------
    DataFrame
        The group columns (``"service"`` adds ``service_type``: Lambda's service and function
        nodes share a name), then ``count, mean_s`` and ``p50_s, p90_s, p99_s``; missing group
        values form their own group.

    Raises
    ------
    ValueError
        For an unknown ``by`` entry, or ``"service"`` together with ``"edge"``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import percentiles
    >>> ts = xraykit.load_sample("shop")
    >>> table = percentiles(ts, by=["service", "status"])
    >>> bool((table["p50_s"] <= table["p99_s"]).all())
    True
    >>> int(percentiles(ts, by="status")["count"].sum()) == len(ts)
    True
    """
    _check_traces(traces)
    items = _parse_by(by)
    keys = [k[11:] for k in items if k.startswith("annotation.")]
    frame = _measurements(traces, _level_of(items), keys)
    return _summarise(frame, _group_columns(items), q)


def sla(
    traces: TraceSet,
    threshold_s: float,
    *,
    by: Level = "service",
    freq: str | None = None,
) -> pd.DataFrame:
    """Return the share of requests answered within ``threshold_s``, per service and over time.

    Parameters
    ----------
    traces : TraceSet
    threshold_s : float
        The time objective in seconds; a request meets it when its latency is at most this.
    by : {"service", "edge", "trace"}
        ``"service"``: each service's own segments; ``"edge"``: the callers' subsegments
        (what the caller waited for); ``"trace"``: the response time the client saw, grouped
        by entry-point service.
    freq : str, optional
        A pandas frequency such as ``"5min"``: one row per time bin (by request start) and group.

    Returns
    -------
    DataFrame
        ``[time,]`` the group (``service, service_type`` or ``edge``), ``count, within``
        (requests meeting the objective), ``share`` (``within / count``), ``p90_s``. Requests
        still in progress (no latency) count as not within.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import sla
    >>> ts = xraykit.load_sample("shop")
    >>> table = sla(ts, 0.5, by="trace")
    >>> bool(table["share"].between(0, 1).all())
    True
    """
    _check_traces(traces)
    check_freq(freq)
    check_choice("by", by, LEVELS)
    threshold_s = _check_seconds(threshold_s)
    frame = _measurements(traces, by)
    frame["within"] = frame["latency_s"] <= threshold_s
    keys = ["edge"] if by == "edge" else ["service", "service_type"]
    if freq is not None:
        frame["time"] = frame["start"].dt.floor(freq)
        keys = ["time", *keys]
    gid, out = _groups(frame, keys)
    grouped = frame.groupby(gid)
    out["count"] = grouped.size()
    out["within"] = grouped["within"].sum().astype("int64")
    out["p90_s"] = grouped["latency_s"].quantile(0.9) if len(frame) else np.nan
    out.insert(len(keys) + 2, "share", out["within"] / out["count"])
    return out.reset_index(drop=True)


def throttles(traces: TraceSet, *, freq: str | None = None) -> pd.DataFrame:
    """Return where throttling (HTTP 429) happens: caller, callee, operation, counts.

    Throttles are read from the calls along each edge of the service graph (the caller's
    subsegment; for the client edge, the root segment), so a DynamoDB table that throttles a
    service shows up as that service calling ``DynamoDB`` with its operation.

    Parameters
    ----------
    traces : TraceSet
    freq : str, optional
        A pandas frequency such as ``"1min"``: counts per time bin (by call start).

    Returns
    -------
    DataFrame
        One row per (caller, callee, operation) that was throttled at least once, most
        throttles first: ``[time,] caller, callee, callee_type, operation`` (the AWS operation,
        else the HTTP method), ``calls, throttled, throttle_rate, traces`` (distinct traces
        with a throttled call). With ``freq``, every bin in which that edge had calls.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import throttles
    >>> table = throttles(xraykit.load_sample("shop"))
    >>> bool((table["throttled"] > 0).all())
    True
    """
    _check_traces(traces)
    check_freq(freq)
    nodes, calls = _graph.graph_frames(traces)
    names = _node_names(nodes).set_index("node_id")
    sub = traces.subsegments
    ops = pd.DataFrame(
        {
            "trace_id": sub["trace_id"],
            "entity_id": sub["subsegment_id"],
            "operation": sub["aws_operation"].fillna(sub["http_method"]),
        }
    )
    seg = traces.segments
    ops = pd.concat(
        [
            ops,
            pd.DataFrame(
                {
                    "trace_id": seg["trace_id"],
                    "entity_id": seg["segment_id"],
                    "operation": seg["http_method"],
                }
            ),
        ],
        ignore_index=True,
    ).drop_duplicates(["trace_id", "entity_id"])
    frame = pd.DataFrame(
        {
            "trace_id": calls["trace_id"],
            "entity_id": calls["entity_id"],
            "caller": calls["source"].map(names["name"]).fillna(calls["source"]),
            "callee": calls["target"].map(names["name"]).fillna(calls["target"]),
            "callee_type": calls["target"].map(names["type"]),
            "throttle": calls["throttle"].astype(bool),
            "start": calls["start"],
        }
    ).merge(ops, on=["trace_id", "entity_id"], how="left")
    frame["throttled_trace"] = frame["trace_id"].where(frame["throttle"])
    keys = ["caller", "callee", "callee_type", "operation"]
    hit = frame.groupby(keys, dropna=False)["throttle"].transform("any")
    frame = frame.loc[hit.astype(bool)]
    if freq is not None:
        frame = frame.assign(time=frame["start"].dt.floor(freq))
        keys = ["time", *keys]
    grouped = frame.groupby(keys, dropna=False, sort=True)
    out = pd.DataFrame(
        {
            "calls": grouped.size(),
            "throttled": grouped["throttle"].sum().astype("int64"),
            "traces": grouped["throttled_trace"].nunique(),
        }
    )
    out.insert(2, "throttle_rate", out["throttled"] / out["calls"])
    out = out.reset_index()
    order = ["throttled", "caller"] if freq is None else ["time", "throttled"]
    ascending = [False, True] if freq is None else [True, False]
    return out.sort_values(order, ascending=ascending, ignore_index=True)


ImpactKind = Literal["fault", "error", "throttle", "slow"]


def impacted_users(
    traces: TraceSet,
    *,
    kind: ImpactKind = "fault",
    by: str = "user",
    threshold_s: float | None = None,
) -> pd.DataFrame:
    """Return the users (or annotation values) whose requests hit faults, errors or slowness.

    A trace is impacted when the client saw the problem: its root segment faulted (``fault``,
    HTTP 5xx), errored (``error``, 4xx) or was throttled (``throttle``: the root's throttle
    flag or HTTP 429), or its response time exceeded ``threshold_s`` (``slow``). A throttle
    deeper in the trace that was retried away does not count: the client did not see it
    (:func:`throttles` and ``traces.has_throttle`` show every throttle). A trace belongs to
    every user named in any of its segments (X-Ray's ``Users`` field), or to every value of
    the annotation.

    Parameters
    ----------
    traces : TraceSet
    kind : {"fault", "error", "throttle", "slow"}
    by : str
        ``"user"`` (the segments' ``user`` field) or ``"annotation.<key>"``.
    threshold_s : float, optional
        Required for ``kind="slow"``.

    Returns
    -------
    DataFrame
        One row per impacted user or value, most impacted traces first: the value (column
        ``user`` or ``annotation.<key>``), ``traces`` (all of its traces), ``impacted``,
        ``impacted_share``, ``first_impacted``, ``last_impacted`` (trace start times).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import impacted_users
    >>> users = impacted_users(xraykit.load_sample("shop"), kind="fault")
    >>> bool((users["impacted"] <= users["traces"]).all())
    True
    """
    _check_traces(traces)
    check_choice("kind", kind, ("fault", "error", "throttle", "slow"))
    tr = traces.traces
    if kind == "slow":
        if threshold_s is None:
            raise ValueError(
                "`kind='slow'` needs `threshold_s`, the response time in seconds above which a "
                "request counts as slow, e.g. impacted_users(ts, kind='slow', threshold_s=1.0)."
            )
        hit = tr["response_time_s"] > _check_seconds(threshold_s)
    elif kind == "throttle":
        hit = pd.Series(_root_throttled(traces), index=tr.index)
    else:
        hit = tr[{"fault": "has_fault", "error": "has_error"}[kind]]
    impacted = pd.DataFrame(
        {"trace_id": tr["trace_id"], "impacted": hit.astype(bool), "start": tr["start"]}
    )
    if by == "user":
        seg = traces.segments
        values = pd.concat(
            [
                pd.DataFrame({"trace_id": seg["trace_id"], "user": seg["user"]}),
                pd.DataFrame({"trace_id": tr["trace_id"], "user": tr["user"]}),
            ],
            ignore_index=True,
        )
    elif by.startswith("annotation.") and len(by) > 11:
        ann = traces.annotations
        ann = ann.loc[ann["key"] == by[11:]]
        values = pd.DataFrame({"trace_id": ann["trace_id"], by: ann["value"]})
    else:
        raise ValueError(f"`by` must be 'user' or 'annotation.<key>', but {by!r} was passed.")
    values = values.dropna().drop_duplicates().merge(impacted, on="trace_id")
    values["impacted_start"] = values["start"].where(values["impacted"])
    grouped = values.groupby(by, sort=True)
    out = pd.DataFrame(
        {
            "traces": grouped["trace_id"].nunique(),
            "impacted": grouped["impacted"].sum().astype("int64"),
            "first_impacted": grouped["impacted_start"].min(),
            "last_impacted": grouped["impacted_start"].max(),
        }
    )
    out.insert(2, "impacted_share", out["impacted"] / out["traces"])
    out = out.loc[out["impacted"] > 0].reset_index()
    return out.sort_values(["impacted", by], ascending=[False, True], ignore_index=True)


# ----------------------------------------------------------------------------------------------
# comparing two sets of traces


_RATE_FLOOR = 0.01


def _log2_fold(new: pd.Series, old: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(
            np.log2(new.to_numpy(dtype="float64") / old.to_numpy(dtype="float64")), index=new.index
        )


def compare(
    a: TraceSet,
    b: TraceSet,
    *,
    by: str = "service",
    min_count: int = 5,
) -> pd.DataFrame:
    """Compare two TraceSets side by side, groups ranked by the size of the change.

    Typical use: ``a`` is the hour before an incident or deploy and ``b`` the incident window.
    For each group both sides get counts, error/fault/throttle rates and p50/p90/p99, and the
    change of each metric is measured as a log2 fold change (b over a), so that a dependency
    going from 20 ms to 200 ms (×10) outranks its caller going from 300 ms to 480 ms (×1.6):

    * latency: ``log2(p_b / p_a)`` for p50, p90 and p99;
    * rates: ``log2((rate_b + 0.01) / (rate_a + 0.01))``: a fold change with a floor of one
      percentage point, so a fault rate rising from 0 to 5 % (×6) counts like a latency ×6,
      and one from 0 to 0.1 % barely counts;
    * traffic: ``log2`` of the ratio of requests per trace (smoothed the same way), which
      catches retries and new call patterns whatever the lengths of the two windows
      (``(requests + 1) / (traces + 1)`` on each side).

    ``score`` is the largest absolute of these, ``driver`` names the metric and ``change`` is
    its signed value. Groups with fewer than ``min_count`` requests on either side are
    ranked after all the others (their changes are mostly noise, or the group is new).

    Parameters
    ----------
    a, b : TraceSet
        The baseline and the set to compare with it.
    by : str
        ``"service"`` (services' own segments), ``"edge"`` (callers' subsegments),
        ``"url"``, ``"status"`` or ``"method"`` of whole traces, or ``"annotation.<key>"``.
    min_count : int
        Requests needed on each side for a group to be ranked with the others.

    Returns
    -------
    DataFrame
        One row per group: the group columns, ``count_a, count_b``, then ``<metric>_a`` and
        ``<metric>_b`` for ``p50_s, p90_s, p99_s, error_rate, fault_rate, throttle_rate``, then
        ``driver, change, score``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import compare
    >>> ts = xraykit.load_sample("shop")
    >>> half = len(ts) // 2
    >>> table = compare(ts.select(ts.traces.trace_id[:half]), ts.select(ts.traces.trace_id[half:]))
    >>> list(table.columns[:4])
    ['service', 'service_type', 'count_a', 'count_b']
    """
    _check_traces(a, "a")
    _check_traces(b, "b")
    items = _parse_by(by, ("service", "edge", "url", "status", "method", "user"))
    keys = [k[11:] for k in items if k.startswith("annotation.")]
    level = _level_of(items)
    cols = _group_columns(items)
    q = (50, 90, 99)
    sides = [_summarise(_measurements(t, level, keys), cols, q, rates=True) for t in (a, b)]
    merged = sides[0].merge(sides[1], on=cols, how="outer", suffixes=("_a", "_b"))
    merged[["count_a", "count_b"]] = merged[["count_a", "count_b"]].fillna(0).astype("int64")
    changes = {}
    for p in q:
        changes[f"p{p}_s"] = _log2_fold(merged[f"p{p}_s_b"], merged[f"p{p}_s_a"])
    n_a, n_b = merged["count_a"], merged["count_b"]
    for flag in ("error", "fault", "throttle"):
        changes[f"{flag}_rate"] = _log2_fold(
            merged[f"{flag}_rate_b"] + _RATE_FLOOR, merged[f"{flag}_rate_a"] + _RATE_FLOOR
        )
    changes["requests_per_trace"] = _log2_fold((n_b + 1) / (len(b) + 1), (n_a + 1) / (len(a) + 1))
    change = pd.DataFrame(changes).replace([np.inf, -np.inf], np.nan)
    magnitude = change.abs()
    has_score = magnitude.notna().any(axis=1)
    best = magnitude.fillna(-1.0).to_numpy().argmax(axis=1)
    driver = pd.Series(np.asarray(change.columns)[best], index=change.index).where(has_score)
    picked = change.to_numpy()[np.arange(len(change)), best]
    out = merged[[*cols, "count_a", "count_b"]].copy()
    for metric in ("p50_s", "p90_s", "p99_s", "error_rate", "fault_rate", "throttle_rate"):
        out[f"{metric}_a"] = merged[f"{metric}_a"]
        out[f"{metric}_b"] = merged[f"{metric}_b"]
    out["driver"] = driver.astype("str")
    out["change"] = np.where(has_score, picked, np.nan)
    out["score"] = magnitude.max(axis=1)
    out["_small"] = (out["count_a"] < min_count) | (out["count_b"] < min_count)
    out = out.sort_values(["_small", "score"], ascending=[True, False], na_position="last")
    return out.drop(columns="_small").reset_index(drop=True)

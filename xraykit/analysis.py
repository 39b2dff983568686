"""Answer the analyst's questions from a TraceSet: SLA, throttling, impacted users, root causes,
critical paths, comparisons and percentiles.

Every function takes a :class:`~xraykit.TraceSet`, never modifies it, and returns a new
DataFrame. Latencies are float seconds (``_s``), X-Ray's own unit.

Two views of "how long did a service take" appear throughout, as in the X-Ray console:

* **per service (node)** — the service's own segments: how long *it* says it worked on each
  request (``xraykit.servicegraph.node_segments``);
* **per edge** — the *caller's* subsegments: the round trip the caller waited for, network and
  queueing included (``xraykit.servicegraph.edge_calls``). An edge can therefore be slower than
  the node it points to.

Examples
--------
>>> import xraykit
>>> from xraykit import analysis
>>> ts = xraykit.load_sample("shop")
>>> table = analysis.percentiles(ts, by="service")
>>> list(table.columns[:3])
['service', 'count', 'mean_s']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = [
    "compare",
    "critical_path",
    "critical_path_share",
    "impacted_users",
    "percentiles",
    "root_cause_paths",
    "root_causes",
    "sla",
    "throttles",
]

_EPOCH = pd.Timestamp(0, tz="UTC")
_SECOND = pd.Timedelta(1, "s")
_CALL_NAMESPACES = ("aws", "remote")
ROOT_CAUSE_KINDS = ("fault", "error", "responsetime")


# ----------------------------------------------------------------------------------------------
# small helpers


def _seconds(times: pd.Series) -> np.ndarray:
    """Epoch seconds of a tz-aware datetime column as floats (NaN for NaT)."""
    return np.asarray((times - _EPOCH) / _SECOND, dtype="float64")


def _times(seconds: np.ndarray | pd.Series) -> pd.Series:
    """Epoch seconds back to UTC times, rounded to X-Ray's microsecond resolution."""
    micros = np.round(np.asarray(seconds, dtype="float64") * 1e6)
    return pd.Series(pd.to_datetime(micros, unit="us", utc=True)).astype("datetime64[ns, UTC]")


def _check_choice(name: str, value: object, options: Sequence[object]) -> None:
    if value not in options:
        raise ValueError(f"`{name}` must be one of {tuple(options)}, but {value!r} was passed.")


def _servicegraph() -> Any:
    from xraykit import servicegraph

    return servicegraph


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

    Columns: ``trace_id, entity_id, key, parent_key, is_segment, name, namespace, inferred,
    start_s, end_s, fault, error, throttle, remote, service_key, service_name, service_type,
    account_id, is_root, cause_id``. ``key`` is ``trace_id/entity_id``; a segment's tree parent
    is the subsegment named by its ``parent_id`` when that subsegment is in the trace, else it
    is the root of a tree. A call subsegment (namespace ``aws``/``remote`` or SQL) with no
    segment below it gets a derived inferred child, as the service graph draws one.
    """
    seg = traces.segments
    sub = traces.subsegments
    sub = sub.loc[~sub["orphan"] & sub["segment_id"].notna()]
    roots = set(traces.traces["root_segment_id"].dropna())

    seg_key = seg["trace_id"] + "/" + seg["segment_id"]
    sub_key = sub["trace_id"] + "/" + sub["subsegment_id"]
    seg_parent = seg["trace_id"] + "/" + seg["parent_id"]
    seg_parent = seg_parent.where(seg_parent.isin(set(sub_key) | set(seg_key)))
    segments = pd.DataFrame(
        {
            "trace_id": seg["trace_id"],
            "entity_id": seg["segment_id"],
            "key": seg_key,
            "parent_key": seg_parent,
            "is_segment": True,
            "name": seg["name"],
            "namespace": pd.Series(pd.NA, index=seg.index, dtype="str"),
            "inferred": seg["inferred"],
            "start_s": _seconds(seg["start"]),
            "end_s": _seconds(seg["end"]),
            "fault": seg["fault"],
            "error": seg["error"],
            "throttle": seg["throttle"],
            "remote": False,
            "service_key": seg_key,
            "service_name": seg["name"],
            "service_type": seg["origin"],
            "account_id": seg["account_id"],
            "is_root": seg["segment_id"].isin(roots) & seg_parent.isna(),
            "cause_id": seg["cause_id"],
        }
    )
    is_call = sub["namespace"].isin(_CALL_NAMESPACES) | sub["sql_url"].notna()
    is_call |= sub["sql_database_type"].notna()
    owner_key = sub["trace_id"] + "/" + sub["segment_id"]
    owner = segments.set_index("key")
    subsegments = pd.DataFrame(
        {
            "trace_id": sub["trace_id"],
            "entity_id": sub["subsegment_id"],
            "key": sub_key,
            "parent_key": sub["trace_id"] + "/" + sub["parent_id"],
            "is_segment": False,
            "name": sub["name"],
            "namespace": sub["namespace"],
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
    # a call with no segment of its own below it: the downstream X-Ray would infer
    called = set(segments["parent_key"].dropna())
    bare = subsegments.loc[is_call.to_numpy() & ~subsegments["key"].isin(called)]
    bare_sub = sub.loc[bare.index]
    kind = np.where(
        bare_sub["namespace"].to_numpy() == "aws",
        np.where(bare_sub["table_name"].notna(), "AWS::DynamoDB::Table", "AWS::" + bare["name"]),
        np.where(
            bare_sub["sql_url"].notna() | bare_sub["sql_database_type"].notna(),
            "Database::SQL",
            "remote",
        ),
    )
    derived = bare.assign(
        key=bare["key"] + "#inferred",
        parent_key=bare["key"],
        is_segment=True,
        inferred=True,
        remote=False,
        service_type=pd.Series(kind, index=bare.index, dtype="str"),
        service_name=bare["name"],
        account_id=bare_sub["aws_account_id"],
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
        frontier = ent["parent_key"].isin(keys) & (level < 0)
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
    vectorised over all parents of a level.
    """
    info = ent.set_index("key")
    win = pd.DataFrame({"key": root_keys.to_numpy()})
    win["win_start_s"] = win["key"].map(info["start_s"])
    win["win_end_s"] = win["key"].map(info["end_s"])
    win = win.dropna(subset=["win_start_s", "win_end_s"])
    win["level"] = 0
    out = []
    children = ent.loc[ent["parent_key"].notna(), ["key", "parent_key", "start_s", "end_s"]]
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
            best = eff_end.groupby(kids["parent_key"], sort=False).idxmax()
            pick = kids.loc[best.to_numpy(), ["key", "parent_key", "cs"]].assign(
                ce=eff_end.loc[best.to_numpy()].to_numpy()
            )
            picked.append(pick)
            cursor = pick.set_index("parent_key")["cs"].combine_first(cursor)
            kids = kids.drop(index=best.to_numpy())
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


def _critical_frame(traces: TraceSet) -> pd.DataFrame:
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
    KeyError
        When ``trace_id`` is not in ``traces``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import critical_path
    >>> ts = xraykit.load_sample("shop")
    >>> path = critical_path(ts, ts.traces["trace_id"].iloc[0])
    >>> round(path["share"].sum(), 6)
    1.0
    """
    if trace_id not in set(traces.traces["trace_id"]):
        raise KeyError(
            f"`trace_id` {trace_id!r} is not in this TraceSet of {len(traces)} traces; "
            "pick one from traces.traces['trace_id']."
        )
    frame = _critical_frame(traces.select([trace_id]))
    frame = frame.sort_values(["win_start_s", "level"], kind="stable")
    return pd.DataFrame(
        {
            "trace_id": frame["trace_id"].astype("str"),
            "entity_id": frame["entity_id"].astype("str"),
            "name": frame["name"].astype("str"),
            "service": frame["service_name"].astype("str"),
            "service_type": frame["service_type"].astype("str"),
            "depth": frame["level"].astype("int64"),
            "start": _times(frame["win_start_s"]).to_numpy(),
            "end": _times(frame["win_end_s"]).to_numpy(),
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
    >>> round(shares["share"].sum(), 6)
    1.0
    """
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
      (``error`` for ``kind="error"``) flag is set while none of its children's is. Each one is
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
    _check_choice("kind", kind, ROOT_CAUSE_KINDS)
    ent = _entities(traces)
    if kind == "responsetime":
        crit = _critical_frame(traces)
        if threshold_s is not None:
            slow = set(
                traces.traces.loc[traces.traces["response_time_s"] > threshold_s, "trace_id"]
            )
            crit = crit.loc[crit["trace_id"].isin(slow)]
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
        flagged_parents = set(ent.loc[flag, "parent_key"].dropna())
        leaves = ent.loc[flag & ~ent["key"].isin(flagged_parents), ["key", "start_s"]]
        leaves = leaves.sort_values("start_s", kind="stable").assign(cause=lambda f: f["key"])
        coverage_of = None
    if leaves.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _PATH_COLUMNS.items()})

    rows = _paths_to(ent, leaves)
    info = ent.set_index("key")
    for col in ("trace_id", "entity_id", "name", "service_key", "service_name", "service_type",
                "account_id", "remote", "is_root", "fault", "error"):
        rows[col] = rows["key"].map(info[col])
    rows["inferred"] = rows["service_key"].map(info["inferred"]).fillna(False).astype(bool)
    # a cause whose path repeats an earlier cause of the same trace (retries) is listed once
    step = rows["service_name"].fillna("") + ":" + rows["name"].fillna("")
    signature = step.groupby(rows["cause"], sort=False).agg("|".join)
    first_seen = pd.DataFrame({"cause": signature.index, "sig": signature.to_numpy()})
    first_seen["trace_id"] = first_seen["cause"].map(info["trace_id"])
    keep = set(first_seen.drop_duplicates(["trace_id", "sig"])["cause"])
    rows = rows.loc[rows["cause"].isin(keep)]
    order = leaves.loc[leaves["cause"].isin(keep), "cause"].reset_index(drop=True)
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

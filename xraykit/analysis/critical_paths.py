"""The critical path: the chain of entities that determines a trace's response time.

:func:`critical_path` lists one trace's path; :func:`critical_path_share` credits the time on
every trace's path to services. The windows computed here also drive the response-time root
causes (:mod:`xraykit.analysis.root_cause`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xraykit.analysis._common import _times
from xraykit.analysis.entities import _entities
from xraykit.arguments import check_traceset
from xraykit.schema import isin

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["critical_path", "critical_path_share"]

_TIE_MIN_S = 0.001  # children ending this close to the latest end count as ending together
_TIE_SHARE = 0.02  # ... or this share of the parent's window, whichever is larger


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


def _main_roots(ts: TraceSet, ent: pd.DataFrame) -> pd.Series:
    roots = ent.loc[ent["is_root"], ["trace_id", "key"]].drop_duplicates("trace_id")
    return roots["key"]


def _critical_frame(ts: TraceSet, ent: pd.DataFrame | None = None) -> pd.DataFrame:
    if ent is None:
        ent = _entities(ts)
    win = _critical_windows(ent, _main_roots(ts, ent))
    frame = win.merge(ent, on="key", how="left")
    root_len = (frame["win_end_s"] - frame["win_start_s"]).where(frame["level"] == 0)
    total = root_len.groupby(frame["trace_id"]).transform("max")
    frame["share"] = frame["self_s"] / total
    return frame


def critical_path(ts: TraceSet, trace_id: str) -> pd.DataFrame:
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
    ts : TraceSet
    trace_id : str
        A trace in ``ts``.

    Returns
    -------
    DataFrame
        In timeline order: ``trace_id, entity_id, name, service, service_type, depth,
        start, end`` (the part of the entity on the path), ``critical_s`` (its own time on the
        path), ``share`` (``critical_s`` over the root's response time).

    Raises
    ------
    NotFoundError
        When ``trace_id`` is not in ``ts`` (as :meth:`TraceSet.trace`).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import critical_path
    >>> ts = xraykit.load_sample("shop")
    >>> path = critical_path(ts, ts.traces["trace_id"].iloc[0])
    >>> round(float(path["share"].sum()), 6)
    1.0
    """
    check_traceset(ts)
    frame = _critical_frame(ts.trace(trace_id))  # NotFoundError for an unknown id
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


def critical_path_share(ts: TraceSet) -> pd.DataFrame:
    """Return each service's share of the time on the critical path, across all ts.

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
    check_traceset(ts)
    frame = _critical_frame(ts)
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

"""The critical path: the chain of entities that determines a trace's response time.

:func:`critical_path` lists one trace's path; :func:`critical_path_share` credits the time on
every trace's path to services. The windows computed here also drive the response-time root
causes (:mod:`xraykit.analysis.root_cause`).
"""

from __future__ import annotations

import math
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
_WALK_MAX = 20_000  # entities up to which the path is walked parent by parent


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
    if len(win) and len(ent) <= _WALK_MAX:
        walked = _walk(ent, win)
        if walked is not None:
            return walked
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


def _walk(ent: pd.DataFrame, roots: pd.DataFrame) -> pd.DataFrame | None:
    """:func:`_critical_windows` below the level-0 windows ``roots``, one parent at a time.

    The same choices, in the same row order and with the same sums, as the vectorised
    levels; for trees of a few thousand entities (a page of traces), where each
    vectorised step costs more in fixed overhead than it saves. None when the entity keys
    repeat (the vectorised form then decides).
    """
    keys = ent["key"].to_numpy(dtype=object)
    if len(set(keys)) != len(keys):
        return None
    parent_keys = ent["parent_key"].to_numpy(dtype=object)
    has_parent = ent["parent_key"].notna().to_numpy(dtype=bool)
    starts = ent["start_s"].to_numpy(dtype="float64")
    ends = ent["end_s"].to_numpy(dtype="float64")
    children: dict[object, list[int]] = {}
    for row in np.flatnonzero(has_parent).tolist():
        children.setdefault(parent_keys[row], []).append(row)
    parents_of_kids = set(children)
    level_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # key, start, end per level
    picks: list[tuple[int, object, float, float]] = []  # (parent level, parent, start, end)
    win = list(
        zip(
            roots["key"].to_numpy(dtype=object),
            roots["win_start_s"].to_numpy(dtype="float64"),
            roots["win_end_s"].to_numpy(dtype="float64"),
            strict=True,
        )
    )
    level = 0
    while win:
        rounds: list[list[tuple[object, int, float, float]]] = []  # (parent, child, cs, ce)
        for parent, w_start, w_end in win:
            kids = []
            for child in children.get(parent, ()):
                cs = np.maximum(starts[child], w_start)  # NaN stays NaN, as in the frame form
                ce = min(w_end if math.isnan(ends[child]) else ends[child], w_end)
                if ce > cs:
                    kids.append((float(cs), float(ce), keys[child] in parents_of_kids, child))
            kids.sort(key=lambda k: k[0])  # stable: ties keep the entities' order
            at = w_end
            tolerance = max(_TIE_MIN_S, _TIE_SHARE * (w_end - w_start))
            step = 0
            while kids:
                kids = [k for k in kids if k[0] < at]
                if not kids:
                    break
                eff = [min(k[1], at) for k in kids]
                floor = max(eff) - tolerance
                best = 0
                for j in range(1, len(kids)):  # the last of the highest (near, has_kids, end)
                    if (eff[j] >= floor, kids[j][2], eff[j]) >= (
                        eff[best] >= floor,
                        kids[best][2],
                        eff[best],
                    ):
                        best = j
                start, _, _, child = kids.pop(best)
                if step == len(rounds):
                    rounds.append([])
                rounds[step].append((parent, child, start, eff[best]))
                at = start
                step += 1
        chosen = [pick for one in rounds for pick in sorted(one, key=lambda p: str(p[0]))]
        picks.extend((level, parent, cs, ce) for parent, _, cs, ce in chosen)
        level += 1
        win = [(keys[i], cs, ce) for _, i, cs, ce in chosen]
        if win:
            level_rows.append(
                (
                    np.array([w[0] for w in win], dtype=object),
                    np.array([w[1] for w in win], dtype="float64"),
                    np.array([w[2] for w in win], dtype="float64"),
                )
            )
    frames = [roots.assign(level=0)]
    for depth, (key, w_start, w_end) in enumerate(level_rows, start=1):
        frames.append(
            pd.DataFrame({"key": key, "win_start_s": w_start, "win_end_s": w_end, "level": depth})
        )
    out = pd.concat(frames, ignore_index=True)
    # the time each window's chosen children cover, summed as the frame form sums it
    chosen_frame = pd.DataFrame(
        {
            "level": np.array([p[0] for p in picks], dtype="int64"),
            "parent_key": np.array([p[1] for p in picks], dtype=object),
            "length": np.array([p[3] for p in picks], dtype="float64")
            - np.array([p[2] for p in picks], dtype="float64"),
        }
    )
    covered = chosen_frame.groupby(["level", "parent_key"])["length"].sum()
    index = pd.MultiIndex.from_arrays([out["level"].to_numpy(), out["key"].to_numpy(dtype=object)])
    own = pd.Series(covered.reindex(index).to_numpy(dtype="float64")).fillna(0.0).to_numpy()
    out["self_s"] = (out["win_end_s"] - out["win_start_s"]).to_numpy() - own
    return out


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

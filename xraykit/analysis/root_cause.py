"""Root causes as X-Ray's TraceSummary lists them: fault, error and response time.

:data:`ROOT_CAUSE_KINDS` is the one set of kind names; :func:`root_cause_paths` gives each
cause's entity path, :func:`root_causes` counts causes across traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from xraykit.analysis._common import _check_seconds
from xraykit.analysis.critical_paths import _critical_frame
from xraykit.analysis.entities import _entities, _exceptions
from xraykit.arguments import check_choice, check_traceset
from xraykit.schema import isin

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = [
    "ROOT_CAUSE_KINDS",
    "RootCauseKind",
    "root_cause_paths",
    "root_cause_paths_by_kind",
    "root_causes",
]

#: The kinds of root cause X-Ray lists (``FaultRootCauses``, ``ErrorRootCauses``,
#: ``ResponseTimeRootCauses``), named with X-Ray's filter words.
ROOT_CAUSE_KINDS: tuple[str, ...] = ("fault", "error", "responsetime")
RootCauseKind = Literal["fault", "error", "responsetime"]
_WALK_MAX = 20_000  # causes up to which their paths are walked in Python


def _paths_to(ent: pd.DataFrame, leaves: pd.DataFrame) -> pd.DataFrame:
    """For each leaf (``cause`` column), its ancestors up to its tree root, root first."""
    if len(leaves) <= _WALK_MAX:
        walked = _walk_up(ent, leaves)
        if walked is not None:
            return walked
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


def _walk_up(ent: pd.DataFrame, leaves: pd.DataFrame) -> pd.DataFrame | None:
    """:func:`_paths_to` leaf by leaf in Python (the same rows); None when keys repeat."""
    keys = ent["key"].to_numpy(dtype=object)
    parent_of = dict(zip(keys, ent["parent_key"].to_numpy(dtype=object), strict=True))
    if len(parent_of) != len(keys):
        return None
    limit = len(ent)
    causes: list[object] = []
    path_keys: list[object] = []
    heights: list[int] = []
    counts: list[int] = []
    for cause, key in sorted(
        zip(
            leaves["cause"].to_numpy(dtype=object),
            leaves["key"].to_numpy(dtype=object),
            strict=True,
        ),
        key=lambda pair: str(pair[0]),
    ):
        path = [key]  # the leaf, then its ancestors (at most ``limit`` steps up)
        while len(path) <= limit:
            parent = parent_of.get(path[-1])
            if parent is None or pd.isna(parent):
                break
            path.append(parent)
        top = len(path) - 1
        causes.extend([cause] * len(path))
        path_keys.extend(reversed(path))
        heights.extend(range(top, -1, -1))
        counts.extend([len(path)] * len(path))
    height = np.array(heights, dtype="int64")
    count = np.array(counts, dtype="int64")
    return pd.DataFrame(
        {
            "cause": np.array(causes, dtype=object),
            "key": np.array(path_keys, dtype=object),
            "height": height,
            "entity_count": count,
            "entity_index": count - 1 - height,
        }
    )


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
    ts: TraceSet,
    kind: RootCauseKind = "fault",
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
      (``error`` for ``kind="error"``) flag is set (by X-Ray's rule,
      :func:`xraykit.status.flags`: the document's flag or its HTTP status) while no entity
      below it (at any depth) has it. A flagged entity with a flagged descendant is
      explained by that descendant, even when the flags do not form an unbroken chain (API
      Gateway returns 502 because the function below the non-faulting Lambda service segment
      raised). Each one is a separate cause (``cause_index``, ordered by start; causes with
      identical paths, such as retries of one failing call, are listed once). Its exception
      is the entity's first exception (a bare-string ``cause`` is followed to the exception
      it names).
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
    ts : TraceSet
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
    ArgumentError
        For an unknown ``kind``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import root_cause_paths
    >>> paths = root_cause_paths(xraykit.load_sample("shop"), "responsetime")
    >>> bool((paths.groupby("trace_id")["cause_index"].max() == 0).all())
    True
    """
    check_traceset(ts)
    if threshold_s is not None:
        threshold_s = _check_seconds(threshold_s)
    check_choice("kind", kind, ROOT_CAUSE_KINDS)
    return _paths_of(ts, _entities(ts), kind, threshold_s, None)


def root_cause_paths_by_kind(
    ts: TraceSet, kinds: Sequence[str] = ROOT_CAUSE_KINDS
) -> dict[str, pd.DataFrame]:
    """Return :func:`root_cause_paths` of several kinds at once, sharing the entity tree.

    A TraceSummary lists the fault, error and response-time causes of its trace: this
    builds the tree of entities (and their exceptions) once for all of them.

    Parameters
    ----------
    ts : TraceSet
    kinds : sequence of {"fault", "error", "responsetime"}
        Default :data:`ROOT_CAUSE_KINDS`.

    Returns
    -------
    dict of str to DataFrame
        ``{kind: root_cause_paths(ts, kind)}``, in the order of ``kinds``.

    Raises
    ------
    ArgumentError
        For an unknown kind.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.analysis import root_cause_paths
    >>> from xraykit.analysis.root_cause import root_cause_paths_by_kind
    >>> ts = xraykit.load_sample("shop")
    >>> paths = root_cause_paths_by_kind(ts)
    >>> list(paths), paths["fault"].equals(root_cause_paths(ts, "fault"))
    (['fault', 'error', 'responsetime'], True)
    """
    check_traceset(ts)
    kinds = list(kinds)
    for kind in kinds:
        check_choice("kind", kind, ROOT_CAUSE_KINDS)
    ent = _entities(ts)
    exc: list[pd.DataFrame] = []  # the entities' exceptions, read once when a kind needs them
    return {kind: _paths_of(ts, ent, kind, None, exc) for kind in kinds}


def _paths_of(
    ts: TraceSet,
    ent: pd.DataFrame,
    kind: str,
    threshold_s: float | None,
    exc_memo: list[pd.DataFrame] | None,
) -> pd.DataFrame:
    """:func:`root_cause_paths` over the entity tree ``ent`` of ``ts`` (checked arguments)."""
    if kind == "responsetime":
        crit = _critical_frame(ts, ent)
        if threshold_s is not None:
            slow = set(ts.traces.loc[ts.traces["response_time_s"] > threshold_s, "trace_id"])
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
    if exc_memo is None:
        exc = _exceptions(ts, ent).set_index("key")
    else:
        if not exc_memo:
            exc_memo.append(_exceptions(ts, ent).set_index("key"))
        exc = exc_memo[0]
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
    ts: TraceSet,
    kind: RootCauseKind = "fault",
    *,
    threshold_s: float | None = None,
) -> pd.DataFrame:
    """Count root causes across traces: which service, entity path and exception, how often.

    Each trace's causes come from :func:`root_cause_paths` (read its rules there). A cause
    is summarised by its last service (the one X-Ray blames), the entity path inside that
    service, and the deepest entity's exception.

    Parameters
    ----------
    ts : TraceSet
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
    check_traceset(ts)
    paths = root_cause_paths(ts, kind, threshold_s=threshold_s)
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
            "share": grouped["trace_id"].nunique() / max(len(ts), 1),
            "mean_coverage": grouped["coverage"].mean(),
        }
    ).reset_index()
    out = out.astype({"traces": "int64", "client_impacting": "int64"})
    return out.sort_values(["traces", "service_name"], ascending=[False, True], ignore_index=True)

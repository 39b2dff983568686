"""Comparing two TraceSets — before and after an incident or deploy — group by group.

:func:`compare` measures both sides as :func:`~xraykit.analysis.percentiles` does, with the
outcome rates, and ranks the groups by the size of the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xraykit.analysis.latency import _summarise, group_keys
from xraykit.analysis.requests import Level, _measurements
from xraykit.arguments import check_traceset

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["compare", "rank_changes"]

_RATE_FLOOR = 0.01


def _log2_fold(new: pd.Series, old: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(
            np.log2(new.to_numpy(dtype="float64") / old.to_numpy(dtype="float64")), index=new.index
        )


def compare(
    before: TraceSet,
    after: TraceSet,
    *,
    level: Level = "service",
    by: str | Sequence[str] | None = None,
    min_count: int = 5,
) -> pd.DataFrame:
    """Compare two TraceSets side by side, groups ranked by the size of the change.

    Typical use: ``before`` is the hour before an incident or deploy and ``after`` the incident
    window. For each group both sides get counts, error/fault/throttle rates and p50/p90/p99,
    and the change of each metric is measured as a log2 fold change (after over before), so
    that a dependency going from 20 ms to 200 ms (×10) outranks its caller going from 300 ms
    to 480 ms (×1.6):

    * latency: ``log2(p_after / p_before)`` for p50, p90 and p99;
    * rates: ``log2((rate_after + 0.01) / (rate_before + 0.01))``: a fold change with a floor
      of one percentage point, so a fault rate rising from 0 to 5 % (×6) counts like a latency ×6,
      and one from 0 to 0.1 % barely counts;
    * traffic: ``log2`` of the ratio of requests per trace (smoothed the same way), which
      catches retries and new call patterns whatever the lengths of the two windows
      (``(requests + 1) / (traces + 1)`` on each side).

    ``score`` is the largest absolute of these, ``driver`` names the metric and ``change`` is
    its signed value. Groups with fewer than ``min_count`` requests on either side are
    ranked after all the others (their changes are mostly noise, or the group is new).

    Parameters
    ----------
    before, after : TraceSet
        The baseline and the set to compare with it.
    level : {"service", "edge", "trace"}
        What is measured (as in :func:`~xraykit.analysis.percentiles`): services' own
        segments, callers' subsegments, or whole traces.
    by : str or list of str, optional
        Grouping keys, as in :func:`~xraykit.analysis.percentiles`: ``"url"``,
        ``"method"``, ``"status"``, ``"user"`` or ``"annotation.<key>"``.
    min_count : int
        Requests needed on each side for a group to be ranked with the others.

    Returns
    -------
    DataFrame
        One row per group: the group columns, ``count_a, count_b`` (``a`` is ``before``,
        ``b`` is ``after``), then ``<metric>_a`` and ``<metric>_b`` for ``p50_s, p90_s,
        p99_s, error_rate, fault_rate, throttle_rate``, then ``driver, change, score``.

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
    check_traceset(before, "before")
    check_traceset(after, "after")
    cols, keys = group_keys(level, by)
    q = (50, 90, 99)
    sides = [
        _summarise(_measurements(t, level, keys), cols, q, rates=True) for t in (before, after)
    ]
    return rank_changes(sides, cols, (len(before), len(after)), min_count=min_count)


def rank_changes(
    sides: Sequence[pd.DataFrame],
    cols: Sequence[str],
    n_traces: tuple[int, int],
    *,
    min_count: int = 5,
) -> pd.DataFrame:
    """Line up two sides' summaries (counts, rates, p50/p90/p99 per group, as ``compare``
    computes them) and rank the groups by their largest log2 change; the one ranking rule of
    :func:`compare` and of a dataset's ``compare`` (:mod:`xraykit.dataset`).

    ``n_traces`` is the number of traces on each side (for the requests-per-trace change).
    """
    cols = list(cols)
    q = (50, 90, 99)
    sides = list(sides)
    if not cols:  # all requests of each side are one group
        sides = [side.assign(_all=0) for side in sides]
    merged = sides[0].merge(sides[1], on=cols or ["_all"], how="outer", suffixes=("_a", "_b"))
    merged[["count_a", "count_b"]] = merged[["count_a", "count_b"]].fillna(0).astype("int64")
    changes = {}
    for p in q:
        changes[f"p{p}_s"] = _log2_fold(merged[f"p{p}_s_b"], merged[f"p{p}_s_a"])
    n_a, n_b = merged["count_a"], merged["count_b"]
    for flag in ("error", "fault", "throttle"):
        changes[f"{flag}_rate"] = _log2_fold(
            merged[f"{flag}_rate_b"] + _RATE_FLOOR, merged[f"{flag}_rate_a"] + _RATE_FLOOR
        )
    changes["requests_per_trace"] = _log2_fold(
        (n_b + 1) / (n_traces[1] + 1), (n_a + 1) / (n_traces[0] + 1)
    )
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

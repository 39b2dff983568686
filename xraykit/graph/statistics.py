"""Aggregation: counts by outcome and response-time statistics per node or edge.

Rows of :func:`~xraykit.graph.node_segments` / :func:`~xraykit.graph.edge_calls` are grouped
by integer codes and summarised at once (sorted runs, no Python loop over groups): counts
of ok / error / throttle / fault / in progress, total and mean response time, exact
percentiles, the response-time histogram (two significant digits), and the time window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from xraykit.graph.arrays import _NO_TEXT, _SEP, _bools, _micros, _strings, _time_array
from xraykit.graph.columns import _NAT


def _bucket(values: np.ndarray) -> np.ndarray:
    """Round response times to two significant digits: the histogram's bins."""
    v = np.asarray(values, dtype=float)
    out = np.zeros_like(v)
    positive = v > 0
    mag = np.floor(np.log10(v[positive]))
    scale = 10.0 ** (1 - mag)
    out[positive] = np.round(v[positive] * scale) / scale
    return out


def _group_codes(frame: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer group codes (sorted by key) and the row of each group's first occurrence."""
    columns = [pc.fill_null(_strings(frame[k]), _NO_TEXT) for k in keys]
    key = columns[0] if len(columns) == 1 else pc.binary_join_element_wise(*columns, _SEP)
    encoded = pc.dictionary_encode(key)
    index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    if len(index) == 0:
        return index, index
    order = np.argsort(np.asarray(encoded.dictionary.to_pylist(), dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    # dictionary entries are numbered in order of first appearance
    new = np.r_[True, index[1:] > np.maximum.accumulate(index)[:-1]]
    return rank[index], np.flatnonzero(new)[order]


def _time_bounds(frame: pd.DataFrame, codes: np.ndarray, groups: int) -> tuple[Any, Any]:
    """Earliest start and latest end per group (NaT ignored)."""
    order = np.argsort(codes, kind="stable")
    at = np.r_[0, np.cumsum(np.bincount(codes, minlength=groups))[:-1]]
    nat, top = _NAT, np.iinfo(np.int64).max
    start = _micros(frame["start"])[order]
    first = np.minimum.reduceat(np.where(start == nat, top, start), at)
    last = np.maximum.reduceat(_micros(frame["end"])[order], at)
    return _time_array(np.where(first == top, nat, first)), _time_array(last)


def _sorted_runs(codes: np.ndarray, values: np.ndarray, groups: int) -> dict[str, Any]:
    """Values sorted within groups, with each group's start and count (NaN values dropped)."""
    valid = ~np.isnan(values)
    c, v = codes[valid], values[valid]
    # = np.lexsort((v, c)): values first, then a stable sort of the few group codes (radix)
    order = np.argsort(v, kind="stable")
    small = c[order].astype(np.int16) if groups < 2**15 else c[order]
    order = order[np.argsort(small, kind="stable")]
    c, v = c[order], v[order]
    counts = np.bincount(c, minlength=groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    return {"codes": c, "values": v, "counts": counts, "starts": starts}


def _quantile(runs: dict[str, Any], q: float) -> np.ndarray:
    """Exact per-group quantiles with linear interpolation (pandas' default)."""
    counts, starts, v = runs["counts"], runs["starts"], runs["values"]
    out = np.full(len(counts), np.nan)
    has = counts > 0
    pos = q * (counts[has] - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, counts[has] - 1)
    frac = pos - lo
    base = starts[has]
    out[has] = v[base + lo] + frac * (v[base + hi] - v[base + lo])
    return out


def _histogram_lists(runs: dict[str, Any]) -> list[list[tuple[float, int]]]:
    """``[(value_s, count), ...]`` per group from values sorted within groups."""
    c, b = runs["codes"], _bucket(runs["values"])
    groups = len(runs["counts"])
    if len(c) == 0:
        return [[] for _ in range(groups)]
    new_run = np.r_[True, (c[1:] != c[:-1]) | (b[1:] != b[:-1])]
    run_starts = np.flatnonzero(new_run)
    run_counts = np.diff(np.r_[run_starts, len(c)])
    run_codes, run_values = c[run_starts], b[run_starts]
    per_group = np.bincount(run_codes, minlength=groups)
    bounds = np.r_[0, np.cumsum(per_group)]
    values, counts = run_values.tolist(), run_counts.tolist()
    return [
        list(zip(values[bounds[g] : bounds[g + 1]], counts[bounds[g] : bounds[g + 1]], strict=True))
        for g in range(groups)
    ]


def _statistics(
    frame: pd.DataFrame, codes: np.ndarray, groups: int, *, value: str = "response_time_s"
) -> dict[str, Any]:
    """The statistics columns (``_STAT_COLUMNS``) of each group of rows.

    A row still in progress (no ``end``) has neither a response time nor a status yet: it
    counts in ``in_progress_count`` only, not in the status buckets nor in ``total_count``,
    so that the mean is ``total_response_time_s / total_count`` as in X-Ray
    (``TotalResponseTime / TotalCount``).
    """
    done = _micros(frame["end"]) != _NAT
    fault = _bools(frame["fault"]) & done
    throttle = _bools(frame["throttle"]) & done
    error = (_bools(frame["error"]) | throttle) & ~fault & done
    throttle = throttle & error

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], minlength=groups).astype(np.int64)

    rt = frame[value].to_numpy(dtype=float, na_value=np.nan)
    rt = np.where(done, rt, np.nan)
    runs = _sorted_runs(codes, rt, groups)
    total_rt = np.bincount(runs["codes"], weights=runs["values"], minlength=groups)
    total = count(done)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where((runs["counts"] > 0) & (total > 0), total_rt / total, np.nan)
    start, end = _time_bounds(frame, codes, groups)
    histograms = np.empty(groups, dtype=object)
    histograms[:] = _histogram_lists(runs)
    return {
        "ok_count": count(done & ~(fault | error)),
        "error_count": count(error),
        "throttle_count": count(throttle),
        "fault_count": count(fault),
        "total_count": total,
        "in_progress_count": count(~done),
        "total_response_time_s": np.where(runs["counts"] > 0, total_rt, np.nan),
        "mean_response_time_s": mean,
        "p50_response_time_s": _quantile(runs, 0.5),
        "p90_response_time_s": _quantile(runs, 0.9),
        "p99_response_time_s": _quantile(runs, 0.99),
        "response_time_histogram": histograms,
        "start": start,
        "end": end,
    }

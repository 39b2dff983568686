"""Latency analyses as SQL over a dataset: percentiles, SLA shares and before/after comparison.

The same tables as :func:`xraykit.analysis.percentiles`, :func:`~xraykit.analysis.sla` and
:func:`~xraykit.analysis.compare`, computed by DuckDB from the stored request rows
(``requests_<level>``, :func:`xraykit.analysis.requests_frame` at write time). Percentiles
use ``quantile_cont`` (linear interpolation between the two nearest values: pandas'
default); missing group values form their own group, groups sorted as pandas sorts them.
Only the grouped results (one row per group) come back to pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xraykit.analysis.comparison import rank_changes
from xraykit.analysis.latency import group_keys
from xraykit.analysis.requests import LEVELS
from xraykit.arguments import check_choice, check_freq
from xraykit.dataset.aggregate import grouped_sql
from xraykit.dataset.read import decode_value
from xraykit.dataset.sql import literal
from xraykit.exceptions import ArgumentError, ArgumentTypeError

__all__ = ["compare_sql", "percentiles_sql", "sla_sql"]

_DTYPES = {"service": "str", "service_type": "str", "edge": "str", "url": "str",
           "method": "str", "user": "str", "status": "Int64"}  # fmt: skip


def _requests_sql(level: str, annotation_keys: Sequence[str], traces_where: str | None) -> str:
    """The request rows of ``level`` with the first value of each annotation in their trace."""
    sql = f"SELECT r.* FROM requests_{level} r"
    for i, key in enumerate(annotation_keys):
        sql = (
            f'SELECT q.*, a{i}.value AS "_text{i}", a{i}.value_type AS "_type{i}" FROM ({sql}) q '
            f"LEFT JOIN (SELECT trace_id, value, value_type FROM (SELECT trace_id, value, "
            f"value_type, row_number() OVER (PARTITION BY trace_id ORDER BY filename, "
            f"file_row_number) AS k FROM annotations WHERE key = {literal(key)}) WHERE k = 1) "
            f"a{i} USING (trace_id)"
        )
    if traces_where is not None:
        sql = (
            f"SELECT * FROM ({sql}) WHERE trace_id IN (SELECT trace_id FROM traces t WHERE "
            f"{traces_where})"
        )
    return sql


def _key_sql(cols: Sequence[str], annotation_keys: Sequence[str]) -> list[str]:
    out, i = [], 0
    for col in cols:
        if col.startswith("annotation."):
            out += [f'"_text{i}"', f'"_type{i}"']
            i += 1
        else:
            out.append(f'"{col}"')
    return out


def _finish(frame: pd.DataFrame, cols: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
    """Decode annotation keys, set the in-memory dtypes and sort the groups as pandas does."""
    i = 0
    for col in cols:
        if col.startswith("annotation."):
            values = [
                decode_value(v, t)
                for v, t in zip(frame.pop(f"_text{i}"), frame.pop(f"_type{i}"), strict=True)
            ]
            frame[col] = pd.Series(values, index=frame.index, dtype=object)
            i += 1
        elif col in _DTYPES:
            frame[col] = frame[col].astype(_DTYPES[col])
    rest = [c for c in frame.columns if c not in cols]
    frame = frame[[*cols, *rest]]
    if keys:
        frame = frame.sort_values(list(keys), na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def _summary(
    con: Any,
    level: str,
    cols: list[str],
    annotation_keys: list[str],
    percentiles: Sequence[float],
    traces_where: str | None,
    *,
    rates: bool = False,
) -> pd.DataFrame:
    keys = _key_sql(cols, annotation_keys)
    measures = ["COUNT(*) AS count", "favg(_v ORDER BY filename, file_row_number) AS mean_s"]
    if rates:
        measures += [
            f"AVG(CAST({f} AS DOUBLE)) AS {f}_rate" for f in ("error", "fault", "throttle")
        ]
    rows = _requests_sql(level, annotation_keys, traces_where)
    sql = grouped_sql(rows, keys, "latency_s", [p / 100 for p in percentiles], measures,
                      [f"p{p:g}_s" for p in percentiles])  # fmt: skip
    frame = con.sql(sql).df()
    if not keys and int(frame["count"].iloc[0]) == 0:
        frame = frame.iloc[0:0]
    frame["count"] = frame["count"].astype("int64")
    for column in frame.columns:
        if column.endswith("_s") or column.endswith("_rate"):
            frame[column] = frame[column].astype("float64")
    return _finish(frame, cols, cols)


def _check_percentiles(percentiles: Sequence[float]) -> list[float]:
    if isinstance(percentiles, str) or not isinstance(percentiles, Sequence):
        raise ArgumentTypeError(
            f"`percentiles` must be a sequence of numbers such as (50, 90, 99), but "
            f"{percentiles!r} was passed."
        )
    for p in percentiles:
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
            raise ArgumentError(
                f"`percentiles` must hold numbers from 0 to 100, but {p!r} was passed."
            )
    return list(percentiles)


def percentiles_sql(
    con: Any,
    *,
    level: str = "service",
    by: str | Sequence[str] | None = None,
    percentiles: Sequence[float] = (50, 90, 99),
    traces_where: str | None = None,
) -> pd.DataFrame:
    """:func:`xraykit.analysis.percentiles` of the dataset's traces (``traces_where``: which)."""
    cols, annotation_keys = group_keys(level, by)
    return _summary(
        con, level, cols, annotation_keys, _check_percentiles(percentiles), traces_where
    )


def _freq_micros(freq: str) -> int:
    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        nanos = int(offset.nanos)
    except ValueError:
        nanos = 0
    if nanos <= 0 or nanos % 1000:
        raise ArgumentError(
            f"`freq` must be a fixed length such as '5min' or '1h' for a dataset, but "
            f"{freq!r} was passed."
        )
    return nanos // 1000


def sla_sql(
    con: Any,
    threshold_s: float,
    *,
    level: str = "service",
    freq: str | None = None,
    traces_where: str | None = None,
) -> pd.DataFrame:
    """:func:`xraykit.analysis.sla` of the dataset's traces."""
    check_freq(freq)
    check_choice("level", level, LEVELS)
    if isinstance(threshold_s, bool) or not isinstance(threshold_s, int | float):
        raise ArgumentTypeError(
            f"`threshold_s` must be a positive number of seconds such as 0.5, but "
            f"{threshold_s!r} was passed."
        )
    if not (np.isfinite(threshold_s) and threshold_s > 0):
        raise ArgumentError(
            f"`threshold_s` must be a positive number of seconds such as 0.5, but "
            f"{threshold_s!r} was passed."
        )
    keys = ["edge"] if level == "edge" else ["service", "service_type"]
    select = []
    if freq is not None:
        step = _freq_micros(freq)
        select.append(f'make_timestamp((epoch_us("start") // {step}) * {step}) AS "time"')
        keys = ["time", *keys]
    rows = f"SELECT {', '.join(['*', *select[:1]] if freq is not None else ['*'])} FROM ({_requests_sql(level, [], traces_where)})"
    measures = ["COUNT(*) AS count",
                f"SUM(CASE WHEN latency_s <= {literal(threshold_s)} THEN 1 ELSE 0 END) AS within"]  # fmt: skip
    sql = grouped_sql(rows, [f'"{k}"' for k in keys], "latency_s", [0.9], measures, ["p90_s"])
    frame = con.sql(sql).df()
    frame["count"] = frame["count"].astype("int64")
    frame["within"] = frame["within"].astype("int64")
    frame["p90_s"] = frame["p90_s"].astype("float64")
    if "time" in frame:
        frame["time"] = pd.to_datetime(frame["time"]).dt.tz_localize("UTC")
    frame.insert(len(keys) + 2, "share", frame["within"] / frame["count"])
    return _finish(frame, keys, keys)


def compare_sql(
    con: Any,
    before_where: str,
    after_where: str,
    *,
    level: str = "service",
    by: str | Sequence[str] | None = None,
    min_count: int = 5,
) -> pd.DataFrame:
    """:func:`xraykit.analysis.compare` of two selections of the dataset's traces.

    The two sides are aggregated in SQL; ranking the groups (a row per group) follows
    :func:`xraykit.analysis.compare` step by step.
    """
    cols, keys = group_keys(level, by)
    q = (50, 90, 99)
    sides = [
        _summary(con, level, cols, keys, q, w, rates=True) for w in (before_where, after_where)
    ]
    n_traces = [
        int(con.sql(f"SELECT COUNT(*) FROM traces t WHERE {w}").fetchall()[0][0])
        for w in (before_where, after_where)
    ]
    return rank_changes(sides, cols, (n_traces[0], n_traces[1]), min_count=min_count)

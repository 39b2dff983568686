"""Grouped aggregates in SQL with the arithmetic of the in-memory analyses.

DuckDB's ``quantile_cont`` interpolates as ``lo * (1 - d) + hi * d``; pandas (and
:mod:`xraykit.graph.statistics`) as ``lo + (hi - lo) * d``. The two differ in the last bit
for about one value in ten, so :func:`grouped_sql` picks the two order statistics of each
percentile with a window (``row_number`` over the group, by value) and interpolates as
pandas does: the percentiles come out bit for bit the same. Sums are taken in ascending
order of the values (``sum(v ORDER BY v)``), as the graph's statistics add them; means use
``favg`` (compensated summation, as pandas' grouped mean; equal to the last bit or two).

>>> import duckdb, pandas as pd
>>> r = pd.DataFrame({"g": ["a"] * 4 + ["b"], "v": [1.0, 2.0, 3.0, 10.0, 0.3]})
>>> sql = grouped_sql("SELECT * FROM r", ["g"], "v", [0.9], ["COUNT(*) AS n"], ["p90"])
>>> rows = duckdb.sql(sql + " ORDER BY g").fetchall()
>>> [p for _, _, p in rows] == r.groupby("g")["v"].quantile(0.9).tolist()
True
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["grouped_sql", "quantile_sql"]


def quantile_sql(q: float, alias: str) -> str:
    """The aggregate of percentile ``q`` (0-1) over rows ranked by :func:`grouped_sql`."""
    pos = f"(CAST({float(q)!r} AS DOUBLE) * (_n - 1))"  # a bare 0.9 would be a DECIMAL
    lo = f"CAST(floor({pos}) AS BIGINT)"
    return (
        f"(max(_v) FILTER (WHERE _i = {lo}) + (max(_v) FILTER (WHERE _i = least({lo} + 1, _n - 1))"
        f' - max(_v) FILTER (WHERE _i = {lo})) * max({pos} - floor({pos}))) AS "{alias}"'
    )


def grouped_sql(
    rows: str,
    keys: Sequence[str],
    value: str,
    quantiles: Sequence[float],
    aggregates: Sequence[str],
    aliases: Sequence[str] | None = None,
) -> str:
    """SQL of one row per group of ``rows``: ``keys``, ``aggregates``, then the quantiles.

    ``value`` is the column the quantiles read (missing values skipped); inside
    ``aggregates`` it is ``_v``, the row's rank among its group's values ``_i`` and their
    number ``_n``. Quantile ``j`` is named ``aliases[j]`` (default ``q<j>``). No keys: one
    group of every row.
    """
    names = list(aliases) if aliases is not None else [f"q{j}" for j in range(len(quantiles))]
    partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
    ranked = (
        f"SELECT *, {value} AS _v, row_number() OVER ({partition}ORDER BY {value} ASC NULLS LAST)"
        f" - 1 AS _i, COUNT({value}) OVER ({partition.strip()}) AS _n FROM ({rows})"
    )
    columns = [
        *keys,
        *aggregates,
        *(quantile_sql(q, a) for q, a in zip(quantiles, names, strict=True)),
    ]
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return f"SELECT {', '.join(columns)} FROM ({ranked}){group}"

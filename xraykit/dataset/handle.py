"""The lazy handle on a dataset: :func:`open_dataset` and :class:`Dataset`.

Nothing is loaded when a dataset is opened: DuckDB (embedded, multi-threaded, spilling to
disk beyond its memory limit) reads the Parquet files for each question. Counts, the time
span and the services are SQL; ``query`` pushes the filter expression down as far as it
goes (:mod:`xraykit.dataset.sql`) and loads only the candidate traces; the analyses are SQL
over the stored request and graph rows (:mod:`xraykit.dataset.latency`,
:mod:`xraykit.dataset.servicegraph`).

>>> import tempfile, xraykit
>>> from xraykit.dataset import open_dataset
>>> ts = xraykit.load_sample("shop")
>>> with tempfile.TemporaryDirectory() as d:
...     ds = open_dataset(ts.save(d + "/shop", partition_by="date"))
...     same = (len(ds), ds.services == ts.services, len(ds.query("fault")) == len(ts.query("fault")))
...     ds.close()
>>> same == (len(ts), True, True)
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from xraykit.dataset.latency import compare_sql, percentiles_sql, sla_sql
from xraykit.dataset.read import connect, load_traces
from xraykit.dataset.servicegraph import service_graph_sql
from xraykit.dataset.sql import expression_sql, literal
from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.graph import ServiceGraph
from xraykit.partitions.layout import require_dataset
from xraykit.query import parse
from xraykit.traceset import TraceSet

__all__ = ["Dataset", "open_dataset"]

Window = tuple[Any, Any]


def _time(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(
            f"`{name}` must be a datetime, a Timestamp or an ISO 8601 string, but {value!r} "
            "was passed."
        ) from exc
    if ts is pd.NaT:
        raise ArgumentError(f"`{name}` must be a time, but {value!r} was passed.")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class Dataset:
    """A partitioned trace dataset, queried where it lies. Open one with :func:`open_dataset`.

    Times: a window ``start``/``end`` selects the traces whose start lies in
    ``[start, end)``; its days prune the ``date`` partitions.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        memory_limit: str | None = "1GB",
        threads: int | None = None,
    ) -> None:
        self.path, manifest = require_dataset(path)
        self.partition_by: tuple[str, ...] = tuple(manifest.get("partition_by", ()))
        self.manifest = manifest
        self._con = connect(
            self.path, self.partition_by, memory_limit=memory_limit, threads=threads
        )
        #: the cost of the live pull that wrote the dataset, when it comes from ``fetch``
        self.cost: Any = None

    # -- plumbing ------------------------------------------------------------------------

    @property
    def connection(self) -> Any:
        """The DuckDB connection: one view per frame (``traces``, ``segments``, ...,
        ``requests_service``, ``graph_nodes``), for SQL of your own."""
        return self._con

    def sql(self, query: str) -> pd.DataFrame:
        """Run SQL over the frames' views; return the result as a DataFrame.

        >>> # ds.sql("SELECT root_service, COUNT(*) FROM traces GROUP BY ALL")
        """
        relation = self._con.sql(query)
        return relation.df() if relation is not None else pd.DataFrame()

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self, start: Any = None, end: Any = None) -> str | None:
        """A condition on ``traces t`` for a window of trace starts (None: every trace)."""
        parts = []
        if start is not None:
            first = _time(start, "start")
            parts.append(f"t.start >= CAST({literal(first.isoformat())} AS TIMESTAMPTZ)")
            if "date" in self.partition_by:
                parts.append(f"t.date >= {literal(first.strftime('%Y-%m-%d'))}")
        if end is not None:
            last = _time(end, "end")
            parts.append(f"t.start < CAST({literal(last.isoformat())} AS TIMESTAMPTZ)")
            if "date" in self.partition_by:
                parts.append(f"t.date <= {literal(last.strftime('%Y-%m-%d'))}")
        return " AND ".join(parts) if parts else None

    # -- what the dataset holds --------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._con.sql("SELECT COUNT(*) FROM traces").fetchall()[0][0])

    @property
    def time_span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First start and last end over all traces (as ``TraceSet.time_span``), or None."""
        first, last, latest = self._con.sql(
            'SELECT MIN("start"), MAX("end"), MAX("start") FROM traces'
        ).fetchall()[0]
        if first is None:
            return None
        last = last if last is not None else latest
        return pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")

    @property
    def services(self) -> list[str]:
        """Names of the services (segment names, inferred ones included), sorted."""
        rows = self._con.sql("SELECT DISTINCT name FROM segments WHERE name IS NOT NULL").fetchall()
        return sorted(r[0] for r in rows)

    def __repr__(self) -> str:
        return f"<Dataset {str(self.path)!r}: {len(self):,} traces, partitioned by {list(self.partition_by)}>"

    # -- traces ---------------------------------------------------------------------------

    def to_traceset(
        self, *, limit: int | None = None, start: Any = None, end: Any = None
    ) -> TraceSet:
        """Load traces into memory: all of them (mind the size), the window's, or the first
        ``limit`` by start time."""
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ArgumentError(f"`limit` must be an int >= 0 or None, but {limit!r} was passed.")
        where = self._where(start, end)
        if where is None and limit is None:
            return load_traces(self._con, None)
        sql = f"SELECT trace_id FROM traces t WHERE {where or 'TRUE'} ORDER BY start, trace_id"
        if limit is not None:
            sql += f" LIMIT {limit}"
        return load_traces(self._con, sql)

    def candidates_sql(
        self, expression: str | None, *, start: Any = None, end: Any = None
    ) -> tuple[str, bool]:
        """The SQL selecting the candidate trace ids of ``expression``, and whether exact."""
        exact = True
        parts = [w for w in (self._where(start, end),) if w is not None]
        if expression is not None and expression.strip():
            condition, exact = expression_sql(parse(expression))
            if condition is not None:
                parts.append(condition)
        where = " AND ".join(parts) or "TRUE"
        return f"SELECT t.trace_id FROM traces t WHERE {where}", exact

    def query(
        self,
        expression: str,
        *,
        start: Any = None,
        end: Any = None,
        groups: Mapping[str, str] | None = None,
    ) -> TraceSet:
        """The traces matching an X-Ray filter expression, as ``ts.query`` finds them.

        What SQL can answer is pushed down; the candidate traces are then loaded and, unless
        the SQL was exact, checked by :func:`xraykit.query.evaluate`. ``start``/``end``
        restrict to traces starting in that window.
        """
        if not isinstance(expression, str):
            raise ArgumentTypeError(
                f"`expression` must be a filter expression (str), but {expression!r} was passed."
            )
        sql, exact = self.candidates_sql(expression, start=start, end=end)
        found = load_traces(self._con, sql)
        if exact or not expression.strip():
            return found
        return found.query(expression, groups=groups)

    # -- analyses ---------------------------------------------------------------------------

    def percentiles(
        self,
        *,
        level: str = "service",
        by: str | Sequence[str] | None = None,
        percentiles: Sequence[float] = (50, 90, 99),
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """:func:`xraykit.analysis.percentiles` as SQL (same columns, same numbers)."""
        return percentiles_sql(self._con, level=level, by=by, percentiles=percentiles,
                               traces_where=self._where(start, end))  # fmt: skip

    def sla(
        self,
        threshold_s: float,
        *,
        level: str = "service",
        freq: str | None = None,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """:func:`xraykit.analysis.sla` as SQL (``freq`` must be a fixed length)."""
        return sla_sql(self._con, threshold_s, level=level, freq=freq,
                       traces_where=self._where(start, end))  # fmt: skip

    def compare(
        self,
        before: Window,
        after: Window,
        *,
        level: str = "service",
        by: str | Sequence[str] | None = None,
        min_count: int = 5,
    ) -> pd.DataFrame:
        """:func:`xraykit.analysis.compare` of two windows ``(start, end)`` of trace starts."""
        wheres = []
        for name, window in (("before", before), ("after", after)):
            if not (isinstance(window, tuple | list) and len(window) == 2):
                raise ArgumentTypeError(
                    f"`{name}` must be a (start, end) window of trace start times, such as "
                    f"('2025-03-04 09:00', '2025-03-04 09:30'), but {window!r} was passed."
                )
            wheres.append(self._where(*window) or "TRUE")
        return compare_sql(self._con, wheres[0], wheres[1], level=level, by=by, min_count=min_count)

    def service_graph(self, *, start: Any = None, end: Any = None) -> ServiceGraph:
        """:func:`xraykit.graph.service_graph` statistics as SQL (the graph has no ``ts``)."""
        where = self._where(start, end)
        span = self.time_span if where is None else self._span(where)
        return service_graph_sql(self._con, where, span)

    def _span(self, where: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        first, last, latest = self._con.sql(
            f'SELECT MIN("start"), MAX("end"), MAX("start") FROM traces t WHERE {where}'
        ).fetchall()[0]
        if first is None:
            return None
        last = last if last is not None else latest
        return pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")


def open_dataset(
    path: str | os.PathLike[str] | Path,
    *,
    memory_limit: str | None = "1GB",
    threads: int | None = None,
) -> Dataset:
    """Open a dataset written by ``ts.save(path, partition_by=...)`` or ``fetch(..., to=path)``.

    Parameters
    ----------
    path : str or Path
        The dataset's folder.
    memory_limit : str or None
        DuckDB's memory limit (it spills to disk beyond it); None: DuckDB's default.
    threads : int, optional
        DuckDB's threads (default: one per core).

    Raises
    ------
    TraceFileNotFoundError
        When the folder does not exist.
    ArgumentError
        When the folder is not a dataset.
    MissingDependencyError
        When DuckDB (the ``dataset`` extra) is not installed.
    """
    return Dataset(path, memory_limit=memory_limit, threads=threads)

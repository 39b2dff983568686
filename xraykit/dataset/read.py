"""Reading a dataset with DuckDB: one view per stored frame, and frames back as a TraceSet.

:func:`connect` opens an embedded DuckDB (in memory, spilling to a temporary folder beyond
its memory limit) with one view per frame over the frame's Parquet files
(``read_parquet(..., hive_partitioning=true)``; the partition columns are text, plus the
virtual ``filename`` and ``file_row_number`` that keep each file's row order). A frame with
no files yet is an empty view of its schema. :func:`load_traces` reads every frame of the
traces a SQL query selects and builds the TraceSet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from xraykit.exceptions import require
from xraykit.io.docstore import DocumentStore
from xraykit.partitions.layout import STORED, empty_table, frame_dtypes
from xraykit.schema import FRAMES
from xraykit.traceset import TraceSet

__all__ = ["connect", "decode_value", "load_traces", "to_frame"]

#: Columns a view adds to a frame's own: the file and row of each row.
ORDER_COLUMNS = ("filename", "file_row_number")


def _quote_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def connect(
    root: Path,
    partition_by: tuple[str, ...],
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Any:
    """A DuckDB connection with a view per stored frame of the dataset at ``root``."""
    duckdb: Any = require("duckdb", "dataset")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    types = ", ".join(f"'{key}': 'VARCHAR'" for key in partition_by)
    for frame in STORED:
        folder = root / frame
        if folder.is_dir() and next(folder.rglob("*.parquet"), None) is not None:
            source = (
                f"read_parquet({_quote_path(folder)} || '/**/*.parquet', hive_partitioning = "
                f"{'true' if partition_by else 'false'}, filename = true, file_row_number = true"
                + (f", hive_types = {{{types}}}" if partition_by else "")
                + ")"
            )
        else:
            con.register(f"_empty_{frame}", empty_table(frame))
            extra = "".join(f", CAST(NULL AS VARCHAR) AS {key}" for key in partition_by)
            source = (
                f"(SELECT *, CAST(NULL AS VARCHAR) AS filename, CAST(NULL AS BIGINT) AS "
                f"file_row_number{extra} FROM _empty_{frame})"
            )
        con.execute(f"CREATE VIEW {frame} AS SELECT * FROM {source}")
    return con


def decode_value(text: Any, value_type: Any = None) -> Any:
    """The value :func:`xraykit.partitions.write.encode_value` wrote.

    >>> decode_value("5", "number"), decode_value("true", "boolean"), decode_value('[1]')
    (5, True, [1])
    """
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    if value_type == "string":
        return text
    if value_type == "boolean":
        return text == "true"
    return json.loads(text)  # not orjson: NaN, Infinity and big ints come back as written


def to_frame(table: pa.Table, frame: str) -> pd.DataFrame:
    """An Arrow table read from a frame's view, as the frame's DataFrame (declared dtypes)."""
    dtypes = frame_dtypes(frame)
    out = {}
    for column, dtype in dtypes.items():
        values = table.column(column)
        if dtype == "object":
            out[column] = pd.Series(values.to_pylist(), dtype=object)
        elif dtype == "str":
            out[column] = pd.Series(pd.array(values.cast(pa.large_string()), dtype="str"))
        else:
            out[column] = values.to_pandas().astype(dtype)
    result = pd.DataFrame(out)
    if frame == "annotations":
        result["value"] = [
            decode_value(v, t) for v, t in zip(result["value"], result["value_type"], strict=True)
        ]
    elif frame == "metadata":
        result["value"] = [decode_value(v) for v in result["value"]]
    return result


def read_frame(con: Any, frame: str, where: str = "TRUE", order: str | None = None) -> pd.DataFrame:
    """Rows of one frame's view (in file and row order unless ``order`` says otherwise)."""
    columns = ", ".join(f'"{c}"' for c in frame_dtypes(frame))
    order = order or "filename, file_row_number"
    table = con.sql(
        f"SELECT {columns} FROM {frame} WHERE {where} ORDER BY {order}"
    ).to_arrow_table()
    return to_frame(table, frame)


def load_traces(con: Any, ids_sql: str | None, *, documents: bool = True) -> TraceSet:
    """The TraceSet of the traces whose ids ``ids_sql`` selects (None: every trace).

    The selected ids go to a temporary table first, so each frame is read once, keeping
    only its rows of those traces; ``traces`` is ordered by start, the others keep their
    written order. Every problem row of the dataset comes along, as ``TraceSet.select``
    keeps problems whole.
    """
    if ids_sql is None:
        where = "TRUE"
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _wanted AS {ids_sql}")
        where = "trace_id IN (SELECT trace_id FROM _wanted)"
    frames: dict[str, Any] = {}
    for frame in FRAMES:
        if frame == "problems":
            frames[frame] = read_frame(con, frame)
        elif frame == "traces":
            frames[frame] = read_frame(con, frame, where, order="start, trace_id")
        else:
            frames[frame] = read_frame(con, frame, where)
    if documents and "documents" in STORED:
        docs = read_frame(con, "documents", where)
        frames["documents"] = DocumentStore.from_frame(docs) if len(docs) else None
    if ids_sql is not None:
        con.execute("DROP TABLE IF EXISTS _wanted")
    return TraceSet(frames)

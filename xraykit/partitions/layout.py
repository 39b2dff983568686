"""The layout of a trace dataset on disk: its folders, partitions, Arrow schemas and manifest.

A dataset is a folder of Hive-style partitioned Parquet files, one folder per frame::

    PATH/_xraykit.json                          the manifest (format, partitions, windows)
    PATH/traces/date=2025-03-04/account=123456789012/part-<key>.parquet
    PATH/segments/date=.../account=.../part-<key>.parquet
    ...                                         one folder per frame of FRAMES

A trace's rows in every frame sit in the same partition: ``date`` is the UTC day of the
trace's start, ``account`` the account that owns the trace (see :func:`trace_partitions`).
Besides the seven frames of a TraceSet and its ``documents``, the writer stores the rows the
aggregate analyses read (``requests_trace``, ``requests_service``, ``requests_edge``:
:func:`xraykit.analysis.requests_frame` at each level; ``graph_nodes``, ``graph_edges``:
:func:`xraykit.graph.graph_frames`), computed once per written window, so that SQL engines
never rebuild the service graph.

>>> sorted(partition_values("2025-03-04", "123456789012", ("date", "account")).items())
[('account', '123456789012'), ('date', '2025-03-04')]
>>> arrow_schema("problems").names
['source', 'location', 'reason']
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from xraykit.exceptions import ArgumentError, ArgumentTypeError, TraceFileNotFoundError
from xraykit.graph.columns import EDGE_CALL_COLUMNS, NODE_SEGMENT_COLUMNS
from xraykit.schema import FRAMES, SCHEMAS, TIME

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = [
    "DERIVED",
    "MANIFEST",
    "PARTITION_KEYS",
    "STORED",
    "UNKNOWN",
    "arrow_schema",
    "check_partition_by",
    "frame_dtypes",
    "partition_values",
    "read_manifest",
    "require_dataset",
    "trace_partitions",
    "write_atomically",
    "write_manifest",
]

#: The manifest file at the dataset's root (a leading ``_``: Spark and Hive skip it).
MANIFEST = "_xraykit.json"
FORMAT = "xraykit-dataset"
VERSION = 1
#: The partition columns a dataset may use, in their usual order.
PARTITION_KEYS = ("date", "account")
#: The partition value when the date or account is not known.
UNKNOWN = "unknown"

_REQUEST_BASE = {
    "trace_id": "str",
    "latency_s": "float64",
    "start": TIME,
    "status": "Int64",
    "error": "bool",
    "fault": "bool",
    "throttle": "bool",
    "url": "str",
    "method": "str",
    "user": "str",
}

#: Frames derived from the traces when written, with their column dtypes.
DERIVED: dict[str, dict[str, str]] = {
    "requests_trace": {
        **_REQUEST_BASE,
        "service": "str",
        "service_type": "str",
        "throttled_inside": "bool",
    },
    "requests_service": {
        **_REQUEST_BASE,
        "entity_id": "str",
        "service": "str",
        "service_type": "str",
    },
    "requests_edge": {
        **_REQUEST_BASE,
        "entity_id": "str",
        "edge": "str",
        "source": "str",
        "target": "str",
    },
    "graph_nodes": dict(NODE_SEGMENT_COLUMNS),
    "graph_edges": dict(EDGE_CALL_COLUMNS),
}

#: Every frame a dataset stores: the TraceSet's, its documents, then the derived ones.
STORED: tuple[str, ...] = (*FRAMES, "documents", *DERIVED)


def frame_dtypes(frame: str) -> dict[str, str]:
    """The pandas dtypes of a stored frame's columns (partition columns excluded).

    >>> frame_dtypes("requests_edge")["edge"]
    'str'
    """
    if frame in DERIVED:
        return DERIVED[frame]
    return SCHEMAS[frame]


def arrow_schema(frame: str) -> pa.Schema:
    """The Arrow schema a stored frame's Parquet files have.

    Strings are ``large_string``, times ``timestamp[us, tz=UTC]``, ``Int64`` a nullable
    ``int64``; the ``object`` columns (annotation and metadata values) are text: see
    :mod:`xraykit.partitions.write`.
    """
    fields = []
    for column, dtype in frame_dtypes(frame).items():
        if dtype in ("str", "object"):
            kind: pa.DataType = pa.large_string()
        elif dtype == TIME:
            kind = pa.timestamp("us", tz="UTC")
        elif dtype in ("Int64", "int64"):
            kind = pa.int64()
        elif dtype == "float64":
            kind = pa.float64()
        elif dtype == "bool":
            kind = pa.bool_()
        else:  # pragma: no cover - every declared dtype is above
            raise ArgumentError(f"No Arrow type for dtype {dtype!r} of {frame}.{column}.")
        fields.append(pa.field(column, kind))
    return pa.schema(fields)


def check_partition_by(partition_by: str | Sequence[str]) -> tuple[str, ...]:
    """The partition columns asked for, checked.

    >>> check_partition_by("date")
    ('date',)
    """
    items = (partition_by,) if isinstance(partition_by, str) else partition_by
    if not isinstance(items, Sequence) or not all(isinstance(i, str) for i in items):
        raise ArgumentTypeError(
            f"`partition_by` must be 'date', 'account' or a list of them, but {partition_by!r} "
            "was passed."
        )
    items = tuple(items)
    wrong = [i for i in items if i not in PARTITION_KEYS]
    if wrong or len(set(items)) != len(items):
        raise ArgumentError(
            f"`partition_by` must hold each of {list(PARTITION_KEYS)} at most once, but "
            f"{partition_by!r} was passed. Use partition_by=('date', 'account')."
        )
    return items


_ACCOUNT = re.compile(r"\d{12}")


def trace_partitions(ts: TraceSet, default_account: str | None = None) -> pd.DataFrame:
    """The partition (``date``, ``account``) of each trace: ``trace_id, date, account``.

    ``date`` is the UTC day of the trace's start. ``account`` is the ``aws.account_id`` of the
    trace's root segment, else the first one among its other segments, else
    ``default_account`` (the account a live pull read), else ``"unknown"``. A value that is
    not 12 digits counts as unknown (it names a folder).
    """
    traces = ts.traces
    start = traces["start"]
    date = pd.Series(start.dt.strftime("%Y-%m-%d"), index=traces.index, dtype=object)
    date = date.where(start.notna(), UNKNOWN)
    seg = ts.segments
    accounts = seg["account_id"].astype(object)
    valid = accounts.map(lambda v: isinstance(v, str) and _ACCOUNT.fullmatch(v) is not None)
    known = seg.loc[valid.to_numpy(dtype=bool), ["trace_id", "segment_id", "account_id"]]
    root_keys = pd.Index(
        traces["trace_id"].astype(object) + "/" + traces["root_segment_id"].astype(object)
    )
    root = known.set_index(
        known["trace_id"].astype(object) + "/" + known["segment_id"].astype(object)
    )
    root = root[~root.index.duplicated()]["account_id"]
    by_root = pd.Series(root.reindex(root_keys).to_numpy(dtype=object), index=traces.index)
    first = known.drop_duplicates("trace_id").set_index("trace_id")["account_id"]
    by_any = pd.Series(
        first.reindex(pd.Index(traces["trace_id"])).to_numpy(dtype=object), index=traces.index
    )
    fallback = (
        default_account if default_account and _ACCOUNT.fullmatch(default_account) else UNKNOWN
    )
    account = by_root.where(by_root.notna(), by_any).where(lambda s: s.notna(), fallback)
    return pd.DataFrame(
        {
            "trace_id": traces["trace_id"].to_numpy(dtype=object),
            "date": date.to_numpy(dtype=object),
            "account": account.to_numpy(dtype=object),
        }
    )


def partition_values(date: str, account: str, partition_by: Sequence[str]) -> dict[str, str]:
    """The partition columns' values of one folder, in ``partition_by`` order."""
    values = {"date": date, "account": account}
    return {key: values[key] for key in partition_by}


def partition_folder(root: Path, frame: str, values: dict[str, str]) -> Path:
    """``root/frame/key=value/...`` for one partition."""
    folder = root / frame
    for key, value in values.items():
        folder = folder / f"{key}={value}"
    return folder


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Write ``path`` beside itself under a temporary name, then rename it over."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of the dataset at ``root``, or None when there is none."""
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    return manifest


def new_manifest(partition_by: Sequence[str]) -> dict[str, Any]:
    """The manifest of an empty dataset."""
    return {"format": FORMAT, "version": VERSION, "partition_by": list(partition_by), "windows": {}}


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (a reader sees the old one or the new one)."""
    text = json.dumps(manifest, indent=1, sort_keys=True)
    write_atomically(root / MANIFEST, lambda p: p.write_text(text))


def require_dataset(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The root and manifest of an existing dataset, or a clear error.

    Raises
    ------
    TraceFileNotFoundError
        When nothing is at ``path``.
    ArgumentError
        When ``path`` is not a dataset written by xraykit.
    """
    if not isinstance(path, str | os.PathLike):
        raise ArgumentTypeError(
            f"The dataset path must be a str or a Path, but {type(path).__name__} was passed."
        )
    root = Path(path)
    if not root.exists():
        raise TraceFileNotFoundError(
            f"No dataset at {str(root)!r}: the folder does not exist. Write one with "
            "ts.save(path, partition_by=('date', 'account')) or xraykit.fetch(..., to=path)."
        )
    manifest = read_manifest(root) if root.is_dir() else None
    if manifest is None:
        raise ArgumentError(
            f"{str(root)!r} is not an xraykit dataset: it has no {MANIFEST} manifest. Pass the "
            "folder given to ts.save(path, partition_by=...) or fetch(..., to=path); a file "
            "saved with ts.save(path) opens with xraykit.load_file(path)."
        )
    return root, manifest


def empty_table(frame: str) -> pa.Table:
    """An empty Arrow table of a stored frame."""
    schema = arrow_schema(frame)
    return pa.table({f.name: pa.array(np.array([], dtype=object), f.type) for f in schema})

"""Writing TraceSets into a partitioned Parquet dataset, one batch (a pull window) at a time.

:class:`DatasetWriter` appends a TraceSet to a dataset: every frame, split by the partition
of each trace (:func:`~xraykit.partitions.layout.trace_partitions`), one Parquet file per frame
and partition, named after the batch (``part-<key>.parquet``), each written under a
temporary name and renamed. Writing the same batch key again replaces its files (a resumed
window). The manifest records the batches that are complete (:meth:`DatasetWriter.mark_done`).

Values of the ``object`` columns become text: an annotation value as it reads in the filter
language (``gold``, ``5``, ``2.5``, ``true``; ``value_type`` says how to read it back), a
metadata value as JSON.

>>> import tempfile, xraykit
>>> ts = xraykit.load_sample("shop")
>>> with tempfile.TemporaryDirectory() as d:
...     root = save_dataset(ts, d + "/shop", partition_by=("date", "account"))
...     folders = sorted(p.name for p in (root / "traces").iterdir())
>>> folders
['date=2025-03-04']
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xraykit.analysis import requests_frame
from xraykit.arguments import check_traceset
from xraykit.exceptions import ArgumentError
from xraykit.graph import graph_frames
from xraykit.partitions.layout import (
    DERIVED,
    PARTITION_KEYS,
    STORED,
    UNKNOWN,
    arrow_schema,
    check_partition_by,
    new_manifest,
    partition_folder,
    partition_values,
    read_manifest,
    trace_partitions,
    write_atomically,
    write_manifest,
)

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["DatasetWriter", "encode_value", "save_dataset"]


def encode_value(value: Any, value_type: Any = None) -> str | None:
    """An annotation (with its ``value_type``) or metadata value as text.

    >>> encode_value("gold", "string"), encode_value(5, "number"), encode_value(True, "boolean")
    ('gold', '5', 'true')
    >>> encode_value({"a": [1, 2]}), encode_value(float("nan"), "number")
    ('{"a":[1,2]}', 'NaN')
    """
    if value is None:
        return None
    if value_type == "string" and isinstance(value, str):
        return value
    if value_type == "boolean" and isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    try:  # the standard library keeps NaN, Infinity and ints beyond 64 bits (orjson does not)
        return json.dumps(value, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        return None


def _encoded(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    if name == "annotations":
        values = [
            encode_value(v, t) for v, t in zip(frame["value"], frame["value_type"], strict=True)
        ]
        return frame.assign(value=pd.Series(values, index=frame.index, dtype="str"))
    if name == "metadata":
        values = [encode_value(v) for v in frame["value"]]
        return frame.assign(value=pd.Series(values, index=frame.index, dtype="str"))
    return frame


def _derived(ts: TraceSet) -> dict[str, pd.DataFrame]:
    nodes, calls = graph_frames(ts)
    out = {"graph_nodes": nodes, "graph_edges": calls}
    for level in ("trace", "service", "edge"):
        out[f"requests_{level}"] = requests_frame(ts, level=level)
    return {
        name: frame[[c for c in DERIVED[name]]].astype(DERIVED[name]) for name, frame in out.items()
    }


def _parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


class DatasetWriter:
    """Appends TraceSets to the dataset at ``path`` (created when missing).

    Parameters
    ----------
    path : str or Path
        The dataset's folder.
    partition_by : sequence of {"date", "account"}
        The partition columns of a new dataset; an existing one keeps its own (asking for
        others is an error).
    documents : bool
        Also store the original segment documents (``TraceSet.document`` needs them).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        partition_by: str | Sequence[str] = PARTITION_KEYS,
        documents: bool = True,
    ) -> None:
        self.root = Path(path)
        keys = check_partition_by(partition_by)
        manifest = read_manifest(self.root)
        if manifest is None:
            if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
                raise ArgumentError(
                    f"{str(self.root)!r} exists and is not an xraykit dataset; write the "
                    "dataset into a new or empty folder."
                )
            self.root.mkdir(parents=True, exist_ok=True)
            manifest = new_manifest(keys)
            write_manifest(self.root, manifest)
        elif tuple(manifest.get("partition_by", ())) != keys:
            raise ArgumentError(
                f"The dataset at {str(self.root)!r} is partitioned by "
                f"{manifest.get('partition_by')!r}, but partition_by={keys!r} was passed."
            )
        self.manifest = manifest
        self.partition_by = keys
        self.documents = documents

    @property
    def done(self) -> set[str]:
        """The keys of the batches written completely."""
        return set(self.manifest.get("windows", {}))

    def remove(self, key: str) -> None:
        """Delete every file of batch ``key`` (before it is written again)."""
        name = f"part-{key}.parquet"
        for frame in STORED:
            folder = self.root / frame
            if folder.is_dir():
                for path in folder.rglob(name):
                    path.unlink()

    def write(
        self,
        ts: TraceSet,
        key: str | None = None,
        *,
        default_account: str | None = None,
        problems_partition: tuple[str, str] | None = None,
    ) -> int:
        """Write ``ts`` as batch ``key`` (a new one when None); return the files written.

        ``default_account`` is the account of traces whose segments name none;
        ``problems_partition`` the (date, account) the problems rows go to (default: the
        first trace's partition).
        """
        check_traceset(ts, "ts")
        key = key or uuid.uuid4().hex
        parts = trace_partitions(ts, default_account)
        labels = parts["date"] + "/" + parts["account"]
        codes, names = pd.factorize(labels)
        lookup = pd.Index(parts["trace_id"])
        fallback = (UNKNOWN, default_account or UNKNOWN)
        frames: dict[str, pd.DataFrame] = dict(ts.frames)
        if self.documents:
            frames["documents"] = ts.document_store.to_frame()
        frames.update(_derived(ts))
        written = 0
        for name, frame in frames.items():
            if frame.empty:
                continue
            frame = _encoded(frame, name)
            if name == "problems":
                where = problems_partition or (
                    tuple(parts.iloc[0][["date", "account"]]) if len(parts) else fallback
                )
                places = {self._folder(name, *where): np.arange(len(frame))}
            else:
                at = lookup.get_indexer(frame["trace_id"].astype(object))
                label = np.where(at >= 0, codes[np.maximum(at, 0)], -1)
                places = {}
                for code in np.unique(label):
                    date, account = names[code].split("/", 1) if code >= 0 else fallback
                    folder = self._folder(name, date, account)
                    rows = np.flatnonzero(label == code)
                    # partitions by date alone: several accounts share a folder
                    places[folder] = np.concatenate([places.get(folder, rows[:0]), rows])
            for folder, rows in places.items():
                part = frame.iloc[np.sort(rows)] if len(rows) != len(frame) else frame
                table = pa.Table.from_pandas(
                    part, schema=arrow_schema(name), preserve_index=False, safe=False
                )
                folder.mkdir(parents=True, exist_ok=True)
                write_atomically(folder / f"part-{key}.parquet", partial(_parquet, table))
                written += 1
        return written

    def _folder(self, frame: str, date: str, account: str) -> Path:
        return partition_folder(
            self.root, frame, partition_values(date, account, self.partition_by)
        )

    def mark_done(self, key: str, info: dict[str, Any]) -> None:
        """Record batch ``key`` as complete (the manifest is rewritten atomically)."""
        self.manifest.setdefault("windows", {})[key] = info
        write_manifest(self.root, self.manifest)


def save_dataset(
    ts: TraceSet,
    path: str | os.PathLike[str],
    *,
    partition_by: str | Sequence[str] = PARTITION_KEYS,
    documents: bool = True,
) -> Path:
    """Write a TraceSet as a partitioned dataset (what ``ts.save(path, partition_by=...)`` does).

    Into a new or empty folder, or appended to an existing dataset with the same partitions
    (traces already there are not looked for: appending the same traces twice stores them
    twice). Returns the dataset's folder.
    """
    writer = DatasetWriter(path, partition_by=partition_by, documents=documents)
    key = f"save-{uuid.uuid4().hex}"
    writer.write(ts, key)
    writer.mark_done(key, {"source": "save", "traces": len(ts)})
    return writer.root

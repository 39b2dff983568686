"""Arrow and numpy helpers of the graph code, and integer keys of (trace id, entity id) pairs.

Internal to :mod:`xraykit.graph`: string columns as Arrow arrays, takes with missing rows,
integer codes of strings, times as int64 microseconds, and :class:`_Keys`, which turns joins
on ids into array lookups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.graph.columns import _TIME

_SEP = pa.scalar("\x1f", pa.large_string())
_BAR = pa.scalar("|", pa.large_string())
_NO_TEXT = pa.scalar("", pa.large_string())


def _strings(values: pd.Series | pd.Index | Sequence[Any]) -> pa.Array:
    """One Arrow ``large_string`` array (missing values null) for a string column.

    pandas' ``"str"`` columns are Arrow already, so this is a cheap view (plus one
    concatenation of the column's chunks); other columns are converted.
    """
    if not isinstance(values, pd.Series | pd.Index):
        return pa.array(list(values), pa.large_string())
    if str(values.dtype) != "str":
        values = values.astype("str")
    arrow = pa.array(values.array)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks() if arrow.num_chunks != 1 else arrow.chunk(0)
    return arrow if arrow.type == pa.large_string() else arrow.cast(pa.large_string())


def _concat(arrays: Sequence[pa.Array]) -> pa.Array:
    return pa.concat_arrays(list(arrays)) if arrays else pa.array([], pa.large_string())


def _chunked(arrays: Sequence[pa.Array]) -> pa.ChunkedArray:
    return pa.chunked_array([a for a in arrays if len(a)], pa.large_string())


def _take(array: pa.Array, rows: np.ndarray) -> pa.Array:
    """``array[rows]``; rows of -1 give null."""
    missing = rows < 0
    if missing.any():
        return array.take(pa.array(np.where(missing, 0, rows), mask=missing))
    return array.take(rows)


def _repeat(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.large_string()), n)


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy (null is False)."""
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def _str(array: pa.Array) -> Any:
    """A pandas ``"str"`` array over an Arrow string array."""
    return pd.array(array, dtype="str")


def _bools(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=bool, na_value=False)


def _micros(series: pd.Series) -> np.ndarray:
    """Times as int64 microseconds since the epoch (NaT is the int64 minimum)."""
    return series.to_numpy(dtype="datetime64[us]").view(np.int64)


def _time_array(micros: np.ndarray) -> Any:
    return pd.array(micros.view("datetime64[us]"), dtype=_TIME)


def _codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Integer codes of strings (in order of first appearance; -1 for missing) and their count.

    Chunks are encoded against one dictionary, so parts need not be concatenated first.
    """
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        if encoded.num_chunks == 0:
            return np.zeros(0, dtype=np.int64), 0
        codes = np.concatenate(
            [pc.fill_null(c.indices, -1).to_numpy().astype(np.int64) for c in encoded.chunks]
        )
        return codes, len(encoded.chunk(encoded.num_chunks - 1).dictionary)
    codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64)
    return codes, len(encoded.dictionary)


class _Keys:
    """Integer keys of ``(trace id, entity id)`` pairs, so that joins are array lookups.

    ``traces`` maps a name to a trace-id column; ``ids`` maps a name to ``(trace name, id
    column)``. Two rows of any parts get the same key exactly when both their trace id and their
    entity id are equal (ids are unique within a trace only); a missing id gets -1. All strings
    are hashed once, by Arrow.
    """

    def __init__(
        self, traces: Mapping[str, pa.Array], ids: Mapping[str, tuple[str, pa.Array]]
    ) -> None:
        trace_codes, _ = _codes(_chunked(list(traces.values())))
        bounds = np.cumsum([0, *(len(a) for a in traces.values())])
        by_trace = {name: trace_codes[bounds[i] : bounds[i + 1]] for i, name in enumerate(traces)}
        id_codes, n_ids = _codes(_chunked([column for _, column in ids.values()]))
        trace_of = np.concatenate([by_trace[t] for t, _ in ids.values()])
        # Usually every id occurs in one trace only: then the id alone is the key.
        seen = np.full(n_ids + 1, -2, dtype=np.int64)
        seen[id_codes] = trace_of
        if (seen[id_codes][id_codes >= 0] == trace_of[id_codes >= 0]).all():
            keys, self.size = id_codes, n_ids
        else:  # an id is reused in several traces: key on the pair
            keys, uniques = pd.factorize(trace_of * (n_ids + 1) + id_codes)
            keys[id_codes < 0] = -1
            self.size = len(uniques)
        bounds = np.cumsum([0, *(len(column) for _, column in ids.values())])
        self.key = {name: keys[bounds[i] : bounds[i + 1]] for i, name in enumerate(ids)}

    def position(self, table: str) -> np.ndarray:
        """For each key, the first row of part ``table`` that has it (-1: none)."""
        keys = self.key[table]
        rows = np.flatnonzero(keys >= 0)
        first = np.full(self.size + 1, -1, dtype=np.int64)  # the extra slot answers key -1
        present = keys[rows]
        if len(present) and np.bincount(present).max() > 1:  # repeated ids: keep the first
            order = np.argsort(present, kind="stable")
            head = np.r_[True, present[order][1:] != present[order][:-1]]
            first[present[order][head]] = rows[order][head]
        else:
            first[present] = rows
        return first

    def find(self, table: str, query: str) -> np.ndarray:
        """Row in part ``table`` of each row of part ``query`` (-1 when absent)."""
        return self.position(table)[self.key[query]]

"""Small helpers shared by the analyses: epoch seconds and times, a seconds check, node names.

Private to :mod:`xraykit.analysis`; nothing here is public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.schema import TIME

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

_EPOCH = pd.Timestamp(0, tz="UTC")
_SECOND = pd.Timedelta(1, "s")


def _seconds(times: pd.Series) -> np.ndarray:
    """Epoch seconds of a tz-aware datetime column as floats (NaN for NaT)."""
    return np.asarray((times - _EPOCH) / _SECOND, dtype="float64")


def _times(seconds: np.ndarray | pd.Series) -> pd.Series:
    """Epoch seconds back to UTC times, rounded to X-Ray's microsecond resolution."""
    micros = np.round(np.asarray(seconds, dtype="float64") * 1e6)
    return pd.Series(pd.to_datetime(micros, unit="us", utc=True)).astype(TIME)


def _check_seconds(value: object, name: str = "threshold_s") -> float:
    """Return ``value`` as float seconds, or raise when it is not a positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ArgumentTypeError(
            f"`{name}` must be a positive number of seconds such as 0.5, but {value!r} was passed."
        )
    if not (np.isfinite(value) and value > 0):
        raise ArgumentError(
            f"`{name}` must be a positive number of seconds such as 0.5, but {value!r} was passed."
        )
    return float(value)


def _node_names(nodes: pd.DataFrame) -> pd.DataFrame:
    """node_id -> name, type for every node (the client node included)."""
    names = nodes.drop_duplicates("node_id")[["node_id", "name", "type"]]
    client = pd.DataFrame({"node_id": ["client"], "name": ["client"], "type": ["client"]})
    return pd.concat([names, client], ignore_index=True).astype(
        {"node_id": "str", "name": "str", "type": "str"}
    )


def _first_annotation(ts: TraceSet, key: str) -> pd.DataFrame:
    """trace_id -> the first value of annotation ``key`` in each trace."""
    ann = ts.annotations
    ann = ann.loc[ann["key"] == key, ["trace_id", "value"]].drop_duplicates("trace_id")
    return ann.rename(columns={"value": f"annotation.{key}"})

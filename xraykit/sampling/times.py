"""Time conversions the sampler needs: the wall-clock second of a moment, and a request
stream's ``time`` column (datetimes or epoch seconds) as epoch nanoseconds."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError

_EPOCH = pd.Timestamp(0, tz="UTC")


def _epoch_second(value: float | int | datetime) -> int:
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return int((stamp - _EPOCH) // pd.Timedelta(seconds=1))
    return math.floor(value)


def _time_ns(times: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(times):
        return np.round(times.to_numpy(dtype=np.float64) * 1e9).astype(np.int64)
    stamps = pd.to_datetime(times, utc=True)
    if stamps.isna().any():
        raise ArgumentError("The `time` column has missing values; every request needs a time.")
    return ((stamps - _EPOCH) // pd.Timedelta(nanoseconds=1)).to_numpy(dtype=np.int64)

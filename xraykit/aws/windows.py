"""Time windows of a query: ``since`` durations, the (start, end) of a pull in UTC, and the
windows of at most six hours that ``GetTraceSummaries`` is asked over, newest first.

Examples
--------
>>> import pandas as pd
>>> len(time_windows(pd.Timestamp("2024-05-01", tz="UTC"), pd.Timestamp("2024-05-02", tz="UTC")))
4
"""

from __future__ import annotations

import re
import warnings
from datetime import timedelta
from typing import Any

import pandas as pd

from xraykit.exceptions import ArgumentError, XrayKitWarning

__all__ = ["MAX_WINDOW", "RETENTION", "parse_since", "time_windows"]

#: ``GetTraceSummaries`` is asked over windows of at most this length.
MAX_WINDOW = timedelta(hours=6)
#: X-Ray keeps traces this long.
RETENTION = timedelta(days=30)


# "min" before "m": the alternation takes the first that matches
_SINCE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|min|m|s)", re.IGNORECASE)
_SINCE_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0}


def parse_since(since: str | float | timedelta) -> timedelta:
    """Return the look-back period ``since`` as a timedelta.

    Parameters
    ----------
    since : str, number or timedelta
        ``"90s"``, ``"15m"``, ``"1h"``, ``"1h30m"``, ``"2d"``, ``"1w"``; a number is seconds.

    Raises
    ------
    ArgumentError
        When the text is not a positive duration.

    Examples
    --------
    >>> parse_since("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_since(45)
    datetime.timedelta(seconds=45)
    >>> parse_since("15min") == parse_since("15m")
    True
    """
    if isinstance(since, timedelta):
        period = since
    elif isinstance(since, int | float) and not isinstance(since, bool):
        period = timedelta(seconds=float(since))
    elif isinstance(since, str):
        text = since.strip().replace(" ", "")
        parts = list(_SINCE_RE.finditer(text))
        if not parts or "".join(p.group(0) for p in parts).lower() != text.lower():
            raise ArgumentError(
                f"`since` must be a duration such as '15m', '1h', '1h30m' or '2d', "
                f"but {since!r} was passed."
            )
        seconds = sum(float(p.group(1)) * _SINCE_UNITS[p.group(2).lower()] for p in parts)
        period = timedelta(seconds=seconds)
    else:
        raise ArgumentError(
            f"`since` must be a string such as '1h', a number of seconds or a timedelta, "
            f"but {since!r} was passed."
        )
    if period <= timedelta(0):
        raise ArgumentError(f"`since` must be a positive duration, but {since!r} was passed.")
    return period


def _timestamp(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(
            f"`{name}` must be a datetime, a pandas Timestamp or an ISO 8601 string, "
            f"but {value!r} was passed."
        ) from exc
    if ts is pd.NaT:
        raise ArgumentError(f"`{name}` must be a time, but {value!r} was passed.")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _resolve_window(
    since: str | float | timedelta | None,
    start: Any,
    end: Any,
    now: pd.Timestamp | None = None,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the (start, end) of a query in UTC; naive times are taken as UTC."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    end_ts = now if end is None else _timestamp(end, "end")
    if start is not None:
        start_ts = _timestamp(start, "start")
    else:
        start_ts = end_ts - parse_since("1h" if since is None else since)
    if start_ts >= end_ts:
        raise ArgumentError(
            f"`start` must be before `end`, but start={start_ts.isoformat()!r} and "
            f"end={end_ts.isoformat()!r} were asked for. Swap them or use since='1h'."
        )
    if start_ts < now - RETENTION:
        warnings.warn(
            f"X-Ray keeps traces for 30 days; the window starting {start_ts.isoformat()!r} "
            "reaches further back, so its oldest part will be empty.",
            XrayKitWarning,
            stacklevel=3,
        )
    return start_ts, end_ts


def time_windows(
    start: pd.Timestamp, end: pd.Timestamp, *, size: timedelta = MAX_WINDOW
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Split ``[start, end)`` into consecutive windows of at most ``size``, newest first.

    ``GetTraceSummaries`` scans backwards from the end of its window, so newest first gives
    the most recent traces first when ``max_traces`` cuts a pull short.

    Examples
    --------
    >>> import pandas as pd
    >>> w = time_windows(pd.Timestamp("2024-05-01 00:00", tz="UTC"),
    ...                  pd.Timestamp("2024-05-01 07:00", tz="UTC"))
    >>> [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in w]
    [('01:00', '07:00'), ('00:00', '01:00')]
    """
    if size <= timedelta(0):
        raise ArgumentError(f"`size` must be positive, but {size!r} was passed.")
    windows = []
    upper = end
    while upper > start:
        lower = max(start, upper - size)
        windows.append((lower, upper))
        upper = lower
    return windows

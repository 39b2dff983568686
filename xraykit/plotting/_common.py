"""Helpers shared by the charts: the Axes, the requests measured, outcomes, labels, legends.

Private to :mod:`xraykit.plotting`. Three levels of "latency" (``level=``), as in the console:
``"trace"`` (the response time the client saw), ``"service"`` (each service's own segments)
and ``"edge"`` (the callers' subsegments, network and queueing included). Outcome colours
are :data:`xraykit.status.COLORS`: ok green, error yellow, throttle purple, fault red.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from xraykit.analysis import requests_frame
from xraykit.analysis.requests import Level
from xraykit.arguments import check_traceset
from xraykit.exceptions import ArgumentError, NotFoundError
from xraykit.status import STATUSES, Flags, flags, labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from xraykit.traceset import TraceSet

_EPOCH = pd.Timestamp(0, tz="UTC")
_LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.")
_XLABELS = {
    "trace": "response time (s)",
    "service": "service's own time per request (s)",
    "edge": "call duration seen by the caller (s)",
}


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        import matplotlib.pyplot as plt  # heavy and optional: only when a chart is drawn

        ax = plt.gca()
    return ax


def _measure(data: TraceSet | pd.DataFrame, level: Level) -> pd.DataFrame:
    """Per-request rows with ``latency_s, start, status`` flags and the group columns.

    A DataFrame is taken as one of the TraceSet's frames (``traces``, ``segments``,
    ``subsegments``), ``node_segments``/``edge_calls`` output or a
    :func:`~xraykit.analysis.requests_frame`: latency from ``latency_s``,
    ``response_time_s`` or ``duration_s``; flags from ``fault/error/throttle`` or ``has_*``,
    completed from the HTTP status by X-Ray's rule (:func:`xraykit.status.flags`).
    A ``traces`` frame is a trace-level view: its throttle is what the client saw (HTTP 429
    at the root); ``has_throttle`` (anywhere in the trace) becomes ``throttled_inside``.
    """
    if not isinstance(data, pd.DataFrame):
        check_traceset(data, "data")
        return requests_frame(data, level=level)
    frame = data.copy()
    if "throttle" not in frame and "has_throttle" in frame:
        frame["throttled_inside"] = frame["has_throttle"].astype(bool)
        status = frame.get("http_status", pd.Series(pd.NA, index=frame.index, dtype="Int64"))
        frame["throttle"] = pd.Series(status, index=frame.index).eq(429).fillna(False)
    for col in ("latency_s", "response_time_s", "duration_s"):
        if col in frame:
            frame["latency_s"] = frame[col]
            break
    else:
        raise ArgumentError(
            "A DataFrame passed to a chart needs a latency column (`latency_s`, "
            f"`response_time_s` or `duration_s`), but it has {list(frame.columns)!r}. "
            "Pass the TraceSet instead, or one of its frames."
        )
    given = {
        flag: frame[flag] if flag in frame else frame.get(f"has_{flag}") for flag in STATUSES[1:]
    }
    numeric = [
        c for c in ("http_status", "status") if c in frame and is_numeric_dtype(frame[c].dtype)
    ]
    http = frame[numeric[0]] if numeric else pd.Series(np.nan, index=frame.index)
    outcome = flags(http, **given)  # X-Ray's rule completes the flags a frame left out
    frame["error"] = outcome.error
    frame["throttle"] = outcome.throttle
    frame["fault"] = outcome.fault
    if "service" not in frame:
        for col in ("root_service", "name"):
            if col in frame:
                frame["service"] = frame[col]
                break
    return frame


def _outcomes(frame: pd.DataFrame) -> pd.Series:
    """One outcome per request, the worst of X-Ray's flags (:func:`xraykit.status.labels`).

    At the trace level these are the root's flags: what the client saw.
    """
    outcome = Flags(
        fault=frame["fault"].to_numpy(dtype=bool),
        error=frame["error"].to_numpy(dtype=bool),
        throttle=frame["throttle"].to_numpy(dtype=bool),
    )
    return pd.Series(labels(outcome), index=frame.index)


def _group_column(frame: pd.DataFrame, level: str) -> str:
    return "edge" if level == "edge" else "service"


def _group_labels(frame: pd.DataFrame, column: str) -> pd.Series:
    """Group labels; services sharing a name (Lambda's two nodes) get their type appended."""
    names = frame[column].astype("str").fillna("(none)")
    if column == "service" and "service_type" in frame:
        types = frame["service_type"].astype("str").fillna("")
        clash = types.groupby(names).transform("nunique") > 1
        names = names.where(~clash, names + " (" + types + ")")
    return names


def _select(frame: pd.DataFrame, level: str, names: Sequence[str] | str | None) -> pd.DataFrame:
    if names is None:
        return frame
    wanted = [names] if isinstance(names, str) else list(names)
    column = _group_column(frame, level)
    keep = frame[column].isin(wanted)
    if column == "edge":
        keep |= frame[column].str.split(" → ").str[-1].isin(wanted)
    if not keep.any():
        present = sorted(frame[column].dropna().astype(str).unique())[:20]
        raise NotFoundError(
            f"`names` {wanted!r} matched no {column} at level {level!r}; known: {present}."
        )
    return frame.loc[keep]


def _naive_utc(times: pd.Series) -> np.ndarray:
    """UTC times without tz for matplotlib's date axis (labelled as UTC)."""
    return np.asarray(times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy())


def _legend(ax: Axes, **kwargs: Any) -> None:
    """A legend when something labelled was drawn (an empty chart gets none, and no warning)."""
    if kwargs.get("handles") or ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _format_s(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 else f"{seconds * 1000:.2f} ms"
    return f"{seconds:.2f} s"


def _shorten(text: str, width: int = 36) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"

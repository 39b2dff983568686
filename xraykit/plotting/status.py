"""Outcome charts: ok / error / throttle / fault over time, and every trace as a point.

Outcomes follow X-Ray's rule (:mod:`xraykit.status`) and the console's colours
(:data:`xraykit.status.COLORS`): ok green, error yellow, throttle purple, fault red.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xraykit.analysis import LEVELS, requests_frame
from xraykit.analysis.requests import Level
from xraykit.arguments import check_choice, check_freq, check_traceset
from xraykit.exceptions import ArgumentError
from xraykit.plotting._common import _axes, _legend, _measure, _naive_utc, _outcomes, _select
from xraykit.status import COLORS, STATUSES

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from xraykit.traceset import TraceSet

__all__ = ["plot_scatter", "plot_status_over_time"]


def plot_status_over_time(
    data: TraceSet | pd.DataFrame,
    *,
    level: Level = "trace",
    freq: str = "1min",
    normalize: bool = False,
    names: Sequence[str] | str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw ok / error / throttle / fault counts (or shares) per time bin, stacked.

    Each request gets its worst outcome by X-Ray's rule (:func:`xraykit.status.labels`):
    fault (5xx) over throttle (429) over error (other 4xx) over ok, in the console's colours
    (ok green, error yellow, throttle purple, fault red). At ``level="trace"`` that is the
    outcome the client saw (the root's); traces with a throttle deeper inside
    (``ts.traces.has_throttle``, often retried away) are counted separately, as hollow purple
    triangles labelled ``"throttled inside the trace"``.

    Parameters
    ----------
    data : TraceSet or DataFrame
    level : {"trace", "service", "edge"}
    freq : str
        The time bin, a pandas frequency.
    normalize : bool
        Shares of each bin instead of counts.
    names : str or list of str, optional
        Keep only these services or edges.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One bar container per status, in the order ok, error, throttle, fault; at the trace
        level, a line of markers for the traces throttled inside, when there are any.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import xraykit
    >>> from xraykit.plotting import plot_status_over_time
    >>> ts = xraykit.load_sample("shop")
    >>> fig, ax = plt.subplots()
    >>> ax = plot_status_over_time(ts, freq="5min", ax=ax)
    >>> int(sum(bar.get_height() for bar in ax.patches)) == len(ts)
    True
    >>> plt.close(fig)
    """
    check_choice("level", level, LEVELS)
    check_freq(freq)
    ax = _axes(ax)
    frame = _select(_measure(data, level), level, names)
    frame = frame.assign(_status=_outcomes(frame), _time=frame["start"].dt.floor(freq))
    counts = (
        frame.groupby(["_time", "_status"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=list(STATUSES), fill_value=0)
    )
    if normalize:
        counts = counts.div(counts.sum(axis=1), axis=0)
    width = pd.Timedelta(freq) / pd.Timedelta(days=1) * 0.9
    x = _naive_utc(counts.index.to_series())
    bottom = np.zeros(len(counts))
    for status in STATUSES:
        heights = counts[status].to_numpy(dtype="float64")
        ax.bar(
            x,
            heights,
            width=width,
            bottom=bottom,
            align="edge",
            color=COLORS[status],
            label=status,
        )
        bottom += heights
    inside = frame.get("throttled_inside")
    if inside is not None and bool(inside.any()):
        # throttles deeper in the trace, whatever the client saw: a marker per bin, not a bar
        hidden = inside.astype(bool).groupby(frame["_time"]).sum().reindex(counts.index)
        if normalize:
            hidden = hidden / frame.groupby("_time").size().reindex(counts.index)
        shown = hidden.to_numpy(dtype="float64") > 0
        middle = x[shown] + (pd.Timedelta(freq) * 0.45).to_timedelta64()
        ax.plot(
            middle,
            hidden.to_numpy(dtype="float64")[shown],
            linestyle="none",
            marker="v",
            color=COLORS["throttle"],
            markerfacecolor="none",
            label="throttled inside the trace",
        )
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("share of requests" if normalize else "requests")
    ax.set_title(f"Status per {freq}")
    _legend(ax, fontsize="small")
    if len(x):
        ax.xaxis_date()
    return ax


def plot_scatter(
    data: TraceSet | pd.DataFrame,
    *,
    hue: str = "status",
    log: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Draw every trace's response time against its start time, errors and faults highlighted.

    Parameters
    ----------
    data : TraceSet or DataFrame
        A TraceSet or its ``traces`` frame.
    hue : str
        ``"status"`` colours by the worst outcome the client saw (the root's: faults drawn
        largest, on top) and rings in purple the traces throttled deeper inside but not at
        the root (``has_throttle``: usually retried away); any other column of the ``traces``
        frame
        (``"root_service"``, ``"http_url"``, …) colours by its values.
    log : bool
        A log y axis.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One point collection per colour, labelled with the status or value and its count;
        with ``hue="status"`` the rings are one more collection, labelled
        ``"throttled inside (<count>)"``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import xraykit
    >>> from xraykit.plotting import plot_scatter
    >>> ts = xraykit.load_sample("shop")
    >>> fig, ax = plt.subplots()
    >>> ax = plot_scatter(ts, ax=ax)
    >>> [c.get_label().split(" (")[0] for c in ax.collections]
    ['ok', 'error', 'fault', 'throttled inside']
    >>> sum(len(c.get_offsets()) for c in ax.collections[:-1]) == len(ts)
    True
    >>> plt.close(fig)
    """
    ax = _axes(ax)
    if isinstance(data, pd.DataFrame):
        frame = _measure(data, "trace")
    else:  # the traces frame for `hue`, with the root's own flags (what the client saw)
        check_traceset(data, "data")
        frame = _measure(data.traces, "trace")
        seen = requests_frame(data, level="trace")
        for flag in ("error", "fault", "throttle"):
            frame[flag] = seen[flag].to_numpy(dtype=bool)
    if hue == "status":
        frame = frame.assign(_group=_outcomes(frame))
        groups = [(s, frame.loc[frame["_group"] == s]) for s in STATUSES]
        sizes = {"ok": 10, "error": 22, "throttle": 22, "fault": 30}
        for status, group in groups:
            if len(group):
                ax.scatter(
                    _naive_utc(group["start"]),
                    group["latency_s"],
                    s=sizes[status],
                    color=COLORS[status],
                    alpha=0.8 if status != "ok" else 0.5,
                    label=f"{status} ({len(group)})",
                    zorder=2 + STATUSES.index(status),
                )
        inside = frame.get("throttled_inside", pd.Series(False, index=frame.index))
        ringed = frame.loc[inside.astype(bool) & (frame["_group"] != "throttle")]
        if len(ringed):
            ax.scatter(
                _naive_utc(ringed["start"]),
                ringed["latency_s"],
                s=70,
                facecolors="none",
                edgecolors=COLORS["throttle"],
                linewidths=1.2,
                label=f"throttled inside ({len(ringed)})",
                zorder=len(STATUSES) + 2,
            )
    else:
        if hue not in frame:
            raise ArgumentError(
                f"`hue` must be 'status' or a column of the traces frame such as "
                f"'root_service' or 'http_url', but {hue!r} was passed."
            )
        for label, group in frame.groupby(frame[hue].astype("str").fillna("(none)"), sort=True):
            ax.scatter(
                _naive_utc(group["start"]),
                group["latency_s"],
                s=12,
                alpha=0.7,
                label=f"{label} ({len(group)})",
            )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("trace start (UTC)")
    ax.set_ylabel("response time (s)")
    ax.set_title("Traces")
    _legend(ax, fontsize="small")
    return ax

"""Latency charts: the distribution, percentiles and the distribution over time, SLA shares.

Each measures requests at one ``level`` (``"trace"``, ``"service"`` or ``"edge"``, as
:func:`xraykit.analysis.requests_frame` does) and draws on one Axes, which it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xraykit.analysis import LEVELS, sla
from xraykit.analysis.requests import Level
from xraykit.arguments import check_choice, check_freq
from xraykit.exceptions import ArgumentError
from xraykit.plotting._common import (
    _LINESTYLES,
    _XLABELS,
    _axes,
    _format_s,
    _group_column,
    _group_labels,
    _legend,
    _measure,
    _naive_utc,
    _select,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from xraykit.traceset import TraceSet

__all__ = ["plot_latency_heatmap", "plot_latency_histogram", "plot_latency_percentiles", "plot_sla"]

#: A histogram goes log scale by default when the slowest request is this many times the fastest.
_LOG_RATIO = 20


def plot_latency_histogram(
    data: TraceSet | pd.DataFrame,
    *,
    level: Level = "trace",
    hue: str | None = None,
    names: Sequence[str] | str | None = None,
    bins: int = 40,
    percentiles: Sequence[float] = (50, 90, 99),
    log: bool | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the response time distribution, with percentile markers.

    Latencies have long tails: by default the bins are log-spaced on a log x axis whenever the
    slowest request took at least 20 times as long as the fastest, so the tail is not squeezed
    into the last bin. Each percentile is a vertical line, named in the legend and, at the
    top of the chart, next to the line.

    Parameters
    ----------
    data : TraceSet or DataFrame
        A TraceSet, or one of its frames (any frame with ``response_time_s`` or
        ``duration_s``).
    level : {"trace", "service", "edge"}
        What is measured: the client's response time, each service's own segments, or the
        callers' subsegments along each edge (see the module docstring).
    hue : str, optional
        A column to colour by, one outlined histogram per value (``"service"``, ``"edge"``,
        ``"status"``, …). Percentile markers are drawn only without ``hue``.
    names : str or list of str, optional
        Keep only these services (``level="service"``, or entry points at ``"trace"``) or
        edges (``"caller → callee"``, or the callee's name) at ``level="edge"``.
    bins : int
    percentiles : sequence of float
        Percentiles (0-100) to mark with vertical lines; ``()`` for none.
    log : bool, optional
        Log-spaced bins and a log x axis (``True``), linear ones (``False``); by default log
        when every latency is positive and the largest is at least 20 times the smallest.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import xraykit
    >>> from xraykit.plotting import plot_latency_histogram
    >>> ts = xraykit.load_sample("shop")
    >>> fig, ax = plt.subplots()
    >>> ax = plot_latency_histogram(ts, level="service", names="shop-api/prod", ax=ax)
    >>> [line.get_label().split(" ")[0] for line in ax.lines]
    ['p50', 'p90', 'p99']
    >>> ax.get_xscale()
    'log'
    >>> plt.close(fig)
    """
    check_choice("level", level, LEVELS)
    ax = _axes(ax)
    frame = _select(_measure(data, level), level, names)
    values = frame["latency_s"].dropna()
    positive = values[values > 0]
    if log is None:
        log = _long_tail(values)
    if log and len(positive):
        edges = np.geomspace(positive.min(), positive.max() * 1.0001, bins + 1)
    elif len(values):
        edges = np.linspace(values.min(), values.max() + 1e-9, bins + 1)
    else:
        edges = np.linspace(0, 1, bins + 1)
    if hue is None:
        ax.hist(
            values, bins=list(edges), color="#4878a8", alpha=0.85, label=f"{len(values)} requests"
        )
        for i, p in enumerate(percentiles):
            v = float(np.percentile(values, p)) if len(values) else np.nan
            ax.axvline(
                v,
                color="#333333",
                linestyle=_LINESTYLES[i % len(_LINESTYLES)],
                linewidth=1.2,
                label=f"p{p:g} {_format_s(v)}",
            )
            if np.isfinite(v):
                ax.text(
                    v,
                    0.98,
                    f" p{p:g}",
                    transform=ax.get_xaxis_transform(),  # x in data, y in axes fractions
                    ha="left",
                    va="top",
                    fontsize="small",
                    color="#333333",
                )
    else:
        if hue not in frame:
            raise ArgumentError(
                f"`hue` must be a column of the data, such as {sorted(frame.columns)[:12]}, "
                f"but {hue!r} was passed."
            )
        frame = frame.assign(_group=_group_labels(frame, hue))
        for label, group in frame.groupby("_group", sort=True):
            ax.hist(
                group["latency_s"].dropna(),
                bins=list(edges),
                histtype="step",
                linewidth=1.5,
                label=f"{label} ({len(group)})",
            )
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(_XLABELS[level])
    ax.set_ylabel("requests")
    ax.set_title("Response time distribution")
    _legend(ax, fontsize="small")
    return ax


def _long_tail(values: pd.Series) -> bool:
    """Whether a distribution needs a log axis: all positive, the largest >= 20x the smallest."""
    if len(values) == 0 or bool((values <= 0).any()):
        return False
    return bool(values.max() >= _LOG_RATIO * values.min())


def plot_latency_percentiles(
    data: TraceSet | pd.DataFrame,
    *,
    level: Level = "service",
    freq: str = "1min",
    percentiles: Sequence[float] = (50, 90, 99),
    names: Sequence[str] | str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw latency percentiles over time, one colour per service (or edge).

    Parameters
    ----------
    data : TraceSet or DataFrame
    level : {"service", "edge", "trace"}
        ``"trace"`` groups the client's response times by entry-point service.
    freq : str
        The time bin, a pandas frequency (``"1min"``, ``"5min"``, ``"1h"``).
    percentiles : sequence of float
        One line style per percentile (solid, dashed, dotted, …).
    names : str or list of str, optional
        Keep only these services or edges.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One line per (group, percentile), labelled ``"<group> p<q>"``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import xraykit
    >>> from xraykit.plotting import plot_latency_percentiles
    >>> ts = xraykit.load_sample("shop")
    >>> fig, ax = plt.subplots()
    >>> ax = plot_latency_percentiles(ts, names="shop-api/prod", freq="10min", ax=ax)
    >>> [line.get_label() for line in ax.lines]
    ['shop-api/prod p50', 'shop-api/prod p90', 'shop-api/prod p99']
    >>> plt.close(fig)
    """
    check_choice("level", level, LEVELS)
    check_freq(freq)
    ax = _axes(ax)
    frame = _select(_measure(data, level), level, names)
    column = _group_column(frame, level)
    frame = frame.assign(_group=_group_labels(frame, column), _time=frame["start"].dt.floor(freq))
    import matplotlib.pyplot as plt  # heavy and optional: only when a chart is drawn

    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, (label, group) in enumerate(frame.groupby("_group", sort=True)):
        by_time = group.groupby("_time")["latency_s"]
        for j, p in enumerate(percentiles):
            series = by_time.quantile(p / 100)
            ax.plot(
                _naive_utc(series.index.to_series()),
                series.to_numpy(),
                color=colors[i % len(colors)],
                linestyle=_LINESTYLES[j % len(_LINESTYLES)],
                marker="." if len(series) < 3 else None,
                label=f"{label} p{p:g}",
            )
    from matplotlib.lines import Line2D  # heavy and optional

    groups = sorted(frame["_group"].unique())
    handles = [
        Line2D([], [], color=colors[i % len(colors)], label=str(g)) for i, g in enumerate(groups)
    ]
    handles += [
        Line2D(
            [], [], color="#555555", linestyle=_LINESTYLES[j % len(_LINESTYLES)], label=f"p{p:g}"
        )
        for j, p in enumerate(percentiles)
    ]
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(_XLABELS[level])
    ax.set_title(f"Latency percentiles per {freq}")
    _legend(ax, handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_latency_heatmap(
    data: TraceSet | pd.DataFrame,
    *,
    level: Level = "trace",
    freq: str = "1min",
    bins: int = 30,
    log: bool = True,
    names: Sequence[str] | str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the latency distribution over time: request counts per (time bin, latency bin).

    Parameters
    ----------
    data : TraceSet or DataFrame
    level : {"trace", "service", "edge"}
    freq : str
        The time bin, a pandas frequency.
    bins : int
        Number of latency bins.
    log : bool
        Log-spaced latency bins (the default: latency tails are long).
    names : str or list of str, optional
        Keep only these services or edges.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        Holding one QuadMesh whose array is the counts (time bins × latency bins, transposed);
        no QuadMesh when there is no completed request to draw.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import xraykit
    >>> from xraykit.plotting import plot_latency_heatmap
    >>> ts = xraykit.load_sample("shop")
    >>> fig, ax = plt.subplots()
    >>> ax = plot_latency_heatmap(ts, freq="5min", ax=ax)
    >>> int(ax.collections[0].get_array().sum()) == int(ts.traces.response_time_s.gt(0).sum())
    True
    >>> plt.close(fig)
    """
    check_choice("level", level, LEVELS)
    check_freq(freq)
    ax = _axes(ax)
    frame = _select(_measure(data, level), level, names)
    frame = frame.loc[frame["latency_s"].notna() & (frame["latency_s"] > 0 if log else True)]
    values = frame["latency_s"].to_numpy(dtype="float64")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(_XLABELS[level])
    ax.set_title(f"Latency over time (per {freq})")
    if len(values) == 0:  # nothing completed: empty axes, as the other charts draw
        return ax
    lo, hi = values.min(), values.max() * 1.0001
    y_edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi + 1e-9, bins + 1)
    times = frame["start"].dt.floor(freq)
    t_edges = pd.date_range(times.min(), times.max() + pd.Timedelta(freq), freq=freq)
    t_num = (times - t_edges[0]) / pd.Timedelta(freq)
    counts, _, _ = np.histogram2d(
        t_num.to_numpy(dtype="float64"), values, bins=[np.arange(len(t_edges)), y_edges]
    )
    import matplotlib.dates as mdates  # heavy and optional

    x_edges = mdates.date2num(t_edges.tz_convert("UTC").tz_localize(None).to_pydatetime())
    masked = np.ma.masked_equal(counts.T, 0)
    mesh = ax.pcolormesh(x_edges, y_edges, masked, cmap="viridis", shading="flat")
    ax.figure.colorbar(mesh, ax=ax, label="requests")
    if log:
        ax.set_yscale("log")
    ax.xaxis_date()
    return ax


def plot_sla(
    ts: TraceSet,
    threshold_s: float,
    *,
    level: Level = "service",
    freq: str = "5min",
    target: float | None = None,
    names: Sequence[str] | str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the share of requests within ``threshold_s`` over time, one line per group.

    Parameters
    ----------
    ts : TraceSet
    threshold_s : float
        The time objective in seconds (see :func:`xraykit.analysis.sla`).
    level : {"service", "edge", "trace"}
        What is measured, as in :func:`xraykit.analysis.sla`.
    freq : str
        The time bin, a pandas frequency.
    target : float, optional
        The objective as a share (``0.99``), drawn as a horizontal line.
    names : str or list of str, optional
        Keep only these services or edges.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import xraykit
    >>> from xraykit.plotting import plot_sla
    >>> ts = xraykit.load_sample("shop")
    >>> fig, ax = plt.subplots()
    >>> ax = plot_sla(ts, 1.0, level="trace", target=0.95, ax=ax)
    >>> bool(ax.get_ylim()[1] <= 1.05)
    True
    >>> plt.close(fig)
    """
    check_freq(freq)
    ax = _axes(ax)
    table = sla(ts, threshold_s, level=level, freq=freq)
    column = "edge" if level == "edge" else "service"
    table = _select(table, level, names) if names is not None else table
    table = table.assign(_group=_group_labels(table, column))
    for label, group in table.groupby("_group", sort=True):
        ax.plot(_naive_utc(group["time"]), group["share"].to_numpy(), marker=".", label=label)
    if target is not None:
        ax.axhline(
            target, color="#d62728", linestyle="--", linewidth=1, label=f"target {target:.0%}"
        )
    ax.set_ylim(max(0.0, float(table["share"].min()) - 0.05) if len(table) else 0, 1.02)
    from matplotlib.ticker import PercentFormatter  # heavy and optional

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"requests within {_format_s(threshold_s)}")
    ax.set_title(f"SLA: share within {_format_s(threshold_s)} per {freq}")
    _legend(ax, fontsize="small")
    return ax

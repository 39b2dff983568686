"""Matplotlib views of a TraceSet: what the X-Ray console draws, and what it does not.

Functions follow seaborn's conventions: the data first, everything else keyword-only,
``ax=None`` draws on the current Axes, the Axes is returned, ``plt.show()`` is never called,
no rcParams are changed. Durations are seconds on the axes, as in X-Ray.

Three levels of "latency" (``level=``), as in the console:

* ``"trace"`` — the response time the client saw (root segment), one value per trace;
* ``"service"`` — each service's own segments: how long it says it worked (the node's
  response time distribution on the service map);
* ``"edge"`` — the callers' subsegments: the round trip the caller waited for, network and
  queueing included (the edge's distribution). An edge can be slower than its target node.

Status colours follow the console: ok green, error (4xx) orange, throttle (429) purple,
fault (5xx) red.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import matplotlib.pyplot as plt
>>> import xraykit
>>> from xraykit.plotting import plot_latency_histogram
>>> fig, ax = plt.subplots()
>>> ax = plot_latency_histogram(xraykit.load_sample("shop"), ax=ax)
>>> ax.get_xlabel()
'response time (s)'
>>> plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xraykit import analysis
from xraykit.arguments import check_choice, check_freq
from xraykit.schema import isin

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from xraykit.traceset import TraceSet

__all__ = [
    "STATUS_COLORS",
    "plot_compare",
    "plot_latency_heatmap",
    "plot_latency_histogram",
    "plot_latency_percentiles",
    "plot_scatter",
    "plot_sla",
    "plot_status_over_time",
    "plot_timeline",
]

#: Console-like colours per status, worst last.
STATUS_COLORS = {"ok": "#4c9f4c", "error": "#f0a030", "throttle": "#8a63c5", "fault": "#d62728"}
_STATUSES = tuple(STATUS_COLORS)
_EPOCH = pd.Timestamp(0, tz="UTC")
_LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.")
_XLABELS = {
    "trace": "response time (s)",
    "service": "service's own time per request (s)",
    "edge": "call duration seen by the caller (s)",
}


# ----------------------------------------------------------------------------------------------
# helpers


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    return ax


def _measure(data: TraceSet | pd.DataFrame, level: str) -> pd.DataFrame:
    """Per-request rows with ``latency_s, start, status`` flags and the group columns.

    A DataFrame is taken as one of the TraceSet's frames (``traces``, ``segments``,
    ``subsegments``), ``node_segments``/``edge_calls`` output or a
    :func:`~xraykit.analysis.requests_frame`: latency from ``latency_s``,
    ``response_time_s`` or ``duration_s``; flags from ``fault/error/throttle`` or ``has_*``.
    A ``traces`` frame is a trace-level view: its throttle is what the client saw (HTTP 429
    at the root); ``has_throttle`` (anywhere in the trace) becomes ``throttled_inside``.
    """
    if not isinstance(data, pd.DataFrame):
        return analysis.requests_frame(data, level=level)  # type: ignore[arg-type]
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
        raise ValueError(
            "A DataFrame passed to a chart needs a latency column (`latency_s`, "
            f"`response_time_s` or `duration_s`), but it has {list(frame.columns)!r}. "
            "Pass the TraceSet instead, or one of its frames."
        )
    for flag in ("error", "fault", "throttle"):
        if flag not in frame:
            has = f"has_{flag}"
            frame[flag] = frame.get(has, False)
    if "service" not in frame:
        for col in ("root_service", "name"):
            if col in frame:
                frame["service"] = frame[col]
                break
    return frame


def _status(frame: pd.DataFrame) -> pd.Series:
    """One status per request, the worst one: fault > throttle > error > ok.

    At the trace level these are the root's flags: what the client saw.
    """
    status = np.select(
        [
            frame["fault"].to_numpy(dtype=bool),
            frame["throttle"].to_numpy(dtype=bool),
            frame["error"].to_numpy(dtype=bool),
        ],
        ["fault", "throttle", "error"],
        default="ok",
    )
    return pd.Series(status, index=frame.index)


def _group_column(frame: pd.DataFrame, level: str) -> str:
    return "edge" if level == "edge" else "service"


def _group_labels(frame: pd.DataFrame, column: str) -> pd.Series:
    """Group labels; services sharing a name (Lambda's two nodes) get their type appended."""
    labels = frame[column].astype("str").fillna("(none)")
    if column == "service" and "service_type" in frame:
        types = frame["service_type"].astype("str").fillna("")
        clash = types.groupby(labels).transform("nunique") > 1
        labels = labels.where(~clash, labels + " (" + types + ")")
    return labels


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
        raise ValueError(
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


# ----------------------------------------------------------------------------------------------
# latency distribution


def plot_latency_histogram(
    data: TraceSet | pd.DataFrame,
    *,
    level: str = "trace",
    by: str | None = None,
    names: Sequence[str] | str | None = None,
    bins: int = 40,
    percentiles: Sequence[float] = (50, 90, 99),
    log: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Draw the response time distribution, with percentile markers.

    Parameters
    ----------
    data : TraceSet or DataFrame
        A TraceSet, or one of its frames (any frame with ``response_time_s`` or
        ``duration_s``).
    level : {"trace", "service", "edge"}
        What is measured: the client's response time, each service's own segments, or the
        callers' subsegments along each edge (see the module docstring).
    by : str, optional
        A column to split by, one outlined histogram each (``"service"``, ``"edge"``,
        ``"status"``, …). Percentile markers are drawn only without ``by``.
    names : str or list of str, optional
        Keep only these services (``level="service"``, or entry points at ``"trace"``) or
        edges (``"caller → callee"``, or the callee's name) at ``level="edge"``.
    bins : int
    percentiles : sequence of float
        Percentiles (0-100) to mark with vertical lines; ``()`` for none.
    log : bool
        Log-spaced bins and a log x axis, for long tails.
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
    >>> plt.close(fig)
    """
    check_choice("level", level, analysis.LEVELS)
    ax = _axes(ax)
    frame = _select(_measure(data, level), level, names)
    values = frame["latency_s"].dropna()
    positive = values[values > 0]
    if log and len(positive):
        edges = np.geomspace(positive.min(), positive.max() * 1.0001, bins + 1)
    elif len(values):
        edges = np.linspace(values.min(), values.max() + 1e-9, bins + 1)
    else:
        edges = np.linspace(0, 1, bins + 1)
    if by is None:
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
    else:
        if by == "status" and "status" not in frame:
            raise ValueError("`by='status'` needs a `status` column (HTTP status) in the data.")
        frame = frame.assign(_group=_group_labels(frame, by) if by in frame else None)
        if by not in frame:
            raise ValueError(
                f"`by` must be a column of the data, such as {sorted(frame.columns)[:12]}, "
                f"but {by!r} was passed."
            )
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


def plot_latency_percentiles(
    data: TraceSet | pd.DataFrame,
    *,
    level: str = "service",
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
    check_choice("level", level, analysis.LEVELS)
    check_freq(freq)
    ax = _axes(ax)
    frame = _select(_measure(data, level), level, names)
    column = _group_column(frame, level)
    frame = frame.assign(_group=_group_labels(frame, column), _time=frame["start"].dt.floor(freq))
    import matplotlib.pyplot as plt

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
    from matplotlib.lines import Line2D

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


# ----------------------------------------------------------------------------------------------
# status and scatter


def plot_status_over_time(
    data: TraceSet | pd.DataFrame,
    *,
    level: str = "trace",
    freq: str = "1min",
    normalize: bool = False,
    names: Sequence[str] | str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw ok / error / throttle / fault counts (or shares) per time bin, stacked.

    Each request gets its worst status: fault (5xx) over throttle (429) over error (other
    4xx) over ok. At ``level="trace"`` that is the status the client saw (the root's); traces
    with a throttle deeper inside (``traces.has_throttle``, often retried away) are counted
    separately, as hollow purple triangles labelled ``"throttled inside the trace"``.

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
    check_choice("level", level, analysis.LEVELS)
    check_freq(freq)
    ax = _axes(ax)
    frame = _select(_measure(data, level), level, names)
    frame = frame.assign(_status=_status(frame), _time=frame["start"].dt.floor(freq))
    counts = (
        frame.groupby(["_time", "_status"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=list(_STATUSES), fill_value=0)
    )
    if normalize:
        counts = counts.div(counts.sum(axis=1), axis=0)
    width = pd.Timedelta(freq) / pd.Timedelta(days=1) * 0.9
    x = _naive_utc(counts.index.to_series())
    bottom = np.zeros(len(counts))
    for status in _STATUSES:
        heights = counts[status].to_numpy(dtype="float64")
        ax.bar(
            x,
            heights,
            width=width,
            bottom=bottom,
            align="edge",
            color=STATUS_COLORS[status],
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
            color=STATUS_COLORS["throttle"],
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
    traces: TraceSet | pd.DataFrame,
    *,
    by: str = "status",
    log: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Draw every trace's response time against its start time, errors and faults highlighted.

    Parameters
    ----------
    traces : TraceSet or DataFrame
        A TraceSet or its ``traces`` frame.
    by : str
        ``"status"`` colours by the worst status the client saw (the root's: faults drawn
        largest, on top) and rings in purple the traces throttled deeper inside but not at
        the root (``has_throttle``: usually retried away); any other column of ``traces``
        (``"root_service"``, ``"http_url"``, …) colours by its values.
    log : bool
        A log y axis.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One point collection per colour, labelled with the status or value and its count;
        with ``by="status"`` the rings are one more collection, labelled
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
    if isinstance(traces, pd.DataFrame):
        frame = _measure(traces, "trace")
    else:  # the traces frame for `by`, with the root's own flags (what the client saw)
        frame = _measure(traces.traces, "trace")
        seen = analysis.requests_frame(traces, level="trace")
        for flag in ("error", "fault", "throttle"):
            frame[flag] = seen[flag].to_numpy(dtype=bool)
    if by == "status":
        frame = frame.assign(_group=_status(frame))
        groups = [(s, frame.loc[frame["_group"] == s]) for s in _STATUSES]
        sizes = {"ok": 10, "error": 22, "throttle": 22, "fault": 30}
        for status, group in groups:
            if len(group):
                ax.scatter(
                    _naive_utc(group["start"]),
                    group["latency_s"],
                    s=sizes[status],
                    color=STATUS_COLORS[status],
                    alpha=0.8 if status != "ok" else 0.5,
                    label=f"{status} ({len(group)})",
                    zorder=2 + _STATUSES.index(status),
                )
        inside = frame.get("throttled_inside", pd.Series(False, index=frame.index))
        ringed = frame.loc[inside.astype(bool) & (frame["_group"] != "throttle")]
        if len(ringed):
            ax.scatter(
                _naive_utc(ringed["start"]),
                ringed["latency_s"],
                s=70,
                facecolors="none",
                edgecolors=STATUS_COLORS["throttle"],
                linewidths=1.2,
                label=f"throttled inside ({len(ringed)})",
                zorder=len(_STATUSES) + 2,
            )
    else:
        if by not in frame:
            raise ValueError(
                f"`by` must be 'status' or a column of the traces frame such as "
                f"'root_service' or 'http_url', but {by!r} was passed."
            )
        for label, group in frame.groupby(frame[by].astype("str").fillna("(none)"), sort=True):
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


def plot_latency_heatmap(
    data: TraceSet | pd.DataFrame,
    *,
    level: str = "trace",
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
    check_choice("level", level, analysis.LEVELS)
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
    import matplotlib.dates as mdates

    x_edges = mdates.date2num(t_edges.tz_convert("UTC").tz_localize(None).to_pydatetime())
    masked = np.ma.masked_equal(counts.T, 0)
    mesh = ax.pcolormesh(x_edges, y_edges, masked, cmap="viridis", shading="flat")
    ax.figure.colorbar(mesh, ax=ax, label="requests")
    if log:
        ax.set_yscale("log")
    ax.xaxis_date()
    return ax


# ----------------------------------------------------------------------------------------------
# the trace timeline


def _tree_order(ent: pd.DataFrame) -> pd.Series:
    """A sort key giving depth-first order (children by start time), built level by level."""
    levels = ent["depth"]
    order = pd.Series("", index=ent.index, dtype="object")
    for depth in range(int(levels.max()) + 1 if len(levels) else 0):
        at = ent.loc[levels == depth]
        rank = (
            at.sort_values(["start_s", "key"])
            .groupby(at["parent_key"].fillna(""), sort=False)
            .cumcount()
        )
        parent_order = at["parent_key"].map(pd.Series(order.to_numpy(), index=ent["key"]))
        order.loc[at.index] = parent_order.fillna("") + rank.reindex(at.index).map("{:06d}/".format)
    return order


def plot_timeline(
    traces: TraceSet,
    trace_id: str,
    *,
    critical: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Draw one trace as the console's timeline: a waterfall of segments and subsegments.

    Rows are in tree order (each entity under its parent, children by start time; a segment
    under the subsegment that called it), indented by depth, coloured by status, labelled with
    the duration. The critical path (see :func:`xraykit.analysis.critical_path`) is drawn as a
    black line under the part of each bar that was on it. Entities still in progress are
    drawn hatched up to the end of the trace.

    Parameters
    ----------
    traces : TraceSet
    trace_id : str
        A trace in ``traces``.
    critical : bool
        Mark the critical path.
    ax : matplotlib Axes, optional
        The height is not changed; for a tall trace make the figure taller.

    Returns
    -------
    matplotlib Axes
        One bar per entity (``ax.patches`` in row order, top row first) and, with
        ``critical``, a LineCollection labelled ``"critical path"``.

    Raises
    ------
    LookupError
        When ``trace_id`` is not in ``traces`` (as :meth:`TraceSet.trace`).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import xraykit
    >>> from xraykit.plotting import plot_timeline
    >>> ts = xraykit.load_sample("shop")
    >>> one = ts.traces.trace_id.iloc[0]
    >>> fig, ax = plt.subplots()
    >>> ax = plot_timeline(ts, one, ax=ax)
    >>> counts = ts.trace(one).traces[["segment_count", "subsegment_count"]]
    >>> len(ax.patches) == int(counts.sum(axis=1).iloc[0])
    True
    >>> plt.close(fig)
    """
    one = traces.trace(trace_id)  # LookupError for an unknown id
    ax = _axes(ax)
    everything = analysis.entities_frame(one)
    ent = everything.loc[~everything["key"].str.endswith("#inferred")].copy()
    t0 = float(np.nanmin(ent["start_s"])) if len(ent) else 0.0
    t_end = float(np.nanmax(ent[["start_s", "end_s"]].to_numpy())) if len(ent) else 0.0
    ent = ent.assign(_order=_tree_order(ent), _depth=ent["depth"])
    ent = ent.sort_values("_order", kind="stable").reset_index(drop=True)
    in_progress = ent["end_s"].isna()
    left = ent["start_s"] - t0
    width = ent["end_s"].fillna(t_end) - ent["start_s"]
    status = _status(ent)
    rows = np.arange(len(ent))
    bars = ax.barh(
        rows,
        width,
        left=left,
        height=0.7,
        color=[STATUS_COLORS[s] for s in status],
        edgecolor="none",
    )
    for bar, busy in zip(bars, in_progress, strict=True):
        if busy:
            bar.set_hatch("//")
    for row, (x, w, busy) in enumerate(zip(left, width, in_progress, strict=True)):
        ax.text(
            x + w,
            row,
            " " + ("in progress" if busy else _format_s(w)),
            va="center",
            ha="left",
            fontsize="small",
        )
    ax.set_yticks(rows)
    names = [
        ("   " * d) + _shorten(str(n)) for d, n in zip(ent["_depth"], ent["name"], strict=True)
    ]
    ax.set_yticklabels(names, fontsize="small")
    # left-aligned labels keep the indentation visible; pad by the longest label
    ax.tick_params(axis="y", pad=5.2 * max((len(n) for n in names), default=0))
    for label, is_segment in zip(ax.get_yticklabels(), ent["is_segment"], strict=True):
        label.set_horizontalalignment("left")
        if is_segment:
            label.set_fontweight("bold")
    if critical and len(ent):
        # an inferred downstream's part of the path is drawn on the call that reached it
        path = analysis.critical_path(one, trace_id)
        key = path["trace_id"] + "/" + path["entity_id"]
        row_of = pd.Series(rows, index=ent["key"].to_numpy())
        path = path.assign(
            key=key,
            left=(path["start"] - _EPOCH) / pd.Timedelta(1, "s") - t0,
            right=(path["end"] - _EPOCH) / pd.Timedelta(1, "s") - t0,
        )
        path = path.loc[isin(key, ent["key"]) & (path["end"] > path["start"])]
        path = path.drop_duplicates("key")
        y = path["key"].map(row_of).to_numpy(dtype="float64") + 0.42
        ax.hlines(
            y, path["left"], path["right"], colors="black", linewidth=2.5, label="critical path"
        )
    handles = [_legend_patch(STATUS_COLORS[s], s) for s in _STATUSES if (status == s).any()]
    if critical and len(ent):
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="black", linewidth=2.5, label="critical path"))
    _legend(ax, handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_ylim(max(len(ent), 1) - 0.5, -0.5)
    ax.set_xlim(0, max(t_end - t0, 1e-6) * 1.18)
    ax.set_xlabel("time since trace start (s)")
    ax.set_title(f"Trace {trace_id}")
    return ax


def _legend_patch(color: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


# ----------------------------------------------------------------------------------------------
# SLA and comparisons


def plot_sla(
    traces: TraceSet,
    threshold_s: float,
    *,
    by: str = "service",
    freq: str = "5min",
    target: float | None = None,
    names: Sequence[str] | str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the share of requests within ``threshold_s`` over time, one line per group.

    Parameters
    ----------
    traces : TraceSet
    threshold_s : float
        The time objective in seconds (see :func:`xraykit.analysis.sla`).
    by : {"service", "edge", "trace"}
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
    >>> ax = plot_sla(ts, 1.0, by="trace", target=0.95, ax=ax)
    >>> bool(ax.get_ylim()[1] <= 1.05)
    True
    >>> plt.close(fig)
    """
    check_freq(freq)
    ax = _axes(ax)
    table = analysis.sla(traces, threshold_s, by=by, freq=freq)  # type: ignore[arg-type]
    column = "edge" if by == "edge" else "service"
    table = _select(table, by, names) if names is not None else table
    table = table.assign(_group=_group_labels(table, column))
    for label, group in table.groupby("_group", sort=True):
        ax.plot(_naive_utc(group["time"]), group["share"].to_numpy(), marker=".", label=label)
    if target is not None:
        ax.axhline(
            target, color="#d62728", linestyle="--", linewidth=1, label=f"target {target:.0%}"
        )
    ax.set_ylim(max(0.0, float(table["share"].min()) - 0.05) if len(table) else 0, 1.02)
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"requests within {_format_s(threshold_s)}")
    ax.set_title(f"SLA: share within {_format_s(threshold_s)} per {freq}")
    _legend(ax, fontsize="small")
    return ax


_COMPARE_METRICS = ("p50_s", "p90_s", "p99_s", "error_rate", "fault_rate", "throttle_rate")


def plot_compare(
    a: TraceSet,
    b: TraceSet,
    *,
    by: str = "service",
    metric: str = "p90_s",
    top: int = 10,
    labels: tuple[str, str] = ("before", "after"),
    ax: Axes | None = None,
) -> Axes:
    """Draw a metric for the groups that changed most between two TraceSets (a dumbbell plot).

    Groups are ranked as in :func:`xraykit.analysis.compare`, the largest change on top; each
    row joins the value in ``a`` (hollow marker) to the value in ``b`` (filled).

    Parameters
    ----------
    a, b : TraceSet
        The baseline and the set to compare with it.
    by : str
        As in :func:`~xraykit.analysis.compare`.
    metric : {"p50_s", "p90_s", "p99_s", "error_rate", "fault_rate", "throttle_rate"}
    top : int
        How many groups to draw.
    labels : (str, str)
        Legend names of ``a`` and ``b``.
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
    >>> from xraykit.plotting import plot_compare
    >>> ts = xraykit.load_sample("shop")
    >>> half = len(ts) // 2
    >>> fig, ax = plt.subplots()
    >>> first, second = ts.select(ts.traces.trace_id[:half]), ts.select(ts.traces.trace_id[half:])
    >>> ax = plot_compare(first, second, top=3, ax=ax)
    >>> len(ax.get_yticklabels())
    3
    >>> plt.close(fig)
    """
    check_choice("metric", metric, _COMPARE_METRICS)
    ax = _axes(ax)
    table = analysis.compare(a, b, by=by).head(top)
    key_cols = [
        c
        for c in table.columns
        if not c.startswith(("count_", *_COMPARE_METRICS))
        and c not in ("driver", "change", "score", "service_type")
    ]
    names = table[key_cols].astype("str").agg(" ".join, axis=1).to_numpy()
    y = np.arange(len(table))
    va, vb = table[f"{metric}_a"].to_numpy(), table[f"{metric}_b"].to_numpy()
    if len(table):  # nothing to compare: empty, labelled axes
        ax.hlines(y, np.fmin(va, vb), np.fmax(va, vb), color="#999999", linewidth=2, zorder=1)
        ax.scatter(va, y, s=45, facecolors="white", edgecolors="#4878a8", zorder=2, label=labels[0])
        ax.scatter(vb, y, s=45, color="#d62728", zorder=3, label=labels[1])
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize="small")
    ax.set_ylim(max(len(table), 1) - 0.5, -0.5)
    ax.set_xlabel(metric.replace("_s", " (s)").replace("_", " "))
    ax.set_title(f"Largest changes by {by}")
    _legend(ax, fontsize="small")
    return ax

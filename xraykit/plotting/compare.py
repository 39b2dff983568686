"""The comparison chart: the groups that changed most between two TraceSets, as dumbbells.

Ranks groups as :func:`xraykit.analysis.compare` does and draws one metric before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from xraykit.analysis import compare
from xraykit.analysis.requests import Level
from xraykit.arguments import check_choice
from xraykit.plotting._common import _axes, _legend

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from xraykit.traceset import TraceSet

__all__ = ["plot_compare"]


_COMPARE_METRICS = ("p50_s", "p90_s", "p99_s", "error_rate", "fault_rate", "throttle_rate")


def plot_compare(
    before: TraceSet,
    after: TraceSet,
    *,
    level: Level = "service",
    by: str | Sequence[str] | None = None,
    metric: str = "p90_s",
    top: int = 10,
    labels: tuple[str, str] = ("before", "after"),
    ax: Axes | None = None,
) -> Axes:
    """Draw a metric for the groups that changed most between two TraceSets (a dumbbell plot).

    Groups are ranked as in :func:`xraykit.analysis.compare`, the largest change on top; each
    row joins the value in ``before`` (hollow marker) to the value in ``after`` (filled).

    Parameters
    ----------
    before, after : TraceSet
        The baseline and the set to compare with it.
    level : {"service", "edge", "trace"}
        What is measured, as in :func:`~xraykit.analysis.compare`.
    by : str or list of str, optional
        Grouping keys, as in :func:`~xraykit.analysis.compare`.
    metric : {"p50_s", "p90_s", "p99_s", "error_rate", "fault_rate", "throttle_rate"}
    top : int
        How many groups to draw.
    labels : (str, str)
        Legend names of ``before`` and ``after``.
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
    table = compare(before, after, level=level, by=by).head(top)
    key_cols = [
        c
        for c in table.columns
        if not c.startswith(("count_", *_COMPARE_METRICS))
        and c not in ("driver", "change", "score", "service_type")
    ]
    values = table[key_cols].astype("object").fillna("(none)").astype("str")
    names = values.agg(" ".join, axis=1).to_numpy() if key_cols else ["all requests"] * len(table)
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
    keys = [level, *([] if by is None else [by] if isinstance(by, str) else by)]
    ax.set_title(f"Largest changes by {', '.join(keys)}")
    _legend(ax, fontsize="small")
    return ax

"""The comparison chart: the groups that changed most between two TraceSets, as dumbbells.

Ranks groups as :func:`xraykit.analysis.compare` does and draws one metric before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xraykit.analysis import compare
from xraykit.analysis.requests import Level
from xraykit.arguments import check_choice
from xraykit.plotting._common import _axes, _legend, _shorten

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from xraykit.traceset import TraceSet

__all__ = ["plot_compare"]


_COMPARE_METRICS = ("p50_s", "p90_s", "p99_s", "error_rate", "fault_rate", "throttle_rate")


def _row_labels(table: pd.DataFrame) -> list[str]:
    """One label per row: the group keys, with the type where a name has several types."""
    key_cols = [
        c
        for c in table.columns
        if not c.startswith(("count_", *_COMPARE_METRICS))
        and c not in ("driver", "change", "score", "service_type")
    ]
    if not key_cols:
        return ["all requests"] * len(table)
    keys = table[key_cols].astype("object").fillna("(none)").astype("str")
    names = keys.agg(" ".join, axis=1) if len(table) else pd.Series([], dtype="str")
    if "service_type" in table and len(table):
        types = table["service_type"].astype("object").fillna("").astype("str")
        clash = types.groupby(names).transform("nunique") > 1
        names = names.where(~clash, names + " (" + types + ")")
    return [_shorten(str(name), 44) for name in names]


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
    row joins the value in ``before`` (hollow marker) to the value in ``after`` (filled). The
    rank is by the largest change of *any* metric (the ``driver`` column), so the rows need not
    be sorted by the metric drawn. Services that share a name (Lambda's two nodes, or a
    service and the client it stands for) are labelled with their type, ``shop-cart
    (AWS::Lambda)``; long names are shortened.

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
    >>> ax = plot_compare(first, second, top=20, ax=ax)
    >>> sorted(t.get_text() for t in ax.get_yticklabels() if t.get_text().startswith("shop-cart"))
    ['shop-cart (AWS::Lambda)', 'shop-cart (AWS::Lambda::Function)']
    >>> plt.close(fig)
    """
    check_choice("metric", metric, _COMPARE_METRICS)
    ax = _axes(ax)
    full = compare(before, after, level=level, by=by)
    table = full.head(top)
    names = _row_labels(full)[: len(table)]
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

"""Matplotlib views of a TraceSet: what the X-Ray console draws, and what it does not.

Charts follow seaborn's conventions: the data first, options keyword-only, ``level=`` for
what is measured, ``hue=`` for colour groups, ``ax=None`` draws on the current Axes, the
Axes is returned, ``plt.show()`` is never called, no rcParams are changed. Durations are
seconds. Outcome colours are :data:`xraykit.status.COLORS` (error yellow, throttle purple,
fault red). The modules:

* :mod:`~xraykit.plotting.latency` — distribution, percentiles and heatmap over time, SLA;
* :mod:`~xraykit.plotting.status` — outcomes over time, and every trace as a point;
* :mod:`~xraykit.plotting.timeline` — one trace as the console's waterfall;
* :mod:`~xraykit.plotting.compare` — the groups that changed most between two TraceSets;
* :mod:`~xraykit.plotting.sampling` — a sampling simulation, requests and sampled per rule.

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

from xraykit.plotting.compare import plot_compare
from xraykit.plotting.latency import (
    plot_latency_heatmap,
    plot_latency_histogram,
    plot_latency_percentiles,
    plot_sla,
)
from xraykit.plotting.sampling import plot_sampling
from xraykit.plotting.status import plot_scatter, plot_status_over_time
from xraykit.plotting.timeline import plot_timeline

__all__ = [
    "plot_compare",
    "plot_latency_heatmap",
    "plot_latency_histogram",
    "plot_latency_percentiles",
    "plot_sampling",
    "plot_scatter",
    "plot_sla",
    "plot_status_over_time",
    "plot_timeline",
]

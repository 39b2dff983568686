"""The chart of a sampling simulation: requests and sampled requests per second, per rule.

It draws what :func:`xraykit.sampling.sampling_summary` counts per rule and second; the
model itself (rules, decisions, simulation) is :mod:`xraykit.sampling`, which never draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.sampling import sampling_summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_sampling"]

_COLUMNS = ("time", "rule", "reason", "sampled")


def plot_sampling(
    data: pd.DataFrame,
    *,
    rules: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Plot requests against sampled requests per second, one colour per rule.

    Dashed lines are the requests each rule matched per second, solid lines the requests
    it sampled; requests that followed an upstream decision are drawn as ``(upstream)``.

    Parameters
    ----------
    data : DataFrame
        From :func:`xraykit.sampling.simulate_sampling`.
    rules : list of str, optional
        Only these rules (default: every rule that matched a request).
    ax : matplotlib Axes, optional
        Where to draw; by default the current Axes.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ArgumentError
        If ``data`` is not a simulation result, or ``rules`` names a rule that matched no
        request.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from xraykit.sampling import simulate_sampling, traffic
    >>> result = simulate_sampling(traffic(10, duration_s=30, seed=3), [], seed=3)
    >>> fig, ax = plt.subplots()
    >>> ax = plot_sampling(result, ax=ax)
    >>> [line.get_label() for line in ax.lines]
    ['Default requests', 'Default sampled']
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    if not isinstance(data, pd.DataFrame):
        raise ArgumentTypeError(
            "`data` must be the DataFrame simulate_sampling() returns, but "
            f"{type(data).__name__!r} was passed."
        )
    missing = sorted(set(_COLUMNS) - set(data.columns))
    if missing:
        raise ArgumentError(
            f"`data` must come from simulate_sampling(): it needs the columns {list(_COLUMNS)}, "
            f"but lacks {missing!r}."
        )
    if ax is None:
        ax = plt.gca()

    present: list[str] = []
    span = np.arange(0)
    if len(data):
        counts = sampling_summary(data, by=["rule", "second"])
        labels = counts.index.get_level_values("rule").astype(str)
        stamps = counts.index.get_level_values("second")
        offset = ((stamps - stamps.min()) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
        span = np.arange(int(offset.max()) + 1)
        present = list(dict.fromkeys(labels))
    if rules is not None:
        unknown = sorted(set(rules) - set(present))
        if unknown:
            raise ArgumentError(
                f"`rules` must name rules that matched requests ({present}), but "
                f"{unknown!r} was passed."
            )
        present = [name for name in present if name in rules]

    colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, name in enumerate(present):
        rows = np.asarray(labels == name)
        colour = colours[i % len(colours)]
        for column, style, width, alpha, what in (
            ("requests", "--", 1.0, 0.7, "requests"),
            ("sampled", "-", 1.6, 1.0, "sampled"),
        ):
            per_second = np.zeros(span.size, dtype=np.int64)
            per_second[offset[rows]] = counts[column].to_numpy()[rows]
            ax.plot(
                span,
                per_second,
                linestyle=style,
                linewidth=width,
                alpha=alpha,
                color=colour,
                label=f"{name} {what}",
            )
    settings = data.attrs.get("sampling", {})
    title = "Requests and sampled requests per second"
    if settings:
        title += f" ({settings['mode']}, {settings['hosts']} host"
        title += "s)" if settings["hosts"] != 1 else ")"
    ax.set_title(title)
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel("requests per second")
    ax.set_ylim(bottom=0)
    if present:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return ax

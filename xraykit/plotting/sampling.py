"""The chart of a sampling simulation: requests and sampled requests per second, per rule.

It draws what :func:`xraykit.sampling.sampling_summary` counts per rule and second, and can
add what the rules should give on average (the reservoir, then the fixed rate of the rest)
and smooth the sampled line, which is noisy second by second at a fixed rate of a few per
cent. The model itself (rules, decisions, simulation) is :mod:`xraykit.sampling`, which
never draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.sampling import RuleSet, SamplingRule, load_rules, sampling_summary
from xraykit.sampling.load import RuleSource

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_sampling"]

_COLUMNS = ("time", "rule", "reason", "sampled")


def _smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """A centred rolling mean over ``window`` seconds (the values themselves for 1)."""
    if window == 1:
        return values
    series = pd.Series(values, dtype="float64")
    return series.rolling(window, center=True, min_periods=1).mean().to_numpy()


def _expected(requests: np.ndarray, rule: SamplingRule, settings: dict[str, Any]) -> np.ndarray:
    """Sampled requests per second the rule gives on average, for these requests per second.

    The reservoir first — per host with local rules, shared by the fleet with centralized
    ones (before the first quota arrives each host may borrow 1 a second) — then the fixed
    rate of the rest.
    """
    hosts = int(settings.get("hosts", 1))
    if settings.get("mode", "centralized") == "local":
        cap = np.full(requests.size, rule.reservoir_size * hosts, dtype="float64")
    else:
        cap = np.full(requests.size, float(rule.reservoir_size))
        first_quota = int(settings.get("report_interval_s", 10))
        cap[:first_quota] = hosts if rule.reservoir_size > 0 else 0
    reservoir = np.minimum(requests, cap)
    return reservoir + rule.fixed_rate * (requests - reservoir)


def _check(data: object, smooth: object) -> None:
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
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
        raise ArgumentError(
            f"`smooth` must be a whole number of seconds >= 1 (1: no smoothing), but "
            f"{smooth!r} was passed."
        )


def plot_sampling(
    data: pd.DataFrame,
    *,
    rules: Sequence[str] | None = None,
    smooth: int = 1,
    expected: RuleSource | SamplingRule | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Plot requests against sampled requests per second, one colour per rule.

    Dashed lines are the requests each rule matched per second, solid lines the requests
    it sampled; requests that followed an upstream decision are drawn as ``(upstream)``.
    With ``expected``, a dotted line per rule shows what it samples on average: its
    reservoir, then its fixed rate of the remaining requests (the Default rule: 1 a second
    plus 5 % of the rest).

    Parameters
    ----------
    data : DataFrame
        From :func:`xraykit.sampling.simulate_sampling`.
    rules : list of str, optional
        Only these rules (default: every rule that matched a request).
    smooth : int
        Draw every line as its centred rolling mean over this many seconds (1: the raw
        counts of each second). At 5 % the sampled count of one second jumps between 0, 1
        and a few; a 10-second mean shows the rate the rule holds.
    expected : RuleSet, list of rules, or anything :func:`~xraykit.sampling.load_rules` reads
        The rules the simulation used (``[]`` for the Default rule alone): adds the expected
        sampled line of each rule, for the simulation's mode and hosts.
    ax : matplotlib Axes, optional
        Where to draw; by default the current Axes.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ArgumentError
        If ``data`` is not a simulation result, ``rules`` names a rule that matched no
        request, or ``smooth`` is not a whole number >= 1.

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
    >>> ax = plot_sampling(result, smooth=10, expected=[], ax=plt.subplots()[1])
    >>> [line.get_label() for line in ax.lines][-1]
    'Default expected: 1/s + 5% of the rest'
    >>> plt.close("all")
    """
    import matplotlib.pyplot as plt

    _check(data, smooth)
    if ax is None:
        ax = plt.gca()
    ruleset: RuleSet | None = None
    if expected is not None:
        ruleset = load_rules([expected] if isinstance(expected, SamplingRule) else expected)

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

    settings = dict(data.attrs.get("sampling", {}))
    colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, name in enumerate(present):
        rows = np.asarray(labels == name)
        colour = colours[i % len(colours)]
        per_second = {}
        for column in ("requests", "sampled"):
            per_second[column] = np.zeros(span.size, dtype=np.int64)
            per_second[column][offset[rows]] = counts[column].to_numpy()[rows]
        for column, style, width, alpha in (
            ("requests", "--", 1.0, 0.7),
            ("sampled", "-", 1.6, 1.0),
        ):
            ax.plot(
                span,
                _smoothed(per_second[column], smooth),
                linestyle=style,
                linewidth=width,
                alpha=alpha,
                color=colour,
                label=f"{name} {column}",
            )
        if ruleset is not None and name in ruleset.names:
            rule = ruleset.rule(name)
            mean = _expected(per_second["requests"].astype("float64"), rule, settings)
            reservoir = rule.reservoir_size * (
                int(settings.get("hosts", 1)) if settings.get("mode") == "local" else 1
            )
            ax.plot(
                span,
                _smoothed(mean, smooth),
                linestyle=":",
                linewidth=2.0,
                color="#222222",
                label=f"{name} expected: {reservoir}/s + {rule.fixed_rate * 100:g}% of the rest",
            )
    title = "Requests and sampled requests per second"
    if settings:
        title += f" ({settings['mode']}, {settings['hosts']} host"
        title += "s)" if settings["hosts"] != 1 else ")"
    if smooth > 1:
        title += f", {smooth}-second mean"
    ax.set_title(title)
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel("requests per second")
    ax.set_ylim(bottom=0)
    if present:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return ax

"""Checks of public functions' arguments, with messages in one form.

A message names the parameter, what is allowed and what was passed, so a learner sees at
once how to fix the call. Shared by the analyses and the charts.

Examples
--------
>>> check_choice("by", "host", ("service", "edge"))
Traceback (most recent call last):
...
xraykit.exceptions.ArgumentError: `by` must be one of ('service', 'edge'), but 'host' was passed.
>>> check_freq("5min")
Timedelta('0 days 00:05:00')
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pandas as pd
from pandas.tseries.frequencies import to_offset

from xraykit.exceptions import ArgumentError, ArgumentTypeError

__all__ = ["check_choice", "check_freq", "check_traceset", "is_loopback"]


def check_choice(name: str, value: object, options: Sequence[object]) -> None:
    """Raise :class:`~xraykit.exceptions.ArgumentError` unless ``value`` is one of ``options``."""
    if value not in options:
        raise ArgumentError(f"`{name}` must be one of {tuple(options)}, but {value!r} was passed.")


def check_freq(freq: object) -> pd.Timedelta | None:
    """Return the length of a fixed pandas frequency (time bins of one length); None passes.

    Raises
    ------
    ArgumentError
        For anything else, months included (their bins differ in length).
    """
    if freq is None:
        return None
    try:
        length = pd.Timedelta(to_offset(freq))
    except (TypeError, ValueError):
        length = None
    if length is None or length <= pd.Timedelta(0):
        raise ArgumentError(
            f"`freq` must be a pandas frequency such as '1min', '5min' or '1h', but {freq!r} "
            "was passed."
        )
    return length


def check_traceset(value: object, name: str = "ts") -> None:
    """Raise :class:`~xraykit.exceptions.ArgumentTypeError` unless ``value`` is a TraceSet.

    The analyses sit below :mod:`xraykit.traceset` (it calls them), so the test is by what a
    TraceSet has — its frames and ``select`` — rather than by class.

    >>> check_traceset([1, 2])
    Traceback (most recent call last):
    ...
    xraykit.exceptions.ArgumentTypeError: `ts` must be a TraceSet (from xraykit.load_sample, load_file or fetch), but a list was passed. For a DataFrame of traces, pass the TraceSet it came from, or ts.select(frame['trace_id']).
    """
    frames = getattr(value, "frames", None)
    if not (
        isinstance(frames, dict) and "traces" in frames and callable(getattr(value, "select", None))
    ):
        raise ArgumentTypeError(
            f"`{name}` must be a TraceSet (from xraykit.load_sample, load_file or fetch), but "
            f"a {type(value).__name__} was passed. For a DataFrame of traces, pass the "
            "TraceSet it came from, or ts.select(frame['trace_id'])."
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: 127.0.0.0/8, ``::1`` or ``localhost``.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("example.com")
    (True, True, False, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

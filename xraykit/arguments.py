"""Checks of public functions' arguments, with messages in one form.

A message names the parameter, what is allowed and what was passed, so a learner sees at
once how to fix the call. Shared by the analyses and the charts.

Examples
--------
>>> check_choice("by", "host", ("service", "edge"))
Traceback (most recent call last):
...
ValueError: `by` must be one of ('service', 'edge'), but 'host' was passed.
>>> check_freq("5min")
Timedelta('0 days 00:05:00')
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["check_choice", "check_freq"]


def check_choice(name: str, value: object, options: Sequence[object]) -> None:
    """Raise ValueError unless ``value`` is one of ``options``."""
    if value not in options:
        raise ValueError(f"`{name}` must be one of {tuple(options)}, but {value!r} was passed.")


def check_freq(freq: object) -> pd.Timedelta | None:
    """Return the length of a fixed pandas frequency (time bins of one length); None passes.

    Raises
    ------
    ValueError
        For anything else, months included (their bins differ in length).
    """
    if freq is None:
        return None
    from pandas.tseries.frequencies import to_offset

    try:
        length = pd.Timedelta(to_offset(freq))
    except (TypeError, ValueError):
        length = None
    if length is None or length <= pd.Timedelta(0):
        raise ValueError(
            f"`freq` must be a pandas frequency such as '1min', '5min' or '1h', but {freq!r} "
            "was passed."
        )
    return length

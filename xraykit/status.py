"""The outcome of a request as X-Ray names it — ok, error, throttle, fault — and its colours.

X-Ray's rule, stated once for every module: an entity is a **fault** when its ``fault`` flag
is set or its HTTP status is 5xx; a **throttle** when its ``throttle`` flag is set or the
status is 429; an **error** when its ``error`` flag is set, the status is 4xx, or it is a
throttle (a 429 is a client error too). A flag a document left out counts as false, and a
missing status adds nothing. One label per request is the worst of them:
fault > throttle > error > ok.

The colours are the X-Ray console's: ok green, error yellow (amber), throttle purple,
fault red.

Examples
--------
>>> import numpy as np
>>> outcome = flags(np.array([200, 404, 429, 503, np.nan]), fault=[0, 0, 0, 0, 1])
>>> outcome.error.tolist(), outcome.throttle.tolist(), outcome.fault.tolist()
([False, True, True, False, False], [False, False, True, False, False], [False, False, False, True, True])
>>> labels(outcome).tolist()
['ok', 'error', 'throttle', 'fault', 'fault']
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

__all__ = ["COLORS", "STATUSES", "Flags", "flags", "labels"]

#: The outcomes, least to most severe.
STATUSES: tuple[str, ...] = ("ok", "error", "throttle", "fault")

#: The X-Ray console's colours for each outcome (error is yellow, throttle purple, fault red).
COLORS: dict[str, str] = {
    "ok": "#3f9c35",
    "error": "#f0ab00",
    "throttle": "#8a4baf",
    "fault": "#d13212",
}


class Flags(NamedTuple):
    """X-Ray's three outcome flags of each request, as boolean arrays."""

    fault: np.ndarray
    error: np.ndarray
    throttle: np.ndarray


def _bools(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=bool)
    if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        return np.asarray(pd.array(values, dtype="boolean").fillna(False), dtype=bool)
    array = np.asarray(values)
    if array.dtype == object:
        return np.asarray(pd.array(array, dtype="boolean").fillna(False), dtype=bool)
    return array.astype(bool)


def flags(http_status: Any, *, fault: Any = None, error: Any = None, throttle: Any = None) -> Flags:
    """The fault, error and throttle flags of each request, by X-Ray's rule.

    Parameters
    ----------
    http_status
        The HTTP status of each request (numbers; missing values allowed).
    fault, error, throttle
        The documents' own flags, same length (missing values count as false); ``None``
        when there are none.

    Examples
    --------
    >>> [f.tolist() for f in flags([500, 429, 200], error=[False, False, True])]
    [[True, False, False], [False, True, True], [False, True, False]]
    """
    status = pd.array(http_status, dtype="Float64").to_numpy(dtype="float64", na_value=np.nan)
    n = len(status)
    with np.errstate(invalid="ignore"):
        is_fault = _bools(fault, n) | ((status >= 500) & (status < 600))
        is_throttle = _bools(throttle, n) | (status == 429)
        is_error = _bools(error, n) | is_throttle | ((status >= 400) & (status < 500))
    return Flags(fault=is_fault, error=is_error, throttle=is_throttle)


def labels(outcome: Flags) -> np.ndarray:
    """One label per request, the worst of its flags: fault > throttle > error > ok.

    >>> labels(Flags(np.array([False, True]), np.array([True, True]), np.array([False, False])))
    array(['error', 'fault'], dtype=object)
    """
    return np.select(
        [outcome.fault, outcome.throttle, outcome.error],
        ["fault", "throttle", "error"],
        default="ok",
    ).astype(object)

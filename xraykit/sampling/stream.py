"""A seeded stream of incoming requests (:func:`traffic`): Poisson arrivals around a rate curve
with peaks, and an endpoint mix by weight."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError

_DEFAULT_ENDPOINTS = pd.DataFrame(
    [
        ("shop.example.com", "GET", "/", 0.20),
        ("shop.example.com", "GET", "/products/{id}", 0.35),
        ("shop.example.com", "POST", "/cart", 0.10),
        ("shop.example.com", "POST", "/checkout", 0.05),
        ("shop.example.com", "GET", "/health", 0.20),
        ("admin.example.com", "GET", "/admin/reports", 0.10),
    ],
    columns=["host", "method", "path", "weight"],
)


def _generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def traffic(
    rate: float | Sequence[float] | np.ndarray = 10.0,
    *,
    duration_s: int = 600,
    peaks: int = 1,
    peak_factor: float = 4.0,
    endpoints: pd.DataFrame | Sequence[tuple[str, str, str, float]] | None = None,
    start: str | datetime = "2024-01-01T00:00:00Z",
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Generate a seeded stream of incoming requests.

    Requests arrive as a Poisson process whose rate follows a curve: ``rate`` requests per
    second at the base, rising smoothly to ``peak_factor`` times that at ``peaks`` evenly
    spaced peaks. Each request picks an endpoint by weight; ``{id}`` in a path becomes a
    random number.

    Parameters
    ----------
    rate : float or array of float
        Base requests per second; or the rate for every second (then ``duration_s``,
        ``peaks`` and ``peak_factor`` are not used).
    duration_s : int
        Length of the stream in seconds.
    peaks : int
        Number of traffic peaks (0 for a flat rate).
    peak_factor : float
        Rate at the top of a peak relative to the base.
    endpoints : DataFrame or list of (host, method, path, weight), optional
        The request mix; a DataFrame may add ``service`` and ``service_type`` columns.
        Default: a small shop (``shop.example.com``: ``/``, ``/products/{id}``, ``/cart``,
        ``/checkout``, ``/health``; ``admin.example.com``: ``/admin/reports``).
    start : str or datetime
        Time of the first second (UTC).
    seed : int or numpy.random.Generator, optional
        Randomness; the same seed gives the same stream.

    Returns
    -------
    DataFrame
        One row per request in time order: ``time`` (UTC), ``host``, ``method``, ``path``,
        plus ``service``/``service_type`` if the endpoints have them.

    Examples
    --------
    >>> requests = traffic(5, duration_s=60, seed=0)
    >>> list(requests.columns)
    ['time', 'host', 'method', 'path']
    >>> 200 < len(requests) < 1000
    True
    """
    rng = _generator(seed)
    if np.ndim(rate) == 0:
        base = float(rate)  # type: ignore[arg-type]
        if not base >= 0 or not math.isfinite(base):
            raise ArgumentError(
                f"`rate` must be a non-negative number of requests per second, but "
                f"{rate!r} was passed."
            )
        if int(duration_s) < 1:
            raise ArgumentError(f"`duration_s` must be at least 1, but {duration_s!r} was passed.")
        seconds = np.arange(int(duration_s), dtype=np.float64)
        curve = np.ones_like(seconds)
        if peaks > 0:
            centres = (np.arange(peaks) + 0.5) * duration_s / peaks
            width = duration_s / (8.0 * peaks)
            bumps = np.exp(-0.5 * ((seconds[:, None] + 0.5 - centres[None, :]) / width) ** 2)
            curve = 1.0 + (float(peak_factor) - 1.0) * bumps.max(axis=1)
        per_second = base * curve
    else:
        per_second = np.asarray(rate, dtype=np.float64)
        if per_second.ndim != 1 or (per_second < 0).any() or not np.isfinite(per_second).all():
            raise ArgumentError("`rate` as an array must be one non-negative rate per second.")
    counts = rng.poisson(per_second)
    total = int(counts.sum())
    second_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offset_ns = second_of * 1_000_000_000 + (rng.random(total) * 1e9).astype(np.int64)
    offset_ns.sort()
    start_ts = pd.Timestamp(start)
    start_ts = (
        start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    )
    times = pd.DatetimeIndex(start_ts.as_unit("ns") + pd.to_timedelta(offset_ns, unit="ns"))

    mix = endpoints if endpoints is not None else _DEFAULT_ENDPOINTS
    if not isinstance(mix, pd.DataFrame):
        mix = pd.DataFrame(list(mix), columns=["host", "method", "path", "weight"])
    missing = {"host", "method", "path", "weight"} - set(mix.columns)
    if missing or len(mix) == 0:
        raise ArgumentError(
            f"`endpoints` needs rows with host, method, path and weight; missing "
            f"{sorted(missing)!r} in {list(mix.columns)!r}."
        )
    weights = mix["weight"].to_numpy(dtype=np.float64)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ArgumentError(
            f"endpoint weights must be non-negative and not all 0, got {weights.tolist()!r}."
        )
    pick = rng.choice(len(mix), size=total, p=weights / weights.sum())
    columns: dict[str, Any] = {"time": times}
    for column in ["host", "method", "path", "service", "service_type"]:
        if column in mix.columns:
            values = mix[column].astype(str).to_numpy(dtype=object)
            if column == "path":  # fill {id} per endpoint, one vectorised step each
                paths = values[pick].astype(object)
                for endpoint, template in enumerate(values):
                    if "{id}" not in template:
                        continue
                    rows = np.flatnonzero(pick == endpoint)
                    prefix, suffix = template.split("{id}", 1)
                    ids = rng.integers(1, 10_000, size=rows.size).astype(str)
                    paths[rows] = np.char.add(np.char.add(prefix, ids), suffix).astype(object)
                columns[column] = pd.array(paths, dtype="str")
            else:
                categories = pd.array(values, dtype="str")
                columns[column] = categories.take(pick)
    frame = pd.DataFrame(columns)
    return frame

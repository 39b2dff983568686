"""What recording and reading the sampled traces costs per month (:func:`estimate_cost`), from
a constant request rate or a request stream, at the prices of :data:`xraykit.pricing.PRICES`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError
from xraykit.pricing import PRICES
from xraykit.sampling.load import RuleSource, _as_rule_set
from xraykit.sampling.rules import SamplingRule
from xraykit.sampling.ruleset import Mode, _check_mode
from xraykit.sampling.simulate import simulate_sampling
from xraykit.sampling.times import _time_ns


def _expected_taken(mean: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """E[min(N, k)] for N ~ Poisson(mean): requests a per-second reservoir of k takes."""
    mean = np.asarray(mean, dtype=np.float64)
    capacity = np.asarray(capacity, dtype=np.int64)
    out = np.zeros(np.broadcast(mean, capacity).shape)
    mean_b, capacity_b = np.broadcast_arrays(mean, capacity)
    for index in np.ndindex(out.shape):
        lam, k = float(mean_b[index]), int(capacity_b[index])
        if k <= 0 or lam <= 0:
            continue
        pmf = math.exp(-lam)
        shortfall = 0.0
        for count in range(k):
            shortfall += (k - count) * pmf
            pmf *= lam / (count + 1)
        out[index] = k - shortfall
    return out


def estimate_cost(
    data: float | pd.DataFrame,
    *,
    rules: RuleSource | SamplingRule | None = None,
    hosts: int = 1,
    mode: Mode = "centralized",
    scans_per_trace: float = 1.0,
    retrieved_share: float = 0.05,
    days: float = 30.0,
) -> pd.DataFrame:
    """Estimate traces recorded, retrieved and scanned per month, and what they cost.

    Recorded traces are the sampled requests (downstream services join the same trace).
    Scanned traces are what trace lists, filter expressions and groups read
    (``scans_per_trace`` times each recorded trace); retrieved traces are the ones opened
    in full (``retrieved_share`` of them). Prices are the published US East prices
    (:data:`xraykit.pricing.PRICES`): 100,000 recorded traces free per month, then $5.00
    per million; 1,000,000 retrieved or scanned traces free (together), then $0.50 per
    million.

    Parameters
    ----------
    data : float or DataFrame
        Requests per second across the fleet (constant), or a request stream (see
        :func:`~xraykit.sampling.traffic`) or :func:`~xraykit.sampling.simulate_sampling`
        result, whose sampling is scaled
        from its time span to a month.
    rules : rule, rules or rules file, optional
        Default: the Default rule. With a request rate, give at most one rule besides
        Default (every request is taken to match the first rule).
    hosts : int
        Instances behind the load balancer.
    mode : {"centralized", "local"}
    scans_per_trace, retrieved_share : float
        How much the traces are read.
    days : float
        Length of the month.

    Returns
    -------
    DataFrame
        Rows ``recorded``, ``retrieved``, ``scanned`` and ``total``; columns ``traces``
        (per month), ``free``, ``billable``, ``usd_per_million`` and ``cost_usd``. Its
        ``attrs["assumptions"]`` records the inputs and the sampled requests per second.

    Examples
    --------
    >>> cost = estimate_cost(100.0)  # 100 req/s, default rule: 1/s + 5 % of the rest
    >>> round(float(cost.loc["recorded", "traces"]) / 1e6, 2)  # million traces per month
    15.42
    >>> round(float(cost.loc["total", "cost_usd"]), 2)
    84.21
    """
    _check_mode(mode)
    if int(hosts) < 1:
        raise ArgumentError(f"`hosts` must be 1 or more, but {hosts!r} was passed.")
    if scans_per_trace < 0 or not 0 <= retrieved_share <= 1 or days <= 0:
        raise ArgumentError(
            "`scans_per_trace` must be >= 0, `retrieved_share` in 0-1 and `days` "
            f"> 0, but got {scans_per_trace!r}, {retrieved_share!r}, {days!r}."
        )
    month_s = days * 86_400.0
    if isinstance(data, pd.DataFrame):
        result = data
        if "sampled" not in result.columns:
            result = simulate_sampling(
                result, rules if rules is not None else [], hosts=hosts, mode=mode, seed=0
            )
        seconds = np.floor_divide(_time_ns(result["time"]), 1_000_000_000)
        span = float(seconds.max() - seconds.min() + 1) if len(result) else 1.0
        requests_per_s = len(result) / span
        sampled_per_s = float(result["sampled"].sum()) / span
    else:
        requests_per_s = float(data)
        if not requests_per_s >= 0 or not math.isfinite(requests_per_s):
            raise ArgumentError(
                f"`data` must be requests per second (>= 0) or a DataFrame, but "
                f"{data!r} was passed."
            )
        rule_set = _as_rule_set(rules if rules is not None else [])
        custom = [rule for rule in rule_set if not rule.is_default]
        if len(custom) > 1:
            raise ArgumentError(
                f"With a constant request rate, pass one rule (every request matches it); got "
                f"{rule_set.names}. To cost several rules, pass a request stream: "
                "estimate_cost(xraykit.sampling.traffic(...), rules=...)."
            )
        rule = custom[0] if custom else rule_set.rule("Default")
        per_host = requests_per_s / int(hosts)
        if mode == "local":
            capacity = np.full(int(hosts), rule.reservoir_size)
        else:
            base, rest = divmod(rule.reservoir_size, int(hosts))
            capacity = base + (np.arange(int(hosts)) < rest).astype(np.int64)
        taken = _expected_taken(np.full(int(hosts), per_host), capacity)
        sampled_per_s = float((taken + rule.fixed_rate * (per_host - taken)).sum())
    recorded = sampled_per_s * month_s
    retrieved = recorded * retrieved_share
    scanned = recorded * scans_per_trace
    rec_price = PRICES["recorded"]
    read_price = PRICES["retrieved or scanned"]
    free_recorded = min(recorded, rec_price["free_per_month"])
    free_retrieved = min(retrieved, read_price["free_per_month"])
    free_scanned = min(scanned, read_price["free_per_month"] - free_retrieved)
    rows = {
        "recorded": (recorded, free_recorded, rec_price["usd_per_million"]),
        "retrieved": (retrieved, free_retrieved, read_price["usd_per_million"]),
        "scanned": (scanned, free_scanned, read_price["usd_per_million"]),
    }
    out = pd.DataFrame.from_dict(
        rows, orient="index", columns=["traces", "free", "usd_per_million"]
    )
    out["billable"] = out["traces"] - out["free"]
    out["cost_usd"] = out["billable"] / 1e6 * out["usd_per_million"]
    out.loc["total"] = [np.nan, np.nan, np.nan, np.nan, out["cost_usd"].sum()]
    out = out[["traces", "free", "billable", "usd_per_million", "cost_usd"]]
    out.attrs["assumptions"] = {
        "requests_per_s": requests_per_s,
        "sampled_per_s": sampled_per_s,
        "hosts": int(hosts),
        "mode": mode,
        "scans_per_trace": scans_per_trace,
        "retrieved_share": retrieved_share,
        "days": days,
    }
    return out

"""The decisions a fleet of hosts makes for a request stream (:func:`simulate_sampling`),
vectorised: per host, rule and second reservoirs in local mode, and the quotas X-Ray hands out
from the hosts' reports in centralized mode."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError
from xraykit.sampling.decision import REASONS, _upstream
from xraykit.sampling.load import RuleSource, _as_rule_set, _short
from xraykit.sampling.matching import _match_frame
from xraykit.sampling.rules import SamplingRule
from xraykit.sampling.ruleset import Mode, _check_mode
from xraykit.sampling.stream import _generator
from xraykit.sampling.times import _time_ns


def simulate_sampling(
    data: pd.DataFrame,
    rules: RuleSource | SamplingRule,
    *,
    hosts: int = 1,
    mode: Mode = "centralized",
    seed: int | np.random.Generator | None = None,
    report_interval_s: int = 10,
    quota_ttl_s: int = 300,
) -> pd.DataFrame:
    """Simulate the sampling decisions a fleet of hosts makes for a request stream.

    Every request is matched to its rule exactly as the SDK matches it; requests whose
    ``upstream`` column says ``"1"`` or ``"0"`` simply follow it. The reservoir works per
    host, rule and wall-clock second (the SDK keys on ``int(time.time())``): the first
    requests of a second take from it, in time order; the rest are sampled with the rule's
    fixed rate.

    - ``mode="local"``: every host applies the rules on its own, so each host samples up
      to ``reservoir_size`` requests per second — the fleet's fixed target is the
      reservoir times the number of hosts.
    - ``mode="centralized"``: hosts report each rule they used every ``report_interval_s``
      seconds from the first request on (all hosts at the same moments, rules already
      fetched). X-Ray splits the rule's reservoir evenly among the hosts that reported it
      (the remainder goes one each to hosts in an order that rotates every report), and a
      quota applies from the report's second until it is replaced or ``quota_ttl_s``
      seconds after that report. A host without a valid quota borrows 1 request per second
      if the rule's reservoir is not 0. So the fleet stays near the reservoir size.

    Parameters
    ----------
    data : DataFrame
        The requests (see :func:`~xraykit.sampling.traffic`): a ``time`` column (datetimes,
        or epoch seconds) and any of ``host``, ``method``, ``path``, ``service``,
        ``service_type`` (missing ones match anything), ``upstream`` and ``instance``
        (which host serves the request; otherwise each request goes to a random one of
        ``hosts``, like a load balancer). Not modified.
    rules : RuleSet, list of rules, or anything :func:`~xraykit.sampling.load_rules` reads
    hosts : int
        Number of instances (SDK processes) behind the load balancer.
    mode : {"centralized", "local"}
    seed : int or numpy.random.Generator, optional
        Randomness for host assignment and fixed-rate draws.
    report_interval_s : int
        Seconds between statistics reports (``Interval``; 10 by default).
    quota_ttl_s : int
        Seconds a quota stays valid after the report that granted it.

    Returns
    -------
    DataFrame
        ``data`` (same index and order) plus ``instance``, ``rule`` (categorical, in
        evaluation order; missing for upstream decisions), ``reason`` (categorical:
        ``upstream``, ``reservoir``, ``borrow``, ``rate``, ``not sampled``) and ``sampled``.

    Examples
    --------
    >>> from xraykit.sampling import traffic
    >>> requests = traffic(50, duration_s=30, peaks=0, seed=0)
    >>> local = simulate_sampling(requests, [], hosts=4, mode="local", seed=0)
    >>> per_second = local.groupby(local["time"].dt.floor("s"))["reason"]
    >>> int(per_second.agg(lambda r: (r == "reservoir").sum()).max())  # 1 per host
    4
    >>> central = simulate_sampling(requests, [], hosts=4, mode="centralized", seed=0)
    >>> later = central[central["time"] >= central["time"].min() + pd.Timedelta("10s")]
    >>> int(later.groupby(later["time"].dt.floor("s"))["reason"].agg(
    ...     lambda r: (r == "reservoir").sum()).max())  # 1 for the fleet, once quotas arrive
    1
    """
    _check_mode(mode)
    rule_set = _as_rule_set(rules)
    if not isinstance(data, pd.DataFrame) or "time" not in data.columns:
        raise ArgumentError(
            "`data` must be a DataFrame with a `time` column (see xraykit.sampling.traffic()), but got "
            f"{_short(getattr(data, 'columns', data))}."
        )
    if int(hosts) < 1:
        raise ArgumentError(f"`hosts` must be 1 or more, but {hosts!r} was passed.")
    if int(report_interval_s) < 1 or int(quota_ttl_s) < 0:
        raise ArgumentError(
            "`report_interval_s` must be 1 or more and `quota_ttl_s` 0 or more, "
            f"but {report_interval_s!r} and {quota_ttl_s!r} were passed."
        )
    rng = _generator(seed)
    n = len(data)
    result = data.copy()

    time_ns = _time_ns(data["time"])
    second = np.floor_divide(time_ns, 1_000_000_000)
    if "instance" in data.columns:
        if hosts != 1:
            raise ArgumentError(
                "`data` already has an `instance` column; pass either that or "
                f"`hosts`, not both (hosts={hosts!r})."
            )
        instance_codes, _ = pd.factorize(data["instance"])
        if (instance_codes < 0).any():
            raise ArgumentError(
                "The `instance` column has missing values; give every request a host."
            )
    else:
        instance_codes = rng.integers(0, int(hosts), size=n)
        result["instance"] = instance_codes

    if "upstream" in data.columns:
        upstream_values = pd.Series(data["upstream"].to_numpy(dtype=object))
        mapped = upstream_values.map(_upstream)
        has_upstream = mapped.notna().to_numpy()
        upstream_sampled = mapped.fillna(False).to_numpy(dtype=bool)
    else:
        has_upstream = np.zeros(n, dtype=bool)
        upstream_sampled = np.zeros(n, dtype=bool)

    rule_index = _match_frame(rule_set, data)
    rule_index[has_upstream] = -1
    reservoir = np.array([rule.reservoir_size for rule in rule_set], dtype=np.int64)
    rate = np.array([rule.fixed_rate for rule in rule_set], dtype=np.float64)

    local_rows = np.flatnonzero(~has_upstream)
    # time order within each (instance, rule, second); ties keep input order
    order = local_rows[
        np.lexsort(
            (
                np.arange(local_rows.size),
                time_ns[local_rows],
                rule_index[local_rows],
                instance_codes[local_rows],
            )
        )
    ]
    inst_o, rule_o, sec_o = instance_codes[order], rule_index[order], second[order]
    new_group = np.ones(order.size, dtype=bool)
    new_group[1:] = (
        (inst_o[1:] != inst_o[:-1]) | (rule_o[1:] != rule_o[:-1]) | (sec_o[1:] != sec_o[:-1])
    )
    group_start = np.flatnonzero(new_group)
    group_id = np.cumsum(new_group) - 1
    rank = np.arange(order.size) - group_start[group_id]

    if mode == "local":
        cap = reservoir[rule_o]
        from_reservoir = np.full(order.size, REASONS.index("reservoir"))
    else:
        origin = int(second.min()) if n else 0
        cap, from_reservoir = _centralized_caps(
            inst_o, rule_o, sec_o - origin, reservoir, int(report_interval_s), int(quota_ttl_s)
        )
    taken = rank < cap

    reason_code = np.full(n, REASONS.index("upstream"), dtype=np.int8)
    draws = rng.random(n)
    rate_hit = draws < rate[np.maximum(rule_index, 0)]
    sampled = upstream_sampled.copy()
    local_reason = np.where(rate_hit[order], REASONS.index("rate"), REASONS.index("not sampled"))
    local_reason = np.where(taken, from_reservoir, local_reason)
    reason_code[order] = local_reason
    sampled[order] = taken | rate_hit[order]

    result["rule"] = pd.Categorical.from_codes(rule_index, categories=rule_set.names)
    result["reason"] = pd.Categorical.from_codes(reason_code, categories=list(REASONS))
    result["sampled"] = sampled
    result.attrs["sampling"] = {
        "mode": mode,
        "hosts": int(instance_codes.max()) + 1 if n else int(hosts),
        "rules": rule_set.names,
        "report_interval_s": int(report_interval_s),
        "quota_ttl_s": int(quota_ttl_s),
    }
    return result


def _centralized_caps(
    inst: np.ndarray,
    rule: np.ndarray,
    sec: np.ndarray,
    reservoir: np.ndarray,
    interval: int,
    ttl: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per request (sorted by instance, rule, time): reservoir capacity and its reason.

    ``sec`` counts seconds from the first request. Window ``w`` covers seconds
    ``[w*interval, (w+1)*interval)``; a host that used a rule in window ``w`` reports it at
    the start of window ``w+1`` and its quota applies from that second.
    """
    size = sec.size
    if size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    window = sec // interval
    # (instance, rule, window) triples in sorted order -> one report each
    new_triple = np.ones(size, dtype=bool)
    new_triple[1:] = (inst[1:] != inst[:-1]) | (rule[1:] != rule[:-1]) | (window[1:] != window[:-1])
    starts = np.flatnonzero(new_triple)
    triple_of = np.cumsum(new_triple) - 1
    t_inst, t_rule, t_window = inst[starts], rule[starts], window[starts]
    t_tick = t_window + 1  # the report after the window
    # hosts reporting each rule at each tick: count and position (by instance)
    by_tick = np.lexsort((t_inst, t_tick, t_rule))
    r_rule, r_tick = t_rule[by_tick], t_tick[by_tick]
    new_batch = np.ones(by_tick.size, dtype=bool)
    new_batch[1:] = (r_rule[1:] != r_rule[:-1]) | (r_tick[1:] != r_tick[:-1])
    batch_start = np.flatnonzero(new_batch)
    batch_of = np.cumsum(new_batch) - 1
    batch_size = np.diff(np.append(batch_start, by_tick.size))
    position = np.arange(by_tick.size) - batch_start[batch_of]
    reporters = batch_size[batch_of]
    size_r = reservoir[r_rule]
    extra = ((position - r_tick) % reporters) < (size_r % reporters)
    quota_sorted = size_r // reporters + extra.astype(np.int64)
    t_quota = np.empty_like(quota_sorted)
    t_quota[by_tick] = quota_sorted
    # the report each request's host last received for the rule: from the previous triple
    same_stream = np.zeros(t_inst.size, dtype=bool)
    same_stream[1:] = (t_inst[1:] == t_inst[:-1]) & (t_rule[1:] == t_rule[:-1])
    prev = np.arange(t_inst.size) - 1
    has_report = same_stream[triple_of]
    prev_triple = prev[triple_of]
    report_tick = np.where(has_report, t_tick[np.maximum(prev_triple, 0)], -1)
    quota = np.where(has_report, t_quota[np.maximum(prev_triple, 0)], 0)
    valid = has_report & (sec <= report_tick * interval + ttl)
    borrow = np.where(reservoir[rule] > 0, 1, 0)
    cap = np.where(valid, quota, borrow)
    reason = np.where(valid, REASONS.index("reservoir"), REASONS.index("borrow"))
    return cap, reason

"""One sampling decision (:func:`decide`): an upstream decision, else the matching rule's
reservoir for this second (or, centralized without a quota, 1 borrowed request per second),
else its fixed rate; the :data:`REASONS` and the :class:`SamplingDecision` it returns."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.sampling.ruleset import RuleSet
from xraykit.sampling.times import _epoch_second

#: The reasons a decision can have, in the order a sampler considers them.
REASONS: tuple[str, ...] = ("upstream", "reservoir", "borrow", "rate", "not sampled")


class SamplingDecision(NamedTuple):
    """What the sampler decided for one request, by which rule and why."""

    sampled: bool
    rule: str | None
    reason: str


class _Random(Protocol):
    def random(self) -> float: ...


Clock = float | int | datetime | Callable[[], float | int | datetime]


def _upstream(value: object) -> bool | None:
    """The upstream ``Sampled`` decision: True, False, or None (decide here)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value).strip()
    if text in {"1", "1.0"}:
        return True
    if text in {"0", "0.0"}:
        return False
    if text in {"", "?"}:
        return None
    raise ArgumentError(
        f'An upstream decision must be "1" (sampled), "0" (not sampled), "?" or empty '
        f"(decide here), but {value!r} was given."
    )


def _header_decision(header: str) -> bool | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Sampled":
            return _upstream(value)
    return None


def decide(
    rule_set: RuleSet,
    request: Mapping[str, Any],
    *,
    clock: Clock,
    rng: _Random,
) -> SamplingDecision:
    """Decide whether to sample one request, as an instrumented service's SDK does.

    An upstream decision (``Sampled=1`` or ``Sampled=0`` in the tracing header) wins.
    Otherwise the first matching rule decides: its reservoir for the current second first,
    then its fixed rate. The per-second reservoir counts live in ``rule_set`` (call
    :meth:`RuleSet.reset` to start over). In a ``"centralized"`` rule set a rule without a
    valid quota (see :meth:`RuleSet.load_quota`) borrows 1 request per second if its
    reservoir is not 0.

    Parameters
    ----------
    rule_set : RuleSet
        From :func:`load_rules` or ``RuleSet(rules)``; keeps the reservoir state.
    request : mapping
        Any of ``host``, ``method``, ``path``, ``service``, ``service_type``; and
        ``upstream`` (``"1"``, ``"0"``, ``"?"``) or ``trace_header`` (an
        ``X-Amzn-Trace-Id`` value). Missing match fields match anything.
    clock : float, datetime or callable
        Now, in epoch seconds or as a datetime, or a function returning it.
    rng : numpy.random.Generator or random.Random
        The source of the fixed-rate draws.

    Returns
    -------
    SamplingDecision
        ``(sampled, rule, reason)`` with reason one of ``"upstream"``, ``"reservoir"``,
        ``"borrow"``, ``"rate"`` and ``"not sampled"``; ``rule`` is None for upstream.

    Examples
    --------
    >>> import random
    >>> from xraykit.sampling import load_rules
    >>> rules = load_rules([], mode="local")
    >>> rng = random.Random(0)
    >>> decide(rules, {"path": "/"}, clock=100.2, rng=rng)
    SamplingDecision(sampled=True, rule='Default', reason='reservoir')
    >>> decide(rules, {"path": "/"}, clock=100.7, rng=rng).reason in {"rate", "not sampled"}
    True
    >>> decide(rules, {"trace_header": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"},
    ...        clock=101, rng=rng)
    SamplingDecision(sampled=False, rule=None, reason='upstream')
    >>> decide(rules, {"path": "/"}, clock=102, rng=None)  # checked even when unused
    Traceback (most recent call last):
    ...
    xraykit.exceptions.ArgumentTypeError: `rng` must be a random generator ... None was passed.
    """
    if not isinstance(rule_set, RuleSet):
        raise ArgumentTypeError(
            f"`rule_set` must be a RuleSet (it keeps the per-second reservoir counts between "
            f"calls), but {type(rule_set).__name__!r} was passed. Wrap your rules once, "
            "rules = RuleSet(rules) or load_rules(...), and pass the same object every time."
        )
    if not callable(getattr(rng, "random", None)):
        raise ArgumentTypeError(
            "`rng` must be a random generator with a .random() method, such as "
            f"numpy.random.default_rng(0) or random.Random(0), but {rng!r} was passed."
        )
    upstream = _upstream(request.get("upstream"))
    if upstream is None and request.get("trace_header"):
        upstream = _header_decision(str(request["trace_header"]))
    if upstream is not None:
        return SamplingDecision(upstream, None, "upstream")
    rule = rule_set.match(request)
    now = _epoch_second(clock() if callable(clock) else clock)
    name = rule.name
    if rule_set._second.get(name) != now:
        rule_set._second[name] = now
        rule_set._taken[name] = 0
        rule_set._borrowed[name] = 0
    if rule_set.mode == "local":
        if rule_set._taken[name] < rule.reservoir_size:
            rule_set._taken[name] += 1
            return SamplingDecision(True, name, "reservoir")
    else:
        quota = rule_set._quota.get(name)
        if quota is not None and quota[1] >= now:
            if rule_set._taken[name] < quota[0]:
                rule_set._taken[name] += 1
                return SamplingDecision(True, name, "reservoir")
        elif rule.reservoir_size > 0 and rule_set._borrowed[name] < 1:
            rule_set._borrowed[name] += 1
            return SamplingDecision(True, name, "borrow")
    if rng.random() < rule.fixed_rate:
        return SamplingDecision(True, name, "rate")
    return SamplingDecision(False, name, "not sampled")

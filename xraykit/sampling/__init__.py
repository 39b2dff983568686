"""The X-Ray sampling model, offline: rules, decisions, a what-if simulator, summaries and cost.

It follows the Python SDK's sampler (``aws_xray_sdk.core.sampling``); how X-Ray samples is
explained in ``docs/sampling.md``. Modules, in the order the data flows:

- :mod:`~xraykit.sampling.matching` — X-Ray wildcards and which rule a request matches;
- :mod:`~xraykit.sampling.rules` — one :class:`SamplingRule`, its checks, :data:`DEFAULT_RULE`;
- :mod:`~xraykit.sampling.ruleset` — :class:`RuleSet`: rules in order plus reservoir state;
- :mod:`~xraykit.sampling.load` — :func:`load_rules` from API responses, SDK files and frames;
- :mod:`~xraykit.sampling.decision` — :func:`decide`, one request's :class:`SamplingDecision`;
- :mod:`~xraykit.sampling.stream` — :func:`traffic`, a seeded stream of requests;
- :mod:`~xraykit.sampling.simulate` — :func:`simulate_sampling`, a fleet's decisions for a stream;
- :mod:`~xraykit.sampling.summary` — :func:`sampling_summary`, what was sampled and why;
- :mod:`~xraykit.sampling.cost` — :func:`estimate_cost`, what the sampled traces cost per month;
- :mod:`~xraykit.sampling.times` — time conversions shared by the above.

The chart of a simulation is :func:`xraykit.plotting.sampling.plot_sampling`.

Examples
--------
>>> from xraykit.sampling import load_rules, simulate_sampling, traffic
>>> requests = traffic(20, duration_s=60, seed=1)
>>> result = simulate_sampling(requests, load_rules([]), hosts=1, seed=1)
>>> sorted(result["reason"].unique())
['borrow', 'not sampled', 'rate', 'reservoir']
"""

from xraykit.pricing import PRICES
from xraykit.sampling.cost import estimate_cost
from xraykit.sampling.decision import REASONS, SamplingDecision, decide
from xraykit.sampling.load import RuleSource, load_rules
from xraykit.sampling.rules import DEFAULT_RULE, SamplingRule
from xraykit.sampling.ruleset import Mode, RuleSet
from xraykit.sampling.simulate import simulate_sampling
from xraykit.sampling.stream import traffic
from xraykit.sampling.summary import sampling_summary

__all__ = [
    "DEFAULT_RULE",
    "PRICES",
    "REASONS",
    "Mode",
    "RuleSet",
    "RuleSource",
    "SamplingDecision",
    "SamplingRule",
    "decide",
    "estimate_cost",
    "load_rules",
    "sampling_summary",
    "simulate_sampling",
    "traffic",
]

"""Answers to the analyst's questions from a TraceSet, as new DataFrames.

Every function takes a TraceSet first (``ts``), never modifies it, and returns a new
DataFrame; latencies are float seconds (``_s``). The modules, in data-flow order:

* :mod:`~xraykit.analysis.entities` — the entity tree of every trace (``entities_frame``);
* :mod:`~xraykit.analysis.critical_paths` — what determines a trace's response time;
* :mod:`~xraykit.analysis.root_cause` — fault, error and response-time root causes;
* :mod:`~xraykit.analysis.requests` — requests measured at the trace, service or edge level;
* :mod:`~xraykit.analysis.latency` — percentiles, SLA shares, throttles, impacted users;
* :mod:`~xraykit.analysis.comparison` — two TraceSets side by side, ranked by change.

Examples
--------
>>> import xraykit
>>> from xraykit import analysis
>>> table = analysis.percentiles(xraykit.load_sample("shop"), level="service")
>>> list(table.columns[:4])
['service', 'service_type', 'count', 'mean_s']
"""

from __future__ import annotations

from xraykit.analysis.comparison import compare
from xraykit.analysis.critical_paths import critical_path, critical_path_share
from xraykit.analysis.entities import entities_frame
from xraykit.analysis.latency import IMPACT_KINDS, impacted_users, percentiles, sla, throttles
from xraykit.analysis.requests import LEVELS, requests_frame
from xraykit.analysis.root_cause import ROOT_CAUSE_KINDS, root_cause_paths, root_causes

__all__ = [
    "IMPACT_KINDS",
    "LEVELS",
    "ROOT_CAUSE_KINDS",
    "compare",
    "critical_path",
    "critical_path_share",
    "entities_frame",
    "impacted_users",
    "percentiles",
    "requests_frame",
    "root_cause_paths",
    "root_causes",
    "sla",
    "throttles",
]

"""xraykit: learn and explore AWS X-Ray in Jupyter.

Traces from shipped samples, files, or a real AWS account become pandas DataFrames
(a :class:`TraceSet`); service maps, latency charts, filter expressions and a sampling
simulator work on top of them, offline.

Public names are imported lazily, so ``import xraykit`` stays fast and never imports
boto3 or ipywidgets.

Examples
--------
>>> import xraykit
>>> ts = xraykit.load_sample("shop")
>>> len(ts) > 0
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # data model and loaders
    "TraceSet": "traceset",
    "concat": "traceset",
    "from_documents": "traceset",
    "from_otlp": "traceset",
    "load_file": "traceset",
    "load_sample": "samples",
    "sample_names": "samples",
    # errors
    "ArgumentError": "exceptions",
    "ArgumentTypeError": "exceptions",
    "FilterExpressionError": "exceptions",
    "LiveFilterExpressionError": "exceptions",
    "NotFoundError": "exceptions",
    "TraceFileNotFoundError": "exceptions",
    "LiveAccessError": "exceptions",
    "MissingDependencyError": "exceptions",
    "SampleNotFoundError": "exceptions",
    "SamplingRuleError": "exceptions",
    "TraceParseError": "exceptions",
    "XrayKitError": "exceptions",
    "XrayKitWarning": "exceptions",
    # service graph and map
    "ServiceGraph": "graph",
    "graph_frames": "graph",
    "service_graph": "graph",
    "service_graph_from_response": "graph",
    "traces_for_edge": "graph",
    "traces_for_node": "graph",
    "service_map": "graph",
    "GraphDiff": "graph",
    "graph_diff": "graph",
    "console_url": "console",
    "open_dataset": "dataset",
    # charts and analyses
    "plot_compare": "plotting",
    "plot_latency_heatmap": "plotting",
    "plot_latency_histogram": "plotting",
    "plot_latency_percentiles": "plotting",
    "plot_scatter": "plotting",
    "plot_sla": "plotting",
    "plot_status_over_time": "plotting",
    "plot_timeline": "plotting",
    "compare": "analysis",
    "critical_path": "analysis",
    "critical_path_share": "analysis",
    "entities_frame": "analysis",
    "impacted_users": "analysis",
    "percentiles": "analysis",
    "requests_frame": "analysis",
    "root_cause_paths": "analysis",
    "root_causes": "analysis",
    "sla": "analysis",
    "throttles": "analysis",
    # sampling
    "DEFAULT_RULE": "sampling",
    "RuleSet": "sampling",
    "SamplingDecision": "sampling",
    "SamplingRule": "sampling",
    "estimate_cost": "sampling",
    "load_rules": "sampling",
    "plot_sampling": "plotting.sampling",
    "sampling_summary": "sampling",
    "simulate_sampling": "sampling",
    # live AWS (needs the aws extra; boto3 is imported only when called)
    "CostEstimate": "aws",
    "RetryPolicy": "aws",
    "fetch": "aws",
    "fetch_groups": "aws",
    "fetch_sampling_rules": "aws",
    "fetch_service_graph": "aws",
    "fetch_summaries": "aws",
    "fetch_accounts": "aws.accounts",
}

if TYPE_CHECKING:
    from xraykit.analysis import (
        compare,
        critical_path,
        critical_path_share,
        entities_frame,
        impacted_users,
        percentiles,
        requests_frame,
        root_cause_paths,
        root_causes,
        sla,
        throttles,
    )
    from xraykit.aws import (
        CostEstimate,
        RetryPolicy,
        fetch,
        fetch_groups,
        fetch_sampling_rules,
        fetch_service_graph,
        fetch_summaries,
    )
    from xraykit.aws.accounts import fetch_accounts
    from xraykit.console import console_url
    from xraykit.dataset import open_dataset
    from xraykit.exceptions import (
        ArgumentError,
        ArgumentTypeError,
        FilterExpressionError,
        LiveAccessError,
        LiveFilterExpressionError,
        MissingDependencyError,
        NotFoundError,
        SampleNotFoundError,
        SamplingRuleError,
        TraceFileNotFoundError,
        TraceParseError,
        XrayKitError,
        XrayKitWarning,
    )
    from xraykit.graph import (
        GraphDiff,
        ServiceGraph,
        graph_diff,
        graph_frames,
        service_graph,
        service_graph_from_response,
        service_map,
        traces_for_edge,
        traces_for_node,
    )
    from xraykit.plotting import (
        plot_compare,
        plot_latency_heatmap,
        plot_latency_histogram,
        plot_latency_percentiles,
        plot_scatter,
        plot_sla,
        plot_status_over_time,
        plot_timeline,
    )
    from xraykit.plotting.sampling import plot_sampling
    from xraykit.samples import load_sample, sample_names
    from xraykit.sampling import (
        DEFAULT_RULE,
        RuleSet,
        SamplingDecision,
        SamplingRule,
        estimate_cost,
        load_rules,
        sampling_summary,
        simulate_sampling,
    )
    from xraykit.traceset import TraceSet, concat, from_documents, from_otlp, load_file

__all__ = [
    "DEFAULT_RULE",
    "ArgumentError",
    "ArgumentTypeError",
    "CostEstimate",
    "FilterExpressionError",
    "GraphDiff",
    "LiveAccessError",
    "LiveFilterExpressionError",
    "MissingDependencyError",
    "NotFoundError",
    "RetryPolicy",
    "RuleSet",
    "SampleNotFoundError",
    "SamplingDecision",
    "SamplingRule",
    "SamplingRuleError",
    "ServiceGraph",
    "TraceFileNotFoundError",
    "TraceParseError",
    "TraceSet",
    "XrayKitError",
    "XrayKitWarning",
    "compare",
    "concat",
    "console_url",
    "critical_path",
    "critical_path_share",
    "entities_frame",
    "estimate_cost",
    "fetch",
    "fetch_accounts",
    "fetch_groups",
    "fetch_sampling_rules",
    "fetch_service_graph",
    "fetch_summaries",
    "from_documents",
    "from_otlp",
    "graph_diff",
    "graph_frames",
    "impacted_users",
    "load_file",
    "load_rules",
    "load_sample",
    "open_dataset",
    "percentiles",
    "plot_compare",
    "plot_latency_heatmap",
    "plot_latency_histogram",
    "plot_latency_percentiles",
    "plot_sampling",
    "plot_scatter",
    "plot_sla",
    "plot_status_over_time",
    "plot_timeline",
    "requests_frame",
    "root_cause_paths",
    "root_causes",
    "sample_names",
    "sampling_summary",
    "service_graph",
    "service_graph_from_response",
    "service_map",
    "simulate_sampling",
    "sla",
    "throttles",
    "traces_for_edge",
    "traces_for_node",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'xraykit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"xraykit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

"""Load traces from a real AWS account: fast, cheap, resumable (``pip install "xraykit[aws]"``).

``xraykit.fetch`` lists the traces of a window with ``GetTraceSummaries``, pulls them with
``BatchGetTraces`` on a thread pool, retries throttles, caches what it pulled and returns a
TraceSet with ``ts.summaries`` and ``ts.cost``. How it deals with X-Ray's limits, and the
cache's layout, are described in ``docs/aws.md``.

Modules, in data-flow order:

* :mod:`~xraykit.aws.windows` — ``since``, the (start, end) of a pull, six-hour windows;
* :mod:`~xraykit.aws.errors` — botocore errors as LiveAccessError with the fix;
* :mod:`~xraykit.aws.client` — connections, the retry policy and rate cap, the caller;
* :mod:`~xraykit.aws.summaries` — trace summaries as a frame, their root-cause paths;
* :mod:`~xraykit.aws.cost` — CostEstimate: what a pull scanned, retrieved and cost;
* :mod:`~xraykit.aws.cache` — summaries and traces on disk, per account and region;
* :mod:`~xraykit.aws.pull` — one account's query, summaries and traces into a TraceSet;
* :mod:`~xraykit.aws.stream` — a pull streamed window by window into a partitioned dataset;
* :mod:`~xraykit.aws.api` — the public ``fetch*`` functions, sampling rules and groups;
* :mod:`~xraykit.aws.accounts` — several accounts at once, by assuming roles;
* :mod:`~xraykit.aws.policies` — IAM policies, role template, daemon config and command;
* :mod:`~xraykit.aws.retrieval` — Transaction Search's StartTraceRetrieval and
  ListRetrievedTraces (OTEL or X-Ray format) into a TraceSet;
* :mod:`~xraykit.aws.platform` — CloudFormation and collector configs for each platform
  (EC2, ECS sidecar, Beanstalk, Lambda, API Gateway, sampling rules, groups, ADOT, CloudWatch
  agent).

boto3, botocore and tqdm are imported only when a call needs them; ``import xraykit`` does
not import this package.

Examples
--------
>>> from xraykit.aws import CostEstimate, time_windows
>>> import pandas as pd
>>> len(time_windows(pd.Timestamp("2024-05-01", tz="UTC"), pd.Timestamp("2024-05-02", tz="UTC")))
4
>>> CostEstimate(traces_scanned=2_000_000, traces_retrieved=1_000).usd
1.0005
"""

from __future__ import annotations

from xraykit.aws.api import (
    fetch,
    fetch_groups,
    fetch_sampling_rules,
    fetch_service_graph,
    fetch_summaries,
    groups_frame,
    sampling_rules_frame,
)
from xraykit.aws.cache import SETTLED_AFTER
from xraykit.aws.client import RetryPolicy
from xraykit.aws.cost import CostEstimate
from xraykit.aws.pull import MAX_IDS_PER_BATCH
from xraykit.aws.retrieval import fetch_retrieved, traceset_from_retrieved
from xraykit.aws.summaries import summaries_frame, summary_root_cause_paths
from xraykit.aws.windows import MAX_WINDOW, parse_since, time_windows

__all__ = [
    "MAX_IDS_PER_BATCH",
    "MAX_WINDOW",
    "SETTLED_AFTER",
    "CostEstimate",
    "RetryPolicy",
    "fetch",
    "fetch_groups",
    "fetch_retrieved",
    "fetch_sampling_rules",
    "fetch_service_graph",
    "fetch_summaries",
    "groups_frame",
    "parse_since",
    "sampling_rules_frame",
    "summaries_frame",
    "summary_root_cause_paths",
    "time_windows",
    "traceset_from_retrieved",
]

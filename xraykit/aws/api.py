"""The public live functions: :func:`fetch` (traces of one account into a TraceSet),
:func:`fetch_summaries`, :func:`fetch_service_graph`, :func:`fetch_sampling_rules` and
:func:`fetch_groups`, and the frames of sampling rules and groups.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, overload

import pandas as pd

from xraykit.aws.client import RetryPolicy, _Caller, _Exhausted, connect
from xraykit.aws.cost import CostEstimate
from xraykit.aws.pull import _Puller, build_query, pull
from xraykit.aws.stream import pull_to_dataset
from xraykit.aws.summaries import _epoch, summaries_frame
from xraykit.aws.windows import MAX_WINDOW, _resolve_window, parse_since
from xraykit.dataset.handle import Dataset, open_dataset
from xraykit.exceptions import ArgumentError, LiveAccessError, XrayKitWarning
from xraykit.graph import ServiceGraph, service_graph_from_response
from xraykit.traceset import TraceSet

__all__ = [
    "fetch",
    "fetch_groups",
    "fetch_sampling_rules",
    "fetch_service_graph",
    "fetch_summaries",
    "groups_frame",
    "sampling_rules_frame",
]


@overload
def fetch(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    filter_expression: str | None = None,
    group: str | None = None,
    time_range_type: str = "TraceId",
    max_traces: int | None = None,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    concurrency: int = 8,
    cache: bool = True,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    retry: RetryPolicy | None = None,
    account_id: str | None = None,
    to: None = None,
    window: str | float | timedelta = "1h",
) -> TraceSet: ...


@overload
def fetch(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    filter_expression: str | None = None,
    group: str | None = None,
    time_range_type: str = "TraceId",
    max_traces: int | None = None,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    concurrency: int = 8,
    cache: bool = True,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    retry: RetryPolicy | None = None,
    account_id: str | None = None,
    to: str | os.PathLike[str],
    window: str | float | timedelta = "1h",
) -> Dataset: ...


def fetch(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    filter_expression: str | None = None,
    group: str | None = None,
    time_range_type: str = "TraceId",
    max_traces: int | None = None,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    concurrency: int = 8,
    cache: bool = True,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    retry: RetryPolicy | None = None,
    account_id: str | None = None,
    to: str | os.PathLike[str] | None = None,
    window: str | float | timedelta = "1h",
) -> TraceSet | Dataset:
    """Load the traces of an AWS account into a TraceSet, or stream them into a dataset.

    Lists the traces with ``GetTraceSummaries`` (windows of at most 6 h, every page), then
    retrieves them with ``BatchGetTraces`` (5 ids per call) on ``concurrency`` threads,
    retrying throttles and 5xx answers, each trace once. See ``docs/aws.md`` for the
    cache, retries and Transaction Search.

    Parameters
    ----------
    since : str, number or timedelta
        How far back from ``end`` (default now): ``"15m"``, ``"1h"``, ``"2d"``. Ignored when
        ``start`` is given.
    start, end : datetime, Timestamp or str, optional
        The window; naive times are UTC.
    filter_expression : str, optional
        An X-Ray filter expression, sent to AWS unchanged (checked offline first when
        ``xraykit.query`` is available).
    group : str, optional
        A group name or ARN: only traces matching the group's filter expression. The cached
        summaries of a settled window are keyed by the group's *name* (or ARN), not by its
        filter expression, which xraykit does not read: after changing a group's filter
        expression, pass ``cache=False`` once (or delete the account's ``summaries`` folder)
        so the window is listed again. Traces themselves never go stale.
    time_range_type : {"TraceId", "Event", "Service"}
        What the window applies to: the trace's start (from its id), its last event, or the
        segment end times.
    max_traces : int, optional
        Stop after this many traces, most recent first.
    session, profile, region, client
        How to reach AWS: a boto3 ``Session``, a profile name, a region, or a ready X-Ray
        client (tests pass one pointing at a local endpoint).
    endpoint_url : str, optional
        Another X-Ray API than AWS's, e.g. ``xr.endpoint_url`` of :func:`xraykit.local.start`
        (no credentials needed on loopback). Such a pull does not use the cache.
    concurrency : int
        Threads retrieving traces.
    cache : bool
        Reuse and extend the on-disk cache (``False`` bypasses it). The cache is kept per
        account: the account comes from ``account_id``, else from STS
        ``GetCallerIdentity`` with the session's credentials. When it cannot be known (a
        ``client=`` without ``account_id``, or STS refused), the pull goes on without the
        cache and says so with an :class:`~xraykit.exceptions.XrayKitWarning`.
    progress : bool
        Show a progress bar (tqdm; a notebook bar in Jupyter).
    cache_dir : path, optional
        Where the cache lives (default: ``XRAYKIT_CACHE_DIR`` or the user cache folder).
    retry : RetryPolicy, optional
        Attempts, backoff and the client-side rate cap.
    account_id : str, optional
        The 12-digit account the credentials belong to, for the cache (saves the STS call;
        needed with ``client=``). With ``to=``, also the ``account`` partition of traces
        whose segments name no ``aws.account_id``.
    to : path, optional
        Stream into a partitioned Parquet dataset at this folder instead of returning a
        TraceSet: each window is written as soon as it is pulled (by ``date`` and
        ``account``, one folder per frame; see :mod:`xraykit.dataset`), so memory holds one
        window at a time. A window that is settled (ended 15 min ago) and complete is
        recorded in the dataset's ``_xraykit.json``; calling again with the same filter
        skips it, so an interrupted pull resumes where it stopped.
    window : str, number or timedelta
        With ``to=``: the length of each written window (``"1h"`` by default, at most
        ``"6h"``), cut at multiples of it since the epoch (UTC) so that two pulls share
        their windows.

    Returns
    -------
    TraceSet or Dataset
        A TraceSet with ``summaries`` (see :func:`summaries_frame`) and ``cost``
        (:class:`CostEstimate`); traces that could not be retrieved are rows of
        ``problems``. With ``to=``: the opened :class:`~xraykit.dataset.Dataset`, whose
        ``cost`` is this pull's (windows skipped cost nothing; summaries are not kept).

    Raises
    ------
    LiveAccessError
        No credentials, access denied (naming the ``xray:`` action), an expired token, no
        region, an endpoint that cannot be reached, an invalid filter expression
        (:class:`LiveFilterExpressionError`).
    MissingDependencyError
        When boto3 (the ``aws`` extra) is not installed.

    Examples
    --------
    These need AWS credentials and an account with traces, so they are not run as tests
    (tests/test_aws.py runs ``fetch`` against moto on 127.0.0.1):

    >>> import xraykit
    >>> ts = xraykit.fetch(since="3h", filter_expression="responsetime > 2",
    ...                    profile="dev")  # doctest: +SKIP
    >>> ts.traces.sort_values("duration_s").tail()  # doctest: +SKIP
    >>> print(ts.cost)  # doctest: +SKIP
    """
    query = build_query(since=since, start=start, end=end, filter_expression=filter_expression,
                        group=group, time_range_type=time_range_type, max_traces=max_traces)  # fmt: skip
    if account_id is not None and not (
        isinstance(account_id, str) and re.fullmatch(r"\d{12}", account_id)
    ):
        raise ArgumentError(
            f"`account_id` must be a 12-digit AWS account id such as '123456789012', but "
            f"{account_id!r} was passed."
        )
    size = _window_size(window) if to is not None else None
    conn = connect(session=session, profile=profile, region=region, client=client,
                   concurrency=concurrency, endpoint_url=endpoint_url)  # fmt: skip
    if to is not None and size is not None:
        writer, cost, _skipped = pull_to_dataset(
            conn, query, to, window=size, concurrency=concurrency,
            cache=cache and endpoint_url is None, cache_dir=cache_dir, progress=progress,
            retry=retry, account_id=account_id,
        )  # fmt: skip
        dataset = open_dataset(writer.root)
        dataset.cost = cost
        return dataset
    return pull(
        conn,
        query,
        concurrency=concurrency,
        cache=cache and endpoint_url is None,
        cache_dir=cache_dir,
        progress=progress,
        retry=retry,
        account_id=account_id,
    )


def _window_size(window: str | float | timedelta) -> timedelta:
    """The ``window`` of a streaming pull, checked: a duration of at most six hours."""
    try:
        size = parse_since(window)
    except ArgumentError:
        size = timedelta(0)
    if not timedelta(0) < size <= MAX_WINDOW:
        raise ArgumentError(
            f"`window` must be a duration from '1s' to '6h' (GetTraceSummaries' longest "
            f"window) such as '15m' or '1h', but {window!r} was passed."
        )
    return size


def fetch_summaries(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    filter_expression: str | None = None,
    group: str | None = None,
    time_range_type: str = "TraceId",
    max_traces: int | None = None,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    retry: RetryPolicy | None = None,
) -> pd.DataFrame:
    """List trace summaries only: a cheap look before pulling whole traces.

    Takes the same query arguments as :func:`fetch` and returns what would become
    ``ts.summaries`` (columns in :func:`summaries_frame`). ``frame.attrs["cost"]`` holds the
    :class:`CostEstimate` (traces scanned; nothing retrieved). Nothing is cached.

    Examples
    --------
    Needs AWS credentials, so not run as a test:

    >>> import xraykit
    >>> look = xraykit.fetch_summaries(since="6h", filter_expression="fault")  # doctest: +SKIP
    >>> look.groupby("fault_root_cause_service").size()  # doctest: +SKIP
    >>> look.attrs["cost"].traces_scanned  # doctest: +SKIP
    """
    query = build_query(since=since, start=start, end=end, filter_expression=filter_expression,
                        group=group, time_range_type=time_range_type, max_traces=max_traces)  # fmt: skip
    conn = connect(session=session, profile=profile, region=region, client=client,
                   endpoint_url=endpoint_url)  # fmt: skip
    caller = _Caller(conn.client, retry or RetryPolicy())
    puller = _Puller(caller, concurrency=1, progress=False, transaction_search=False)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    scanned = 0
    for page, _last in puller.summary_pages(query):
        scanned += int(page.get("TracesProcessedCount") or 0)
        for summary in page.get("TraceSummaries") or []:
            if summary.get("Id") not in seen:
                seen.add(summary.get("Id"))
                records.append(summary)
        if max_traces is not None and len(records) >= max_traces:
            records = records[:max_traces]
            break
    if puller.problems:
        warnings.warn(
            f"{len(puller.problems)} summary window(s) could not be read after every retry: "
            + "; ".join(f"{p['location']}: {p['reason']}" for p in puller.problems),
            XrayKitWarning,
            stacklevel=2,
        )
    frame = summaries_frame(records)
    frame.attrs["cost"] = CostEstimate(
        traces_scanned=scanned, api_calls=dict(caller.calls), retries=caller.retries,
        throttles=caller.throttles,
    )  # fmt: skip
    return frame


def _paginate(caller: _Caller, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        try:
            page = caller.call(operation, **params)
        except _Exhausted as exc:
            raise LiveAccessError(
                f"{operation} kept failing ({exc.reason}). Fix: wait a minute and call again; "
                "X-Ray is throttling or unavailable."
            ) from exc
        items.extend(page.get(key) or [])
        token = page.get("NextToken")
        if not token:
            return items
        params["NextToken"] = token


def fetch_service_graph(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    group: str | None = None,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    retry: RetryPolicy | None = None,
) -> ServiceGraph:
    """Fetch X-Ray's own service graph for a window (``GetServiceGraph``, every page).

    Returns the same ``ServiceGraph`` as ``xraykit.service_graph(traces)`` computes from
    documents, so AWS's graph and xraykit's draw and compare alike.

    Parameters
    ----------
    group : str, optional
        A group name, or a group ARN (starting with ``arn:``).

    Examples
    --------
    Needs AWS credentials, so not run as a test:

    >>> import xraykit
    >>> graph = xraykit.fetch_service_graph(since="1h")  # doctest: +SKIP
    >>> graph.nodes[["name", "type", "total_count", "fault_count"]]  # doctest: +SKIP
    """
    start_ts, end_ts = _resolve_window(since, start, end)
    conn = connect(session=session, profile=profile, region=region, client=client,
                   endpoint_url=endpoint_url)  # fmt: skip
    caller = _Caller(conn.client, retry or RetryPolicy())
    params: dict[str, Any] = {
        "StartTime": start_ts.to_pydatetime(),
        "EndTime": end_ts.to_pydatetime(),
    }
    if group is not None:
        params["GroupARN" if group.startswith("arn:") else "GroupName"] = group
    services = _paginate(caller, "GetServiceGraph", "Services", **params)
    response = {
        "StartTime": params["StartTime"],
        "EndTime": params["EndTime"],
        "Services": services,
    }
    return service_graph_from_response(response)


def sampling_rules_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per sampling rule from ``GetSamplingRules``' ``SamplingRuleRecords``.

    Columns: ``rule_name, priority, fixed_rate, reservoir_size, service_name, service_type,
    host, http_method, url_path, resource_arn, attributes`` (dict), ``version, rule_arn,
    created_at, modified_at``; sorted by (priority, rule_name), the order X-Ray applies.

    Examples
    --------
    >>> sampling_rules_frame([{"SamplingRule": {"RuleName": "Default", "Priority": 10000,
    ...     "FixedRate": 0.05, "ReservoirSize": 1, "ServiceName": "*", "ServiceType": "*",
    ...     "Host": "*", "HTTPMethod": "*", "URLPath": "*", "ResourceARN": "*", "Version": 1}}]
    ... )[["rule_name", "priority", "fixed_rate", "reservoir_size"]]
      rule_name  priority  fixed_rate  reservoir_size
    0   Default     10000        0.05               1
    """
    fields = {
        "rule_name": "RuleName", "priority": "Priority", "fixed_rate": "FixedRate",
        "reservoir_size": "ReservoirSize", "service_name": "ServiceName",
        "service_type": "ServiceType", "host": "Host", "http_method": "HTTPMethod",
        "url_path": "URLPath", "resource_arn": "ResourceARN", "attributes": "Attributes",
        "version": "Version", "rule_arn": "RuleARN",
    }  # fmt: skip
    records = list(records)
    rows = [{k: (r.get("SamplingRule") or {}).get(f) for k, f in fields.items()} for r in records]
    frame = pd.DataFrame(rows, columns=[*fields, "created_at", "modified_at"])
    frame["attributes"] = pd.Series(
        [dict(a or {}) for a in frame["attributes"]], index=frame.index, dtype=object
    )
    for column, field in (("created_at", "CreatedAt"), ("modified_at", "ModifiedAt")):
        epochs = pd.Series([_epoch(r.get(field)) for r in records], dtype="float64")
        micros = (epochs * 1e6).round()
        frame[column] = pd.to_datetime(micros, unit="us", utc=True).astype("datetime64[us, UTC]")
    frame = frame.astype(
        {"priority": "Int64", "reservoir_size": "Int64", "version": "Int64",
         "fixed_rate": "float64"}
        | {c: "str" for c in ("rule_name", "service_name", "service_type", "host",
                              "http_method", "url_path", "resource_arn", "rule_arn")}
    )  # fmt: skip
    return frame.sort_values(["priority", "rule_name"], kind="stable").reset_index(drop=True)


def groups_frame(groups: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per group from ``GetGroups``: ``group_name, group_arn, filter_expression,
    insights_enabled, notifications_enabled``.

    Examples
    --------
    >>> groups_frame([{"GroupName": "slow", "FilterExpression": "responsetime > 2",
    ...                "InsightsConfiguration": {"InsightsEnabled": True}}]).iloc[:, [0, 2, 3]]
      group_name filter_expression  insights_enabled
    0       slow  responsetime > 2              True
    """
    rows = [
        {
            "group_name": g.get("GroupName"),
            "group_arn": g.get("GroupARN"),
            "filter_expression": g.get("FilterExpression"),
            "insights_enabled": bool((g.get("InsightsConfiguration") or {}).get("InsightsEnabled")),
            "notifications_enabled": bool(
                (g.get("InsightsConfiguration") or {}).get("NotificationsEnabled")
            ),
        }
        for g in groups
    ]
    columns = ["group_name", "group_arn", "filter_expression", "insights_enabled",
               "notifications_enabled"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype(
        {"group_name": "str", "group_arn": "str", "filter_expression": "str",
         "insights_enabled": "bool", "notifications_enabled": "bool"}
    )  # fmt: skip


def fetch_sampling_rules(
    *,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    retry: RetryPolicy | None = None,
) -> pd.DataFrame:
    """Fetch the account's sampling rules (``GetSamplingRules``) as a DataFrame.

    Columns as in :func:`sampling_rules_frame`.

    Examples
    --------
    Offline, with a client whose answer is stubbed (``profile="dev"`` asks AWS instead):

    >>> import boto3
    >>> from botocore.stub import Stubber
    >>> client = boto3.client("xray", region_name="us-east-1", aws_access_key_id="example",
    ...                       aws_secret_access_key="example")
    >>> with Stubber(client) as stub:
    ...     stub.add_response("get_sampling_rules", {"SamplingRuleRecords": [{"SamplingRule": {
    ...         "RuleName": "Default", "Priority": 10000, "FixedRate": 0.05, "ReservoirSize": 1,
    ...         "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*",
    ...         "URLPath": "*", "ResourceARN": "*", "Version": 1}}]})
    ...     rules = fetch_sampling_rules(client=client)
    >>> rules[["rule_name", "priority", "fixed_rate"]]
      rule_name  priority  fixed_rate
    0   Default     10000        0.05
    """
    conn = connect(session=session, profile=profile, region=region, client=client,
                   endpoint_url=endpoint_url)  # fmt: skip
    caller = _Caller(conn.client, retry or RetryPolicy())
    return sampling_rules_frame(_paginate(caller, "GetSamplingRules", "SamplingRuleRecords"))


def fetch_groups(
    *,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    retry: RetryPolicy | None = None,
) -> pd.DataFrame:
    """Fetch the account's X-Ray groups (``GetGroups``) as a DataFrame.

    Columns as in :func:`groups_frame`. Pass ``dict(zip(frame.group_name,
    frame.filter_expression))`` as ``groups=`` to ``TraceSet.query`` to evaluate
    ``group.name = "..."`` offline.

    Examples
    --------
    Offline, with a client whose answer is stubbed (``profile="dev"`` asks AWS instead):

    >>> import boto3
    >>> from botocore.stub import Stubber
    >>> client = boto3.client("xray", region_name="us-east-1", aws_access_key_id="example",
    ...                       aws_secret_access_key="example")
    >>> with Stubber(client) as stub:
    ...     stub.add_response("get_groups", {"Groups": [
    ...         {"GroupName": "slow", "FilterExpression": "responsetime > 2"}]})
    ...     groups = fetch_groups(client=client)
    >>> dict(zip(groups["group_name"], groups["filter_expression"]))
    {'slow': 'responsetime > 2'}
    """
    conn = connect(session=session, profile=profile, region=region, client=client,
                   endpoint_url=endpoint_url)  # fmt: skip
    caller = _Caller(conn.client, retry or RetryPolicy())
    return groups_frame(_paginate(caller, "GetGroups", "Groups"))

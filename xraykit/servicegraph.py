"""The service graph: nodes and edges computed from traces with X-Ray's rules.

X-Ray draws its service map from a *service graph*: one node per service and one edge per
caller → callee pair, each with request counts by status and response-time statistics.
``GetServiceGraph`` returns that graph for a time window of a live account;
:func:`service_graph` computes the same graph from any :class:`~xraykit.TraceSet`, offline,
and :func:`service_graph_from_response` turns a ``GetServiceGraph`` (or ``GetTraceGraph``)
response into the same :class:`ServiceGraph`, so a live graph and a computed one compare
and draw alike.

The rules (xray-facts §1.1, §2.4, §6.4, §7):

- **Nodes.** One node per (name, type, account): a segment's ``name``, its ``origin`` and
  its ``aws.account_id``. The Lambda service segment (``AWS::Lambda``) and the function
  segment (``AWS::Lambda::Function``) share a name but are two nodes.
- **Client.** A synthetic ``client`` node calls every root segment (a segment with no
  ``parent_id``, or whose caller is not in the data).
- **Edges.** A segment whose ``parent_id`` is a subsegment of another segment is called by
  that segment's service. In X-Ray's own documents the Lambda function segment's
  ``parent_id`` is the *Lambda service segment's* id (segment → segment, as in the
  ``batch-get-traces`` example of the X-Ray developer guide, "Getting data from X-Ray"),
  which gives the ``AWS::Lambda`` → ``AWS::Lambda::Function`` edge.
- **Inferred nodes.** A subsegment in the ``aws`` or ``remote`` namespace, or one with a
  ``sql`` block, stands for a downstream service. When ``BatchGetTraces`` already returned
  an inferred segment for it (``"inferred": true``, ``parent_id`` = the subsegment), that
  segment is the node. When it did not (raw SDK documents, daemon captures) the node is
  derived from the subsegment, unless a real segment's ``parent_id`` points at it. Types:
  ``AWS::DynamoDB::Table`` (named after the table) when a table is known, ``AWS::SQS::Queue``
  (named after the queue), ``AWS::Lambda`` (named after the function), ``AWS::<Service>``
  otherwise; ``Database::SQL`` for SQL; ``remote`` for any other downstream. Both ways
  produce the same node, so raw and processed documents give the same graph.
- **Links.** X-Ray links the trace of an SQS-triggered Lambda to the trace that sent the
  message; the map shows a dashed ``link`` edge from the queue to the consumer. In the
  documents a linked segment carries ``"links": [{"trace_id": ..., "id": ...}]`` pointing at
  the producer's entity (the span-link field of X-Ray's segment schema, as the
  OpenTelemetry X-Ray exporter writes it). The edge goes from the node that entity stands
  for (the SQS queue) to the linked segment's node; its "latency" is the received event age
  (consumer start − producer call end). A linked segment is not a root.
- **Statistics.** Node statistics come from the node's own segments; edge statistics from
  the caller's subsegments (round trip, network included), so an edge can be slower than the
  node it points to. Client edges carry the root segments' statistics. Status buckets as
  in X-Ray: ok (2xx), error (4xx, with throttle = 429 as a subset), fault (5xx); a request is
  in exactly one of ok / error / fault.

Examples
--------
>>> import xraykit
>>> from xraykit.servicegraph import node_segments, service_graph
>>> ts = xraykit.load_sample("shop")
>>> graph = service_graph(ts)
>>> graph.nodes.loc[graph.nodes.node_id == "client", "type"].item()
'client'
>>> client = graph.edges[graph.edges.source == "client"]
>>> int(client.total_count.sum()) == int(node_segments(ts).root.sum())
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.exceptions import TraceParseError

if TYPE_CHECKING:
    import graphviz

    from xraykit.traceset import TraceSet

__all__ = [
    "CLIENT",
    "ServiceGraph",
    "edge_calls",
    "node_segments",
    "service_graph",
    "service_graph_from_response",
    "traces_for_edge",
    "traces_for_node",
]

#: The node id of the synthetic client node.
CLIENT = "client"

_TIME = "datetime64[ns, UTC]"

#: Columns of :func:`node_segments`, with dtypes.
NODE_SEGMENT_COLUMNS: dict[str, str] = {
    "trace_id": "str",
    "entity_id": "str",
    "node_id": "str",
    "name": "str",
    "type": "str",
    "account_id": "str",
    "inferred": "bool",
    "derived": "bool",
    "root": "bool",
    "start": _TIME,
    "end": _TIME,
    "response_time_s": "float64",
    "http_status": "Int64",
    "ok": "bool",
    "error": "bool",
    "throttle": "bool",
    "fault": "bool",
}

#: Columns of :func:`edge_calls`, with dtypes.
EDGE_CALL_COLUMNS: dict[str, str] = {
    "trace_id": "str",
    "source": "str",
    "target": "str",
    "edge_type": "str",
    "entity_id": "str",
    "target_entity_id": "str",
    "linked_trace_id": "str",
    "start": _TIME,
    "end": _TIME,
    "response_time_s": "float64",
    "event_age_s": "float64",
    "http_status": "Int64",
    "ok": "bool",
    "error": "bool",
    "throttle": "bool",
    "fault": "bool",
}

_STAT_COLUMNS: dict[str, str] = {
    "ok_count": "int64",
    "error_count": "int64",
    "throttle_count": "int64",
    "fault_count": "int64",
    "total_count": "int64",
    "total_response_time_s": "float64",
    "mean_response_time_s": "float64",
    "p50_response_time_s": "float64",
    "p90_response_time_s": "float64",
    "p99_response_time_s": "float64",
    "response_time_histogram": "object",
    "start": _TIME,
    "end": _TIME,
}

#: Columns of :attr:`ServiceGraph.nodes`, with dtypes.
NODE_COLUMNS: dict[str, str] = {
    "node_id": "str",
    "reference_id": "int64",
    "name": "str",
    "type": "str",
    "account_id": "str",
    "root": "bool",
    "inferred": "bool",
    **_STAT_COLUMNS,
}

#: Columns of :attr:`ServiceGraph.edges`, with dtypes.
EDGE_COLUMNS: dict[str, str] = {
    "source": "str",
    "target": "str",
    "edge_type": "str",
    **_STAT_COLUMNS,
    "mean_event_age_s": "float64",
    "event_age_histogram": "object",
}

#: Origins of services that send their own segments; other node types in a
#: GetServiceGraph response (AWS::DynamoDB::Table, AWS::SNS, remote, ...) are inferred.
_SEGMENT_ORIGINS = frozenset(
    {
        "",
        "AWS::EC2::Instance",
        "AWS::ECS::Container",
        "AWS::EKS::Container",
        "AWS::ElasticBeanstalk::Environment",
        "AWS::Lambda",
        "AWS::Lambda::Function",
        "AWS::ApiGateway::Stage",
        "AWS::AppSync::GraphQLAPI",
        "AWS::StepFunctions::StateMachine",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
    }
)

# Lower-cased AWS SDK service names (endpoint prefixes from the Python SDK, service ids
# from other SDKs) -> the name X-Ray uses for the service.
_AWS_SERVICES: dict[str, str] = {
    "dynamodb": "DynamoDB",
    "dynamodbv2": "DynamoDB",
    "sqs": "SQS",
    "sns": "SNS",
    "s3": "S3",
    "lambda": "Lambda",
    "kinesis": "Kinesis",
    "firehose": "Firehose",
    "states": "StepFunctions",
    "sfn": "StepFunctions",
    "stepfunctions": "StepFunctions",
    "secretsmanager": "SecretsManager",
    "ssm": "SSM",
    "sts": "STS",
    "events": "EventBridge",
    "eventbridge": "EventBridge",
    "ses": "SES",
    "email": "SES",
    "kms": "KMS",
    "ec2": "EC2",
    "athena": "Athena",
    "monitoring": "CloudWatch",
    "cloudwatch": "CloudWatch",
    "logs": "CloudWatchLogs",
    "cloudwatchlogs": "CloudWatchLogs",
    "apigateway": "ApiGateway",
    "execute-api": "ApiGateway",
    "rds-data": "RDSDataService",
    "cognito-idp": "CognitoIdentityProvider",
}


def _canonical_service(name: str) -> str:
    key = name.strip().lower().replace(" ", "")
    for prefix in ("amazon", "aws"):
        if key not in _AWS_SERVICES and key.startswith(prefix) and key[len(prefix) :] in _AWS_SERVICES:
            key = key[len(prefix) :]
    return _AWS_SERVICES.get(key, name.strip().replace(" ", ""))


# -- small helpers -------------------------------------------------------------------------------


def _empty(columns: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def _conform(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    out: dict[str, pd.Series] = {}
    for col, dtype in columns.items():
        if col in frame:
            s = frame[col]
            out[col] = s if str(s.dtype) == dtype else s.astype(dtype)
        elif dtype == "bool":
            out[col] = pd.Series(False, index=frame.index, dtype=bool)
        else:
            out[col] = pd.Series(None, index=frame.index, dtype=dtype)
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def _text(series: pd.Series) -> pd.Series:
    """A string column with missing values as ``""``."""
    return series.astype("str").fillna("")


def _key(trace_id: pd.Series, entity_id: pd.Series) -> pd.Series:
    """One string key per (trace, entity): ids are unique within a trace only."""
    return trace_id.astype("str") + ":" + entity_id.astype("str")


def _isin(values: pd.Series, candidates: pd.Series) -> np.ndarray:
    """``values.isin(candidates)`` for string columns, done by Arrow (missing → False).

    pandas' ``isin`` on Arrow strings walks the candidates in Python; this does not.
    """
    found = pc.is_in(
        pa.array(values.astype("str")), value_set=pa.array(candidates.astype("str").dropna())
    )
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _node_id(name: pd.Series, type_: pd.Series, account: pd.Series) -> pd.Series:
    return _text(name) + "|" + _text(type_) + "|" + _text(account)


def _flags(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``fault/error/throttle/ok`` from the documents' flags and the HTTP status.

    Flags stack as in the documents (a 429 is both error and throttle); ``ok`` is none of them.
    """
    status = frame["http_status"]
    fault = frame["fault"].astype(bool) | (status >= 500).fillna(False).astype(bool)
    throttle = frame["throttle"].astype(bool) | (status == 429).fillna(False).astype(bool)
    error = (
        frame["error"].astype(bool)
        | throttle
        | ((status >= 400) & (status < 500)).fillna(False).astype(bool)
    )
    return pd.DataFrame(
        {"ok": ~(fault | error), "error": error, "throttle": throttle, "fault": fault},
        index=frame.index,
    )


def _stats_from(frame: pd.DataFrame, *, duration: str = "duration_s") -> pd.DataFrame:
    """The statistics columns of an occurrence taken from a segment or subsegment row."""
    out = pd.DataFrame(
        {
            "start": frame["start"],
            "end": frame["end"],
            "response_time_s": frame[duration],
            "http_status": frame["http_status"],
        },
        index=frame.index,
    )
    return out.join(_flags(frame))


# -- identity of downstream nodes ------------------------------------------------------------------


def _downstream_identity(calls: pd.DataFrame) -> pd.DataFrame:
    """Name, type and account of the node a downstream-call subsegment stands for.

    ``calls`` has the subsegment columns ``name, namespace, table_name, queue_url,
    function_name, aws_account_id, sql_*`` and ``owner_account_id`` (the calling segment's
    account). Returns ``name, type, account_id`` aligned with ``calls``.
    """
    idx = calls.index
    sub_name = _text(calls["name"])
    namespace = _text(calls["namespace"])
    is_sql = (
        calls["sql_url"].notna()
        | calls["sql_database_type"].notna()
        | calls["sql_sanitized_query"].notna()
    )
    is_aws = (namespace == "aws") & ~is_sql

    unique = pd.Series(sub_name.unique())
    service = sub_name.map(dict(zip(unique, unique.map(_canonical_service), strict=True)))
    table = _text(calls["table_name"])
    queue = _text(calls["queue_url"]).str.extract(r"([^/]+)/?$", expand=False).fillna("")
    function = _text(calls["function_name"])
    function = function.where(
        ~function.str.startswith("arn:"),
        function.str.extract(r"function:([^:]+)", expand=False).fillna(function),
    )

    name = sub_name.copy()
    type_ = pd.Series("remote", index=idx, dtype="str")
    type_ = type_.mask(is_sql, "Database::SQL")

    aws_type = "AWS::" + service
    aws_name = service.copy()
    dynamo = service == "DynamoDB"
    aws_type = aws_type.mask(dynamo & (table != ""), "AWS::DynamoDB::Table")
    aws_name = aws_name.mask(dynamo & (table != ""), table)
    sqs = service == "SQS"
    aws_type = aws_type.mask(sqs & (queue != ""), "AWS::SQS::Queue")
    aws_name = aws_name.mask(sqs & (queue != ""), queue)
    lam = service == "Lambda"
    aws_name = aws_name.mask(lam & (function != ""), function)

    type_ = type_.mask(is_aws, aws_type)
    name = name.mask(is_aws, aws_name)
    account = _text(calls["aws_account_id"])
    account = account.mask(account == "", _text(calls["owner_account_id"]))
    account = account.where(is_aws, "")
    return pd.DataFrame({"name": name, "type": type_, "account_id": account}, index=idx)


_CALL_COLUMNS = [
    "trace_id",
    "segment_id",
    "subsegment_id",
    "parent_id",
    "name",
    "namespace",
    "start",
    "end",
    "duration_s",
    "http_status",
    "fault",
    "error",
    "throttle",
    "aws_account_id",
    "table_name",
    "queue_url",
    "function_name",
    "sql_url",
    "sql_database_type",
    "sql_sanitized_query",
    "orphan",
]


def _is_call(subs: pd.DataFrame) -> pd.Series:
    """Subsegments that stand for a call to a downstream service."""
    return (
        subs["namespace"].isin(["aws", "remote"])
        | subs["sql_url"].notna()
        | subs["sql_database_type"].notna()
        | subs["sql_sanitized_query"].notna()
    )


# -- the backbone: occurrences of nodes and edges --------------------------------------------------


@dataclass
class _Occurrences:
    nodes: pd.DataFrame
    edges: pd.DataFrame


def _occurrences(traces: TraceSet) -> _Occurrences:
    segs = traces.segments
    subs = traces.subsegments
    if segs.empty:
        return _Occurrences(_empty(NODE_SEGMENT_COLUMNS), _empty(EDGE_CALL_COLUMNS))

    seg_account = (
        segs[["trace_id", "segment_id", "account_id"]]
        .drop_duplicates(["trace_id", "segment_id"])
        .rename(columns={"segment_id": "owner_id", "account_id": "owner_account_id"})
    )
    call_mask = _is_call(subs)
    calls = subs.loc[call_mask, _CALL_COLUMNS].merge(
        seg_account,
        left_on=["trace_id", "segment_id"],
        right_on=["trace_id", "owner_id"],
        how="left",
        sort=False,
    )
    calls.index = subs.index[call_mask]

    # ---- segment nodes: real ones by (name, origin, account); inferred ones like derived ones
    seg_name = _text(segs["name"])
    seg_type = _text(segs["origin"])
    seg_account_text = _text(segs["account_id"])
    inferred = segs["inferred"].astype(bool)
    if inferred.any():
        inf = segs.loc[inferred, ["trace_id", "parent_id"]].reset_index()
        inf = inf.merge(
            calls.drop(columns=["parent_id"]),
            left_on=["trace_id", "parent_id"],
            right_on=["trace_id", "subsegment_id"],
            how="left",
            sort=False,
        ).set_index("index")
        known = inf["subsegment_id"].notna()
        ident = _downstream_identity(inf[known])
        own_type = seg_type.loc[ident.index]
        same_kind = (own_type == ident["type"]) | (own_type == "")
        seg_name.loc[ident.index] = seg_name.loc[ident.index].mask(same_kind, ident["name"])
        seg_type.loc[ident.index] = own_type.mask(own_type == "", ident["type"])
        own_account = seg_account_text.loc[ident.index]
        seg_account_text.loc[ident.index] = own_account.mask(own_account == "", ident["account_id"])
    seg_nodes = pd.DataFrame(
        {
            "trace_id": segs["trace_id"],
            "entity_id": segs["segment_id"],
            "node_id": _node_id(seg_name, seg_type, seg_account_text),
            "name": seg_name,
            "type": seg_type,
            "account_id": seg_account_text,
            "inferred": inferred,
            "derived": False,
        },
        index=segs.index,
    ).join(_stats_from(segs))
    node_of_segment = seg_nodes[["trace_id", "entity_id", "node_id"]]
    unique_segments = node_of_segment.drop_duplicates(["trace_id", "entity_id"])

    # ---- who calls each segment
    has_parent = segs["parent_id"].notna()
    parent_keys = segs.loc[has_parent, ["trace_id", "segment_id", "parent_id"]].reset_index()
    via_sub = parent_keys.merge(
        subs[["trace_id", "subsegment_id", "segment_id", "orphan"]].rename(
            columns={"segment_id": "caller_segment_id"}
        ),
        left_on=["trace_id", "parent_id"],
        right_on=["trace_id", "subsegment_id"],
        how="inner",
        sort=False,
    )
    via_sub = via_sub[via_sub["caller_segment_id"].notna()]
    via_seg = parent_keys.merge(
        segs[["trace_id", "segment_id"]].rename(columns={"segment_id": "caller_segment_id"}),
        left_on=["trace_id", "parent_id"],
        right_on=["trace_id", "caller_segment_id"],
        how="inner",
        sort=False,
    )
    called = pd.Index(via_sub["index"]).union(pd.Index(via_seg["index"]))

    # ---- links (SQS -> consumer): parsed only from documents that carry them
    links = _links(traces, node_of_segment, calls, segs, subs)
    linked = pd.Index(links["index"]) if len(links) else pd.Index([])
    root = ~inferred & ~segs.index.isin(called) & ~segs.index.isin(linked)
    seg_nodes["root"] = root

    # ---- derived inferred nodes: call subsegments with no segment of their own
    claimed = _key(segs.loc[has_parent, "trace_id"], segs.loc[has_parent, "parent_id"])
    call_keys = _key(calls["trace_id"], calls["subsegment_id"])
    parent_is_call = _isin(_key(calls["trace_id"], calls["parent_id"]), call_keys)
    free = (
        ~_isin(call_keys, claimed)
        & ~parent_is_call
        & ~calls["orphan"].astype(bool).to_numpy()
        & calls["segment_id"].notna().to_numpy()
    )
    derived_calls = calls[free]
    ident = _downstream_identity(derived_calls)
    derived_nodes = pd.DataFrame(
        {
            "trace_id": derived_calls["trace_id"],
            "entity_id": derived_calls["subsegment_id"],
            "node_id": _node_id(ident["name"], ident["type"], ident["account_id"]),
            "name": ident["name"],
            "type": ident["type"],
            "account_id": ident["account_id"],
            "inferred": True,
            "derived": True,
            "root": False,
        },
        index=derived_calls.index,
    ).join(_stats_from(derived_calls))

    nodes = _conform(pd.concat([seg_nodes, derived_nodes], ignore_index=True), NODE_SEGMENT_COLUMNS)

    # ---- edges
    seg_node_ids = seg_nodes["node_id"]
    lookup = unique_segments.rename(columns={"entity_id": "caller_segment_id", "node_id": "source"})
    edge_parts = []

    client = segs[root]
    client_edges = pd.DataFrame(
        {
            "trace_id": client["trace_id"],
            "source": CLIENT,
            "target": seg_node_ids[root],
            "edge_type": "",
            "entity_id": client["segment_id"],
            "target_entity_id": client["segment_id"],
        },
        index=client.index,
    ).join(_stats_from(client))
    edge_parts.append(client_edges)

    if len(via_sub):
        sub_stats = subs[["trace_id", "subsegment_id", "start", "end", "duration_s",
                          "http_status", "fault", "error", "throttle"]]
        e = via_sub[["index", "trace_id", "parent_id", "caller_segment_id"]].merge(
            lookup, on=["trace_id", "caller_segment_id"], how="inner", sort=False
        ).merge(
            sub_stats,
            left_on=["trace_id", "parent_id"],
            right_on=["trace_id", "subsegment_id"],
            how="inner",
            sort=False,
        )
        edge_parts.append(
            pd.DataFrame(
                {
                    "trace_id": e["trace_id"],
                    "source": e["source"],
                    "target": seg_node_ids.loc[e["index"]].to_numpy(),
                    "edge_type": "",
                    "entity_id": e["subsegment_id"],
                    "target_entity_id": segs.loc[e["index"], "segment_id"].to_numpy(),
                }
            ).join(_stats_from(e))
        )
    if len(via_seg):
        seg_stats = segs[["trace_id", "segment_id", "start", "end", "duration_s",
                          "http_status", "fault", "error", "throttle"]].rename(
            columns={"segment_id": "caller_segment_id"}
        )
        e = via_seg[["index", "trace_id", "caller_segment_id"]].merge(
            lookup, on=["trace_id", "caller_segment_id"], how="inner", sort=False
        ).merge(seg_stats, on=["trace_id", "caller_segment_id"], how="inner", sort=False)
        edge_parts.append(
            pd.DataFrame(
                {
                    "trace_id": e["trace_id"],
                    "source": e["source"],
                    "target": seg_node_ids.loc[e["index"]].to_numpy(),
                    "edge_type": "",
                    "entity_id": e["caller_segment_id"],
                    "target_entity_id": segs.loc[e["index"], "segment_id"].to_numpy(),
                }
            ).join(_stats_from(e))
        )
    if len(derived_calls):
        e = derived_calls[["trace_id", "segment_id"]].rename(
            columns={"segment_id": "caller_segment_id"}
        ).merge(lookup, on=["trace_id", "caller_segment_id"], how="left", sort=False)
        edge_parts.append(
            pd.DataFrame(
                {
                    "trace_id": derived_calls["trace_id"].to_numpy(),
                    "source": e["source"].to_numpy(),
                    "target": derived_nodes["node_id"].to_numpy(),
                    "edge_type": "",
                    "entity_id": derived_calls["subsegment_id"].to_numpy(),
                    "target_entity_id": derived_calls["subsegment_id"].to_numpy(),
                }
            ).join(_stats_from(derived_calls.reset_index(drop=True)))
        )
    if len(links):
        link_rows = segs.loc[links["index"]]
        stats = _stats_from(link_rows).reset_index(drop=True)
        stats["response_time_s"] = np.nan
        edge_parts.append(
            pd.DataFrame(
                {
                    "trace_id": link_rows["trace_id"].to_numpy(),
                    "source": links["source"].to_numpy(),
                    "target": seg_node_ids.loc[links["index"]].to_numpy(),
                    "edge_type": "link",
                    "entity_id": link_rows["segment_id"].to_numpy(),
                    "target_entity_id": link_rows["segment_id"].to_numpy(),
                    "linked_trace_id": links["link_trace_id"].to_numpy(),
                    "event_age_s": links["event_age_s"].to_numpy(),
                }
            ).join(stats)
        )
    edges = pd.concat([p.reset_index(drop=True) for p in edge_parts], ignore_index=True)
    edges = edges[edges["source"].notna()]
    return _Occurrences(nodes, _conform(edges, EDGE_CALL_COLUMNS))


def _links(
    traces: TraceSet, node_of_segment: pd.DataFrame, calls: pd.DataFrame, segs: pd.DataFrame,
    subs: pd.DataFrame,
) -> pd.DataFrame:
    """One row per resolvable trace link: ``index`` (of the linked segment), ``source``.

    A linked segment has no ``parent_id`` (it starts its own trace), so only the documents
    of such segments are searched for ``"links"``, and only those that have it are parsed.
    """
    columns = ["index", "source", "link_trace_id", "event_age_s"]
    docs = getattr(traces, "_documents", None)
    if docs is None or docs.empty:
        return pd.DataFrame(columns=columns)
    starts = segs.loc[segs["parent_id"].isna() & ~segs["inferred"].astype(bool), "segment_id"]
    docs = docs[_isin(docs["entity_id"], starts)]
    candidates = docs[docs["document"].str.contains('"links"', regex=False, na=False)]
    if candidates.empty:
        return pd.DataFrame(columns=columns)
    rows: list[tuple[str, str, str, str]] = []
    # a loop over the documents that carry links (one per linked consumer invocation)
    for trace_id, entity_id, text in zip(
        candidates["trace_id"], candidates["entity_id"], candidates["document"], strict=True
    ):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        for link in doc.get("links") or [] if isinstance(doc, dict) else []:
            if isinstance(link, dict) and link.get("id"):
                rows.append(
                    (trace_id, entity_id, str(link.get("trace_id") or trace_id), str(link["id"]))
                )
    if not rows:
        return pd.DataFrame(columns=columns)
    found = pd.DataFrame(
        rows, columns=["trace_id", "segment_id", "link_trace_id", "link_id"], dtype="str"
    ).drop_duplicates()
    seg_index = segs[["trace_id", "segment_id", "start"]].reset_index()
    found = found.merge(seg_index, on=["trace_id", "segment_id"], how="inner", sort=False)
    ids = found["link_id"].drop_duplicates()

    # What node does the linked entity stand for? A segment: its node. A subsegment: the
    # segment whose parent_id it is (inferred or real), else the node derived from it.
    target_nodes = node_of_segment[_isin(node_of_segment["entity_id"], ids)].rename(
        columns={"trace_id": "link_trace_id", "entity_id": "link_id", "node_id": "source"}
    )
    by_parent = (
        segs.loc[_isin(segs["parent_id"], ids), ["trace_id", "parent_id"]]
        .join(node_of_segment["node_id"])
        .rename(columns={"trace_id": "link_trace_id", "parent_id": "link_id", "node_id": "source"})
    )
    linked_calls = calls[_isin(calls["subsegment_id"], ids)]
    ident = _downstream_identity(linked_calls)
    by_call = pd.DataFrame(
        {
            "link_trace_id": linked_calls["trace_id"],
            "link_id": linked_calls["subsegment_id"],
            "source": _node_id(ident["name"], ident["type"], ident["account_id"]),
        }
    )
    seg_ends = segs.loc[_isin(segs["segment_id"], ids), ["trace_id", "segment_id", "end"]]
    sub_ends = subs.loc[_isin(subs["subsegment_id"], ids), ["trace_id", "subsegment_id", "end"]]
    ends = pd.concat(
        [
            seg_ends.rename(columns={"segment_id": "id"}),
            sub_ends.rename(columns={"subsegment_id": "id"}),
        ],
        ignore_index=True,
    ).rename(columns={"trace_id": "link_trace_id", "id": "link_id", "end": "link_end"})
    resolved = pd.concat([target_nodes, by_parent, by_call], ignore_index=True).drop_duplicates(
        ["link_trace_id", "link_id"], keep="first"
    )
    found = found.merge(resolved, on=["link_trace_id", "link_id"], how="inner", sort=False)
    found = found.merge(
        ends.drop_duplicates(["link_trace_id", "link_id"]),
        on=["link_trace_id", "link_id"],
        how="left",
        sort=False,
    )
    found["event_age_s"] = (found["start"] - found["link_end"]).dt.total_seconds()
    return found[columns].drop_duplicates(["index", "source"])


def node_segments(traces: TraceSet) -> pd.DataFrame:
    """Return one row per occurrence of a service-graph node in each trace.

    Every segment (inferred ones included) is a row; so is every downstream call
    (``aws``/``remote``/SQL subsegment) that has no segment of its own: X-Ray would infer a
    node for it (``derived`` is True for those). The client is not a row.

    Parameters
    ----------
    traces : TraceSet
        The traces; not modified.

    Returns
    -------
    DataFrame
        ``trace_id, entity_id`` (segment id, or the subsegment id of a derived node),
        ``node_id`` (``"name|type|account"``), ``name, type, account_id, inferred, derived,
        root, start, end, response_time_s, http_status`` and the status flags ``ok, error,
        throttle, fault`` (flags as in the documents, completed from the HTTP status; they
        can stack, ``ok`` is none of them).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.servicegraph import node_segments
    >>> ts = xraykit.load_sample("shop")
    >>> occ = node_segments(ts)
    >>> bool(occ.derived.any())  # the shop's documents come with their inferred segments
    False
    >>> int(occ.root.sum()) < len(ts)  # SQS-linked consumer traces start at a link
    True
    >>> sorted(occ.loc[occ.name == "shop-api/prod", "type"].unique())
    ['AWS::ApiGateway::Stage']
    """
    return _occurrences(traces).nodes


def edge_calls(traces: TraceSet) -> pd.DataFrame:
    """Return one row per call along a service-graph edge in each trace.

    The client → root edge is included (one row per root segment). Edge statistics come from
    the caller's subsegment (the round trip as the caller saw it); for the ``AWS::Lambda`` →
    ``AWS::Lambda::Function`` edge, from the Lambda service segment; for client edges, from
    the root segment.

    Parameters
    ----------
    traces : TraceSet
        The traces; not modified.

    Returns
    -------
    DataFrame
        ``trace_id, source, target`` (node ids; the client is ``"client"``), ``edge_type``
        (``""`` or ``"link"``), ``entity_id`` (the caller's subsegment id, the caller segment
        for segment → segment calls, the root segment for client edges, the linked segment for
        links), ``target_entity_id`` (the callee's entity), ``linked_trace_id`` (links only),
        ``start, end, response_time_s`` (NaN for links), ``event_age_s`` (links only),
        ``http_status, ok, error, throttle, fault``.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.servicegraph import edge_calls, node_segments
    >>> ts = xraykit.load_sample("shop")
    >>> calls = edge_calls(ts)
    >>> int((calls.source == "client").sum()) == int(node_segments(ts).root.sum())
    True
    """
    return _occurrences(traces).edges


# -- aggregation -------------------------------------------------------------------------------------


def _bucket(values: np.ndarray) -> np.ndarray:
    """Round response times to two significant digits: the histogram's bins."""
    v = np.asarray(values, dtype=float)
    out = np.zeros_like(v)
    positive = v > 0
    mag = np.floor(np.log10(v[positive]))
    scale = 10.0 ** (1 - mag)
    out[positive] = np.round(v[positive] * scale) / scale
    return out


def _group_codes(frame: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer group codes (sorted by key) and the row of each group's first occurrence."""
    key = frame[keys[0]].astype("str")
    for k in keys[1:]:
        key = key + "\x1f" + frame[k].astype("str")
    codes, _ = pd.factorize(key.fillna(""), sort=True)
    first = np.unique(codes, return_index=True)[1]
    return codes.astype(np.intp), first


def _sorted_runs(codes: np.ndarray, values: np.ndarray, groups: int) -> dict[str, Any]:
    """Values sorted within groups, with each group's start and count (NaN values dropped)."""
    valid = ~np.isnan(values)
    c, v = codes[valid], values[valid]
    order = np.lexsort((v, c))
    c, v = c[order], v[order]
    counts = np.bincount(c, minlength=groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    return {"codes": c, "values": v, "counts": counts, "starts": starts}


def _quantile(runs: dict[str, Any], q: float) -> np.ndarray:
    """Exact per-group quantiles with linear interpolation (pandas' default)."""
    counts, starts, v = runs["counts"], runs["starts"], runs["values"]
    out = np.full(len(counts), np.nan)
    has = counts > 0
    pos = q * (counts[has] - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, counts[has] - 1)
    frac = pos - lo
    base = starts[has]
    out[has] = v[base + lo] + frac * (v[base + hi] - v[base + lo])
    return out


def _histogram_lists(runs: dict[str, Any]) -> list[list[tuple[float, int]]]:
    """``[(value_s, count), ...]`` per group from values sorted within groups."""
    c, b = runs["codes"], _bucket(runs["values"])
    groups = len(runs["counts"])
    if len(c) == 0:
        return [[] for _ in range(groups)]
    new_run = np.r_[True, (c[1:] != c[:-1]) | (b[1:] != b[:-1])]
    run_starts = np.flatnonzero(new_run)
    run_counts = np.diff(np.r_[run_starts, len(c)])
    run_codes, run_values = c[run_starts], b[run_starts]
    per_group = np.bincount(run_codes, minlength=groups)
    bounds = np.r_[0, np.cumsum(per_group)]
    values, counts = run_values.tolist(), run_counts.tolist()
    return [
        list(zip(values[bounds[g] : bounds[g + 1]], counts[bounds[g] : bounds[g + 1]], strict=True))
        for g in range(groups)
    ]


def _aggregate(frame: pd.DataFrame, keys: list[str], *, value: str = "response_time_s") -> pd.DataFrame:
    """Counts by status bucket and response-time statistics per key (sorted by key)."""
    codes, first = _group_codes(frame, keys)
    groups = len(first)
    fault = frame["fault"].to_numpy(dtype=bool)
    error = (frame["error"].to_numpy(dtype=bool) | frame["throttle"].to_numpy(dtype=bool)) & ~fault
    throttle = frame["throttle"].to_numpy(dtype=bool) & error

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], minlength=groups).astype(np.int64)

    rt = frame[value].to_numpy(dtype=float, na_value=np.nan)
    runs = _sorted_runs(codes, rt, groups)
    total_rt = np.bincount(runs["codes"], weights=runs["values"], minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(runs["counts"] > 0, total_rt / runs["counts"], np.nan)
    times = pd.DataFrame({"start": frame["start"], "end": frame["end"], "_g": codes})
    bounds = times.groupby("_g", sort=True).agg(start=("start", "min"), end=("end", "max"))
    out = frame[keys].iloc[first].reset_index(drop=True)
    out = out.assign(
        ok_count=count(~(fault | error)),
        error_count=count(error),
        throttle_count=count(throttle),
        fault_count=count(fault),
        total_count=np.bincount(codes, minlength=groups).astype(np.int64),
        total_response_time_s=np.where(runs["counts"] > 0, total_rt, np.nan),
        mean_response_time_s=mean,
        p50_response_time_s=_quantile(runs, 0.5),
        p90_response_time_s=_quantile(runs, 0.9),
        p99_response_time_s=_quantile(runs, 0.99),
        response_time_histogram=_histogram_lists(runs),
        start=bounds["start"].to_numpy(),
        end=bounds["end"].to_numpy(),
    )
    return out


# -- the graph ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class ServiceGraph:
    """A service graph: ``nodes`` and ``edges`` DataFrames and the time window they cover.

    Build one with :func:`service_graph` (from traces) or :func:`service_graph_from_response`
    (from a ``GetServiceGraph``/``GetTraceGraph`` response). In Jupyter it displays itself as
    a service map (see :func:`xraykit.service_map`).

    Attributes
    ----------
    nodes : DataFrame
        One row per node: ``node_id, reference_id, name, type, account_id, root, inferred``,
        the counts ``ok_count, error_count, throttle_count, fault_count, total_count``
        (ok + error + fault = total; throttle is part of error), ``total_response_time_s,
        mean_response_time_s, p50_response_time_s, p90_response_time_s,
        p99_response_time_s``, ``response_time_histogram`` (list of ``(seconds, count)``)
        and ``start, end``. The client node has zero counts.
    edges : DataFrame
        One row per edge: ``source, target`` (node ids), ``edge_type`` (``""`` or
        ``"link"``), the same statistics, and for links ``mean_event_age_s`` and
        ``event_age_histogram``.
    start, end : Timestamp or None
        The time window of the data.
    origin : str
        ``"traces"`` or the API operation the graph came from.
    traces : TraceSet or None
        The traces the graph was computed from (used by ``highlight`` and ``traces_for_*``).
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    origin: str = "traces"
    traces: TraceSet | None = field(default=None, repr=False)

    @property
    def window_s(self) -> float:
        """Length of the time window in seconds (0 when unknown)."""
        if self.start is None or self.end is None or pd.isna(self.start) or pd.isna(self.end):
            return 0.0
        return max(0.0, (self.end - self.start).total_seconds())

    def node(self, name: str) -> pd.DataFrame:
        """Return the node rows whose ``node_id`` or ``name`` is ``name``."""
        nodes = self.nodes
        return nodes[(nodes["node_id"] == name) | (nodes["name"] == name)]

    def __repr__(self) -> str:
        when = ""
        if self.window_s:
            when = f", {self.start:%Y-%m-%d %H:%M} to {self.end:%H:%M} UTC"
        return (
            f"<ServiceGraph from {self.origin}: {len(self.nodes)} nodes, "
            f"{len(self.edges)} edges{when}>"
        )

    def to_digraph(self, **kwargs: Any) -> graphviz.Digraph:
        """Return the service map (a ``graphviz.Digraph``); keywords go to ``service_map``."""
        from xraykit.servicemap import service_map

        return service_map(self, **kwargs)

    def to_dot(self, **kwargs: Any) -> str:
        """Return the DOT source of the service map; keywords go to ``service_map``.

        >>> import xraykit
        >>> from xraykit.servicegraph import service_graph
        >>> service_graph(xraykit.load_sample("shop")).to_dot().startswith("digraph")
        True
        """
        return str(self.to_digraph(**kwargs).source)

    def save(self, path: str | Path, *, format: str | None = None, **kwargs: Any) -> Path:
        """Save the service map as SVG, PNG, PDF or DOT and return the path.

        Parameters
        ----------
        path : str or Path
            Where to write.
        format : {"svg", "png", "pdf", "dot"}, optional
            Taken from the file suffix when not given (``.gv`` is DOT).
        **kwargs
            Passed to :func:`xraykit.service_map`.

        Raises
        ------
        ValueError
            For an unknown format.
        """
        path = Path(path)
        fmt = (format or path.suffix.lstrip(".") or "svg").lower()
        fmt = {"gv": "dot", "jpeg": "jpg"}.get(fmt, fmt)
        allowed = ("svg", "png", "pdf", "dot", "jpg")
        if fmt not in allowed:
            raise ValueError(
                f"`format` must be one of {allowed}, but {fmt!r} was passed "
                f"(or found as the suffix of {str(path)!r})."
            )
        graph = self.to_digraph(**kwargs)
        if fmt == "dot":
            path.write_text(graph.source, encoding="utf-8")
        else:
            path.write_bytes(graph.pipe(format=fmt))
        return path

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        import graphviz

        try:
            bundle: dict[str, Any] = self.to_digraph()._repr_mimebundle_(include, exclude)
        except graphviz.ExecutableNotFound:
            return {
                "text/plain": repr(self) + "\n(install Graphviz's `dot` program to see the map)"
            }
        bundle.setdefault("text/plain", repr(self))
        return bundle

    def _repr_svg_(self) -> str:
        return str(self.to_digraph().pipe(format="svg", encoding="utf-8"))


def _finish_nodes(nodes: pd.DataFrame) -> pd.DataFrame:
    nodes = (
        nodes.assign(_not_client=nodes["node_id"] != CLIENT)
        .sort_values(["_not_client", "node_id"], kind="stable")
        .drop(columns="_not_client")
        .reset_index(drop=True)
    )
    nodes["reference_id"] = np.arange(len(nodes), dtype=np.int64)
    return _conform(nodes, NODE_COLUMNS)


def _client_node() -> dict[str, Any]:
    return {
        "node_id": CLIENT,
        "name": CLIENT,
        "type": "client",
        "account_id": "",
        "root": False,
        "inferred": False,
        "ok_count": 0,
        "error_count": 0,
        "throttle_count": 0,
        "fault_count": 0,
        "total_count": 0,
        "total_response_time_s": 0.0,
        "response_time_histogram": [],
    }


def service_graph(traces: TraceSet) -> ServiceGraph:
    """Compute the service graph of a TraceSet with X-Ray's rules.

    Parameters
    ----------
    traces : TraceSet
        The traces; not modified.

    Returns
    -------
    ServiceGraph
        ``nodes`` and ``edges`` (see :class:`ServiceGraph`), the time window of the traces,
        and the traces themselves.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.servicegraph import service_graph
    >>> graph = service_graph(xraykit.load_sample("shop"))
    >>> lam = graph.nodes[graph.nodes.type.str.startswith("AWS::Lambda")]
    >>> sorted(lam.type.unique())
    ['AWS::Lambda', 'AWS::Lambda::Function']
    >>> counts = graph.nodes[["ok_count", "error_count", "fault_count"]].sum(axis=1)
    >>> bool((counts == graph.nodes.total_count).all())
    True
    """
    occ = _occurrences(traces)
    span = traces.time_span if len(traces) else None
    start, end = span if span else (None, None)
    if occ.nodes.empty:
        return ServiceGraph(
            _empty(NODE_COLUMNS), _empty(EDGE_COLUMNS), start, end, "traces", traces
        )

    stats = _aggregate(occ.nodes, ["node_id"])
    ident = occ.nodes.groupby("node_id", sort=True).agg(
        name=("name", "first"),
        type=("type", "first"),
        account_id=("account_id", "first"),
        root=("root", "any"),
        inferred=("inferred", "all"),
    )
    nodes = ident.reset_index().merge(stats, on="node_id", how="left")
    if (occ.edges["source"] == CLIENT).any():
        nodes = pd.concat([pd.DataFrame([_client_node()]), nodes], ignore_index=True)
    nodes = _finish_nodes(nodes)

    calls = occ.edges
    keys = ["source", "target", "edge_type"]
    edges = _aggregate(calls, keys)
    links = calls[calls["edge_type"] == "link"]
    if len(links):
        ages = _aggregate(links, keys, value="event_age_s")
        ages = ages[[*keys, "mean_response_time_s", "response_time_histogram"]].rename(
            columns={
                "mean_response_time_s": "mean_event_age_s",
                "response_time_histogram": "event_age_histogram",
            }
        )
        edges = edges.merge(ages, on=keys, how="left")
        edges["event_age_histogram"] = [
            h if isinstance(h, list) else [] for h in edges["event_age_histogram"]
        ]
    else:
        edges["event_age_histogram"] = [[] for _ in range(len(edges))]
    return ServiceGraph(nodes, _conform(edges, EDGE_COLUMNS), start, end, "traces", traces)


# -- from an API response --------------------------------------------------------------------------


def _timestamp(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return pd.Timestamp(value, unit="s", tz="UTC")
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _weighted_quantile(histogram: Sequence[tuple[float, int]], q: float) -> float:
    if not histogram:
        return math.nan
    values = np.array([v for v, _ in histogram], dtype=float)
    counts = np.array([c for _, c in histogram], dtype=float)
    order = np.argsort(values)
    values, counts = values[order], counts[order]
    total = counts.sum()
    if total <= 0:
        return math.nan
    cumulative = np.cumsum(counts)
    return float(values[np.searchsorted(cumulative, q * total, side="left").clip(0, len(values) - 1)])


def _response_stats(summary: Mapping[str, Any] | None, histogram: Any, where: str) -> dict[str, Any]:
    summary = summary or {}
    if not isinstance(summary, Mapping):
        raise TraceParseError(
            f"Expected SummaryStatistics to be an object at {where}, but got {summary!r}. "
            "Pass the response of get_service_graph / get_trace_graph unchanged.",
            source="GetServiceGraph",
            location=where,
        )
    errors = summary.get("ErrorStatistics") or {}
    faults = summary.get("FaultStatistics") or {}
    ok = int(summary.get("OkCount") or 0)
    error = int(errors.get("TotalCount") or 0)
    fault = int(faults.get("TotalCount") or 0)
    total = int(summary.get("TotalCount") or (ok + error + fault))
    total_rt = (
        float(summary["TotalResponseTime"])
        if summary.get("TotalResponseTime") is not None
        else math.nan
    )
    hist = _histogram_entries(histogram, where)
    return {
        "ok_count": ok,
        "error_count": error,
        "throttle_count": int(errors.get("ThrottleCount") or 0),
        "fault_count": fault,
        "total_count": total,
        "total_response_time_s": total_rt,
        "mean_response_time_s": total_rt / total if total else math.nan,
        "p50_response_time_s": _weighted_quantile(hist, 0.5),
        "p90_response_time_s": _weighted_quantile(hist, 0.9),
        "p99_response_time_s": _weighted_quantile(hist, 0.99),
        "response_time_histogram": hist,
    }


def _histogram_entries(histogram: Any, where: str) -> list[tuple[float, int]]:
    if histogram is None:
        return []
    try:
        return sorted((float(h["Value"]), int(h["Count"])) for h in histogram)
    except (TypeError, KeyError, ValueError) as exc:
        raise TraceParseError(
            f"Expected a histogram as a list of {{'Value': seconds, 'Count': n}} at {where}, "
            f"but got {histogram!r}.",
            source="GetServiceGraph",
            location=where,
        ) from exc


def service_graph_from_response(
    response: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> ServiceGraph:
    """Turn a ``GetServiceGraph`` or ``GetTraceGraph`` response into a :class:`ServiceGraph`.

    Parameters
    ----------
    response : dict or list of dict
        What ``boto3`` returns (times as datetimes) or the raw JSON (times as epoch
        seconds); a list of pages is merged.

    Returns
    -------
    ServiceGraph
        Nodes keyed like computed graphs (``"name|type|account"``; the ``client`` node is
        ``"client"``), edges resolved by ``ReferenceId``. Percentiles are read from the
        response-time histograms.

    Raises
    ------
    TraceParseError
        When the response does not have the ``Services`` shape of the X-Ray API.

    Examples
    --------
    >>> from xraykit.servicegraph import service_graph_from_response
    >>> response = {"Services": [
    ...     {"ReferenceId": 0, "Name": "web", "Type": "client", "Edges": [
    ...         {"ReferenceId": 1, "SummaryStatistics": {"OkCount": 2, "TotalCount": 2,
    ...          "TotalResponseTime": 0.5}}]},
    ...     {"ReferenceId": 1, "Name": "web", "Type": "AWS::EC2::Instance", "Root": True,
    ...      "SummaryStatistics": {"OkCount": 2, "TotalCount": 2, "TotalResponseTime": 0.4}}]}
    >>> graph = service_graph_from_response(response)
    >>> graph.edges[["source", "target", "mean_response_time_s"]].values.tolist()
    [['client', 'web|AWS::EC2::Instance|', 0.25]]
    """
    pages: Sequence[Mapping[str, Any]] = [response] if isinstance(response, Mapping) else response
    services: dict[Any, Mapping[str, Any]] = {}
    starts, ends = [], []
    operation = "GetTraceGraph"
    for p, page in enumerate(pages):
        if not isinstance(page, Mapping) or not isinstance(page.get("Services"), list):
            raise TraceParseError(
                f"Expected a GetServiceGraph/GetTraceGraph response with a 'Services' list, "
                f"but got {type(page).__name__} with keys "
                f"{sorted(page) if isinstance(page, Mapping) else page!r}. Pass what "
                "`client.get_service_graph(...)` returns (or a list of its pages).",
                source="GetServiceGraph",
                location=f"page {p}",
            )
        if "StartTime" in page or "EndTime" in page:
            operation = "GetServiceGraph"
        starts.append(_timestamp(page.get("StartTime")))
        ends.append(_timestamp(page.get("EndTime")))
        for s, service in enumerate(page["Services"]):
            if not isinstance(service, Mapping) or "ReferenceId" not in service:
                raise TraceParseError(
                    f"Expected each service to be an object with a 'ReferenceId', but got "
                    f"{service!r}.",
                    source=operation,
                    location=f"page {p}, Services[{s}]",
                )
            services[service["ReferenceId"]] = service

    ids: dict[Any, str] = {}
    node_rows = []
    for ref, service in services.items():
        type_ = str(service.get("Type") or "")
        name = str(service.get("Name") or "")
        account = str(service.get("AccountId") or "")
        node_id = CLIENT if type_ == "client" else f"{name}|{type_}|{account}"
        ids[ref] = node_id
        if type_ == "client":
            continue
        where = f"service {name!r} (ReferenceId {ref})"
        row = {
            "node_id": node_id,
            "name": name,
            "type": type_,
            "account_id": account,
            "root": bool(service.get("Root", False)),
            "inferred": not service.get("Root", False) and type_ not in _SEGMENT_ORIGINS,
            "start": _timestamp(service.get("StartTime")),
            "end": _timestamp(service.get("EndTime")),
        }
        row.update(_response_stats(service.get("SummaryStatistics"), service.get("ResponseTimeHistogram"), where))
        node_rows.append(row)

    edge_rows = []
    for ref, service in services.items():
        for e, edge in enumerate(service.get("Edges") or []):
            where = f"service {service.get('Name')!r} (ReferenceId {ref}), Edges[{e}]"
            target = ids.get(edge.get("ReferenceId"))
            if target is None:
                raise TraceParseError(
                    f"Edge points at ReferenceId {edge.get('ReferenceId')!r}, which no service "
                    f"in the response has (known: {sorted(ids)!r}). Merge all pages first.",
                    source=operation,
                    location=where,
                )
            edge_type = str(edge.get("EdgeType") or "")
            row = {
                "source": ids[ref],
                "target": target,
                "edge_type": edge_type,
                "start": _timestamp(edge.get("StartTime")),
                "end": _timestamp(edge.get("EndTime")),
            }
            row.update(_response_stats(edge.get("SummaryStatistics"), edge.get("ResponseTimeHistogram"), where))
            age = _histogram_entries(edge.get("ReceivedEventAgeHistogram"), where)
            row["event_age_histogram"] = age
            n_age = sum(c for _, c in age)
            row["mean_event_age_s"] = sum(v * c for v, c in age) / n_age if n_age else math.nan
            edge_rows.append(row)

    nodes = pd.DataFrame(node_rows) if node_rows else _empty(NODE_COLUMNS).drop(columns="reference_id")
    if CLIENT in ids.values():
        client = pd.DataFrame([_client_node()])
        nodes = client if nodes.empty else pd.concat([client, nodes], ignore_index=True)
    if not nodes.empty:
        nodes = nodes.groupby("node_id", sort=False, as_index=False).agg(_merge_rules(nodes))
        nodes = _finish_nodes(_recompute_means(nodes))
    else:
        nodes = _empty(NODE_COLUMNS)
    edges = pd.DataFrame(edge_rows) if edge_rows else _empty(EDGE_COLUMNS)
    if len(edges):
        edges = edges.groupby(["source", "target", "edge_type"], sort=True, as_index=False).agg(
            _merge_rules(edges)
        )
        edges = _recompute_means(edges)
    start = min((s for s in starts if s is not None), default=None)
    end = max((e for e in ends if e is not None), default=None)
    if start is None and len(nodes):
        start = nodes["start"].min()
        end = nodes["end"].max()
    return ServiceGraph(nodes, _conform(edges, EDGE_COLUMNS), start, end, operation, None)


def _merge_rules(frame: pd.DataFrame) -> dict[str, Any]:
    """How to merge duplicate nodes/edges (one per page, or several client nodes)."""
    rules: dict[str, Any] = {}
    for col in frame.columns:
        if col in ("node_id", "source", "target", "edge_type"):
            continue
        if col.endswith("_count"):
            rules[col] = "sum"
        elif col == "total_response_time_s":
            rules[col] = lambda s: s.sum(min_count=1)
        elif col == "start":
            rules[col] = "min"
        elif col == "end":
            rules[col] = "max"
        elif col == "root":
            rules[col] = "any"
        elif col.endswith("histogram"):
            rules[col] = lambda s: sorted(_sum_histograms(s))
        else:
            rules[col] = "first"
    return rules


def _recompute_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Means and percentiles after merging pages: from the summed totals and histograms."""
    frame = frame.copy()
    total = frame["total_count"].astype(float)
    frame["mean_response_time_s"] = (frame["total_response_time_s"] / total).where(total > 0)
    for q in (50, 90, 99):
        frame[f"p{q}_response_time_s"] = [
            _weighted_quantile(h, q / 100) for h in frame["response_time_histogram"]
        ]
    return frame


def _sum_histograms(histograms: Iterable[list[tuple[float, int]]]) -> list[tuple[float, int]]:
    total: dict[float, int] = {}
    for hist in histograms:
        for value, count in hist:
            total[value] = total.get(value, 0) + count
    return list(total.items())


# -- traces behind a node or an edge --------------------------------------------------------------


def _match_nodes(frame: pd.DataFrame, name: str, type_: str | None, account_id: str | None) -> pd.Series:
    mask = (frame["node_id"] == name) | (frame["name"] == name)
    if type_ is not None:
        mask &= frame["type"] == type_
    if account_id is not None:
        mask &= frame["account_id"] == account_id
    return mask


def traces_for_node(
    traces: TraceSet, name: str, *, type: str | None = None, account_id: str | None = None
) -> TraceSet:
    """Return the traces in which a node occurs ("click a node, see its traces").

    Parameters
    ----------
    traces : TraceSet
        The traces; not modified.
    name : str
        A node name (``"orders-api"``), a node id (``"orders-api|AWS::ECS::Container|"``),
        or ``"client"`` (every trace with a root segment).
    type, account_id : str, optional
        Narrow a name shared by several nodes (``type="AWS::Lambda::Function"``).

    Returns
    -------
    TraceSet
        The matching traces, in their original order (empty when none match).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.servicegraph import traces_for_node
    >>> ts = xraykit.load_sample("shop")
    >>> api = traces_for_node(ts, "shop-api/prod")
    >>> 0 < len(api) <= len(ts)
    True
    """
    occ = _occurrences(traces)
    if name == CLIENT:
        ids = occ.edges.loc[occ.edges["source"] == CLIENT, "trace_id"]
    else:
        ids = occ.nodes.loc[_match_nodes(occ.nodes, name, type, account_id), "trace_id"]
    return traces.select(ids.unique())


def traces_for_edge(
    traces: TraceSet, source: str, target: str, *, edge_type: str | None = None
) -> TraceSet:
    """Return the traces that contain a call along an edge ("click an edge, see its traces").

    Parameters
    ----------
    traces : TraceSet
        The traces; not modified.
    source, target : str
        Node names or node ids (``"client"`` for the client).
    edge_type : {"", "link"}, optional
        Only calls of that kind. For a ``link`` edge both the consumer's trace and the linked
        producer's trace are returned when they are in ``traces``.

    Returns
    -------
    TraceSet
        The matching traces, in their original order.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.servicegraph import traces_for_edge
    >>> ts = xraykit.load_sample("shop")
    >>> hit = traces_for_edge(ts, "client", "shop-api/prod")
    >>> len(hit) > 0
    True
    """
    occ = _occurrences(traces)
    names = occ.nodes.drop_duplicates("node_id").set_index("node_id")["name"]
    calls = occ.edges
    source_name = calls["source"].map(names).fillna(calls["source"])
    target_name = calls["target"].map(names).fillna(calls["target"])
    mask = ((calls["source"] == source) | (source_name == source)) & (
        (calls["target"] == target) | (target_name == target)
    )
    if edge_type is not None:
        mask &= calls["edge_type"] == edge_type
    hit = calls[mask]
    ids = pd.concat([hit["trace_id"], hit["linked_trace_id"].dropna()], ignore_index=True)
    return traces.select(ids.unique())

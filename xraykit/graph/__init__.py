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
- **Roots and the client.** The root is X-Ray's "first service hit": exactly the trace's
  root segment (``traces.root_segment_id``: the earliest real segment whose caller is not in
  the trace), one per trace. A synthetic ``client`` node calls each trace's root, except a
  root that is an SQS-linked consumer (below), which the queue reaches through a link
  instead. Other segments without a caller in the trace (a second entry point, a caller
  missing from partial data) are nodes but not roots, and get no client edge (*decision*).
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
  (consumer start − producer call end). A linked segment is a root (its trace's first
  service; ``node_segments`` flags it ``linked``) but gets no client edge: the map shows the
  queue, not an anonymous client, as its caller (*decision*; X-Ray's documentation only says
  that the traces are linked and the map draws a dashed link edge).
- **Statistics.** Node statistics come from the node's own segments; edge statistics from
  the caller's subsegments (round trip, network included), so an edge can be slower than the
  node it points to. Client edges carry the root segments' statistics. Status buckets as
  in X-Ray, from the flags or, where a flag is missing, the HTTP status: fault (fault flag
  or 5xx), error (error or throttle flag, or 4xx; fault wins), throttle (throttle flag or
  429, a subset of error), ok (none of them); a completed request is in exactly one of ok /
  error / fault. A request still in progress (no end, so no response time and usually no
  status yet) is in none: it counts in ``in_progress_count`` only, and the mean response
  time is ``total_response_time_s / total_count`` (X-Ray's TotalResponseTime / TotalCount).

Examples
--------
>>> import xraykit
>>> from xraykit.graph import node_segments, service_graph
>>> ts = xraykit.load_sample("shop")
>>> graph = service_graph(ts)
>>> graph.nodes.loc[graph.nodes.node_id == "client", "type"].item()
'client'
>>> client = graph.edges[graph.edges.source == "client"]
>>> occ = node_segments(ts)
>>> int(client.total_count.sum()) == int((occ.root & ~occ.linked).sum())
True
"""

from __future__ import annotations

import math
import re
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
from xraykit.io.docstore import DocumentStore

if TYPE_CHECKING:
    import graphviz

    from xraykit.traceset import TraceSet

__all__ = [
    "CLIENT",
    "ServiceGraph",
    "edge_calls",
    "graph_frames",
    "node_segments",
    "service_graph",
    "service_graph_from_response",
    "traces_for_edge",
    "traces_for_node",
]

#: The node id of the synthetic client node.
CLIENT = "client"

_TIME = "datetime64[us, UTC]"  # X-Ray records microseconds
_NAT = np.iinfo(np.int64).min  # NaT as int64 microseconds

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
    "linked": "bool",
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
    "in_progress_count": "int64",
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
        if (
            key not in _AWS_SERVICES
            and key.startswith(prefix)
            and key[len(prefix) :] in _AWS_SERVICES
        ):
            key = key[len(prefix) :]
    return _AWS_SERVICES.get(key, name.strip().replace(" ", ""))


# -- small helpers -------------------------------------------------------------------------------


# xraykit.schema.empty_frame / conform take the name of a TraceSet frame only; these two do the
# same for the graph's own column sets (NODE_COLUMNS, EDGE_COLUMNS, ...).
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


_SEP = pa.scalar("\x1f", pa.large_string())
_BAR = pa.scalar("|", pa.large_string())
_NO_TEXT = pa.scalar("", pa.large_string())


def _strings(values: pd.Series | pd.Index | Sequence[Any]) -> pa.Array:
    """One Arrow ``large_string`` array (missing values null) for a string column.

    pandas' ``"str"`` columns are Arrow already, so this is a cheap view (plus one
    concatenation of the column's chunks); other columns are converted.
    """
    if not isinstance(values, pd.Series | pd.Index):
        return pa.array(list(values), pa.large_string())
    if str(values.dtype) != "str":
        values = values.astype("str")
    arrow = pa.array(values.array)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks() if arrow.num_chunks != 1 else arrow.chunk(0)
    return arrow if arrow.type == pa.large_string() else arrow.cast(pa.large_string())


def _concat(arrays: Sequence[pa.Array]) -> pa.Array:
    return pa.concat_arrays(list(arrays)) if arrays else pa.array([], pa.large_string())


def _chunked(arrays: Sequence[pa.Array]) -> pa.ChunkedArray:
    return pa.chunked_array([a for a in arrays if len(a)], pa.large_string())


def _take(array: pa.Array, rows: np.ndarray) -> pa.Array:
    """``array[rows]``; rows of -1 give null."""
    missing = rows < 0
    if missing.any():
        return array.take(pa.array(np.where(missing, 0, rows), mask=missing))
    return array.take(rows)


def _repeat(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.large_string()), n)


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy (null is False)."""
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def _str(array: pa.Array) -> Any:
    """A pandas ``"str"`` array over an Arrow string array."""
    return pd.array(array, dtype="str")


def _bools(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=bool, na_value=False)


def _micros(series: pd.Series) -> np.ndarray:
    """Times as int64 microseconds since the epoch (NaT is the int64 minimum)."""
    return series.to_numpy(dtype="datetime64[us]").view(np.int64)


def _time_array(micros: np.ndarray) -> Any:
    return pd.array(micros.view("datetime64[us]"), dtype=_TIME)


def _codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Integer codes of strings (in order of first appearance; -1 for missing) and their count.

    Chunks are encoded against one dictionary, so parts need not be concatenated first.
    """
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        if encoded.num_chunks == 0:
            return np.zeros(0, dtype=np.int64), 0
        codes = np.concatenate(
            [pc.fill_null(c.indices, -1).to_numpy().astype(np.int64) for c in encoded.chunks]
        )
        return codes, len(encoded.chunk(encoded.num_chunks - 1).dictionary)
    codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64)
    return codes, len(encoded.dictionary)


class _Keys:
    """Integer keys of ``(trace id, entity id)`` pairs, so that joins are array lookups.

    ``traces`` maps a name to a trace-id column; ``ids`` maps a name to ``(trace name, id
    column)``. Two rows of any parts get the same key exactly when both their trace id and their
    entity id are equal (ids are unique within a trace only); a missing id gets -1. All strings
    are hashed once, by Arrow.
    """

    def __init__(
        self, traces: Mapping[str, pa.Array], ids: Mapping[str, tuple[str, pa.Array]]
    ) -> None:
        trace_codes, _ = _codes(_chunked(list(traces.values())))
        bounds = np.cumsum([0, *(len(a) for a in traces.values())])
        by_trace = {name: trace_codes[bounds[i] : bounds[i + 1]] for i, name in enumerate(traces)}
        id_codes, n_ids = _codes(_chunked([column for _, column in ids.values()]))
        trace_of = np.concatenate([by_trace[t] for t, _ in ids.values()])
        # Usually every id occurs in one trace only: then the id alone is the key.
        seen = np.full(n_ids + 1, -2, dtype=np.int64)
        seen[id_codes] = trace_of
        if (seen[id_codes][id_codes >= 0] == trace_of[id_codes >= 0]).all():
            keys, self.size = id_codes, n_ids
        else:  # an id is reused in several traces: key on the pair
            keys, uniques = pd.factorize(trace_of * (n_ids + 1) + id_codes)
            keys[id_codes < 0] = -1
            self.size = len(uniques)
        bounds = np.cumsum([0, *(len(column) for _, column in ids.values())])
        self.key = {name: keys[bounds[i] : bounds[i + 1]] for i, name in enumerate(ids)}

    def position(self, table: str) -> np.ndarray:
        """For each key, the first row of part ``table`` that has it (-1: none)."""
        keys = self.key[table]
        rows = np.flatnonzero(keys >= 0)
        first = np.full(self.size + 1, -1, dtype=np.int64)  # the extra slot answers key -1
        present = keys[rows]
        if len(present) and np.bincount(present).max() > 1:  # repeated ids: keep the first
            order = np.argsort(present, kind="stable")
            head = np.r_[True, present[order][1:] != present[order][:-1]]
            first[present[order][head]] = rows[order][head]
        else:
            first[present] = rows
        return first

    def find(self, table: str, query: str) -> np.ndarray:
        """Row in part ``table`` of each row of part ``query`` (-1 when absent)."""
        return self.position(table)[self.key[query]]


# -- identity of downstream nodes ------------------------------------------------------------------


_QUEUE = re.compile(r"([^/]+)/?$")
_FUNCTION = re.compile(r"function:([^:]+)")


def _identity(
    name: str, kind: str, table: str, queue_url: str, function: str, account: str, owner: str
) -> tuple[str, str, str]:
    """Name, type and account of the node one downstream call stands for.

    ``kind`` is ``"sql"`` for a call with a ``sql`` block, else the subsegment's namespace.
    """
    if kind == "sql":
        return name, "Database::SQL", ""
    if kind != "aws":
        return name, "remote", ""
    service = _canonical_service(name)
    node, type_ = service, f"AWS::{service}"
    match = _QUEUE.search(queue_url)
    queue = match.group(1) if match else ""
    if service == "DynamoDB" and table:
        node, type_ = table, "AWS::DynamoDB::Table"
    elif service == "SQS" and queue:
        node, type_ = queue, "AWS::SQS::Queue"
    elif service == "Lambda" and function:
        found = _FUNCTION.search(function) if function.startswith("arn:") else None
        node = found.group(1) if found else function
    return node, type_, account or owner


def _downstream_identity(
    subs: pd.DataFrame, rows: np.ndarray, is_sql: np.ndarray, owner_account: pa.Array
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Name, type and account (Arrow arrays) of the node each downstream call stands for.

    ``rows`` are the calls' positions in ``subs``, ``is_sql`` whether each has a ``sql``
    block, ``owner_account`` the calling segment's account. The rules run once per distinct
    combination of the fields they read, not once per call.
    """
    kind = pc.if_else(
        pa.array(is_sql, pa.bool_()),
        pa.scalar("sql", pa.large_string()),
        _strings(subs["namespace"]).take(rows),
    )
    fields = [
        _strings(subs["name"]).take(rows),
        kind,
        *(
            _strings(subs[c]).take(rows)
            for c in ("table_name", "queue_url", "function_name", "aws_account_id")
        ),
        owner_account,
    ]
    combo = np.zeros(len(rows), dtype=np.int64)
    codes: list[np.ndarray] = []
    values: list[list[str]] = []
    for field_ in fields:
        encoded = pc.dictionary_encode(pc.fill_null(field_, _NO_TEXT))
        codes.append(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64))
        values.append(encoded.dictionary.to_pylist())
        combo = pd.factorize(combo * (len(values[-1]) + 1) + codes[-1])[0]
    first = np.unique(combo, return_index=True)[1]  # a row of each combination, in combo order
    found = [
        _identity(*(vals[c] for vals, c in zip(values, row, strict=True)))
        for row in zip(*(field_codes[first].tolist() for field_codes in codes), strict=True)
    ]
    take = pa.array(combo)
    return (
        pa.array([f[0] for f in found], pa.large_string()).take(take),
        pa.array([f[1] for f in found], pa.large_string()).take(take),
        pa.array([f[2] for f in found], pa.large_string()).take(take),
    )


def _is_call(subs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Subsegments that stand for a call to a downstream service, and those with SQL."""
    is_sql = (
        subs["sql_url"].notna().to_numpy()
        | subs["sql_database_type"].notna().to_numpy()
        | subs["sql_sanitized_query"].notna().to_numpy()
    )
    namespace = pc.is_in(
        _strings(subs["namespace"]), value_set=pa.array(["aws", "remote"], pa.large_string())
    )
    return pc.fill_null(namespace, False).to_numpy(zero_copy_only=False) | is_sql, is_sql


# -- links ------------------------------------------------------------------------------------------


_LINKS = np.frombuffer(b'"links"', dtype=np.uint8)


def _rows_containing(chunk: pa.Array, needle: np.ndarray) -> np.ndarray:
    """Rows of an Arrow string array whose text contains ``needle`` (at least 2 bytes).

    Vectorised over the array's data buffer, without copying it: the positions of one byte of
    the needle are found, then the other bytes are compared at those positions.
    """
    buffers = chunk.buffers()
    if len(chunk) == 0 or buffers[2] is None:
        return np.zeros(0, dtype=np.int64)
    width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(buffers[1], dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    pivot = len(needle) - 2
    at = np.flatnonzero(data[pivot : len(data) - 1] == needle[pivot])  # match starts
    for j, byte in enumerate(needle):
        if j != pivot and len(at):
            at = at[data[at + j] == byte]
    rows = np.searchsorted(offsets, at + int(offsets[0]), side="right") - 1
    return np.unique(rows)


def _link_documents(traces: TraceSet) -> list[tuple[str, str, str, str]]:
    """``(trace_id, entity_id, linked trace_id, linked entity id)`` of every trace link.

    Only documents that contain ``"links"`` are parsed: a TraceSet's document store flagged
    them when it was built (and decompresses only their blocks); for another object with
    ``raw_documents``, the raw text is searched first (in Arrow's buffers, without copying).
    """
    store = getattr(traces, "_documents", None)
    if isinstance(store, DocumentStore):
        docs = store.linked()
        return _parse_links(docs["trace_id"], docs["entity_id"], docs["document"])
    docs = getattr(traces, "raw_documents", None)
    if docs is None or docs.empty:
        return []
    column = docs["document"]
    arrow = pa.array(column.array) if str(column.dtype) == "str" else _strings(column)
    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    parts, base = [np.zeros(0, dtype=np.int64)], 0
    for chunk in chunks:
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            chunk = chunk.cast(pa.large_string())
        parts.append(base + _rows_containing(chunk, _LINKS))
        base += len(chunk)
    hits = np.concatenate(parts)
    return _parse_links(*(docs[c].iloc[hits] for c in ("trace_id", "entity_id", "document")))


def _parse_links(
    trace_ids: pd.Series, entity_ids: pd.Series, texts: pd.Series
) -> list[tuple[str, str, str, str]]:
    """The links of the given documents (JSON texts); unreadable texts are skipped."""
    found: dict[tuple[str, str, str, str], None] = {}
    columns = (trace_ids.tolist(), entity_ids.tolist(), texts.tolist())
    # a loop over the documents that carry links (one per linked consumer invocation)
    for trace_id, entity_id, raw in zip(*columns, strict=True):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        for link in (doc.get("links") or []) if isinstance(doc, dict) else []:
            if isinstance(link, dict) and link.get("id"):
                target_trace = str(link.get("trace_id") or trace_id)
                found[(str(trace_id), str(entity_id), target_trace, str(link["id"]))] = None
    return list(found)


# -- the backbone: occurrences of nodes and edges --------------------------------------------------


def _entity_statistics(segs: pd.DataFrame, subs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Times, response time, status and status flags of every entity: segments, then subsegments.

    The one status rule of xraykit: fault = fault flag or 5xx; throttle = throttle flag or 429;
    error = error or throttle flag, or 4xx (a flag missing from a document is completed from
    the HTTP status); ok = none of them, on a completed entity (one still in progress has no
    outcome yet).
    """
    status = pd.concat([segs["http_status"], subs["http_status"]], ignore_index=True)
    status_f = status.to_numpy(dtype="float64", na_value=np.nan)
    flag = {
        f: np.concatenate([_bools(segs[f]), _bools(subs[f])])
        for f in ("fault", "error", "throttle")
    }
    fault = flag["fault"] | (status_f >= 500)
    throttle = flag["throttle"] | (status_f == 429)
    error = flag["error"] | throttle | ((status_f >= 400) & (status_f < 500))
    end = np.concatenate([_micros(segs["end"]), _micros(subs["end"])])
    return {
        "start": np.concatenate([_micros(segs["start"]), _micros(subs["start"])]),
        "end": end,
        "response_time_s": np.concatenate(
            [segs["duration_s"].to_numpy(dtype=float), subs["duration_s"].to_numpy(dtype=float)]
        ),
        "status": np.nan_to_num(status_f, nan=0).astype(np.int64),
        "no_status": np.isnan(status_f),
        "ok": ~(fault | error) & (end != _NAT),  # in progress: no outcome yet
        "error": error,
        "throttle": throttle,
        "fault": fault,
    }


def _link_edges(
    links: list[tuple[str, str, str, str]],
    keys: _Keys,
    segs: pd.DataFrame,
    inferred: np.ndarray,
    seg_first: np.ndarray,
    sub_first: np.ndarray,
    call_of_sub: np.ndarray,
    ident: tuple[pa.Array, pa.Array, pa.Array],
    node_id: pa.Array,
    stats: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``link`` edges: from the node a link points at (the SQS queue) to the linked segment.

    Returns which segments are linked consumers and the parts of the link edge rows
    (``entity``, ``source``, ``target``, ``linked_trace_id``, ``event_age_s``; empty when
    there is none). Only a real segment without a parent can be a linked consumer.
    """
    n_seg = len(segs)
    linked = np.zeros(n_seg, dtype=bool)
    link_parts: dict[str, Any] = {}
    if links:
        consumer = seg_first[keys.key["consumer"]]
        parentless = np.r_[segs["parent_id"].isna().to_numpy() & ~inferred, False]
        target = keys.key["producer"]
        as_segment = seg_first[target]
        as_parent = keys.position("seg_parent")[target]
        as_sub = sub_first[target]
        as_call = np.where(as_sub >= 0, call_of_sub[as_sub], -1)
        call_node = pc.binary_join_element_wise(*(_take(a, as_call) for a in ident), _BAR)
        source = pc.coalesce(_take(node_id, as_segment), _take(node_id, as_parent), call_node)
        ends = np.where(
            as_segment >= 0,
            stats["end"][np.maximum(as_segment, 0)],
            np.where(as_sub >= 0, stats["end"][n_seg + np.maximum(as_sub, 0)], _NAT),
        )
        keep = (
            parentless[consumer]
            & (consumer >= 0)
            & source.is_valid().to_numpy(zero_copy_only=False)
        )
        rows = np.flatnonzero(keep)
        if len(rows):  # one link edge per (consumer segment, source node)
            source_codes, _ = _codes(source.take(rows))
            pair = consumer[rows] * (len(rows) + 1) + source_codes
            rows = rows[np.sort(np.unique(pair, return_index=True)[1])]
            seg_rows = consumer[rows]
            nat = (ends[rows] == _NAT) | (stats["start"][seg_rows] == _NAT)
            age = (stats["start"][seg_rows] - ends[rows]) / 1e6
            linked[seg_rows] = True
            link_parts = {
                "entity": seg_rows,
                "source": source.take(rows),
                "target": seg_rows,
                "linked_trace_id": _strings([links[r][2] for r in rows]),
                "event_age_s": np.where(nat, np.nan, age),
            }
    return linked, link_parts


def graph_frames(traces: TraceSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the node occurrences and the edge calls of a TraceSet, computed in one pass.

    ``graph_frames(ts)`` is ``(node_segments(ts), edge_calls(ts))`` at the cost of one: use it
    when you need both (the filter expressions' ``service()`` and ``edge()`` blocks, the
    latency tables at ``level="edge"``). Nothing is cached: edit a frame of ``ts`` and call it
    again to see the change.

    Parameters
    ----------
    traces : TraceSet
        The traces; not modified.

    Returns
    -------
    tuple of DataFrame
        ``(nodes, edges)``, with the columns of :func:`node_segments` and
        :func:`edge_calls`.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import graph_frames
    >>> nodes, edges = graph_frames(xraykit.load_sample("shop"))
    >>> set(edges.target) <= set(nodes.node_id)
    True
    >>> int((edges.source == "client").sum()) == int((nodes.root & ~nodes.linked).sum())
    True
    """
    segs, subs = traces.segments, traces.subsegments
    if segs.empty:
        return _empty(NODE_SEGMENT_COLUMNS), _empty(EDGE_CALL_COLUMNS)
    n_seg, n_sub = len(segs), len(subs)
    links = _link_documents(traces)
    seg_trace, sub_trace = _strings(segs["trace_id"]), _strings(subs["trace_id"])
    seg_id, sub_id = _strings(segs["segment_id"]), _strings(subs["subsegment_id"])
    keys = _Keys(
        {
            "seg": seg_trace,
            "sub": sub_trace,
            "trace": _strings(traces.traces["trace_id"]),
            "consumer": _strings([link[0] for link in links]),
            "producer": _strings([link[2] for link in links]),
        },
        {
            "seg": ("seg", seg_id),
            "seg_parent": ("seg", _strings(segs["parent_id"])),
            "sub": ("sub", sub_id),
            "sub_owner": ("sub", _strings(subs["segment_id"])),
            "sub_parent": ("sub", _strings(subs["parent_id"])),
            "root": ("trace", _strings(traces.traces["root_segment_id"])),
            "consumer": ("consumer", _strings([link[1] for link in links])),
            "producer": ("producer", _strings([link[3] for link in links])),
        },
    )
    seg_first, sub_first = keys.position("seg"), keys.position("sub")

    stats = _entity_statistics(segs, subs)  # segments first, then subsegments

    # ---- who calls each segment: a subsegment of another segment, or a segment
    any_parent_sub = sub_first[keys.key["seg_parent"]]  # the parent subsegment, owned or not
    sub_owned = np.r_[subs["segment_id"].notna().to_numpy(), False]  # (-1 reads the pad)
    parent_sub = np.where(sub_owned[any_parent_sub], any_parent_sub, -1)
    parent_seg = seg_first[keys.key["seg_parent"]]
    owner = np.r_[seg_first[keys.key["sub_owner"]], -1]  # each subsegment's segment row

    # ---- downstream calls and the nodes they stand for
    is_call, is_sql = _is_call(subs)
    call_rows = np.flatnonzero(is_call)
    call_of_sub = np.full(n_sub + 1, -1, dtype=np.int64)
    call_of_sub[call_rows] = np.arange(len(call_rows))
    seg_account = _strings(segs["account_id"])
    owner_account = _take(seg_account, owner[call_rows])
    ident = _downstream_identity(subs, call_rows, is_sql[call_rows], owner_account)

    # ---- segment nodes: real ones by (name, origin, account); inferred ones like derived ones
    inferred = _bools(segs["inferred"])
    parent_call = np.where(inferred & (any_parent_sub >= 0), call_of_sub[any_parent_sub], -1)
    name = pc.fill_null(_strings(segs["name"]), _NO_TEXT)
    type_ = pc.fill_null(_strings(segs["origin"]), _NO_TEXT)
    account = pc.fill_null(seg_account, _NO_TEXT)
    known = parent_call >= 0
    if known.any():
        i_name, i_type, i_account = (_take(a, parent_call) for a in ident)
        no_type = _mask(pc.equal(type_, _NO_TEXT))
        same_kind = known & (_mask(pc.equal(type_, i_type)) | no_type)
        no_account = known & _mask(pc.equal(account, _NO_TEXT))
        name = pc.if_else(pa.array(same_kind), i_name, name)
        type_ = pc.if_else(pa.array(known & no_type), i_type, type_)
        account = pc.if_else(pa.array(no_account), i_account, account)

    # ---- derived inferred nodes: calls with no segment of their own
    claimed = np.zeros(n_sub + 1, dtype=bool)
    claimed[any_parent_sub[any_parent_sub >= 0]] = True
    call_parent = sub_first[keys.key["sub_parent"][call_rows]]
    free = (
        ~claimed[call_rows]
        & ~np.r_[is_call, False][call_parent]  # a call inside a call is not a node of its own
        & ~_bools(subs["orphan"])[call_rows]
        & sub_owned[call_rows]
    )
    derived = np.flatnonzero(free)  # positions among the calls
    node_name = _concat([name, ident[0].take(derived)])
    node_type = _concat([type_, ident[1].take(derived)])
    node_account = _concat([account, ident[2].take(derived)])
    node_id = pc.binary_join_element_wise(node_name, node_type, node_account, _BAR)
    node_entity = np.concatenate([np.arange(n_seg), n_seg + call_rows[derived]])

    # ---- links (SQS -> consumer), from the documents that carry them
    linked, link_parts = _link_edges(
        links, keys, segs, inferred, seg_first, sub_first, call_of_sub, ident, node_id, stats
    )

    # ---- the root: exactly the trace's root segment (traces.root_segment_id); the client
    # ---- calls it unless a link from the queue reaches it
    root = np.zeros(n_seg, dtype=bool)
    found_root = seg_first[keys.key["root"]]
    root[found_root[found_root >= 0]] = True
    client = np.flatnonzero(root & ~linked)

    nodes = pd.DataFrame(
        {
            "trace_id": _str(_concat([seg_trace, sub_trace.take(call_rows[derived])])),
            "entity_id": _str(_concat([seg_id, sub_id.take(call_rows[derived])])),
            "node_id": _str(node_id),
            "name": _str(node_name),
            "type": _str(node_type),
            "account_id": _str(node_account),
            "inferred": np.r_[inferred, np.ones(len(derived), dtype=bool)],
            "derived": np.r_[np.zeros(n_seg, dtype=bool), np.ones(len(derived), dtype=bool)],
            "root": np.r_[root, np.zeros(len(derived), dtype=bool)],
            "linked": np.r_[linked, np.zeros(len(derived), dtype=bool)],
            **_stat_columns(stats, node_entity),
        },
        copy=False,
    )

    # ---- edges: client -> root, caller subsegment -> segment, segment -> segment,
    # ---- caller -> derived node, queue -> linked consumer
    via_sub = np.flatnonzero(owner[parent_sub] >= 0)  # (-1 reads the pad)
    via_seg = np.flatnonzero(parent_seg >= 0)
    derived_owner = owner[call_rows[derived]]
    with_owner = np.flatnonzero(derived_owner >= 0)
    entity = np.concatenate(
        [
            client,
            n_seg + parent_sub[via_sub],
            parent_seg[via_seg],
            n_seg + call_rows[derived][with_owner],
        ]
    )
    source_rows = np.concatenate(
        [owner[parent_sub[via_sub]], parent_seg[via_seg], derived_owner[with_owner]]
    )
    target = np.concatenate([client, via_sub, via_seg, n_seg + with_owner])
    n_client, n_call = len(client), len(source_rows)
    source = _concat([_repeat(CLIENT, n_client), node_id.take(source_rows)])
    n_link = len(link_parts.get("entity", ()))
    if n_link:
        entity = np.concatenate([entity, link_parts["entity"]])
        target = np.concatenate([target, link_parts["target"]])
        source = _concat([source, link_parts["source"]])
    n_plain = n_client + n_call
    edge_stats = _stat_columns(stats, entity)
    if n_link:
        rt = edge_stats["response_time_s"].copy()
        rt[n_plain:] = np.nan
        edge_stats["response_time_s"] = rt
    linked_trace = _concat(
        [pa.nulls(n_plain, pa.large_string()), link_parts.get("linked_trace_id", _strings([]))]
    )
    age = np.full(n_plain + n_link, np.nan)
    if n_link:
        age[n_plain:] = link_parts["event_age_s"]
    ent_trace, ent_id = _concat([seg_trace, sub_trace]), _concat([seg_id, sub_id])
    node_entity_id = nodes["entity_id"].array
    edges = pd.DataFrame(
        {
            "trace_id": _str(ent_trace.take(entity)),
            "source": _str(source),
            "target": _str(node_id.take(target)),
            "edge_type": _str(_concat([_repeat("", n_plain), _repeat("link", n_link)])),
            "entity_id": _str(ent_id.take(entity)),
            "target_entity_id": node_entity_id.take(target),
            "linked_trace_id": _str(linked_trace),
            "start": edge_stats.pop("start"),
            "end": edge_stats.pop("end"),
            "response_time_s": edge_stats.pop("response_time_s"),
            "event_age_s": age,
            **edge_stats,
        },
        copy=False,
    )
    return nodes, edges


def _stat_columns(stats: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, Any]:
    """The statistics columns of the entities at ``rows`` (positions in ``stats``)."""
    return {
        "start": _time_array(stats["start"][rows]),
        "end": _time_array(stats["end"][rows]),
        "response_time_s": stats["response_time_s"][rows],
        "http_status": pd.arrays.IntegerArray(stats["status"][rows], stats["no_status"][rows]),
        "ok": stats["ok"][rows],
        "error": stats["error"][rows],
        "throttle": stats["throttle"][rows],
        "fault": stats["fault"][rows],
    }


def node_segments(traces: TraceSet) -> pd.DataFrame:
    """Return one row per occurrence of a service-graph node in each trace.

    Every segment (inferred ones included) is a row; so is every downstream call
    (``aws``/``remote``/SQL subsegment) that has no segment of its own: X-Ray would infer a
    node for it (``derived`` is True for those). The client is not a row.

    ``root`` marks X-Ray's "first service hit": exactly the trace's root segment
    (``traces.root_segment_id``), one row per trace. An SQS-triggered consumer whose segment
    carries ``links`` is ``linked``; when it is its trace's root (the usual case) it is
    reached through the ``link`` edge from the queue, not through a client edge.
    Use :func:`graph_frames` when you also need :func:`edge_calls`.

    Parameters
    ----------
    traces : TraceSet
        The traces; not modified.

    Returns
    -------
    DataFrame
        ``trace_id, entity_id`` (segment id, or the subsegment id of a derived node),
        ``node_id`` (``"name|type|account"``), ``name, type, account_id, inferred, derived,
        root, linked, start, end, response_time_s, http_status`` and the status flags ``ok,
        error, throttle, fault`` (flags as in the documents, completed from the HTTP status;
        they can stack; ``ok`` is none of them on a completed entity: an entity still in
        progress has ``end`` NaT and is not ``ok``).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import node_segments
    >>> ts = xraykit.load_sample("shop")
    >>> occ = node_segments(ts)
    >>> bool(occ.derived.any())  # the shop's documents come with their inferred segments
    False
    >>> int(occ.root.sum()) == len(ts)  # one entry point per trace, linked consumers included
    True
    >>> sorted(occ.loc[occ.linked, "name"].unique())  # reached by a link from the SQS queue
    ['order-worker']
    >>> sorted(occ.loc[occ.name == "shop-api/prod", "type"].unique())
    ['AWS::ApiGateway::Stage']
    """
    return graph_frames(traces)[0]


def edge_calls(traces: TraceSet) -> pd.DataFrame:
    """Return one row per call along a service-graph edge in each trace.

    The client → root edge is included (one row per trace whose root segment is not reached
    by a ``link``; see :func:`node_segments`). Edge statistics come from
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
    >>> from xraykit.graph import edge_calls, node_segments
    >>> ts = xraykit.load_sample("shop")
    >>> calls = edge_calls(ts)
    >>> occ = node_segments(ts)
    >>> int((calls.source == "client").sum()) == int((occ.root & ~occ.linked).sum())
    True
    """
    return graph_frames(traces)[1]


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
    columns = [pc.fill_null(_strings(frame[k]), _NO_TEXT) for k in keys]
    key = columns[0] if len(columns) == 1 else pc.binary_join_element_wise(*columns, _SEP)
    encoded = pc.dictionary_encode(key)
    index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    if len(index) == 0:
        return index, index
    order = np.argsort(np.asarray(encoded.dictionary.to_pylist(), dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    # dictionary entries are numbered in order of first appearance
    new = np.r_[True, index[1:] > np.maximum.accumulate(index)[:-1]]
    return rank[index], np.flatnonzero(new)[order]


def _time_bounds(frame: pd.DataFrame, codes: np.ndarray, groups: int) -> tuple[Any, Any]:
    """Earliest start and latest end per group (NaT ignored)."""
    order = np.argsort(codes, kind="stable")
    at = np.r_[0, np.cumsum(np.bincount(codes, minlength=groups))[:-1]]
    nat, top = _NAT, np.iinfo(np.int64).max
    start = _micros(frame["start"])[order]
    first = np.minimum.reduceat(np.where(start == nat, top, start), at)
    last = np.maximum.reduceat(_micros(frame["end"])[order], at)
    return _time_array(np.where(first == top, nat, first)), _time_array(last)


def _sorted_runs(codes: np.ndarray, values: np.ndarray, groups: int) -> dict[str, Any]:
    """Values sorted within groups, with each group's start and count (NaN values dropped)."""
    valid = ~np.isnan(values)
    c, v = codes[valid], values[valid]
    # = np.lexsort((v, c)): values first, then a stable sort of the few group codes (radix)
    order = np.argsort(v, kind="stable")
    small = c[order].astype(np.int16) if groups < 2**15 else c[order]
    order = order[np.argsort(small, kind="stable")]
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


def _statistics(
    frame: pd.DataFrame, codes: np.ndarray, groups: int, *, value: str = "response_time_s"
) -> dict[str, Any]:
    """The statistics columns (``_STAT_COLUMNS``) of each group of rows.

    A row still in progress (no ``end``) has neither a response time nor a status yet: it
    counts in ``in_progress_count`` only, not in the status buckets nor in ``total_count``,
    so that the mean is ``total_response_time_s / total_count`` as in X-Ray
    (``TotalResponseTime / TotalCount``).
    """
    done = _micros(frame["end"]) != _NAT
    fault = _bools(frame["fault"]) & done
    throttle = _bools(frame["throttle"]) & done
    error = (_bools(frame["error"]) | throttle) & ~fault & done
    throttle = throttle & error

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], minlength=groups).astype(np.int64)

    rt = frame[value].to_numpy(dtype=float, na_value=np.nan)
    rt = np.where(done, rt, np.nan)
    runs = _sorted_runs(codes, rt, groups)
    total_rt = np.bincount(runs["codes"], weights=runs["values"], minlength=groups)
    total = count(done)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where((runs["counts"] > 0) & (total > 0), total_rt / total, np.nan)
    start, end = _time_bounds(frame, codes, groups)
    histograms = np.empty(groups, dtype=object)
    histograms[:] = _histogram_lists(runs)
    return {
        "ok_count": count(done & ~(fault | error)),
        "error_count": count(error),
        "throttle_count": count(throttle),
        "fault_count": count(fault),
        "total_count": total,
        "in_progress_count": count(~done),
        "total_response_time_s": np.where(runs["counts"] > 0, total_rt, np.nan),
        "mean_response_time_s": mean,
        "p50_response_time_s": _quantile(runs, 0.5),
        "p90_response_time_s": _quantile(runs, 0.9),
        "p99_response_time_s": _quantile(runs, 0.99),
        "response_time_histogram": histograms,
        "start": start,
        "end": end,
    }


def _aggregate(
    frame: pd.DataFrame, keys: list[str], *, value: str = "response_time_s"
) -> pd.DataFrame:
    """Counts by status bucket and response-time statistics per key (sorted by key)."""
    codes, first = _group_codes(frame, keys)
    columns: dict[str, Any] = {k: frame[k].array.take(first) for k in keys}
    columns.update(_statistics(frame, codes, len(first), value=value))
    return pd.DataFrame(columns, copy=False)


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
        (ok + error + fault = total; throttle is part of error) of completed requests,
        ``in_progress_count`` (requests without an end yet, in no other count),
        ``total_response_time_s,
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

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import service_graph
    >>> graph = service_graph(xraykit.load_sample("shop"))
    >>> graph
    <ServiceGraph from traces: 19 nodes, 20 edges, 2025-03-04 09:00 to 09:59 UTC>
    >>> api = graph.node("shop-api/prod")
    >>> int(api.total_count.item()) == len(graph.traces.traces.query("root_service == 'shop-api/prod'"))
    True
    >>> graph.edges.loc[graph.edges.edge_type == "link", ["source", "target"]].values.tolist()
    [['order-events|AWS::SQS::Queue|123456789012', 'order-worker|AWS::Lambda|']]
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
        from xraykit.graph.render import service_map

        return service_map(self, **kwargs)

    def to_dot(self, **kwargs: Any) -> str:
        """Return the DOT source of the service map; keywords go to ``service_map``.

        >>> import xraykit
        >>> from xraykit.graph import service_graph
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
        "in_progress_count": 0,
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
    >>> from xraykit.graph import service_graph
    >>> graph = service_graph(xraykit.load_sample("shop"))
    >>> lam = graph.nodes[graph.nodes.type.str.startswith("AWS::Lambda")]
    >>> sorted(lam.type.unique())
    ['AWS::Lambda', 'AWS::Lambda::Function']
    >>> counts = graph.nodes[["ok_count", "error_count", "fault_count"]].sum(axis=1)
    >>> bool((counts == graph.nodes.total_count).all())
    True
    """
    occurrences, calls = graph_frames(traces)
    span = traces.time_span if len(traces) else None
    start, end = span if span else (None, None)
    if occurrences.empty:
        return ServiceGraph(
            _empty(NODE_COLUMNS), _empty(EDGE_COLUMNS), start, end, "traces", traces
        )

    # nodes, sorted by node id after the client
    codes, first = _group_codes(occurrences, ["node_id"])
    size = np.bincount(codes)
    columns: dict[str, Any] = {
        c: occurrences[c].array.take(first) for c in ("node_id", "name", "type", "account_id")
    }
    columns["root"] = np.bincount(codes, weights=_bools(occurrences["root"])) > 0
    columns["inferred"] = np.bincount(codes, weights=_bools(occurrences["inferred"])) == size
    columns.update(_statistics(occurrences, codes, len(first)))
    nodes = pd.DataFrame(columns, copy=False)
    if (calls["source"] == CLIENT).any():
        client = _conform(pd.DataFrame([_client_node()]), {c: NODE_COLUMNS[c] for c in nodes})
        nodes = pd.concat([client, nodes], ignore_index=True)
    nodes.insert(1, "reference_id", np.arange(len(nodes), dtype=np.int64))

    # edges, sorted by (source, target, type); links also get the received event age
    keys = ["source", "target", "edge_type"]
    codes, first = _group_codes(calls, keys)
    columns = {k: calls[k].array.take(first) for k in keys}
    columns.update(_statistics(calls, codes, len(first)))
    histograms = np.empty(len(first), dtype=object)
    histograms[:] = [[] for _ in range(len(first))]
    columns["mean_event_age_s"] = np.full(len(first), np.nan)
    columns["event_age_histogram"] = histograms
    link = (calls["edge_type"] == "link").to_numpy()
    if link.any():
        linked = np.unique(codes[link])
        ages = _statistics(
            calls.loc[link], np.searchsorted(linked, codes[link]), len(linked), value="event_age_s"
        )
        columns["mean_event_age_s"][linked] = ages["mean_response_time_s"]
        histograms[linked] = ages["response_time_histogram"]
    edges = pd.DataFrame(columns, copy=False)
    return ServiceGraph(nodes, edges, start, end, "traces", traces)


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
    return float(
        values[np.searchsorted(cumulative, q * total, side="left").clip(0, len(values) - 1)]
    )


def _response_stats(
    summary: Mapping[str, Any] | None, histogram: Any, where: str
) -> dict[str, Any]:
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
        "in_progress_count": 0,
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
    >>> from xraykit.graph import service_graph_from_response
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
        row.update(
            _response_stats(
                service.get("SummaryStatistics"), service.get("ResponseTimeHistogram"), where
            )
        )
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
            row.update(
                _response_stats(
                    edge.get("SummaryStatistics"), edge.get("ResponseTimeHistogram"), where
                )
            )
            age = _histogram_entries(edge.get("ReceivedEventAgeHistogram"), where)
            row["event_age_histogram"] = age
            n_age = sum(c for _, c in age)
            row["mean_event_age_s"] = sum(v * c for v, c in age) / n_age if n_age else math.nan
            edge_rows.append(row)

    nodes = (
        pd.DataFrame(node_rows) if node_rows else _empty(NODE_COLUMNS).drop(columns="reference_id")
    )
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


def _match_nodes(
    frame: pd.DataFrame, name: str, type_: str | None, account_id: str | None
) -> pd.Series:
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
        or ``"client"`` (every trace with a client edge: a root segment not reached by a
        ``link``).
    type, account_id : str, optional
        Narrow a name shared by several nodes (``type="AWS::Lambda::Function"``).

    Returns
    -------
    TraceSet
        The matching traces, in their original order (empty when none match).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.graph import traces_for_node
    >>> ts = xraykit.load_sample("shop")
    >>> api = traces_for_node(ts, "shop-api/prod")
    >>> 0 < len(api) <= len(ts)
    True
    """
    if name == CLIENT:
        calls = edge_calls(traces)
        ids = calls.loc[calls["source"] == CLIENT, "trace_id"]
    else:
        nodes = node_segments(traces)
        ids = nodes.loc[_match_nodes(nodes, name, type, account_id), "trace_id"]
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
    >>> from xraykit.graph import traces_for_edge
    >>> ts = xraykit.load_sample("shop")
    >>> hit = traces_for_edge(ts, "client", "shop-api/prod")
    >>> len(hit) > 0
    True
    """
    nodes, calls = graph_frames(traces)
    names = nodes.drop_duplicates("node_id").set_index("node_id")["name"]
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

"""Every frame's columns, their dtypes and where the loader finds them, declared once.

Times are tz-aware UTC; durations are float seconds (suffix ``_s``), X-Ray's own unit;
names follow X-Ray's field names in snake_case. ``str`` is pandas' Arrow-backed string
dtype (missing values are ``NaN``); ``Int64`` is a nullable integer.

Each column is a :class:`Column`: its dtype and, for the columns the loader reads from
segment documents, its ``source``: a field path into the document (``"http.request.method"``),
alternatives taken in order while empty (``"sql.url | sql.connection_string"``), string parts
joined with a space (``"aws.xray.sdk + aws.xray.sdk_version"``), or a value the reader knows
from where the entity sits (``"@depth"``). Both readers (the Python one in
:mod:`xraykit.io.reader` and the C scanner) build their columns from these declarations, and
:data:`ENTITY_FIELDS` says which JSON type every field of a document must have.

Examples
--------
>>> from xraykit.schema import COLUMNS, SCHEMAS, empty_frame
>>> list(empty_frame("problems").columns)
['source', 'location', 'reason']
>>> SCHEMAS["traces"]["duration_s"]
'float64'
>>> COLUMNS["subsegments"]["sql_url"].source
'sql.url | sql.connection_string'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.exceptions import ArgumentError

__all__ = [
    "COLUMNS",
    "ENTITY_FIELDS",
    "EXCEPTION_FIELDS",
    "FRAMES",
    "SCHEMAS",
    "Column",
    "arrow_strings",
    "conform",
    "empty_frame",
    "isin",
]

TIME = "datetime64[us, UTC]"  # X-Ray records microseconds


class Column(NamedTuple):
    """A frame column: its dtype and, for columns read from documents, where it comes from."""

    dtype: str
    #: field path(s) in the document, or ``@name`` for what the reader knows from the
    #: entity's place; None for a column computed once every row is read
    source: str | None = None
    #: the value is upper-cased (HTTP methods: the SDK's requests patch sends lower case)
    upper: bool = False


# -- the segment document -----------------------------------------------------------------------

#: JSON types a field may have; ``"integer"`` is a whole number that fits 64 bits.
STRING, NUMBER, INTEGER, BOOLEAN, OBJECT, ARRAY = (
    "string",
    "number",
    "integer",
    "boolean",
    "object",
    "array",
)

#: An exception in a ``cause`` (xray-facts §1.8).
EXCEPTION_FIELDS: dict[str, Any] = {
    "id": STRING,
    "message": STRING,
    "type": STRING,
    "remote": BOOLEAN,
    "truncated": INTEGER,
    "skipped": INTEGER,
    "cause": STRING,
    "stack": [{"path": STRING, "line": INTEGER, "label": STRING}],
}

#: The fields of a segment or subsegment document and the JSON type each must have: a dict is
#: an object with those fields, a one-item list an array of that item, a tuple a choice of
#: types. From the segment-document schema v1.0.0 and X-Ray's documentation (xray-facts §1).
#: ``null`` counts as absent; fields not listed are kept in the document but not checked.
ENTITY_FIELDS: dict[str, Any] = {
    "id": STRING,
    "name": STRING,
    "trace_id": STRING,
    "start_time": NUMBER,
    "end_time": NUMBER,
    "in_progress": BOOLEAN,
    "parent_id": STRING,
    "type": STRING,
    "origin": STRING,
    "user": STRING,
    "resource_arn": STRING,
    "namespace": STRING,
    "inferred": BOOLEAN,
    "traced": BOOLEAN,
    "fault": BOOLEAN,
    "error": BOOLEAN,
    "throttle": BOOLEAN,
    "precursor_ids": [STRING],
    "links": [{"trace_id": STRING, "id": STRING, "attributes": OBJECT}],
    "service": {"version": STRING},
    "http": {
        "request": {
            "method": STRING,
            "url": STRING,
            "user_agent": STRING,
            "client_ip": STRING,
            "x_forwarded_for": BOOLEAN,
            "traced": BOOLEAN,
        },
        "response": {"status": INTEGER, "content_length": NUMBER},
    },
    "aws": {
        "account_id": STRING,
        "operation": STRING,
        "region": STRING,
        "request_id": STRING,
        "queue_url": STRING,
        "table_name": STRING,
        "function_name": STRING,
        "topic_arn": STRING,
        "retries": NUMBER,
        "ec2": {
            "instance_id": STRING,
            "availability_zone": STRING,
            "instance_size": STRING,
            "ami_id": STRING,
        },
        "ecs": {"container": STRING, "container_id": STRING, "container_arn": STRING},
        "eks": {"pod": STRING, "cluster_name": STRING, "container_id": STRING},
        "elastic_beanstalk": {
            "environment_name": STRING,
            "version_label": STRING,
            "deployment_id": NUMBER,
        },
        "xray": {"sdk": STRING, "sdk_version": STRING, "auto_instrumentation": BOOLEAN},
        "cloudwatch_logs": [{"log_group": STRING, "arn": STRING}],
    },
    "sql": {
        "url": STRING,
        "connection_string": STRING,
        "sanitized_query": STRING,
        "database_type": STRING,
        "database_version": STRING,
        "driver_version": STRING,
        "user": STRING,
        "preparation": STRING,
    },
    # an exception id recorded elsewhere in the trace, or the exceptions themselves
    "cause": (
        STRING,
        {"working_directory": STRING, "paths": [STRING], "exceptions": [EXCEPTION_FIELDS]},
    ),
    # read by rules of their own: one row per annotation (string, number or boolean values),
    # per metadata key (any JSON), per subsegment (entities, at any depth)
    "annotations": OBJECT,
    "metadata": OBJECT,
    "subsegments": ARRAY,
}

# -- the frames ------------------------------------------------------------------------------------

C = Column

#: One row per trace; semantics follow GetTraceSummaries (xray-facts §2.3).
TRACES = {
    "trace_id": C("str"),
    "start": C(TIME),  # earliest start of any segment
    "end": C(TIME),  # latest end of any segment or subsegment
    "duration_s": C("float64"),  # first start to last end, async work included
    "response_time_s": C("float64"),  # the root segment's own duration
    "root_segment_id": C("str"),
    "root_service": C("str"),
    "root_origin": C("str"),
    "http_method": C("str"),  # the root segment's request
    "http_url": C("str"),
    "http_status": C("Int64"),
    "client_ip": C("str"),
    "user_agent": C("str"),
    "has_fault": C("bool"),  # root segment 5xx / fault flag
    "has_error": C("bool"),  # root segment 4xx / error flag
    "has_throttle": C("bool"),  # any entity in the trace throttled (429)
    "is_partial": C("bool"),  # some entity is still in progress
    "user": C("str"),  # root's user, else the first user seen in the trace
    "segment_count": C("int64"),  # segments, inferred ones included
    "subsegment_count": C("int64"),
    "service_count": C("int64"),  # distinct (name, origin) among segments
}

#: One row per segment document, inferred segments included.
SEGMENTS = {
    "trace_id": C("str", "trace_id"),
    "segment_id": C("str", "id"),
    "parent_id": C("str", "parent_id"),  # the caller's subsegment (from the tracing header)
    "name": C("str", "name"),
    "origin": C("str", "origin"),  # AWS::EC2::Instance, AWS::Lambda::Function, ...
    "inferred": C("bool", "inferred"),
    "start": C(TIME, "start_time"),
    "end": C(TIME, "end_time"),  # NaT while in progress
    "duration_s": C("float64"),  # end - start, from the microsecond times
    "in_progress": C("bool", "@in_progress"),  # no end_time, or in_progress: true
    "http_method": C("str", "http.request.method", upper=True),
    "http_url": C("str", "http.request.url"),
    "http_status": C("Int64", "http.response.status"),
    "http_user_agent": C("str", "http.request.user_agent"),
    "http_client_ip": C("str", "http.request.client_ip"),
    "fault": C("bool", "fault"),
    "error": C("bool", "error"),
    "throttle": C("bool", "throttle"),
    "user": C("str", "user"),
    "account_id": C("str", "aws.account_id"),
    "resource_arn": C("str", "resource_arn"),
    "availability_zone": C("str", "aws.ec2.availability_zone"),
    "instance_id": C("str", "aws.ec2.instance_id"),
    "sdk": C("str", "aws.xray.sdk + aws.xray.sdk_version"),  # "X-Ray for Python 2.15.0"
    "service_version": C("str", "service.version"),
    "cause_id": C("str", "cause"),  # a bare-string cause: an exception recorded elsewhere
}

#: One row per subsegment at any depth, embedded or streamed on its own.
SUBSEGMENTS = {
    "trace_id": C("str", "@trace_id"),
    "segment_id": C("str", "@segment_id"),  # the owning segment (NaN for an orphan)
    "subsegment_id": C("str", "id"),
    "parent_id": C("str", "@parent_id"),  # the enclosing segment or subsegment
    "depth": C("Int64", "@depth"),  # 1 directly under the segment (NA for an orphan)
    "name": C("str", "name"),
    "namespace": C("str", "namespace"),  # aws, remote, local (SDK) or missing
    "start": C(TIME, "start_time"),
    "end": C(TIME, "end_time"),
    "duration_s": C("float64"),
    "in_progress": C("bool", "@in_progress"),
    "http_method": C("str", "http.request.method", upper=True),
    "http_url": C("str", "http.request.url"),
    "http_status": C("Int64", "http.response.status"),
    "fault": C("bool", "fault"),
    "error": C("bool", "error"),
    "throttle": C("bool", "throttle"),
    # the callee sends its own segment
    "traced": C("bool", "traced | http.request.traced"),
    "aws_operation": C("str", "aws.operation"),
    "aws_region": C("str", "aws.region"),
    "aws_account_id": C("str", "aws.account_id"),
    "aws_request_id": C("str", "aws.request_id"),
    "table_name": C("str", "aws.table_name"),
    "queue_url": C("str", "aws.queue_url"),
    "function_name": C("str", "aws.function_name"),
    "topic_arn": C("str", "aws.topic_arn"),
    "sql_url": C("str", "sql.url | sql.connection_string"),
    "sql_database_type": C("str", "sql.database_type"),
    "sql_sanitized_query": C("str", "sql.sanitized_query"),
    "sql_user": C("str", "sql.user"),
    "streamed": C("bool", "@streamed"),  # arrived as its own document (type "subsegment")
    "orphan": C("bool"),  # streamed, and its parent never arrived
    "cause_id": C("str", "cause"),
}

#: Long format: one row per annotation on any entity; ``value`` keeps its JSON type.
ANNOTATIONS = {
    "trace_id": C("str", "@trace_id"),
    "entity_id": C("str", "@entity_id"),
    "key": C("str", "@key"),
    "value": C("object", "@value"),  # str, float/int or bool, as sent
    "value_type": C("str", "@value_type"),  # "string", "number" or "boolean"
}

#: Long format: one row per metadata key; ``value`` is the JSON value (dict, list, scalar).
METADATA = {
    "trace_id": C("str", "@trace_id"),
    "entity_id": C("str", "@entity_id"),
    "namespace": C("str", "@namespace"),
    "key": C("str", "@key"),  # missing when the namespace holds a value of its own
    "value": C("object", "@value"),
}

#: One row per exception in any ``cause`` object (paths are within the exception).
EXCEPTIONS = {
    "trace_id": C("str", "@trace_id"),
    "entity_id": C("str", "@entity_id"),
    "exception_id": C("str", "id"),
    "type": C("str", "type"),
    "message": C("str", "message"),
    "remote": C("bool", "remote"),
    "cause": C("str", "cause"),  # id of the exception that caused this one
    "truncated": C("Int64", "truncated"),
    "skipped": C("Int64", "skipped"),
    "stack_depth": C("int64", "@stack_depth"),  # frames in its stack
    "top_frame": C("str", "@top_frame"),  # "path:line label" of the first stack frame
}

#: What could not be read.
PROBLEMS = {
    "source": C("str"),  # file name, "<documents>", "BatchGetTraces", ...
    "location": C("str"),  # file:line, file[index] or an entity id
    "reason": C("str"),
}

#: The documents as received, for TraceSet.document(); not a public frame. A TraceSet keeps
#: them compressed (:class:`xraykit.io.docstore.DocumentStore`); this is the frame of
#: ``TraceSet.raw_documents``.
DOCUMENTS = {
    "trace_id": C("str", "@trace_id"),
    "entity_id": C("str", "@entity_id"),  # a segment id, or a streamed subsegment's id
    "in_progress": C("bool", "@in_progress"),
    "document": C("str", "@text"),  # JSON text
}

#: Every frame's columns.
COLUMNS: dict[str, dict[str, Column]] = {
    "traces": TRACES,
    "segments": SEGMENTS,
    "subsegments": SUBSEGMENTS,
    "annotations": ANNOTATIONS,
    "metadata": METADATA,
    "exceptions": EXCEPTIONS,
    "problems": PROBLEMS,
    "documents": DOCUMENTS,
}

#: Every frame's column dtypes.
SCHEMAS: dict[str, dict[str, str]] = {
    name: {column: spec.dtype for column, spec in columns.items()}
    for name, columns in COLUMNS.items()
}

#: The public frames, in display order.
FRAMES = ("traces", "segments", "subsegments", "annotations", "metadata", "exceptions", "problems")


def empty_frame(name: str) -> pd.DataFrame:
    """Return an empty frame with every declared column of ``name`` and its dtype."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SCHEMAS[name].items()})


def conform(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Return ``frame`` with exactly the declared columns of ``name``, in order, cast.

    Missing columns are added empty (False for flags, 0 for counts); the argument is not
    modified.

    Raises
    ------
    ArgumentError
        When a column cannot be cast to its declared dtype.

    >>> conform(pd.DataFrame({"trace_id": ["1-5f84c7a1-6c7a8d2e9f0a1b2c3d4e5f60"]}), "traces").dtypes["segment_count"]
    dtype('int64')
    """
    schema = SCHEMAS[name]
    out = {}
    n = len(frame)
    for col, dtype in schema.items():
        if col not in frame:
            fill: Any = False if dtype == "bool" else 0 if dtype == "int64" else None
            out[col] = pd.Series([fill] * n, dtype=dtype, index=frame.index)
            continue
        column = frame[col]
        if str(column.dtype) == dtype:
            out[col] = column
            continue
        try:
            out[col] = column.astype(dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ArgumentError(
                f"Column {col!r} of the {name} frame must hold {dtype} values, but "
                f"{column.dtype} values such as {column.dropna().iloc[:1].tolist()!r} were "
                f"passed ({exc}). See xraykit.schema.SCHEMAS[{name!r}] for every column."
            ) from exc
    # copy=False: a dict of columns is copied by default, which doubled the peak memory of a load
    return pd.DataFrame(out, index=frame.index, copy=False).reset_index(drop=True)


def isin(values: pd.Series | pd.Index, candidates: Iterable[Any]) -> np.ndarray:
    """Return a boolean array: is each value among ``candidates`` (missing values: False)?

    pandas' own ``isin`` on Arrow-backed string columns walks the candidates in Python
    (seconds for a few hundred thousand ids); Arrow's hash kernel does it in milliseconds.

    >>> isin(pd.Series(["a", "b", None], dtype="str"), ["b", "c"]).tolist()
    [False, True, False]
    """
    left = arrow_strings(values)
    if isinstance(candidates, pd.Series | pd.Index):
        right = arrow_strings(candidates)
    else:
        right = pa.array([c for c in candidates if isinstance(c, str)], pa.large_string())
    hit = pc.fill_null(pc.is_in(left, value_set=right), False)
    return hit.to_numpy(zero_copy_only=False)


def arrow_strings(values: pd.Series | pd.Index) -> pa.Array | pa.ChunkedArray:
    """The values as Arrow large strings, without a copy when they are Arrow-backed already
    (anything that is not a string becomes null).

    >>> arrow_strings(pd.Series(["a", None], dtype="str")).to_pylist()
    ['a', None]
    """
    try:
        arrow = pa.array(values.array if isinstance(values, pd.Series | pd.Index) else values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        arrow = pa.array(np.asarray(values, dtype=object), from_pandas=True)
    if not (pa.types.is_large_string(arrow.type) or pa.types.is_string(arrow.type)):
        arrow = pa.array(
            [v if isinstance(v, str) else None for v in np.asarray(values, dtype=object)],
            pa.large_string(),
        )
    return arrow.cast(pa.large_string())

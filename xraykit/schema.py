"""Column names and dtypes of every TraceSet frame, declared once.

Times are tz-aware UTC; durations are float seconds (suffix ``_s``), X-Ray's own unit;
names follow X-Ray's field names in snake_case. ``str`` is pandas' Arrow-backed string
dtype (missing values are ``NaN``); ``Int64`` is a nullable integer.

Examples
--------
>>> from xraykit.schema import SCHEMAS, empty_frame
>>> list(empty_frame("problems").columns)
['source', 'location', 'reason']
>>> SCHEMAS["traces"]["duration_s"]
'float64'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FRAMES", "SCHEMAS", "arrow_strings", "conform", "empty_frame", "isin"]

TIME = "datetime64[us, UTC]"  # X-Ray records microseconds

#: One row per trace; semantics follow GetTraceSummaries (xray-facts §2.3).
TRACES = {
    "trace_id": "str",
    "start": TIME,  # earliest start of any segment
    "end": TIME,  # latest end of any segment or subsegment
    "duration_s": "float64",  # first start to last end, async work included
    "response_time_s": "float64",  # the root segment's own duration
    "root_segment_id": "str",
    "root_service": "str",
    "root_origin": "str",
    "http_method": "str",  # the root segment's request
    "http_url": "str",
    "http_status": "Int64",
    "client_ip": "str",
    "user_agent": "str",
    "has_fault": "bool",  # root segment 5xx / fault flag
    "has_error": "bool",  # root segment 4xx / error flag
    "has_throttle": "bool",  # any entity in the trace throttled (429)
    "is_partial": "bool",  # some entity is still in progress
    "user": "str",  # root's user, else the first user seen in the trace
    "segment_count": "int64",  # segments, inferred ones included
    "subsegment_count": "int64",
    "service_count": "int64",  # distinct (name, origin) among segments
}

#: One row per segment document, inferred segments included.
SEGMENTS = {
    "trace_id": "str",
    "segment_id": "str",
    "parent_id": "str",  # the caller's subsegment (from the tracing header), if any
    "name": "str",
    "origin": "str",  # AWS::EC2::Instance, AWS::Lambda::Function, ...
    "inferred": "bool",
    "start": TIME,
    "end": TIME,  # NaT while in progress
    "duration_s": "float64",
    "in_progress": "bool",
    "http_method": "str",  # upper case
    "http_url": "str",
    "http_status": "Int64",
    "http_user_agent": "str",
    "http_client_ip": "str",
    "fault": "bool",
    "error": "bool",
    "throttle": "bool",
    "user": "str",
    "account_id": "str",  # aws.account_id
    "resource_arn": "str",
    "availability_zone": "str",  # aws.ec2.availability_zone
    "instance_id": "str",  # aws.ec2.instance_id
    "sdk": "str",  # aws.xray.sdk and sdk_version, e.g. "X-Ray for Python 2.15.0"
    "service_version": "str",  # service.version
    "cause_id": "str",  # a bare-string cause: the id of an exception recorded elsewhere
}

#: One row per subsegment at any depth, embedded or streamed on its own.
SUBSEGMENTS = {
    "trace_id": "str",
    "segment_id": "str",  # the owning segment (NaN for an orphan)
    "subsegment_id": "str",
    "parent_id": "str",  # the enclosing segment or subsegment
    "depth": "Int64",  # 1 directly under the segment (NA for an orphan)
    "name": "str",
    "namespace": "str",  # aws, remote, local (SDK) or missing
    "start": TIME,
    "end": TIME,
    "duration_s": "float64",
    "in_progress": "bool",
    "http_method": "str",  # upper case (the SDK's requests patch sends lower case)
    "http_url": "str",
    "http_status": "Int64",
    "fault": "bool",
    "error": "bool",
    "throttle": "bool",
    "traced": "bool",  # http.request.traced or traced: the callee sends its own segment
    "aws_operation": "str",
    "aws_region": "str",
    "aws_account_id": "str",
    "aws_request_id": "str",
    "table_name": "str",
    "queue_url": "str",
    "function_name": "str",
    "topic_arn": "str",
    "sql_url": "str",
    "sql_database_type": "str",
    "sql_sanitized_query": "str",
    "sql_user": "str",
    "streamed": "bool",  # arrived as its own document (type "subsegment")
    "orphan": "bool",  # streamed, and its parent never arrived
    "cause_id": "str",
}

#: Long format: one row per annotation on any entity; ``value`` keeps its JSON type.
ANNOTATIONS = {
    "trace_id": "str",
    "entity_id": "str",
    "key": "str",
    "value": "object",  # str, float/int or bool, as sent
    "value_type": "str",  # "string", "number" or "boolean"
}

#: Long format: one row per metadata key; ``value`` is the JSON value (dict, list, scalar).
METADATA = {
    "trace_id": "str",
    "entity_id": "str",
    "namespace": "str",
    "key": "str",
    "value": "object",
}

#: One row per exception in any ``cause`` object.
EXCEPTIONS = {
    "trace_id": "str",
    "entity_id": "str",
    "exception_id": "str",
    "type": "str",
    "message": "str",
    "remote": "bool",
    "cause": "str",  # id of the exception that caused this one
    "truncated": "Int64",
    "skipped": "Int64",
    "stack_depth": "int64",
    "top_frame": "str",  # "path:line label" of the first stack frame
}

#: What could not be read.
PROBLEMS = {
    "source": "str",  # file name, "<documents>", "BatchGetTraces", ...
    "location": "str",  # file:line, file[index] or an entity id
    "reason": "str",
}

#: The documents as received, for TraceSet.document(); not a public frame. A TraceSet keeps
#: them compressed (:class:`xraykit.docstore.DocumentStore`); this is the frame of
#: ``TraceSet.raw_documents`` and of the ``documents`` member of a saved TraceSet.
DOCUMENTS = {
    "trace_id": "str",
    "entity_id": "str",  # a segment id, or a streamed subsegment's id
    "in_progress": "bool",
    "document": "str",  # JSON text
}

SCHEMAS: dict[str, dict[str, str]] = {
    "traces": TRACES,
    "segments": SEGMENTS,
    "subsegments": SUBSEGMENTS,
    "annotations": ANNOTATIONS,
    "metadata": METADATA,
    "exceptions": EXCEPTIONS,
    "problems": PROBLEMS,
    "documents": DOCUMENTS,
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
    ValueError
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
            raise ValueError(
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

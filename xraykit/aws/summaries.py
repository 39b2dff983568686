"""Trace summaries (``GetTraceSummaries``) as a typed frame, one row per trace, and their
fault / error / response-time root causes unfolded like ``xraykit.analysis.root_cause_paths``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd

from xraykit.analysis.root_cause import ROOT_CAUSE_KINDS, RootCauseKind
from xraykit.exceptions import ArgumentError

__all__ = ["summaries_frame", "summary_root_cause_paths"]


_SUMMARY_COLUMNS: dict[str, str] = {
    "trace_id": "str",
    "start": "datetime64[us, UTC]",
    "duration_s": "float64",
    "response_time_s": "float64",
    "has_fault": "bool",
    "has_error": "bool",
    "has_throttle": "bool",
    "is_partial": "bool",
    "http_method": "str",
    "http_url": "str",
    "http_status": "Int64",
    "user_agent": "str",
    "client_ip": "str",
    "users": "str",
    "entry_point_name": "str",
    "entry_point_type": "str",
    "entry_point_account_id": "str",
    "service_names": "str",
    "account_ids": "str",
    "service_count": "int64",
    "resource_arns": "str",
    "instance_ids": "str",
    "availability_zones": "str",
    "fault_root_cause_count": "int64",
    "fault_root_cause_service": "str",
    "fault_root_cause_entity": "str",
    "fault_root_cause_exception": "str",
    "fault_root_cause_message": "str",
    "error_root_cause_count": "int64",
    "error_root_cause_service": "str",
    "error_root_cause_entity": "str",
    "error_root_cause_exception": "str",
    "error_root_cause_message": "str",
    "response_time_root_cause_count": "int64",
    "response_time_root_cause_service": "str",
    "response_time_root_cause_entity": "str",
    "response_time_root_cause_coverage": "float64",
    "fault_root_causes": "str",
    "error_root_causes": "str",
    "response_time_root_causes": "str",
    "revision": "Int64",
    "matched_event_time": "datetime64[us, UTC]",
}

_ROOT_CAUSE_FIELDS = {
    "fault": "FaultRootCauses",
    "error": "ErrorRootCauses",
    "response_time": "ResponseTimeRootCauses",
}


def _trace_id_time(trace_id: str) -> float | None:
    parts = trace_id.split("-")
    if len(parts) == 3 and len(parts[1]) == 8:
        try:
            return float(int(parts[1], 16))
        except ValueError:
            return None
    return None


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _joined(values: Iterable[Any]) -> str | None:
    seen = sorted({str(v) for v in values if v not in (None, "")})
    return ",".join(seen) if seen else None


def _deepest(causes: list[dict[str, Any]]) -> tuple[str | None, str | None, dict[str, Any]]:
    """Service name, entity path and deepest entity of a trace's first root cause."""
    for cause in causes:
        for service in reversed(cause.get("Services") or []):
            path = service.get("EntityPath") or []
            if path:
                names = " > ".join(str(e.get("Name", "")) for e in path)
                return service.get("Name"), names, path[-1]
    return None, None, {}


def _summary_row(s: dict[str, Any]) -> dict[str, Any]:
    trace_id = str(s.get("Id", ""))
    http = s.get("Http") or {}
    services = s.get("ServiceIds") or []
    entry = s.get("EntryPoint") or {}
    start = _epoch(s.get("StartTime"))
    row: dict[str, Any] = {
        "trace_id": trace_id,
        "start": start if start is not None else _trace_id_time(trace_id),
        "duration_s": s.get("Duration"),
        "response_time_s": s.get("ResponseTime"),
        "has_fault": bool(s.get("HasFault", False)),
        "has_error": bool(s.get("HasError", False)),
        "has_throttle": bool(s.get("HasThrottle", False)),
        "is_partial": bool(s.get("IsPartial", False)),
        "http_method": (http.get("HttpMethod") or None),
        "http_url": http.get("HttpURL"),
        "http_status": http.get("HttpStatus"),
        "user_agent": http.get("UserAgent"),
        "client_ip": http.get("ClientIp"),
        "users": _joined(u.get("UserName") for u in s.get("Users") or []),
        "entry_point_name": entry.get("Name"),
        "entry_point_type": entry.get("Type"),
        "entry_point_account_id": entry.get("AccountId"),
        "service_names": _joined(x.get("Name") for x in services),
        "account_ids": _joined(x.get("AccountId") for x in services),
        "service_count": len(
            {(x.get("Name"), x.get("Type"), x.get("AccountId")) for x in services}
        ),
        "resource_arns": _joined(x.get("ARN") for x in s.get("ResourceARNs") or []),
        "instance_ids": _joined(x.get("Id") for x in s.get("InstanceIds") or []),
        "availability_zones": _joined(x.get("Name") for x in s.get("AvailabilityZones") or []),
        "revision": s.get("Revision"),
        "matched_event_time": _epoch(s.get("MatchedEventTime")),
    }
    if isinstance(row["http_method"], str):
        row["http_method"] = row["http_method"].upper()
    for prefix, field in _ROOT_CAUSE_FIELDS.items():
        causes = s.get(field) or []
        service, path, entity = _deepest(causes)
        row[f"{prefix}_root_cause_count"] = len(causes)
        row[f"{prefix}_root_cause_service"] = service
        row[f"{prefix}_root_cause_entity"] = path
        row[f"{prefix}_root_causes"] = json.dumps(causes, default=str) if causes else None
        if prefix == "response_time":
            row[f"{prefix}_root_cause_coverage"] = entity.get("Coverage")
        else:
            first = (entity.get("Exceptions") or [{}])[0]
            row[f"{prefix}_root_cause_exception"] = first.get("Name")
            row[f"{prefix}_root_cause_message"] = first.get("Message")
    for key, values in (s.get("Annotations") or {}).items():
        value: Any = None
        for item in values or []:
            annotation = item.get("AnnotationValue") or {}
            for kind in ("StringValue", "NumberValue", "BooleanValue"):
                if kind in annotation:
                    value = annotation[kind]
                    break
            if value is not None:
                break
        row[f"annotation.{key}"] = value
    return row


def summaries_frame(summaries: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Turn ``TraceSummary`` records (as boto3 returns them) into one row per trace.

    Columns (snake_case of the ``TraceSummary`` fields; lists joined with commas, sorted):

    ``trace_id``, ``start`` (``StartTime``, else the time in the trace id; UTC),
    ``duration_s``, ``response_time_s``, ``has_fault``, ``has_error``, ``has_throttle``,
    ``is_partial``; the root request ``http_method``, ``http_url``, ``http_status`` (Int64),
    ``user_agent``, ``client_ip``; ``users``; ``entry_point_name`` / ``_type`` /
    ``_account_id``; ``service_names``, ``account_ids``, ``service_count`` (from
    ``ServiceIds``); ``resource_arns``, ``instance_ids``, ``availability_zones``;

    root causes, flattened to the first cause's deepest entity, for ``fault``, ``error`` and
    ``response_time``: ``<kind>_root_cause_count``, ``<kind>_root_cause_service``,
    ``<kind>_root_cause_entity`` (the entity path joined with ``" > "``), then
    ``<kind>_root_cause_exception`` / ``_message`` (fault, error) or
    ``response_time_root_cause_coverage``; the complete causes as JSON text in
    ``<kind>_root_causes`` (see :func:`summary_root_cause_paths`);

    ``revision``, ``matched_event_time``; and one ``annotation.<key>`` column per annotation
    key, holding its (first) value as X-Ray typed it: float, bool or str.

    Examples
    --------
    >>> frame = summaries_frame([{
    ...     "Id": "1-66310000-0123456789abcdef01234567", "Duration": 0.25, "ResponseTime": 0.2,
    ...     "HasFault": True, "Http": {"HttpMethod": "get", "HttpStatus": 503},
    ...     "Annotations": {"tier": [{"AnnotationValue": {"StringValue": "gold"}}]},
    ... }])
    >>> frame[["http_method", "http_status", "has_fault", "annotation.tier"]]
      http_method  http_status  has_fault annotation.tier
    0         GET          503       True            gold
    >>> str(frame.loc[0, "start"])
    '2024-04-30 14:28:16+00:00'
    """
    rows = [_summary_row(s) for s in summaries]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(_SUMMARY_COLUMNS))
    out: dict[str, pd.Series] = {}
    n = len(frame)
    for column, dtype in _SUMMARY_COLUMNS.items():
        values = frame[column] if column in frame else pd.Series([None] * n, dtype=object)
        if dtype.startswith("datetime64"):
            micros = (pd.to_numeric(values, errors="coerce").astype("float64") * 1e6).round()
            out[column] = pd.to_datetime(micros, unit="us", utc=True).astype(dtype)
        elif dtype in ("float64",):
            out[column] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif dtype in ("int64", "Int64"):
            out[column] = pd.to_numeric(values, errors="coerce").astype(dtype)
        elif dtype == "bool":
            out[column] = values.fillna(False).astype(bool)
        else:
            out[column] = values.astype("str")
    for column in sorted(c for c in frame.columns if c.startswith("annotation.")):
        out[column] = _typed(frame[column])
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def _typed(values: pd.Series) -> pd.Series:
    present = values.dropna()
    if len(present) and all(isinstance(v, bool) for v in present):
        return values.astype("boolean")
    if len(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    ):
        return values.astype("float64")
    if all(isinstance(v, str) for v in present):
        return values.astype("str")
    return values.astype(object)


# the column prefix of each root-cause kind (xraykit.analysis.ROOT_CAUSE_KINDS)
_KIND_COLUMN = {"fault": "fault", "error": "error", "responsetime": "response_time"}


def summary_root_cause_paths(data: pd.DataFrame, kind: RootCauseKind = "fault") -> pd.DataFrame:
    """Unfold the root causes of a summaries frame, one row per entity on each path.

    The columns match ``xraykit.analysis.root_cause_paths``, so what AWS reported and what
    xraykit computes from the documents line up row for row.

    Parameters
    ----------
    data : DataFrame
        A frame from :func:`summaries_frame` (``ts.summaries``); it is not modified.
    kind : {"fault", "error", "responsetime"}

    Returns
    -------
    DataFrame
        ``trace_id, cause_index, service_name, service_type, account_id, inferred,
        entity_index, entity_count, entity_name, entity_id, remote, coverage,
        exception_name, exception_message, service_index, client_impacting``: the entity
        paths of a cause's services in order, numbered across the whole cause.
        ``entity_id`` is NaN (summaries do not carry entity ids).

    Examples
    --------
    >>> causes = [{"Services": [{"Name": "api", "Type": "AWS::Lambda::Function",
    ...     "EntityPath": [{"Name": "api"}, {"Name": "DynamoDB", "Remote": True,
    ...                     "Exceptions": [{"Name": "Throttled", "Message": "slow down"}]}]}]}]
    >>> frame = summaries_frame([{"Id": "1-66310000-0123456789abcdef01234567",
    ...                            "FaultRootCauses": causes}])
    >>> summary_root_cause_paths(frame, "fault")[["entity_name", "remote", "exception_name"]]
      entity_name  remote exception_name
    0         api   False            NaN
    1    DynamoDB    True      Throttled
    """
    if kind not in ROOT_CAUSE_KINDS:
        raise ArgumentError(
            f"`kind` must be one of {list(ROOT_CAUSE_KINDS)}, but {kind!r} was passed."
        )
    column = f"{_KIND_COLUMN[kind]}_root_causes"
    rows: list[dict[str, Any]] = []
    present = data.loc[data[column].notna(), ["trace_id", column]]
    for trace_id, text in zip(present["trace_id"], present[column], strict=True):
        for cause_index, cause in enumerate(json.loads(text)):
            entities = [
                (service_index, service, entity)
                for service_index, service in enumerate(cause.get("Services") or [])
                for entity in service.get("EntityPath") or []
            ]
            for entity_index, (service_index, service, entity) in enumerate(entities):
                first = (entity.get("Exceptions") or [{}])[0]
                rows.append(
                    {
                        "trace_id": trace_id,
                        "cause_index": cause_index,
                        "service_name": service.get("Name"),
                        "service_type": service.get("Type"),
                        "account_id": service.get("AccountId"),
                        "inferred": bool(service.get("Inferred", False)),
                        "entity_index": entity_index,
                        "entity_count": len(entities),
                        "entity_name": entity.get("Name"),
                        "entity_id": None,
                        "remote": bool(entity.get("Remote", False)),
                        "coverage": entity.get("Coverage"),
                        "exception_name": first.get("Name"),
                        "exception_message": first.get("Message"),
                        "service_index": service_index,
                        "client_impacting": bool(cause.get("ClientImpacting", False)),
                    }
                )
    dtypes = {
        "trace_id": "str", "cause_index": "int64", "service_name": "str", "service_type": "str",
        "account_id": "str", "inferred": "bool", "entity_index": "int64",
        "entity_count": "int64", "entity_name": "str", "entity_id": "str", "remote": "bool",
        "coverage": "float64", "exception_name": "str", "exception_message": "str",
        "service_index": "int64", "client_impacting": "bool",
    }  # fmt: skip
    return pd.DataFrame(rows, columns=list(dtypes)).astype(dtypes)

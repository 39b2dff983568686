"""``TraceSummary`` records, as ``GetTraceSummaries`` returns them, computed from a TraceSet.

One summary per trace, in X-Ray's JSON shape (times as epoch seconds): flags, the root
request's HTTP fields, annotations and users with the services that recorded them, the
services, the entry point, and the fault / error / response-time root causes of
:func:`xraykit.analysis.root_cause.root_cause_paths_by_kind` (one entity tree for the
three kinds). ``xraykit.aws.summaries.summaries_frame`` reads them back into the columns
of ``ts.traces``.

Examples
--------
>>> import xraykit
>>> from xraykit.local.summaries import trace_summaries
>>> ts = xraykit.load_sample("cross-account")
>>> summary = trace_summaries(ts.select(ts.traces.trace_id[:1]))[0]
>>> summary["Id"] == ts.traces.trace_id[0], summary["EntryPoint"]["Name"]
(True, 'storefront')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xraykit.analysis.root_cause import ROOT_CAUSE_KINDS, root_cause_paths_by_kind
from xraykit.arguments import check_traceset
from xraykit.exceptions import ArgumentTypeError

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["trace_summaries"]

#: TraceSummary member holding each root-cause kind.
_CAUSE_FIELDS = {
    "fault": "FaultRootCauses",
    "error": "ErrorRootCauses",
    "responsetime": "ResponseTimeRootCauses",
}
_VALUE_KEYS = {"string": "StringValue", "number": "NumberValue", "boolean": "BooleanValue"}


def _text(value: Any) -> str | None:
    """A present, non-empty string, else None (NaN, None and "" are absent)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value)
    return text or None


def _epoch(values: pd.Series) -> np.ndarray:
    """Epoch seconds (float, NaN for NaT) of a UTC datetime column."""
    present = values.notna().to_numpy()
    micros = values[present].astype("datetime64[us, UTC]").astype("int64").to_numpy()
    out = np.full(len(values), np.nan)
    out[present] = micros / 1e6
    return out


def _service_id(name: Any, type_: Any, account: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": _text(name) or "", "Names": [_text(name) or ""]}
    if _text(account):
        out["AccountId"] = _text(account)
    if _text(type_):
        out["Type"] = _text(type_)
    return out


def _segment_services(ts: TraceSet) -> pd.DataFrame:
    """Per segment: its trace, id, service (name, origin; one account per name and origin)."""
    seg = ts.segments[["trace_id", "segment_id", "name", "origin", "account_id"]]
    account = seg.groupby(["trace_id", "name", "origin"], dropna=False, sort=False)[
        "account_id"
    ].transform("first")
    return seg.assign(account_id=account)


def _per_trace(frame: pd.DataFrame, build: Any) -> dict[str, list[Any]]:
    """``{trace_id: [build(row), ...]}`` over the rows of ``frame`` in order."""
    out: dict[str, list[Any]] = {}
    for row in frame.itertuples(index=False):
        out.setdefault(row.trace_id, []).append(build(row))
    return out


def _services(seg: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    distinct = seg.drop_duplicates(["trace_id", "name", "origin"])
    return _per_trace(distinct, lambda r: _service_id(r.name, r.origin, r.account_id))


def _details(ts: TraceSet) -> dict[str, dict[str, list[dict[str, str]]]]:
    """``ResourceARNs``, ``InstanceIds`` and ``AvailabilityZones`` per trace."""
    seg = ts.segments
    out: dict[str, dict[str, list[dict[str, str]]]] = {}
    for column, field, key in (
        ("resource_arn", "ResourceARNs", "ARN"),
        ("instance_id", "InstanceIds", "Id"),
        ("availability_zone", "AvailabilityZones", "Name"),
    ):
        present = seg.loc[seg[column].notna(), ["trace_id", column]].drop_duplicates()
        for trace_id, value in zip(present["trace_id"], present[column], strict=True):
            if _text(value):
                out.setdefault(trace_id, {}).setdefault(field, []).append({key: str(value)})
    return out


def _users(ts: TraceSet, seg: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    users = ts.segments.loc[ts.segments["user"].notna(), ["trace_id", "segment_id", "user"]]
    users = users.merge(seg, on=["trace_id", "segment_id"], how="left")
    out: dict[str, list[dict[str, Any]]] = {}
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    seen: set[tuple[Any, ...]] = set()
    for r in users.itertuples(index=False):
        entry = entries.get((r.trace_id, r.user))
        if entry is None:
            entry = entries[(r.trace_id, r.user)] = {"UserName": str(r.user), "ServiceIds": []}
            out.setdefault(r.trace_id, []).append(entry)
        service = (r.trace_id, r.user, r.name, r.origin)
        if service not in seen and _text(r.name):
            seen.add(service)
            entry["ServiceIds"].append(_service_id(r.name, r.origin, r.account_id))
    return out


def _annotation_value(value: Any, value_type: str) -> dict[str, Any]:
    if value_type == "boolean":
        return {"BooleanValue": bool(value)}
    if value_type == "number":
        return {"NumberValue": float(value)}
    return {_VALUE_KEYS.get(value_type, "StringValue"): str(value)}


def _annotations(ts: TraceSet, seg: pd.DataFrame) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per trace: ``{key: [{AnnotationValue, ServiceIds}, ...]}``, values in first-seen order."""
    ann = ts.annotations
    if ann.empty:
        return {}
    # the segment of each annotated entity: the entity itself, or the subsegment's segment
    sub = ts.subsegments[["trace_id", "subsegment_id", "segment_id"]].rename(
        columns={"subsegment_id": "entity_id"}
    )
    own = seg[["trace_id", "segment_id"]].assign(entity_id=seg["segment_id"])
    entity_segment = pd.concat([own, sub], ignore_index=True).drop_duplicates(
        ["trace_id", "entity_id"]
    )
    ann = ann.merge(entity_segment, on=["trace_id", "entity_id"], how="left").merge(
        seg, on=["trace_id", "segment_id"], how="left"
    )
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    entries: dict[tuple[Any, ...], dict[str, Any]] = {}
    seen: set[tuple[Any, ...]] = set()
    for r in ann.itertuples(index=False):
        value = (r.trace_id, r.key, r.value_type, repr(r.value))
        entry = entries.get(value)
        if entry is None:
            entry = entries[value] = {
                "AnnotationValue": _annotation_value(r.value, str(r.value_type)),
                "ServiceIds": [],
            }
            out.setdefault(r.trace_id, {}).setdefault(str(r.key), []).append(entry)
        service = (*value, r.name, r.origin)
        if service not in seen and _text(r.name):
            seen.add(service)
            entry["ServiceIds"].append(_service_id(r.name, r.origin, r.account_id))
    return out


def _entity(row: Any, kind: str) -> dict[str, Any]:
    entity: dict[str, Any] = {"Name": _text(row.entity_name) or "", "Remote": bool(row.remote)}
    if kind == "responsetime":
        if not math.isnan(row.coverage):
            entity["Coverage"] = float(row.coverage)
    elif _text(row.exception_name) or _text(row.exception_message):
        exception = {"Name": _text(row.exception_name), "Message": _text(row.exception_message)}
        entity["Exceptions"] = [{k: v for k, v in exception.items() if v is not None}]
    return entity


def _root_causes(paths: pd.DataFrame, kind: str) -> dict[str, list[dict[str, Any]]]:
    """Per trace, the root causes of one kind in X-Ray's ``...RootCauses`` shape."""
    out: dict[str, list[dict[str, Any]]] = {}
    cause: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    last: tuple[Any, ...] = ()
    for row in paths.itertuples(index=False):
        if (row.trace_id, row.cause_index) != last[:2]:
            cause = {"Services": [], "ClientImpacting": bool(row.client_impacting)}
            out.setdefault(row.trace_id, []).append(cause)
            service = None
        if service is None or (row.trace_id, row.cause_index, row.service_index) != last:
            service = {
                **_service_id(row.service_name, row.service_type, row.account_id),
                "Inferred": bool(row.inferred),
                "EntityPath": [],
            }
            assert cause is not None
            cause["Services"].append(service)
        service["EntityPath"].append(_entity(row, kind))
        last = (row.trace_id, row.cause_index, row.service_index)
    return out


def trace_summaries(
    ts: TraceSet, *, groups: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Return one ``TraceSummary`` per trace of ``ts``, in ``ts.traces`` order.

    Parameters
    ----------
    ts : TraceSet
    groups : mapping of str to str, optional
        Group name → filter expression, as ``xraykit.query.evaluate`` takes it. A
        ``TraceSummary`` carries no group membership, so the summaries do not depend on it;
        it is checked and accepted so callers can pass the same ``groups`` everywhere.

    Returns
    -------
    list of dict
        X-Ray's ``TraceSummary`` members: ``Id``, ``StartTime`` (epoch seconds),
        ``Duration``, ``ResponseTime``, ``HasFault``, ``HasError``, ``HasThrottle``,
        ``IsPartial``, ``Http``, ``Annotations``, ``Users``, ``ServiceIds``,
        ``ResourceARNs``, ``InstanceIds``, ``AvailabilityZones``, ``EntryPoint``,
        ``FaultRootCauses``, ``ErrorRootCauses``, ``ResponseTimeRootCauses``, ``Revision``
        (1: the store keeps one version of a trace) and ``MatchedEventTime`` (the start).
        Absent values are left out, as the API leaves them out.

    Raises
    ------
    ArgumentTypeError
        When ``ts`` is not a TraceSet or ``groups`` not a mapping.

    Examples
    --------
    >>> import xraykit
    >>> ts = xraykit.load_sample("shop")
    >>> faulty = ts.select(ts.traces.loc[ts.traces.has_fault, "trace_id"][:1])
    >>> summary = trace_summaries(faulty)[0]
    >>> summary["HasFault"], summary["Http"]["HttpStatus"] >= 500
    (True, True)
    >>> summary["FaultRootCauses"][0]["Services"][-1]["EntityPath"][-1]["Exceptions"]
    [{'Name': 'KeyError', 'Message': "'shipping_address'"}]
    """
    check_traceset(ts)
    if groups is not None and not isinstance(groups, Mapping):
        raise ArgumentTypeError(
            f"`groups` must be a mapping of group name to filter expression, but a "
            f"{type(groups).__name__} was passed."
        )
    traces = ts.traces
    if traces.empty:
        return []
    seg = _segment_services(ts)
    services = _services(seg)
    users = _users(ts, seg)
    annotations = _annotations(ts, seg)
    details = _details(ts)
    paths = root_cause_paths_by_kind(ts, ROOT_CAUSE_KINDS)
    causes = {kind: _root_causes(frame, kind) for kind, frame in paths.items()}
    root_account = dict(
        zip(
            seg["trace_id"] + "/" + seg["segment_id"].astype(str),
            seg["account_id"],
            strict=True,
        )
    )
    starts = _epoch(traces["start"])
    out = []
    for i, row in enumerate(traces.itertuples(index=False)):
        trace_id = row.trace_id
        summary: dict[str, Any] = {"Id": trace_id}
        if not math.isnan(starts[i]):
            summary["StartTime"] = float(starts[i])
        for key, value in (("Duration", row.duration_s), ("ResponseTime", row.response_time_s)):
            if not pd.isna(value):
                summary[key] = float(value)
        summary.update(
            HasFault=bool(row.has_fault),
            HasError=bool(row.has_error),
            HasThrottle=bool(row.has_throttle),
            IsPartial=bool(row.is_partial),
        )
        http = {
            "HttpURL": _text(row.http_url),
            "HttpStatus": None if pd.isna(row.http_status) else int(row.http_status),
            "HttpMethod": _text(row.http_method),
            "UserAgent": _text(row.user_agent),
            "ClientIp": _text(row.client_ip),
        }
        summary["Http"] = {k: v for k, v in http.items() if v is not None}
        summary["Annotations"] = annotations.get(trace_id, {})
        summary["Users"] = users.get(trace_id, [])
        summary["ServiceIds"] = services.get(trace_id, [])
        for field in ("ResourceARNs", "InstanceIds", "AvailabilityZones"):
            summary[field] = details.get(trace_id, {}).get(field, [])
        if _text(row.root_service):
            account = root_account.get(f"{trace_id}/{row.root_segment_id}")
            summary["EntryPoint"] = _service_id(row.root_service, row.root_origin, account)
        for kind, field in _CAUSE_FIELDS.items():
            summary[field] = causes[kind].get(trace_id, [])
        summary["Revision"] = 1
        if "StartTime" in summary:
            summary["MatchedEventTime"] = summary["StartTime"]
        out.append(summary)
    return out

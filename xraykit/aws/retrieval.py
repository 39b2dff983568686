"""Traces from Transaction Search: ``StartTraceRetrieval`` then ``ListRetrievedTraces``.

With Transaction Search on, X-Ray keeps every span in the CloudWatch Logs group
``aws/spans``; these two calls read given traces back from there, for up to 60 minutes per
retrieval. :func:`fetch_retrieved` starts one retrieval per 100 trace ids, waits until each
is ``COMPLETE`` and pages through ``ListRetrievedTraces``. In ``TraceFormat="OTEL"`` (the
default) each span's ``Document`` is an OpenTelemetry span and is translated as the ADOT
collector's X-Ray exporter would (:mod:`xraykit.io.otlp_translate`); in ``"XRAY"`` the
documents are segment documents. Both land in the same frames as any other source;
:func:`traceset_from_retrieved` does that part alone, for responses already at hand.

>>> response = {"RetrievalStatus": "COMPLETE", "TraceFormat": "OTEL", "Traces": [{
...     "Id": "1-5759e988-bd862e3fe1be46a994272793", "Duration": 0.25, "Spans": [{
...         "Id": "53995c3f42cd8ad8", "Document": '{"traceId": "5759e988bd862e3fe1be46a994272793",'
...         ' "spanId": "53995c3f42cd8ad8", "name": "GET /", "kind": "SERVER",'
...         ' "startTimeUnixNano": 1465575560000000000, "endTimeUnixNano": 1465575560250000000,'
...         ' "resource": {"attributes": {"service.name": "web"}}}'}]}]}
>>> ts = traceset_from_retrieved([response])
>>> ts.traces[["root_service", "response_time_s"]].values.tolist()
[['web', 0.25]]
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from xraykit.arguments import check_choice
from xraykit.aws.client import RetryPolicy, _Caller, _Exhausted, _Interrupted, connect
from xraykit.aws.windows import _resolve_window
from xraykit.exceptions import ArgumentError, ArgumentTypeError, LiveAccessError
from xraykit.io.formats import frames_from_documents, frames_from_otlp
from xraykit.io.reader import OnError
from xraykit.traceset import TraceSet, _from_frames, concat

__all__ = ["fetch_retrieved", "traceset_from_retrieved"]

#: trace ids one ``StartTraceRetrieval`` takes at most
BATCH = 100
_WAITING = ("SCHEDULED", "RUNNING")


def traceset_from_retrieved(
    responses: Iterable[dict[str, Any]], *, on_error: OnError = "warn"
) -> TraceSet:
    """A TraceSet from ``ListRetrievedTraces`` responses (as boto3 returns them), in either
    ``TraceFormat``; spans whose ``Document`` is not valid JSON are rows of ``problems``."""
    spans: list[Any] = []
    problems: list[tuple[str, str]] = []
    xray_traces: list[dict[str, Any]] = []
    for page, response in enumerate(responses):
        if not isinstance(response, dict):
            raise ArgumentTypeError(
                "traceset_from_retrieved() takes ListRetrievedTraces responses (dicts), "
                f"but got a {type(response).__name__}."
            )
        otel = response.get("TraceFormat", "XRAY") == "OTEL"
        for i, trace in enumerate(response.get("Traces") or []):
            items = trace.get("Spans") if isinstance(trace, dict) else None
            where = f"ListRetrievedTraces[{page}].Traces[{i}]"
            if not isinstance(items, list):
                problems.append((where, f"a trace must have a 'Spans' list, got {trace!r:.60}"))
            elif not otel:
                xray_traces.append({"Id": trace.get("Id"), "Segments": items})
            else:
                for j, item in enumerate(items):
                    document = item.get("Document") if isinstance(item, dict) else None
                    try:
                        spans.append(orjson.loads(document))  # type: ignore[arg-type]
                    except (orjson.JSONDecodeError, TypeError) as error:
                        problems.append(
                            (f"{where}.Spans[{j}]", f"the span Document is not JSON: {error}")
                        )
    frames = frames_from_otlp(
        spans, source="ListRetrievedTraces", on_error=on_error, problems=problems
    )
    parts = [_from_frames(frames, on_error)]
    if xray_traces:
        parts.append(
            _from_frames(
                frames_from_documents(
                    [{"Traces": xray_traces}], source="ListRetrievedTraces", on_error=on_error
                ),
                on_error,
            )
        )
    return parts[0] if len(parts) == 1 else concat(parts)


def fetch_retrieved(
    trace_ids: Sequence[str],
    *,
    since: Any = "1h",
    start: Any = None,
    end: Any = None,
    trace_format: str = "OTEL",
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    timeout: float = 600.0,
    poll_interval: float = 2.0,
    retry: RetryPolicy | None = None,
    on_error: OnError = "warn",
) -> TraceSet:
    """Retrieve traces from Transaction Search's span log group into a TraceSet.

    Parameters
    ----------
    trace_ids : list of str
        X-Ray trace ids (``1-xxxxxxxx-...``), e.g. from ``ts.summaries`` or a span query.
    since, start, end
        The time window the spans lie in, as :func:`xraykit.fetch` takes it.
    trace_format : {"OTEL", "XRAY"}
        The format X-Ray returns the spans in; both load into the same frames.
    session, profile, region, client, endpoint_url
        How to reach X-Ray, as for :func:`xraykit.fetch`.
    timeout, poll_interval : float
        How long to wait for the retrievals to complete, and between status checks (s).

    Raises
    ------
    LiveAccessError
        When a retrieval fails, is cancelled, times out, or the calls are refused (for
        example without the ``xray:StartTraceRetrieval`` permission).
    """
    check_choice("trace_format", trace_format, ["OTEL", "XRAY"])
    if isinstance(trace_ids, str) or not all(isinstance(t, str) for t in trace_ids):
        raise ArgumentTypeError(
            f"trace_ids must be a list of trace id strings, but {trace_ids!r:.80} was passed."
        )
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        raise ArgumentError("trace_ids is empty: pass the ids of the traces to retrieve.")
    window_start, window_end = _resolve_window(since, start, end)
    conn = connect(
        session=session, profile=profile, region=region, client=client, endpoint_url=endpoint_url
    )
    caller = _Caller(conn.client, retry or RetryPolicy())
    responses: list[dict[str, Any]] = []
    try:
        for first in range(0, len(ids), BATCH):
            token = caller.call(
                "StartTraceRetrieval",
                TraceIds=ids[first : first + BATCH],
                StartTime=window_start.to_pydatetime(),
                EndTime=window_end.to_pydatetime(),
            )["RetrievalToken"]
            responses.extend(_pages(caller, token, trace_format, timeout, poll_interval))
    except _Exhausted as exhausted:
        raise LiveAccessError(f"X-Ray kept refusing {exhausted}; try again later.") from None
    except _Interrupted:
        raise LiveAccessError("The retrieval was interrupted.") from None
    return traceset_from_retrieved(responses, on_error=on_error)


def _pages(
    caller: _Caller, token: str, trace_format: str, timeout: float, poll: float
) -> list[dict[str, Any]]:
    """Every page of one retrieval, once it is complete."""
    deadline = time.monotonic() + timeout
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"RetrievalToken": token, "TraceFormat": trace_format}
    while True:
        response = caller.call("ListRetrievedTraces", **params)
        status = response.get("RetrievalStatus", "COMPLETE")
        if status in _WAITING:
            if time.monotonic() >= deadline:
                raise LiveAccessError(
                    f"Trace retrieval {token} was still {status} after {timeout:.0f} s; "
                    "pass a larger timeout, or fewer trace ids."
                )
            caller.sleep(poll)
            continue
        if status != "COMPLETE":
            raise LiveAccessError(
                f"Trace retrieval {token} ended {status}. A retrieval times out after 60 "
                "minutes: retrieve fewer traces, or a shorter window, at a time."
            )
        pages.append(response)
        next_token = response.get("NextToken")
        if not next_token:
            return pages
        params["NextToken"] = next_token

"""Links into the CloudWatch console's X-Ray pages: a trace, a filtered trace list, the map.

:func:`console_url` builds the address a browser opens; it never calls AWS. The CloudWatch
console keeps a page's state after ``#xray:...?`` in the compact "JSURL" notation, e.g. a
filtered list over a window is ``#xray:traces/query?~(query~(filter~()~expression~'<text>)
~context~(timeRange~(end~'<ISO>~start~'<ISO>)))`` and a relative window is
``timeRange~(delta~<milliseconds>)``.

Sources: the X-Ray Developer Guide, "Console deep linking" (xray-console-deeplinks), documents
the routes (a trace's timeline, a filter expression, a time range of at most 6 hours in UTC,
the region as ``?region=``) for the X-Ray console, which now opens inside CloudWatch; the
CloudWatch console's own addresses for those pages (``/cloudwatch/home?region=<r>#xray:traces/
<id>``, ``#xray:traces/query``, ``#xray:service-map/map``) are the ones it shows in the browser's
address bar. ``style="xray"`` gives the documented X-Ray console form instead.

Examples
--------
>>> console_url(trace_id="1-57f5498f-d91047849216d0f2ea3b6442", region="us-west-2")
'https://us-west-2.console.aws.amazon.com/cloudwatch/home?region=us-west-2#xray:traces/1-57f5498f-d91047849216d0f2ea3b6442'
>>> console_url(expression='annotation.tier = "paid"', region="eu-west-1",
...             start="2025-03-04T09:00:00Z", end="2025-03-04T10:00:00Z")
"https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#xray:traces/query?~(query~(filter~()~expression~'annotation.tier*20*3d*20*22paid*22)~context~(timeRange~(end~'2025-03-04T10*3a00*3a00.000Z~start~'2025-03-04T09*3a00*3a00.000Z)))"
>>> console_url(service_map=True, region="us-east-1", last="1h", style="xray")
'https://console.aws.amazon.com/xray/home?region=us-east-1#/service-map?timeRange=PT60M'
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import datetime
from typing import Any

import pandas as pd

from xraykit.exceptions import ArgumentError

__all__ = ["console_url", "trace_urls"]

#: X-Ray keeps a window of at most six hours in a console link, as in GetTraceSummaries.
MAX_WINDOW = pd.Timedelta(hours=6)

_TRACE_ID = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_PLAIN = re.compile(r"[\w\-.]")


def _host(region: str) -> str:
    """The console's host for a region's partition (commercial, China, GovCloud)."""
    if region.startswith("cn-"):
        return f"https://{region}.console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return f"https://{region}.console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def _jsurl_string(text: str) -> str:
    """A string in the console's JSURL notation: ``'`` then the text with every character
    other than letters, digits, ``_``, ``-`` and ``.`` written as ``*xx`` (``**xxxx`` above
    U+00FF) and ``$`` as ``!``."""
    out = []
    for ch in text:
        if ch.isascii() and _PLAIN.fullmatch(ch):
            out.append(ch)
        elif ch == "$":
            out.append("!")
        elif ord(ch) < 0x100:
            out.append(f"*{ord(ch):02x}")
        else:
            # characters beyond the BMP are written as their two UTF-16 halves, as JavaScript sees them
            for unit in ch.encode("utf-16-be").hex(" ", 2).split():
                out.append(f"**{unit}")
    return "'" + "".join(out)


def _timestamp(value: Any, name: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None or stamp is pd.NaT:
        raise ArgumentError(
            f"`{name}` must be a time (datetime, pandas Timestamp, ISO 8601 text or epoch "
            f"seconds as a float), but {value!r} was passed."
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        stamp = pd.Timestamp(value, unit="s")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _window(start: Any, end: Any, last: Any) -> tuple[pd.Timestamp, pd.Timestamp] | pd.Timedelta:
    """An absolute window (start, end) or a relative one (the last so long), checked."""
    if last is not None:
        if start is not None or end is not None:
            raise ArgumentError("Pass either `last` or `start` and `end`, not both.")
        try:
            length = pd.Timedelta(last)
        except (TypeError, ValueError):
            length = pd.NaT
        if length is pd.NaT or not pd.Timedelta(0) < length <= MAX_WINDOW:
            raise ArgumentError(
                f"`last` must be a length of time up to 6 hours such as '15min' or '1h', but "
                f"{last!r} was passed."
            )
        return length
    if (start is None) != (end is None):
        raise ArgumentError("Pass both `start` and `end` (or `last`), not only one of them.")
    if start is None:
        return pd.Timedelta(hours=6)
    begin, finish = _timestamp(start, "start"), _timestamp(end, "end")
    if not begin < finish <= begin + MAX_WINDOW:
        raise ArgumentError(
            f"The console shows windows of at most 6 hours with `start` before `end`, but "
            f"start={begin.isoformat()!r} and end={finish.isoformat()!r} were passed. Split "
            "the window or narrow it."
        )
    return begin, finish


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _cloudwatch_context(window: tuple[pd.Timestamp, pd.Timestamp] | pd.Timedelta) -> str:
    if isinstance(window, pd.Timedelta):
        return f"context~(timeRange~(delta~{int(window.total_seconds() * 1000)}))"
    begin, finish = window
    return (
        f"context~(timeRange~(end~{_jsurl_string(_iso(finish))}"
        f"~start~{_jsurl_string(_iso(begin))}))"
    )


def _xray_range(window: tuple[pd.Timestamp, pd.Timestamp] | pd.Timedelta) -> str:
    if isinstance(window, pd.Timedelta):
        return f"PT{max(1, int(window.total_seconds() // 60))}M"
    begin, finish = window
    return f"{begin.strftime('%Y-%m-%dT%H:%M:%S')}~{finish.strftime('%Y-%m-%dT%H:%M:%S')}"


def console_url(
    *,
    region: str,
    trace_id: str | None = None,
    expression: str | None = None,
    service_map: bool = False,
    start: datetime | pd.Timestamp | str | float | None = None,
    end: datetime | pd.Timestamp | str | float | None = None,
    last: str | pd.Timedelta | None = None,
    style: str = "cloudwatch",
) -> str:
    """The console address of a trace, a filtered trace list, or the service (trace) map.

    Parameters
    ----------
    region : str
        The AWS region the traces are in, such as ``"us-east-1"``.
    trace_id : str, optional
        Link to this trace's timeline.
    expression : str, optional
        Link to the trace list filtered by this expression (traces page if neither
        ``trace_id`` nor ``service_map`` is given).
    service_map : bool
        Link to the map.
    start, end : time, optional
        A window of at most 6 hours (UTC), or ``last`` for the most recent ``"15min"``...
        ``"6h"``. Without either, links show the last 6 hours (a trace link: no window).
    style : {"cloudwatch", "xray"}
        The CloudWatch console's addresses (default) or the documented X-Ray console deep
        links, which open in CloudWatch too.

    Raises
    ------
    ArgumentError
        For an unknown region or style, a malformed trace id, more than one page at once, or
        a window longer than 6 hours.
    """
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ArgumentError(
            f"`region` must be an AWS region name such as 'us-east-1', but {region!r} was passed."
        )
    if style not in ("cloudwatch", "xray"):
        raise ArgumentError(f"`style` must be 'cloudwatch' or 'xray', but {style!r} was passed.")
    if trace_id is not None and not (isinstance(trace_id, str) and _TRACE_ID.fullmatch(trace_id)):
        raise ArgumentError(
            f"`trace_id` must be an X-Ray trace id like '1-57f5498f-d91047849216d0f2ea3b6442', "
            f"but {trace_id!r} was passed."
        )
    if sum((trace_id is not None, expression is not None, bool(service_map))) > 1:
        raise ArgumentError(
            "Pass one of `trace_id`, `expression` or `service_map=True`: a link opens one page."
        )
    if expression is not None and not isinstance(expression, str):
        raise ArgumentError(f"`expression` must be text, but {expression!r} was passed.")
    timed = trace_id is None or start is not None or last is not None
    window = _window(start, end, last) if timed else None
    if style == "xray":
        base = f"https://console.aws.amazon.com/xray/home?region={region}#/"
        if trace_id is not None:
            return base + f"traces/{trace_id}"
        query = {"timeRange": _xray_range(window)} if window is not None else {}
        if expression:
            query["filter"] = expression
        page = "service-map" if service_map else "traces"
        return base + page + "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    base = f"{_host(region)}/cloudwatch/home?region={region}#xray:"
    context = _cloudwatch_context(window) if window is not None else ""
    if trace_id is not None:
        return base + f"traces/{trace_id}" + (f"?~(query~()~{context})" if context else "")
    if service_map:
        return base + f"service-map/map?~(query~()~{context})"
    state = f"(filter~()~expression~{_jsurl_string(expression)})" if expression else "()"
    return base + f"traces/query?~(query~{state}~{context})"


def trace_urls(traces: pd.DataFrame, region: str) -> pd.Series:
    """:func:`console_url` of every trace of a ``traces`` frame at once, each with its own
    window in whole seconds (without one when the trace has no usable span of at most 6
    hours); ids that are not X-Ray trace ids give ``<NA>``. Aligned with ``traces``.

    >>> import xraykit
    >>> traces = xraykit.load_sample("shop").traces.head(2)
    >>> urls = trace_urls(traces, "us-east-1")
    >>> urls.iloc[0] == console_url(trace_id=traces.trace_id.iloc[0], region="us-east-1",
    ...     start=traces.start.iloc[0].floor("s"), end=traces.end.iloc[0].ceil("s"))
    True
    """
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ArgumentError(
            f"`region` must be an AWS region name such as 'us-east-1', but {region!r} was passed."
        )
    ids = traces["trace_id"].astype("str")
    begin = pd.to_datetime(traces["start"], utc=True).dt.floor("s")
    finish = pd.to_datetime(traces["end"], utc=True).dt.ceil("s")
    windowed = begin.notna() & finish.notna() & (finish > begin) & (finish - begin <= MAX_WINDOW)
    # the ISO times of whole seconds, as _jsurl_string writes them (":" is "*3a")
    iso = "%Y-%m-%dT%H*3a%M*3a%S.000Z"
    context = (
        "?~(query~()~context~(timeRange~(end~'" + finish.dt.strftime(iso)
        + "~start~'" + begin.dt.strftime(iso) + ")))"
    )  # fmt: skip
    base = f"{_host(region)}/cloudwatch/home?region={region}#xray:traces/"
    urls = base + ids + context.where(windowed, "").fillna("")
    return (
        urls.where(ids.str.fullmatch(_TRACE_ID.pattern).fillna(False))
        .astype("str")
        .rename("console_url")
    )

"""console_url: the CloudWatch console's X-Ray addresses, JSURL state and the checks."""

from __future__ import annotations

import urllib.parse

import pandas as pd
import pytest

from xraykit.console import _jsurl_string, console_url, trace_urls
from xraykit.exceptions import ArgumentError

TRACE = "1-57f5498f-d91047849216d0f2ea3b6442"


def _jsurl_decode(text: str) -> str:
    """The inverse of the console's string notation, written independently for the test."""
    assert text.startswith("'")
    out, i, body = [], 0, text[1:]
    while i < len(body):
        if body.startswith("**", i):
            out.append(bytes.fromhex(body[i + 2 : i + 6]).decode("utf-16-be", "surrogatepass"))
            i += 6
        elif body[i] == "*":
            out.append(chr(int(body[i + 1 : i + 3], 16)))
            i += 3
        elif body[i] == "!":
            out.append("$")
            i += 1
        else:
            out.append(body[i])
            i += 1
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


@pytest.mark.parametrize(
    "text",
    ['service("api") { fault = true OR responsetime > 2.5 } AND annotation.foo = "bar"',
     "user = \"ünïcode\" AND annotation.emoji = \"🙂\"", "a$b~c'd(e)f!g*h", ""],
)  # fmt: skip
def test_jsurl_strings_round_trip_and_stay_in_the_safe_alphabet(text):
    encoded = _jsurl_string(text)
    assert _jsurl_decode(encoded) == text
    assert set(encoded[1:]) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.*!"
    )


def test_trace_link():
    assert console_url(trace_id=TRACE, region="us-west-2") == (
        f"https://us-west-2.console.aws.amazon.com/cloudwatch/home?region=us-west-2#xray:traces/{TRACE}"
    )
    windowed = console_url(trace_id=TRACE, region="us-west-2", start="2022-10-21T09:00:00Z",
                           end="2022-10-21T10:30:00Z")  # fmt: skip
    assert windowed.endswith(
        f"#xray:traces/{TRACE}?~(query~()~context~(timeRange~(end~'2022-10-21T10*3a30*3a00.000Z"
        "~start~'2022-10-21T09*3a00*3a00.000Z)))"
    )


def test_filter_link_relative_and_absolute():
    url = console_url(expression="fault", region="us-east-1", last="15min")
    assert url.endswith(
        "#xray:traces/query?~(query~(filter~()~expression~'fault)~context~(timeRange~(delta~900000)))"
    )
    # epoch seconds and a tz-aware time give the same window
    a = console_url(expression="fault", region="us-east-1", start=1741078800, end=1741082400)
    b = console_url(expression="fault", region="us-east-1", start="2025-03-04T10:00:00+01:00",
                    end="2025-03-04T11:00:00+01:00")  # fmt: skip
    assert a == b and "start~'2025-03-04T09*3a00*3a00.000Z" in a


def test_service_map_and_partitions():
    assert console_url(service_map=True, region="cn-north-1").startswith(
        "https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1#xray:service-map/map?~(query~()~context~(timeRange~(delta~21600000)))"
    )
    assert console_url(service_map=True, region="us-gov-west-1").startswith(
        "https://us-gov-west-1.console.amazonaws-us-gov.com/"
    )


def test_documented_xray_style():
    url = console_url(expression='annotation.foo = "bar"', region="us-west-2", style="xray",
                      start="2017-03-01T16:00:00Z", end="2017-03-01T22:00:00Z")  # fmt: skip
    base, fragment = url.split("#")
    assert base == "https://console.aws.amazon.com/xray/home?region=us-west-2"
    page, query = fragment.split("?")
    assert page == "/traces"
    params = dict(urllib.parse.parse_qsl(query))
    assert params == {"timeRange": "2017-03-01T16:00:00~2017-03-01T22:00:00",
                      "filter": 'annotation.foo = "bar"'}  # fmt: skip
    assert console_url(trace_id=TRACE, region="us-west-2", style="xray").endswith(
        f"#/traces/{TRACE}"
    )


def test_trace_urls_equal_console_url_per_trace_and_skip_foreign_ids():
    import xraykit

    traces = xraykit.load_sample("shop").traces.head(40).copy()
    traces.loc[traces.index[1], "end"] = traces.start.iloc[1] + pd.Timedelta(hours=7)  # too long
    traces.loc[traces.index[2], "end"] = pd.NaT  # in progress
    traces.loc[traces.index[3], "trace_id"] = "javascript:alert(1)"  # not an X-Ray id
    urls = trace_urls(traces, "eu-west-1")
    assert urls.index.equals(traces.index) and urls.name == "console_url"
    for i, row in enumerate(traces.itertuples()):
        if i == 3:
            assert pd.isna(urls.iloc[i])
            continue
        window = (
            {"start": row.start.floor("s"), "end": row.end.ceil("s")}
            if pd.notna(row.end) and row.end - row.start <= pd.Timedelta(hours=6)
            else {}
        )
        assert urls.iloc[i] == console_url(trace_id=row.trace_id, region="eu-west-1", **window)
    with pytest.raises(ArgumentError, match="`region` must be"):
        trace_urls(traces, "moon-1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"region": "mars-1"}, "`region` must be an AWS region"),
        ({"region": "us-east-1", "trace_id": "javascript:alert(1)"}, "`trace_id` must be"),
        ({"region": "us-east-1", "trace_id": TRACE, "service_map": True}, "one of"),
        ({"region": "us-east-1", "last": "7h"}, "up to 6 hours"),
        (
            {"region": "us-east-1", "start": "2025-01-01T00:00Z", "end": "2025-01-01T07:00Z"},
            "at most 6 hours",
        ),
        ({"region": "us-east-1", "start": "2025-01-01T00:00Z"}, "both `start` and `end`"),
        ({"region": "us-east-1", "start": "yesterday", "end": "today"}, "`start` must be a time"),
        ({"region": "us-east-1", "style": "classic"}, "`style` must be"),
    ],
)
def test_errors(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        console_url(**kwargs)


def test_traceset_console_links_follow_the_region():
    import xraykit

    ts = xraykit.load_sample("shop")
    with pytest.raises(ArgumentError, match="region"):
        ts.console_links()
    ts.region = "eu-west-1"
    links = ts.console_links()
    assert len(links) == len(ts) and links.index.equals(ts.traces.index)
    first = ts.traces.iloc[0]
    assert links.iloc[0].startswith(
        f"https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#xray:traces/{first.trace_id}?"
    )
    # selections and concatenations keep the region; mixed regions drop it
    part = ts.select(ts.traces.trace_id[:3])
    assert part.region == "eu-west-1" and part.query("fault").region == "eu-west-1"
    assert xraykit.concat([part, ts.select(ts.traces.trace_id[3:6])]).region == "eu-west-1"
    other = ts.select(ts.traces.trace_id[6:8])
    other.region = "us-east-1"
    assert xraykit.concat([part, other]).region is None
    # the HTML display lists the first traces as links, escaped
    html_text = part._repr_html_()
    assert "<a href='https://eu-west-1.console.aws.amazon.com" in html_text


def test_timeline_links_to_the_console():
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    import xraykit

    ts = xraykit.load_sample("shop")
    one = ts.traces.trace_id.iloc[0]
    fig, ax = plt.subplots()
    xraykit.plot_timeline(ts, one, ax=ax)
    assert ax.title.get_url() is None  # no region, no link
    plt.close(fig)
    ts.region = "us-west-2"
    fig, ax = plt.subplots()
    xraykit.plot_timeline(ts, one, ax=ax)
    assert ax.title.get_url() == ts.console_links(ts.traces.iloc[:1]).iloc[0]
    out = io.StringIO()
    fig.savefig(out, format="svg")
    assert "console.aws.amazon.com" in out.getvalue()
    plt.close(fig)


def test_fetch_sets_the_region_for_console_links():
    import json
    import time

    import xraykit
    import xraykit.local

    now = time.time()
    doc = {"name": "web", "id": "70de5b6f19ff9a0a", "trace_id": f"1-{int(now):08x}-{'a' * 24}",
           "start_time": now - 1, "end_time": now}  # fmt: skip
    with xraykit.local.start("127.0.0.1:0", store=":memory:") as xr:
        xr.client().put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])
        ts = xraykit.fetch(since="5m", endpoint_url=xr.endpoint_url, region="eu-central-1",
                           progress=False)  # fmt: skip
    assert len(ts) == 1 and ts.region == "eu-central-1"
    assert ts.console_links().iloc[0].startswith("https://eu-central-1.console.aws.amazon.com/")

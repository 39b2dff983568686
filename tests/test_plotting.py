"""Tests of xraykit.plotting: what is drawn (artists, labels, data), never images."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import xraykit
from xraykit import analysis, plotting
from xraykit.status import COLORS

DATA = Path(__file__).parent / "data"
FAULT = "1-65538000-aaaaaaaaaaaaaaaaaaaaaaa1"
SLOW = "1-65538000-aaaaaaaaaaaaaaaaaaaaaaa3"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _rgba(color: str) -> tuple[float, ...]:
    return tuple(mcolors.to_rgba(color))


# -- histogram ----------------------------------------------------------------------------------


def test_histogram_counts_and_percentile_markers(shop):
    _, ax = plt.subplots()
    out = plotting.plot_latency_histogram(shop, bins=25, ax=ax)
    assert out is ax
    assert len(ax.patches) == 25
    assert sum(p.get_height() for p in ax.patches) == shop.traces["response_time_s"].notna().sum()
    values = shop.traces["response_time_s"].dropna()
    for line, p in zip(ax.lines, (50, 90, 99), strict=True):
        assert line.get_xdata()[0] == pytest.approx(np.percentile(values, p))
        assert line.get_label().startswith(f"p{p} ")
    assert ax.get_xlabel() == "response time (s)"


def test_histogram_by_service_draws_one_outline_per_service(three):
    ax = plotting.plot_latency_histogram(three, level="service", hue="service", bins=10)
    labels = [p.get_label() for p in ax.patches]
    assert "frontend (3)" in labels and "jobs (3)" in labels
    assert len(ax.patches) == 7
    assert not ax.lines  # markers only without `hue`


def test_histogram_edge_level_and_names_filter(three):
    ax = plotting.plot_latency_histogram(three, level="edge", names="inventory", bins=4)
    assert sum(p.get_height() for p in ax.patches) == 1
    assert ax.lines[0].get_xdata()[0] == pytest.approx(1.4)
    assert ax.get_xlabel() == "call duration seen by the caller (s)"
    with pytest.raises(xraykit.NotFoundError, match="matched no edge"):
        plotting.plot_latency_histogram(three, level="edge", names="nowhere")
    with pytest.raises(xraykit.ArgumentError, match="`hue` must be a column"):
        plotting.plot_latency_histogram(three, hue="colour")
    with pytest.raises(ValueError, match="`level` must be one of"):
        plotting.plot_latency_histogram(three, level="node")


def test_histogram_accepts_a_frame_and_log_scale(three):
    ax = plotting.plot_latency_histogram(three.segments, log=True, bins=5)
    assert ax.get_xscale() == "log"
    assert sum(p.get_height() for p in ax.patches) == len(three.segments)
    with pytest.raises(ValueError, match="latency column"):
        plotting.plot_latency_histogram(three.annotations)
    with pytest.raises(TypeError, match="`data` must be a TraceSet"):
        plotting.plot_latency_histogram({"traces": three.traces})


# -- percentiles, status, scatter, heatmap ------------------------------------------------------------


def test_latency_percentiles_draws_one_line_per_service_and_percentile(three):
    ax = plotting.plot_latency_percentiles(three, freq="10s", names=["frontend", "payments"])
    labels = [line.get_label() for line in ax.lines]
    assert labels == [
        "frontend p50",
        "frontend p90",
        "frontend p99",
        "payments p50",
        "payments p90",
        "payments p99",
    ]
    frontend_p50 = ax.lines[0].get_ydata()
    assert list(frontend_p50) == pytest.approx([1.0, 0.5, 2.0])
    assert ax.lines[1].get_linestyle() == "--"


def test_status_over_time_stacks_worst_status(three):
    ax = plotting.plot_status_over_time(three, freq="10s")
    by_label: dict[str, float] = {}
    for container in ax.containers:
        by_label[container.get_label()] = sum(bar.get_height() for bar in container)
    # the throttled trace's SQS calls were retried and its client got 200: ok, not throttle
    assert by_label == {"ok": 2, "error": 0, "throttle": 0, "fault": 1}
    fault_bars = [bar for bar in ax.containers[3] if bar.get_height() > 0]
    assert fault_bars[0].get_facecolor() == _rgba(COLORS["fault"])
    (inside,) = ax.lines
    assert inside.get_label() == "throttled inside the trace"
    assert list(inside.get_ydata()) == [1.0]


def _root_status_trace(index: int, status: int) -> dict:
    return {
        "name": "web",
        "id": f"60000000000000{index:02d}",
        "start_time": 1700000000.0 + index,
        "trace_id": f"1-65538000-eeeeeeeeeeeeeeeeeeeeee{index:02d}",
        "end_time": 1700000000.5 + index,
        "http": {"response": {"status": status}},
    }


def test_status_over_time_shows_the_status_the_client_saw(shop):
    ts = xraykit.from_documents(
        [_root_status_trace(i, s) for i, s in enumerate([200, 429, 429, 404, 503])]
    )
    ax = plotting.plot_status_over_time(ts, freq="1min")
    totals = {c.get_label(): sum(bar.get_height() for bar in c) for c in ax.containers}
    assert totals == {"ok": 1, "error": 1, "throttle": 2, "fault": 1}
    ax = plotting.plot_status_over_time(shop, freq="10min", ax=plt.figure().gca())
    totals = {c.get_label(): sum(bar.get_height() for bar in c) for c in ax.containers}
    assert totals["throttle"] == shop.traces["http_status"].eq(429).sum()
    assert sum(totals.values()) == len(shop)
    (inside,) = ax.lines
    assert inside.get_ydata().sum() == shop.traces["has_throttle"].sum() > totals["throttle"]


def test_status_over_time_normalised_bins_sum_to_one(shop):
    ax = plotting.plot_status_over_time(
        shop, freq="10min", normalize=True, level="service", names="inventory"
    )
    heights = np.array([[bar.get_height() for bar in c] for c in ax.containers])
    assert heights.sum(axis=0) == pytest.approx(np.ones(heights.shape[1]))
    assert ax.get_ylabel() == "share of requests"


def test_scatter_highlights_faults_and_throttles(three):
    ax = plotting.plot_scatter(three)
    labels = [c.get_label() for c in ax.collections]
    assert labels == ["ok (2)", "fault (1)", "throttled inside (1)"]
    ring = ax.collections[2]
    assert ring.get_offsets()[0][1] == pytest.approx(0.5)  # the 200 whose SQS calls got 429
    assert len(ring.get_facecolor()) == 0  # hollow
    fault = ax.collections[1]
    assert fault.get_offsets()[0][1] == pytest.approx(1.0)
    assert tuple(fault.get_facecolor()[0][:3]) == _rgba(COLORS["fault"])[:3]
    frame_only = plotting.plot_scatter(three.traces, ax=plt.figure().gca())
    assert [c.get_label() for c in frame_only.collections] == labels
    by_url = plotting.plot_scatter(three, hue="http_url", ax=plt.figure().gca())
    assert len(by_url.collections) == 3
    with pytest.raises(xraykit.ArgumentError, match="`hue` must be 'status'"):
        plotting.plot_scatter(three, hue="colour")
    with pytest.raises(xraykit.ArgumentTypeError, match="`data` must be a TraceSet"):
        plotting.plot_scatter([1, 2])


def test_charts_use_the_consoles_outcome_colours(three):
    assert not hasattr(plotting, "STATUS_COLORS")  # one colour table: xraykit.status.COLORS
    ax = plotting.plot_status_over_time(three, freq="10s")
    faces = {c.get_label(): c.patches[0].get_facecolor() for c in ax.containers}
    assert faces == {s: _rgba(COLORS[s]) for s in ("ok", "error", "throttle", "fault")}
    r, g, b, _ = _rgba(COLORS["error"])
    assert r > 0.9 and g > 0.6 and b < 0.1  # error is yellow (amber), as in the console


def test_plot_compare_titles_level_and_grouping(shop):
    ax = plotting.plot_compare(shop, shop, level="trace", by="status", top=3)
    assert ax.get_title() == "Largest changes by trace, status"
    assert len(ax.get_yticklabels()) == 3
    whole = plotting.plot_compare(shop, shop, level="trace", ax=plt.figure().gca())
    assert [t.get_text() for t in whole.get_yticklabels()] == ["all requests"]


def test_heatmap_counts_every_request(shop):
    ax = plotting.plot_latency_heatmap(shop, freq="10min", bins=12)
    counts = ax.collections[0].get_array()
    assert counts.sum() == (shop.traces["response_time_s"] > 0).sum()
    assert counts.shape == (12, 6)
    assert ax.get_yscale() == "log"


# -- timeline ----------------------------------------------------------------------------------


def test_timeline_rows_bars_and_critical_path(three):
    ax = plotting.plot_timeline(three, SLOW)
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == pytest.approx([2.0, 0.4, 0.36, 1.4, 1.36, 1.2], abs=1e-6)
    lefts = [bar.get_x() for bar in ax.patches]
    assert lefts == pytest.approx([0.0, 0.1, 0.12, 0.5, 0.52, 0.6], abs=1e-6)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "frontend",
        "   payments",
        "      payments",
        "   inventory",
        "      inventory",
        "         stock@db.internal",
    ]
    bold = [t.get_fontweight() for t in ax.get_yticklabels()]
    assert bold == ["bold", "normal", "bold", "normal", "bold", "normal"]
    texts = [t.get_text().strip() for t in ax.texts]
    assert texts == ["2.00 s", "400 ms", "360 ms", "1.40 s", "1.36 s", "1.20 s"]
    (critical,) = [c for c in ax.collections if c.get_label() == "critical path"]
    spans = sorted((round(s[0][0], 6), round(s[1][0], 6)) for s in critical.get_segments())
    assert spans == [(0.0, 2.0), (0.1, 0.5), (0.12, 0.48), (0.5, 1.9), (0.52, 1.88), (0.6, 1.8)]


def test_timeline_colours_by_status_and_marks_only_blocking_work(three):
    ax = plotting.plot_timeline(three, FAULT)
    names = [t.get_text().strip() for t in ax.get_yticklabels()]
    assert names == ["frontend", "orders-api", "orders-api", "DynamoDB", "DynamoDB", "render"]
    colours = [bar.get_facecolor() for bar in ax.patches]
    assert colours[:5] == [_rgba(COLORS["fault"])] * 5
    assert colours[5] == _rgba(COLORS["ok"])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["ok", "fault", "critical path"]
    plain = plotting.plot_timeline(three, FAULT, critical=False, ax=plt.figure().gca())
    assert not [c for c in plain.collections if c.get_label() == "critical path"]
    with pytest.raises(LookupError, match=r"No trace with id '1-00000000-0+'") as info:
        plotting.plot_timeline(three, "1-00000000-000000000000000000000000")
    assert not isinstance(info.value, KeyError)  # KeyError would quote the whole message


def test_timeline_draws_in_progress_entities_hatched():
    doc = {
        "name": "web",
        "id": "5000000000000001",
        "trace_id": "1-65538000-ddddddddddddddddddddddd1",
        "start_time": 1700000000.0,
        "end_time": 1700000001.0,
        "subsegments": [
            {
                "id": "5000000000000002",
                "name": "slow-call",
                "start_time": 1700000000.5,
                "in_progress": True,
            }
        ],
    }
    ts = xraykit.from_documents([doc])
    ax = plotting.plot_timeline(ts, ts.traces["trace_id"].iloc[0])
    assert [bar.get_hatch() for bar in ax.patches] == [None, "//"]
    assert ax.patches[1].get_width() == pytest.approx(0.5)
    assert ax.texts[1].get_text().strip() == "in progress"


# -- SLA and compare --------------------------------------------------------------------------


def test_plot_sla_lines_and_target(three):
    ax = plotting.plot_sla(three, 0.75, level="trace", freq="10s", target=0.9)
    (line, target) = ax.lines
    assert line.get_label() == "frontend"
    assert list(line.get_ydata()) == [0.0, 1.0, 0.0]
    assert target.get_ydata()[0] == 0.9 and target.get_label() == "target 90%"


def test_plot_compare_puts_the_largest_change_on_top(shop):
    tr = shop.traces
    minutes = (tr["start"] - tr["start"].min().floor("h")).dt.total_seconds() / 60
    before = shop.select(tr.loc[minutes < 38, "trace_id"])
    incident = shop.select(tr.loc[(minutes >= 40) & (minutes < 58), "trace_id"])
    ax = plotting.plot_compare(before, incident, top=4, labels=("before", "incident"))
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert len(names) == 4 and names[0].startswith("inventory@")
    table = analysis.compare(before, incident).head(4)
    hollow, filled = ax.collections[1], ax.collections[2]
    assert np.asarray(hollow.get_offsets())[:, 0].tolist() == pytest.approx(
        table["p90_s_a"].tolist()
    )
    assert np.asarray(filled.get_offsets())[:, 0].tolist() == pytest.approx(
        table["p90_s_b"].tolist()
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["before", "incident"]
    with pytest.raises(ValueError, match="`metric` must be one of"):
        plotting.plot_compare(before, incident, metric="p95_s")


# -- every sample is drawn ------------------------------------------------------------------------


@pytest.mark.parametrize("name", xraykit.sample_names())
def test_every_sample_draws(name):
    ts = xraykit.load_sample(name)
    first = ts.traces.sort_values("segment_count", ascending=False)["trace_id"].iloc[0]
    ax = plotting.plot_timeline(ts, first)
    assert len(ax.patches) == int(
        ts.trace(first).traces[["segment_count", "subsegment_count"]].sum(axis=1).iloc[0]
    )
    some = ts.select(ts.traces["trace_id"].iloc[:150])
    ax = plotting.plot_latency_histogram(some, level="service", ax=plt.figure().gca())
    assert sum(p.get_height() for p in ax.patches) > 0
    causes = analysis.root_causes(some, "responsetime")
    assert causes["traces"].sum() == len(some)


# -- every chart on awkward sets ------------------------------------------------------------------


@pytest.fixture(scope="module")
def awkward(shop) -> dict[str, xraykit.TraceSet]:
    return {
        "empty": xraykit.TraceSet(),
        "one-trace": shop.select(shop.traces["trace_id"].iloc[:1]),
        "sdk-capture": xraykit.load_sample("sdk-capture"),
        "in-progress": xraykit.load_file(DATA / "in_progress.json"),  # NaT ends
        "no-segments": xraykit.from_documents(
            [
                {
                    "type": "subsegment",
                    "id": "7000000000000001",
                    "parent_id": "7000000000000000",
                    "trace_id": "1-65538000-fffffffffffffffffffffff1",
                    "name": "orphan",
                    "start_time": 1700000000.0,
                    "end_time": 1700000001.0,
                }
            ],
            on_error="ignore",
        ),
    }


def _first_id(ts: xraykit.TraceSet) -> str:
    return str(ts.traces["trace_id"].iloc[0]) if len(ts) else "1-00000000-000000000000000000000000"


CHARTS = {
    "plot_compare": lambda ts, ax: plotting.plot_compare(ts, ts, ax=ax),
    "plot_compare edge by method": lambda ts, ax: plotting.plot_compare(
        ts, ts, level="edge", by="method", ax=ax
    ),
    "plot_latency_heatmap": lambda ts, ax: plotting.plot_latency_heatmap(ts, ax=ax),
    "plot_latency_heatmap edge": lambda ts, ax: plotting.plot_latency_heatmap(
        ts, level="edge", ax=ax
    ),
    "plot_latency_histogram": lambda ts, ax: plotting.plot_latency_histogram(ts, ax=ax),
    "plot_latency_histogram service": lambda ts, ax: plotting.plot_latency_histogram(
        ts, level="service", ax=ax
    ),
    "plot_latency_percentiles": lambda ts, ax: plotting.plot_latency_percentiles(ts, ax=ax),
    "plot_latency_percentiles edge": lambda ts, ax: plotting.plot_latency_percentiles(
        ts, level="edge", ax=ax
    ),
    "plot_scatter": lambda ts, ax: plotting.plot_scatter(ts, ax=ax),
    "plot_sla": lambda ts, ax: plotting.plot_sla(ts, 0.5, ax=ax),
    "plot_sla trace": lambda ts, ax: plotting.plot_sla(ts, 0.5, level="trace", ax=ax),
    "plot_status_over_time": lambda ts, ax: plotting.plot_status_over_time(ts, ax=ax),
    "plot_status_over_time service": lambda ts, ax: plotting.plot_status_over_time(
        ts, level="service", ax=ax
    ),
    "plot_timeline": lambda ts, ax: plotting.plot_timeline(ts, _first_id(ts), ax=ax),
}


def test_every_chart_is_exercised_on_awkward_sets():
    covered = {name.split(" ")[0] for name in CHARTS}
    # plot_sampling draws a sampling simulation, not a TraceSet: tests/test_sampling.py
    charts = {name for name in plotting.__all__ if name.startswith("plot_")} - {"plot_sampling"}
    assert covered == charts


@pytest.mark.parametrize("case", sorted(CHARTS))
@pytest.mark.parametrize(
    "which", ["empty", "one-trace", "sdk-capture", "in-progress", "no-segments"]
)
def test_charts_draw_on_awkward_sets(awkward, which, case):
    ts = awkward[which]
    _, ax = plt.subplots()
    if case == "plot_timeline" and which == "empty":
        with pytest.raises(LookupError, match="No trace with id"):
            CHARTS[case](ts, ax)
        return
    assert CHARTS[case](ts, ax) is ax
    assert ax.get_title()  # every chart labels what it shows, even when there is no data
    if which == "empty":
        drawn = [p for p in ax.patches if p.get_height() > 0 and p.get_width() > 0]
        assert not drawn and not ax.collections


@pytest.mark.parametrize(
    "plot",
    [
        plotting.plot_latency_percentiles,
        plotting.plot_status_over_time,
        plotting.plot_latency_heatmap,
    ],
)
def test_charts_name_a_bad_freq(three, plot):
    with pytest.raises(ValueError, match="`freq` must be a pandas frequency such as '1min'"):
        plot(three, freq="banana")
    with pytest.raises(ValueError, match="but 'MS' was passed"):  # months differ in length
        plotting.plot_sla(three, 1.0, freq="MS")


# -- what a learner trips over (issue 14) ------------------------------------------------------


def test_histogram_goes_log_for_a_long_tail_and_marks_the_tail(shop, three):
    ax = plotting.plot_latency_histogram(shop)  # 13 ms to 2.3 s: a long tail
    assert ax.get_xscale() == "log"
    edges = [p.get_x() for p in ax.patches]
    ratios = np.diff(np.log(edges))
    assert ratios == pytest.approx(np.full(len(ratios), ratios[0]))  # log-spaced bins
    values = shop.traces["response_time_s"].dropna()
    assert [t.get_text().strip() for t in ax.texts] == ["p50", "p90", "p99"]
    for text, p in zip(ax.texts, (50, 90, 99), strict=True):
        assert text.get_position()[0] == pytest.approx(np.percentile(values, p))
    # a narrow distribution stays linear; log= still forces either way
    narrow = plotting.plot_latency_histogram(three, ax=plt.figure().gca())  # 0.5 s to 2 s
    assert narrow.get_xscale() == "linear"
    forced = plotting.plot_latency_histogram(shop, log=False, ax=plt.figure().gca())
    assert forced.get_xscale() == "linear"
    with_zero = three.traces.assign(response_time_s=[0.0, 0.5, 100.0])
    assert plotting.plot_latency_histogram(with_zero, ax=plt.figure().gca()).get_xscale() == (
        "linear"  # a zero has no place on a log axis
    )


def test_compare_labels_services_sharing_a_name_with_their_type(shop):
    tr = shop.traces
    minutes = (tr["start"] - tr["start"].min().floor("h")).dt.total_seconds() / 60
    before = shop.select(tr.loc[minutes < 38, "trace_id"])
    incident = shop.select(tr.loc[(minutes >= 40) & (minutes < 58), "trace_id"])
    ax = plotting.plot_compare(before, incident, top=8)
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert len(names) == len(set(names)) == 8
    assert "shop-cart (AWS::Lambda::Function)" in names and "shop-cart (AWS::Lambda)" in names
    assert "inventory" in names  # a name with one type keeps its plain label
    assert all(len(name) <= 44 for name in names)  # the database's long name is shortened
    assert names[0].startswith("inventory@") and names[0].endswith("…")


def _sampling_run(rate: float = 40.0, **options):
    from xraykit.sampling import simulate_sampling, traffic

    return simulate_sampling(traffic(rate, duration_s=120, peaks=0, seed=8), [], seed=8, **options)


def test_sampling_chart_draws_the_expected_line_and_smooths():
    result = _sampling_run()
    ax = plotting.plot_sampling(result, smooth=10, expected=[])
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines) == [
        "Default requests",
        "Default sampled",
        "Default expected: 1/s + 5% of the rest",
    ]
    second = (result["time"].dt.floor("s") - result["time"].min().floor("s")).dt.seconds
    requests = result.groupby(second).size().reindex(range(120), fill_value=0).to_numpy()
    sampled = result.groupby(second)["sampled"].sum().reindex(range(120), fill_value=0)
    # expected: 1 a second from the reservoir (borrowed before the first quota), 5 % of the rest
    raw = np.minimum(requests, 1) + 0.05 * (requests - np.minimum(requests, 1))
    smoothed = lambda v: pd.Series(v, dtype=float).rolling(10, center=True, min_periods=1).mean()  # noqa: E731
    assert lines["Default expected: 1/s + 5% of the rest"].get_ydata() == pytest.approx(
        smoothed(raw).to_numpy()
    )
    assert lines["Default sampled"].get_ydata() == pytest.approx(smoothed(sampled).to_numpy())
    assert "10-second mean" in ax.get_title()
    # the smoothed sampled line stays close to the expected one: no longer noise
    gap = np.abs(
        lines["Default sampled"].get_ydata()
        - lines["Default expected: 1/s + 5% of the rest"].get_ydata()
    )
    assert gap.mean() < 0.5
    raw_ax = plotting.plot_sampling(result, ax=plt.figure().gca())
    assert [line.get_label() for line in raw_ax.lines] == ["Default requests", "Default sampled"]
    with pytest.raises(xraykit.ArgumentError, match="`smooth` must be a whole number"):
        plotting.plot_sampling(result, smooth=0)


def test_sampling_expected_line_follows_local_hosts_and_custom_rules():
    from xraykit.sampling import SamplingRule, simulate_sampling, traffic

    rule = SamplingRule("api", 1, 0.1, 2)
    local = simulate_sampling(
        traffic(20, duration_s=60, peaks=0, seed=2), rule, hosts=3, mode="local", seed=2
    )
    ax = plotting.plot_sampling(local, expected=rule)
    (expected,) = [line for line in ax.lines if "expected" in line.get_label()]
    assert expected.get_label() == "api expected: 6/s + 10% of the rest"  # 2 per host x 3
    second = (local["time"].dt.floor("s") - local["time"].min().floor("s")).dt.seconds
    n = local.groupby(second).size().reindex(range(60), fill_value=0).to_numpy()
    assert expected.get_ydata() == pytest.approx(np.minimum(n, 6) + 0.1 * (n - np.minimum(n, 6)))
    # the simulation's mean sampled rate is the expected one, within noise
    assert local["sampled"].sum() == pytest.approx(expected.get_ydata().sum(), rel=0.15)

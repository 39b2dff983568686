"""Tests of xraykit.dataset: partitioned datasets written from memory and by streaming pulls,
read back by DuckDB, Dask and Athena, with the same answers as the in-memory TraceSet.

Differential throughout: every query, table and graph from a dataset is compared with what
the in-memory functions give on the same traces (the filter table of tests/test_query.py,
the shop sample). Pulls run against the local X-Ray (``xraykit.local``) and moto on
127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as pads
import pytest

# the hand-built filter traces and their expression table live in test_query; the moto
# server, its fixtures and trace helpers in test_aws
import test_aws as _shared
from hypothesis import given, settings
from test_query import DATA, GROUPS, TABLE, _combine, _real_clauses

import xraykit
import xraykit.local
from xraykit import analysis, aws
from xraykit.aws import stream as aws_stream
from xraykit.dataset import (
    STORED,
    DatasetWriter,
    athena_ddl,
    open_dataset,
    percentiles_dask,
)
from xraykit.dataset.sql import expression_sql
from xraykit.exceptions import (
    ArgumentError,
    ArgumentTypeError,
    MissingDependencyError,
    TraceFileNotFoundError,
)
from xraykit.graph import service_graph
from xraykit.partitions.layout import MANIFEST
from xraykit.query import parse
from xraykit.samples.generate import generate_traces

moto_server, moto, policy, delays = (_shared.moto_server, _shared.moto, _shared.policy,
                                     _shared.delays)  # fmt: skip
_isolated = _shared._isolated

# means are compensated sums in both engines, added in a different order: equal to ~1 ulp;
# every other number (counts, percentiles, totals, histograms) is compared exactly
MEAN_COLUMNS = ("mean_s", "mean_response_time_s", "mean_event_age_s")


def canonical(ts: xraykit.TraceSet) -> dict[str, pd.DataFrame]:
    """Every frame sorted by its plain columns: a dataset keeps rows per partition."""
    out = {}
    for name, frame in ts.frames.items():
        keys = [c for c in frame.columns if frame[c].dtype != object]
        out[name] = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    return out


def assert_same_traces(got: xraykit.TraceSet, want: xraykit.TraceSet) -> None:
    for name, frame in canonical(want).items():
        pd.testing.assert_frame_equal(canonical(got)[name], frame, obj=name)


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame) -> None:
    means = [c for c in want.columns if c in MEAN_COLUMNS or c.startswith("mean_s")]
    pd.testing.assert_frame_equal(got.drop(columns=means), want.drop(columns=means),
                                  check_exact=True)  # fmt: skip
    pd.testing.assert_frame_equal(got[means], want[means], check_exact=False, rtol=1e-13)


@pytest.fixture(scope="module")
def shop() -> xraykit.TraceSet:
    return xraykit.load_sample("shop")


@pytest.fixture(scope="module")
def shop_path(shop: xraykit.TraceSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shop.save(tmp_path_factory.mktemp("shop") / "shop", partition_by=("date", "account"))


@pytest.fixture(scope="module")
def shop_ds(shop_path: Path) -> Iterator[Any]:
    with open_dataset(shop_path) as ds:
        yield ds


@pytest.fixture(scope="module")
def filters() -> xraykit.TraceSet:
    return xraykit.from_documents(json.loads(DATA.read_text()), source=DATA.name)


@pytest.fixture(scope="module")
def filters_ds(
    filters: xraykit.TraceSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    path = filters.save(tmp_path_factory.mktemp("filters") / "f", partition_by=("date", "account"))
    with open_dataset(path) as ds:
        yield ds


# -- writing -----------------------------------------------------------------------------------


def test_save_writes_one_hive_partitioned_folder_per_frame(shop: Any, shop_path: Path) -> None:
    manifest = json.loads((shop_path / MANIFEST).read_text())
    assert manifest["format"] == "xraykit-dataset" and manifest["partition_by"] == [
        "date",
        "account",
    ]
    # the shop's root segments all name the account; every trace started on 2025-03-04
    for frame in ("traces", "segments", "annotations", "requests_service", "graph_nodes"):
        files = sorted(
            p.relative_to(shop_path / frame) for p in (shop_path / frame).rglob("*.parquet")
        )
        assert [str(f.parent) for f in files] == ["date=2025-03-04/account=123456789012"], frame
    # plain pyarrow (what Spark, Dask and Athena see): the rows and the partition columns
    table = pads.dataset(shop_path / "traces", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(shop)
    assert set(table.column("date").to_pylist()) == {"2025-03-04"}
    assert set(table.column("account").to_pylist()) == {"123456789012"}
    assert set(p.name for p in shop_path.iterdir()) >= {*STORED[:6], "documents", MANIFEST}


def test_a_dataset_holds_every_frame_and_document_as_they_were(shop: Any, shop_ds: Any) -> None:
    back = shop_ds.to_traceset()
    assert_same_traces(back, shop)
    assert (
        back.raw_documents.sort_values(["trace_id", "entity_id"])
        .reset_index(drop=True)
        .equals(shop.raw_documents.sort_values(["trace_id", "entity_id"]).reset_index(drop=True))
    )
    one = shop.traces.trace_id[5]
    root = shop.traces.root_segment_id[5]
    assert back.trace(one).document(root) == shop.document(root)
    # typed annotation values come back with their Python types
    ann = back.annotations
    assert {type(v).__name__ for v in ann["value"]} == {
        type(v).__name__ for v in shop.annotations["value"]
    }


def test_account_partition_comes_from_the_root_then_any_segment_then_unknown(
    filters: Any, filters_ds: Any
) -> None:
    parts = filters_ds.sql("SELECT trace_id, account FROM traces ORDER BY trace_id")
    account = dict(zip(parts["trace_id"].str[-1].astype(int), parts["account"], strict=True))
    # traces 2 and 3: web (no account) calls orders-api in 111111111111; trace 7: the Lambda
    # function in 222222222222; the others name no account
    assert account == {2: "111111111111", 3: "111111111111", 7: "222222222222",
                       **{n: "unknown" for n in (1, 4, 5, 6, 8, 9)}}  # fmt: skip
    # every frame's rows of a trace sit in its partition
    seg = filters_ds.sql("SELECT DISTINCT s.trace_id, s.account FROM segments s")
    assert dict(zip(seg.trace_id, seg.account, strict=True)) == dict(
        zip(parts.trace_id, parts.account, strict=True)
    )


def test_partition_by_date_only_and_appending(filters: Any, tmp_path: Path) -> None:
    path = filters.save(tmp_path / "d", partition_by="date", documents=False)
    days = {f"date={d:%Y-%m-%d}" for d in filters.traces.start}
    assert {p.name for p in (path / "traces").iterdir()} == days
    assert all(p.suffix == ".parquet" for d in (path / "traces").iterdir() for p in d.iterdir())
    assert not (path / "documents").exists()
    filters.select(filters.traces.trace_id[:2]).save(path, partition_by="date")  # appended
    with open_dataset(path) as ds:
        assert len(ds) == len(filters) + 2
    with pytest.raises(ArgumentError, match="partitioned by"):
        filters.save(path, partition_by=("date", "account"))


def test_writing_a_batch_again_replaces_its_files(filters: Any, tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "w")
    writer.write(filters, "window-1")
    writer.remove("window-1")
    writer.write(filters, "window-1")  # a window pulled again after an interruption
    assert writer.done == set()
    writer.mark_done("window-1", {"traces": len(filters)})
    assert DatasetWriter(tmp_path / "w").done == {"window-1"}
    with open_dataset(tmp_path / "w") as ds:
        assert len(ds) == len(filters)


# -- the handle ----------------------------------------------------------------------------------


def test_counts_span_and_services_without_loading(shop: Any, shop_ds: Any) -> None:
    assert len(shop_ds) == len(shop)
    assert shop_ds.time_span == shop.time_span
    assert shop_ds.services == shop.services
    assert "2,481 traces" in repr(shop_ds)


def test_to_traceset_limit_and_window(shop: Any, shop_ds: Any) -> None:
    first = shop_ds.to_traceset(limit=10)
    expected = shop.traces.sort_values(["start", "trace_id"]).trace_id[:10]
    assert list(first.traces.trace_id) == list(expected)
    start, end = pd.Timestamp("2025-03-04 09:10", tz="UTC"), pd.Timestamp("2025-03-04 09:20")
    window = shop_ds.to_traceset(start=start, end=end)
    inside = shop.traces[
        (shop.traces.start >= start) & (shop.traces.start < end.tz_localize("UTC"))
    ]
    assert sorted(window.traces.trace_id) == sorted(inside.trace_id) and len(inside) > 100
    with pytest.raises(ArgumentError, match="limit"):
        shop_ds.to_traceset(limit=-1)


@pytest.mark.parametrize(("expression", "expected"), TABLE, ids=[e for e, _ in TABLE])
def test_query_pushdown_gives_what_the_traceset_gives(
    filters: Any, filters_ds: Any, expression: str, expected: list[int]
) -> None:
    got = filters_ds.query(expression, groups=GROUPS)
    want = filters.query(expression, groups=GROUPS)
    assert_same_traces(got, want)
    assert sorted(int(t[-1]) for t in got.traces.trace_id) == expected


def test_most_of_the_table_is_answered_by_sql_alone() -> None:
    exact = [e for e, _ in TABLE if expression_sql(parse(e))[1]]
    assert len(exact) >= 0.6 * len(TABLE)
    for expression in ("responsetime > 1", 'annotation.tier = "gold"', 'service("web") { fault }',
                       '!user = "bob"', "http.status >= 500 OR throttle"):  # fmt: skip
        assert expression in exact or expression_sql(parse(expression))[1], expression


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_combine(_real_clauses))
def test_query_pushdown_on_random_expressions(filters: Any, filters_ds: Any, tree: Any) -> None:
    expression = str(tree)
    want = sorted(filters.query(expression, groups=GROUPS).traces.trace_id)
    assert sorted(filters_ds.query(expression, groups=GROUPS).traces.trace_id) == want, expression


def test_query_in_a_time_window(shop: Any, shop_ds: Any) -> None:
    start, end = "2025-03-04 09:38", "2025-03-04 09:58"
    got = shop_ds.query("responsetime > 1", start=start, end=end)
    t = shop.traces
    want = t[(t.start >= pd.Timestamp(start, tz="UTC")) & (t.start < pd.Timestamp(end, tz="UTC"))
             & (t.response_time_s > 1)]  # fmt: skip
    assert sorted(got.traces.trace_id) == sorted(want.trace_id) and len(want) > 0


# -- analyses as SQL -------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["service", "edge", "trace"])
@pytest.mark.parametrize(
    "by", [None, "status", ["url", "method"], "user", "annotation.customer_tier"]
)
def test_percentiles_as_sql_equal_the_in_memory_table(
    shop: Any, shop_ds: Any, level: str, by: Any
) -> None:
    want = analysis.percentiles(shop, level=level, by=by, percentiles=(50, 90, 99, 99.9))
    got = shop_ds.percentiles(level=level, by=by, percentiles=(50, 90, 99, 99.9))
    assert_same_table(got, want)


@pytest.mark.parametrize("level", ["service", "edge", "trace"])
@pytest.mark.parametrize("freq", [None, "5min"])
def test_sla_as_sql_equals_the_in_memory_table(
    shop: Any, shop_ds: Any, level: str, freq: Any
) -> None:
    assert_same_table(
        shop_ds.sla(0.3, level=level, freq=freq), analysis.sla(shop, 0.3, level=level, freq=freq)
    )


@pytest.mark.parametrize("level", ["service", "edge", "trace"])
def test_compare_windows_as_sql_equals_compare_of_the_tracesets(
    shop: Any, shop_ds: Any, level: str
) -> None:
    cut = pd.Timestamp("2025-03-04 09:38", tz="UTC")
    t = shop.traces
    before, after = shop.select(t.trace_id[t.start < cut]), shop.select(t.trace_id[t.start >= cut])
    want = analysis.compare(before, after, level=level, by="status" if level == "trace" else None)
    got = shop_ds.compare(("2025-03-04", cut), (cut, "2025-03-05"), level=level,
                          by="status" if level == "trace" else None)  # fmt: skip
    assert_same_table(got, want)


def test_service_graph_statistics_as_sql(shop: Any, shop_ds: Any) -> None:
    want, got = service_graph(shop), shop_ds.service_graph()
    assert_same_table(got.nodes, want.nodes)
    assert_same_table(got.edges, want.edges)
    assert (got.start, got.end) == (want.start, want.end)


def test_analyses_of_a_window(shop: Any, shop_ds: Any) -> None:
    start, end = (
        pd.Timestamp("2025-03-04 09:20", tz="UTC"),
        pd.Timestamp("2025-03-04 09:40", tz="UTC"),
    )
    part = shop.select(
        shop.traces.trace_id[(shop.traces.start >= start) & (shop.traces.start < end)]
    )
    assert_same_table(shop_ds.percentiles(start=start, end=end), analysis.percentiles(part))
    graph = shop_ds.service_graph(start=start, end=end)
    assert_same_table(graph.nodes, service_graph(part).nodes)


# -- Dask and Athena -------------------------------------------------------------------------------------


# dask's Parquet reader calls reset_index(inplace=True), deprecated in pandas 3.1
@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
def test_dask_on_a_two_worker_cluster_gives_the_same_percentiles(
    shop: Any, shop_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    # in-process workers talk over in-memory queues: no socket is opened (no dashboard either)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        for level in ("service", "edge"):
            got = percentiles_dask(shop_path, client, level=level)
            assert_same_table(got, analysis.percentiles(shop, level=level))


def test_athena_ddl_for_every_frame(shop_path: Path) -> None:
    ddl = athena_ddl(shop_path, database="obs", table_prefix="t_")
    statements = ddl.split("\n\n")
    assert len(statements) == len(STORED)
    traces = next(s for s in statements if "`obs`.`t_traces`" in s)
    assert "`start` timestamp" in traces and "`http_status` bigint" in traces
    assert "`has_fault` boolean" in traces and "`duration_s` double" in traces
    assert "PARTITIONED BY (`date` string, `account` string)" in traces
    assert "'projection.account.values' = '123456789012'" in traces  # read from the folders
    assert f"LOCATION '{shop_path}/traces/'" in traces
    s3 = athena_ddl("s3://bucket/xray/", frames=["segments"], projection=False)
    assert (
        "LOCATION 's3://bucket/xray/segments/'" in s3
        and "MSCK REPAIR TABLE `xray`.`xray_segments`;" in s3
    )
    assert "projection" not in s3
    injected = athena_ddl("s3://bucket/xray", frames=["traces"])
    assert "'projection.account.type' = 'injected'" in injected
    assert (
        "'storage.location.template' = 's3://bucket/xray/traces/date=${date}/account=${account}/'"
        in injected
    )
    with pytest.raises(ArgumentError, match="frames"):
        athena_ddl("s3://b/x", frames=["nope"])
    with pytest.raises(ArgumentError, match="database"):
        athena_ddl("s3://b/x", database="a-b; DROP")


# -- errors ---------------------------------------------------------------------------------------------


def test_errors_say_what_is_wrong(shop: Any, shop_ds: Any, tmp_path: Path) -> None:
    with pytest.raises(TraceFileNotFoundError, match="does not exist"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(ArgumentError, match="not an xraykit dataset"):
        open_dataset(tmp_path)
    saved = shop.select(shop.traces.trace_id[:3]).save(tmp_path / "one.traceset")
    with pytest.raises(ArgumentError, match="load_file"):
        open_dataset(saved)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ArgumentError, match="new or empty folder"):
        shop.save(tmp_path / "busy", partition_by="date")
    with pytest.raises(ArgumentError, match="partition_by"):
        shop.save(tmp_path / "x", partition_by=("date", "region"))
    with pytest.raises(ArgumentTypeError, match="partition_by"):
        shop.save(tmp_path / "x", partition_by=3)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="by"):
        shop_ds.percentiles(by="colour")
    with pytest.raises(ArgumentError, match="freq"):
        shop_ds.sla(0.3, freq="MS")
    with pytest.raises(ArgumentTypeError, match="start, end"):
        shop_ds.compare("before", ("a", "b"))
    with pytest.raises(ArgumentTypeError, match="expression"):
        shop_ds.query(3)  # type: ignore[arg-type]


def test_without_duckdb_the_error_names_the_dataset_extra(
    shop_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb raises ImportError
    with pytest.raises(MissingDependencyError, match=r"xraykit\[dataset\]"):
        open_dataset(shop_path)


# -- streaming pulls -----------------------------------------------------------------------------------


@pytest.fixture
def local_xray() -> Iterator[tuple[Any, pd.Timestamp]]:
    """A local X-Ray holding 240 generated traces: 30 in each quarter of an hour of the two
    hours from ``start`` (four hours ago, to the hour); each burst lasts seconds."""
    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta("4h")).floor("h")
    documents = [segment["Document"]
                 for k in range(8)
                 for response in generate_traces(30, seed=k, start=(
                     start + pd.Timedelta(minutes=15 * k + 2)).timestamp())
                 for trace in response["Traces"] for segment in trace["Segments"]]  # fmt: skip
    with xraykit.local.start("127.0.0.1:0", store=":memory:") as xr:
        assert xr.store.put(documents).rejected == []
        yield xr, start


def _spy_windows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    pulled: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    real = aws_stream.pull_window

    def spy(conn: Any, query: Any, **kwargs: Any) -> Any:
        pulled.append((query.start, query.end))
        return real(conn, query, **kwargs)

    monkeypatch.setattr(aws_stream, "pull_window", spy)
    return pulled


def test_fetch_to_a_dataset_writes_what_fetch_returns(local_xray: Any, tmp_path: Path) -> None:
    xr, start = local_xray
    end = start + pd.Timedelta("2h")
    common = dict(start=start, end=end, endpoint_url=xr.endpoint_url, progress=False)
    ts = xraykit.fetch(**common)
    ds = xraykit.fetch(**common, to=tmp_path / "pull", window="20m")
    try:
        assert isinstance(ds, xraykit.dataset.Dataset) and len(ts) > 50
        assert_same_traces(ds.to_traceset(), ts)
        assert ds.cost.traces_retrieved == len(ts) == ds.cost.traces_scanned
        assert len(ds.manifest["windows"]) == 6  # 2 h in settled, complete windows of 20 min
    finally:
        ds.close()


def test_a_resumed_pull_skips_the_windows_already_written(
    local_xray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xr, start = local_xray
    pulled = _spy_windows(monkeypatch)
    common = dict(endpoint_url=xr.endpoint_url, progress=False, to=tmp_path / "pull", window="30m")
    xraykit.fetch(start=start, end=start + pd.Timedelta("1h"), **common).close()
    assert len(pulled) == 2
    # an interrupted run: the next window was written, but never recorded as done
    before = len(open_dataset(tmp_path / "pull"))
    pulled.clear()
    ds = xraykit.fetch(start=start, end=start + pd.Timedelta("2h"), **common)
    try:
        assert [(a - start) / pd.Timedelta("30m") for a, _ in pulled] == [3, 2]  # newest first
        assert ds.cost.api_calls.get("BatchGetTraces", 0) > 0
        whole = xraykit.fetch(start=start, end=start + pd.Timedelta("2h"),
                              endpoint_url=xr.endpoint_url, progress=False)  # fmt: skip
        assert len(ds) == len(whole) > before
        assert sorted(ds.to_traceset().traces.trace_id) == sorted(whole.traces.trace_id)
    finally:
        ds.close()
    pulled.clear()
    again = xraykit.fetch(start=start, end=start + pd.Timedelta("2h"), **common)
    assert pulled == [] and again.cost.total_calls == 0 and len(again) == len(whole)
    again.close()


def test_an_unsettled_window_is_written_but_pulled_again(
    local_xray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xr, _ = local_xray
    pulled = _spy_windows(monkeypatch)
    common = dict(since="10m", endpoint_url=xr.endpoint_url, progress=False,
                  to=tmp_path / "recent", window="1h")  # fmt: skip
    xraykit.fetch(**common).close()
    xraykit.fetch(**common).close()
    assert len(pulled) >= 2  # the last minutes are never recorded as done
    assert json.loads((tmp_path / "recent" / MANIFEST).read_text())["windows"] == {}


def test_streaming_keeps_the_cache_and_the_cost(moto: Any, policy: Any, tmp_path: Path) -> None:
    url, injector = moto
    client = _shared.xray_client(url)
    when = _shared.NOW - pd.Timedelta("50m").to_pytimedelta()
    ids = _shared.put_traces(client, 12, when=when)
    common = dict(since="2h", client=client, account_id=_shared.ACCOUNT, cache=True,
                  progress=False, retry=policy, window="1h")  # fmt: skip
    first = aws.fetch(**common, to=tmp_path / "a")
    assert len(first) == 12 and first.cost.traces_retrieved == 12
    # partitions name the pull's account: the documents name none
    assert set(first.sql("SELECT DISTINCT account FROM traces")["account"]) == {_shared.ACCOUNT}
    calls = len(injector.log)
    second = aws.fetch(**common, to=tmp_path / "b")
    batch = [e for e in injector.log[calls:] if e["path"] == "/Traces"]
    assert batch == [] and second.cost.cached_traces == 12 and second.cost.traces_retrieved == 0
    assert sorted(second.to_traceset().traces.trace_id) == sorted(ids)
    first.close()
    second.close()


def test_streaming_arguments_are_checked_before_any_call(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="window"):
        xraykit.fetch(since="1h", endpoint_url="http://127.0.0.1:9", to=tmp_path, window="7h")
    with pytest.raises(ArgumentError, match="window"):
        xraykit.fetch(since="1h", endpoint_url="http://127.0.0.1:9", to=tmp_path, window="soon")


def test_memory_of_a_streaming_pull_is_one_window(monkeypatch: pytest.MonkeyPatch, local_xray: Any,
                                                  tmp_path: Path) -> None:  # fmt: skip
    """Each window's TraceSet is written and dropped: the writer never sees two at once."""
    xr, start = local_xray
    sizes: list[int] = []
    real = DatasetWriter.write

    def write(self: Any, ts: Any, key: Any = None, **kwargs: Any) -> int:
        sizes.append(len(ts))
        return real(self, ts, key, **kwargs)

    monkeypatch.setattr(DatasetWriter, "write", write)
    ds = xraykit.fetch(start=start, end=start + pd.Timedelta("2h"), endpoint_url=xr.endpoint_url,
                       progress=False, to=tmp_path / "w", window="15m")  # fmt: skip
    assert len(sizes) == 8 and sum(sizes) == len(ds) and max(sizes) < len(ds) / 3
    ds.close()


def test_an_interrupted_pull_stops_warns_and_leaves_the_window_to_redo(
    local_xray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xr, start = local_xray
    real = aws_stream.pull_window
    calls: list[pd.Timestamp] = []

    def interrupted_second(conn: Any, query: Any, **kwargs: Any) -> Any:
        calls.append(query.start)
        ts, complete, _ = real(conn, query, **kwargs)
        return (ts, False, True) if len(calls) == 2 else (ts, complete, False)

    monkeypatch.setattr(aws_stream, "pull_window", interrupted_second)
    common = dict(start=start, end=start + pd.Timedelta("2h"), endpoint_url=xr.endpoint_url,
                  progress=False, to=tmp_path / "cut", window="30m")  # fmt: skip
    with pytest.warns(xraykit.exceptions.XrayKitWarning, match="call again"):
        ds = xraykit.fetch(**common)
    assert len(calls) == 2 and len(ds.manifest["windows"]) == 1
    ds.close()
    monkeypatch.setattr(aws_stream, "pull_window", real)
    whole = xraykit.fetch(**{k: v for k, v in common.items() if k not in ("to", "window")})
    with xraykit.fetch(**common) as again:  # the cut window is pulled again, not duplicated
        assert len(again.manifest["windows"]) == 4
        assert sorted(again.to_traceset().traces.trace_id) == sorted(whole.traces.trace_id)

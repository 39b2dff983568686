"""Tests of the scenario generator and of the committed synthetic samples."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import xraykit
from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.samples.generate import (
    generate_cross_account,
    generate_lambda_cold_starts,
    generate_shop,
    generate_traces,
    write_responses,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"
TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
ENTITY_ID = re.compile(r"^[0-9a-f]{16}$")
SYNTHETIC = ("shop", "lambda-cold-starts", "cross-account")
T0 = datetime(2025, 3, 4, 9, tzinfo=UTC).timestamp()


def _make_samples_settings() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(
        "make_samples", ROOT / "scripts" / "make_samples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings: dict[str, Any] = module.SAMPLES
    return settings


def _read_sample(name: str) -> list[dict[str, Any]]:
    text = gzip.decompress((SAMPLES / f"{name}.jsonl.gz").read_bytes()).decode()
    return [json.loads(line) for line in text.splitlines()]


def _traces(responses: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(trace record, parsed segment documents) for every trace."""
    return [
        (t, [json.loads(s["Document"]) for s in t["Segments"]])
        for r in responses
        for t in r["Traces"]
    ]


def _walk(doc: dict[str, Any], depth: int = 0) -> Iterator[tuple[dict[str, Any], int]]:
    """Every entity of a document with its depth (0 = the segment itself)."""
    yield doc, depth
    for sub in doc.get("subsegments", []):
        yield from _walk(sub, depth + 1)


@pytest.fixture(scope="module")
def samples() -> dict[str, list[tuple[dict[str, Any], list[dict[str, Any]]]]]:
    return {name: _traces(_read_sample(name)) for name in SYNTHETIC}


# --------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("file_name", sorted(_make_samples_settings()))
def test_committed_sample_is_what_its_seed_generates(file_name: str, tmp_path: Path) -> None:
    generate, kwargs = _make_samples_settings()[file_name]
    fresh = write_responses(generate(**kwargs), tmp_path / file_name)
    assert gzip.decompress(fresh.read_bytes()) == gzip.decompress(
        (SAMPLES / file_name).read_bytes()
    )


def test_sample_readme_describes_every_sample() -> None:
    readme = (SAMPLES / "README.md").read_text()
    for path in SAMPLES.glob("*.gz"):
        assert f"`{path.name}`" in readme
        assert f"`{path.name.split('.')[0]}`" in readme


def test_samples_are_under_5_mb_in_all() -> None:
    total = sum(p.stat().st_size for p in SAMPLES.glob("*.gz"))
    assert 0 < total < 5_000_000


@pytest.mark.parametrize(
    "generate", [generate_shop, generate_lambda_cold_starts, generate_cross_account]
)
def test_same_seed_same_documents_other_seed_other_documents(generate: Any) -> None:
    first = generate(n_traces=30, seed=7)
    assert generate(n_traces=30, seed=7) == first
    other = generate(n_traces=30, seed=8)
    assert [t["Id"] for r in other for t in r["Traces"]] != [
        t["Id"] for r in first for t in r["Traces"]
    ]


def test_start_moves_every_time_and_trace_id() -> None:
    base = _traces(generate_shop(n_traces=20, seed=3))
    later = _traces(generate_shop(n_traces=20, seed=3, start="2025-03-05T09:00:00Z"))
    assert len(base) == len(later)
    for (_, docs_a), (trace_b, docs_b) in zip(base, later, strict=True):
        for a, b in zip(docs_a, docs_b, strict=True):
            assert b["start_time"] - a["start_time"] == pytest.approx(86400, abs=1e-5)
        assert int(trace_b["Id"][2:10], 16) == int(min(d["start_time"] for d in docs_b))


def test_start_accepts_datetime_epoch_and_naive_utc() -> None:
    aware = generate_cross_account(n_traces=3, start=datetime(2025, 1, 1, tzinfo=UTC))
    naive = generate_cross_account(n_traces=3, start=datetime(2025, 1, 1))
    epoch = generate_cross_account(n_traces=3, start=datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    assert aware == naive == epoch


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_traces": 0}, ArgumentError, "`n_traces` must be a positive integer, but 0"),
        ({"n_traces": True}, ArgumentError, "`n_traces` must be a positive integer, but True"),
        ({"n_traces": 2.5}, ArgumentError, "but 2.5 was passed"),
        ({"start": "yesterday"}, ArgumentError, "ISO 8601 time such as"),
        ({"start": [2025]}, ArgumentTypeError, "`start` must be a datetime"),
        ({"start": True}, ArgumentTypeError, "`start` must be a datetime"),
    ],
)
def test_bad_arguments_say_what_was_expected(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        generate_shop(**kwargs)


# --------------------------------------------------------------------------- X-Ray formats


@pytest.mark.parametrize("name", SYNTHETIC)
def test_response_shape_is_batch_get_traces(name: str) -> None:
    responses = _read_sample(name)
    for response in responses:
        assert set(response) == {"Traces", "UnprocessedTraceIds"}
        assert response["UnprocessedTraceIds"] == []
        assert 1 <= len(response["Traces"]) <= 5
        for trace in response["Traces"]:
            assert set(trace) == {"Id", "Duration", "LimitExceeded", "Segments"}
            assert trace["LimitExceeded"] is False
            for segment in trace["Segments"]:
                assert set(segment) == {"Id", "Document"}
                assert isinstance(segment["Document"], str)
                assert json.loads(segment["Document"])["id"] == segment["Id"]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_ids_have_x_ray_formats_and_are_unique(name: str, samples: dict[str, Any]) -> None:
    seen_traces = set()
    for trace, docs in samples[name]:
        assert TRACE_ID.match(trace["Id"]), trace["Id"]
        assert trace["Id"] not in seen_traces
        seen_traces.add(trace["Id"])
        ids = []
        for doc in docs:
            assert doc["trace_id"] == trace["Id"]
            for entity, _ in _walk(doc):
                assert ENTITY_ID.match(entity["id"]), entity["id"]
                ids.append(entity["id"])
                cause = entity.get("cause")
                if isinstance(cause, dict):
                    for exc in cause["exceptions"]:
                        assert ENTITY_ID.match(exc["id"])
                        ids.append(exc["id"])
        assert len(ids) == len(set(ids)), f"duplicate id in {trace['Id']}"


@pytest.mark.parametrize("name", SYNTHETIC)
def test_trace_id_time_and_duration_match_the_documents(name: str, samples: dict[str, Any]) -> None:
    for trace, docs in samples[name]:
        start = min(e["start_time"] for d in docs for e, _ in _walk(d))
        end = max(e["end_time"] for d in docs for e, _ in _walk(d))
        assert start == min(d["start_time"] for d in docs)  # nothing starts before its segments
        assert int(trace["Id"][2:10], 16) == int(start)
        assert trace["Duration"] == pytest.approx(end - start, abs=6e-4)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_parent_ids_resolve_within_the_trace(name: str, samples: dict[str, Any]) -> None:
    for trace, docs in samples[name]:
        subsegments = {e["id"]: e for d in docs for e, depth in _walk(d) if depth > 0}
        segments = {d["id"]: d for d in docs}
        roots = [d for d in docs if "parent_id" not in d]
        assert len(roots) == 1, trace["Id"]
        for doc in docs:
            if "parent_id" not in doc:
                continue
            if doc.get("origin") == "AWS::Lambda::Function":
                # X-Ray's Lambda pair: the function segment's parent is the service segment
                parent = segments[doc["parent_id"]]
                assert (parent["origin"], parent["name"]) == ("AWS::Lambda", doc["name"])
                continue
            parent = subsegments[doc["parent_id"]]
            assert (
                parent["start_time"] <= doc["start_time"] <= doc["end_time"] <= parent["end_time"]
            )
            if doc.get("inferred"):
                assert (doc["start_time"], doc["end_time"]) == (
                    parent["start_time"],
                    parent["end_time"],
                )
                for key in ("http", "aws", "sql", "fault", "error", "throttle"):
                    assert doc.get(key) == parent.get(key)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_subsegments_lie_inside_their_parents(name: str, samples: dict[str, Any]) -> None:
    for _, docs in samples[name]:
        for doc in docs:
            for entity, _ in _walk(doc):
                assert entity["start_time"] <= entity["end_time"]
                for sub in entity.get("subsegments", []):
                    if sub["name"] == "Initialization":  # Lambda reports it before the function
                        continue
                    assert (
                        entity["start_time"]
                        <= sub["start_time"]
                        <= sub["end_time"]
                        <= entity["end_time"]
                    )


def _expected_flags(status: int) -> dict[str, bool]:
    return {"fault": status >= 500, "error": 400 <= status < 500, "throttle": status == 429}


@pytest.mark.parametrize("name", SYNTHETIC)
def test_flags_follow_the_status(name: str, samples: dict[str, Any]) -> None:
    statuses: Counter[int] = Counter()
    for _, docs in samples[name]:
        for doc in docs:
            for entity, _ in _walk(doc):
                flags = {k: entity.get(k, False) for k in ("fault", "error", "throttle")}
                assert all(v is True for k, v in entity.items() if k in flags and v), entity["id"]
                status = entity.get("http", {}).get("response", {}).get("status")
                if status is not None:
                    statuses[status] += 1
                    assert flags == _expected_flags(status), (entity["id"], status, flags)
                elif not entity.get("inferred"):  # inferred ones copy their subsegment's flags
                    assert not flags["error"] and not flags["throttle"]
                    assert not flags["fault"] or "cause" in entity
    assert statuses[200] > 0


@pytest.mark.parametrize("name", SYNTHETIC)
def test_namespaces_and_fields(name: str, samples: dict[str, Any]) -> None:
    seen: Counter[str] = Counter()
    for _, docs in samples[name]:
        for doc in docs:
            for entity, depth in _walk(doc):
                if depth == 0:
                    assert "namespace" not in entity
                    continue
                ns = entity.get("namespace")
                seen[str(ns)] += 1
                if ns == "aws":
                    assert entity["name"] in {"DynamoDB", "SQS", "SNS", "Lambda"}
                    assert {"operation", "region", "request_id"} <= set(entity["aws"])
                    if entity["name"] == "DynamoDB":
                        assert entity["aws"]["table_name"] in entity["aws"]["resource_names"]
                    if entity["name"] == "SQS":
                        assert entity["aws"]["queue_url"].startswith("https://sqs.us-east-1.")
                elif ns == "remote" and "sql" in entity:
                    assert {"url", "database_type", "sanitized_query"} <= set(entity["sql"])
                elif ns == "remote":
                    host = re.match(r"https?://([^/:]+)", entity["http"]["request"]["url"])
                    assert host is not None and entity["name"] == host.group(1)
                    assert entity["http"]["request"]["method"].upper() in {"GET", "POST"}
    assert seen["aws"] > 0 and seen["local"] > 0


def test_bare_string_causes_point_at_an_exception_in_the_same_trace(
    samples: dict[str, Any],
) -> None:
    bare = 0
    for _, docs in samples["shop"]:
        exceptions = {
            exc["id"]
            for d in docs
            for e, _ in _walk(d)
            if isinstance(e.get("cause"), dict)
            for exc in e["cause"]["exceptions"]
        }
        for doc in docs:
            for entity, _ in _walk(doc):
                if isinstance(entity.get("cause"), str):
                    bare += 1
                    assert entity["cause"] in exceptions
                if isinstance(entity.get("cause"), dict):
                    for exc in entity["cause"]["exceptions"]:
                        if "cause" in exc:
                            assert exc["cause"] in exceptions
    assert bare > 0


# --------------------------------------------------------------------------- the shop


def _origins(docs: list[dict[str, Any]]) -> Counter[str]:
    return Counter(d.get("origin", "") for d in docs)


def test_shop_has_every_node_the_issue_asks_for(samples: dict[str, Any]) -> None:
    names = {(d["name"], d.get("origin")) for _, docs in samples["shop"] for d in docs}
    assert {
        ("shop-api/prod", "AWS::ApiGateway::Stage"),
        ("payments", "AWS::ECS::Container"),
        ("inventory", "AWS::EC2::Instance"),
        ("DynamoDB", "AWS::DynamoDB::Table"),
        ("SQS", "AWS::SQS::Queue"),
        ("api.paygate.example", "remote"),
        ("order-worker", "AWS::Lambda"),
    } <= names
    assert any(origin == "Database::SQL" for _, origin in names)
    for _, docs in samples["shop"]:
        origins = _origins(docs)
        assert origins["AWS::Lambda"] == origins["AWS::Lambda::Function"] == 1
    inventory = [d for _, docs in samples["shop"] for d in docs if d["name"] == "inventory"]
    assert all({"instance_id", "availability_zone"} <= set(d["aws"]["ec2"]) for d in inventory)
    assert 1500 <= len(samples["shop"]) <= 3000


def test_shop_lambda_subsegments_and_cold_starts(samples: dict[str, Any]) -> None:
    cold = 0
    for _, docs in samples["shop"]:
        fn = next(d for d in docs if d.get("origin") == "AWS::Lambda::Function")
        names = [s["name"] for s in fn["subsegments"]]
        assert names[-3:-1] == ["Invocation", "Overhead"] or names[:3][-2:] == [
            "Invocation",
            "Overhead",
        ]
        if names[0] == "Initialization":
            cold += 1
            assert names[1:3] == ["Invocation", "Overhead"]
        else:
            assert "Initialization" not in names
    assert 0 < cold < 0.05 * len(samples["shop"])


def test_shop_annotations_users_and_metadata(samples: dict[str, Any]) -> None:
    kinds: dict[str, set[type]] = defaultdict(set)
    users = set()
    namespaces = set()
    for _, docs in samples["shop"]:
        for doc in docs:
            if "user" in doc:
                users.add(doc["user"])
            for entity, _ in _walk(doc):
                for key, value in entity.get("annotations", {}).items():
                    kinds[key].add(type(value))
                namespaces |= set(entity.get("metadata", {}))
    assert kinds["customer_tier"] == {str}
    assert kinds["cart_value"] <= {float, int}
    assert kinds["is_retry"] == {bool}
    assert len(users) > 50
    assert {"shop", "default", "inventory", "orders"} <= namespaces


def test_shop_consumer_traces_are_linked_to_their_sqs_message(samples: dict[str, Any]) -> None:
    sends = {}
    for trace, docs in samples["shop"]:
        for doc in docs:
            for entity, _ in _walk(doc):
                if entity.get("namespace") == "aws" and entity["name"] == "SQS":
                    sends[entity["id"]] = (trace["Id"], entity)
    consumers = [docs for _, docs in samples["shop"] if "order-worker" in {d["name"] for d in docs}]
    assert len(consumers) == len(sends) > 0
    for docs in consumers:
        svc = next(d for d in docs if d.get("origin") == "AWS::Lambda")
        assert "parent_id" not in svc
        (link,) = svc["links"]
        producer_trace, sqs = sends[link["id"]]
        assert link["trace_id"] == producer_trace != svc["trace_id"]
        assert svc["start_time"] > sqs["end_time"]


def _root(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if "parent_id" not in d)


def test_shop_rates_peak_throttles_and_incident(samples: dict[str, Any]) -> None:
    roots = [_root(docs) for _, docs in samples["shop"] if _root(docs)["name"] == "shop-api/prod"]
    n = len(roots)
    faults = sum(r.get("fault", False) for r in roots) / n
    errors = sum(r.get("error", False) for r in roots) / n
    assert 0.002 < faults < 0.05 and 0.005 < errors < 0.06
    minutes = [int((r["start_time"] - T0) // 60) for r in roots]
    per_minute = Counter(minutes)
    busiest = max(per_minute, key=per_minute.__getitem__)
    assert 15 <= busiest <= 35 and per_minute[busiest] > 2 * per_minute[5]
    throttled_at = [
        int((d["start_time"] - T0) // 60)
        for _, docs in samples["shop"]
        for d in docs
        if d.get("throttle")
    ]
    assert throttled_at and all(12 <= m <= 40 for m in throttled_at)
    sql = defaultdict(list)
    for _, docs in samples["shop"]:
        for d in docs:
            if d.get("origin") == "Database::SQL":
                inside = 38 <= (d["start_time"] - T0) / 60 < 58
                sql[inside].append(d["end_time"] - d["start_time"])
    median = {k: sorted(v)[len(v) // 2] for k, v in sql.items()}
    assert median[True] > 5 * median[False]


# --------------------------------------------------------------------------- cold starts


def test_cold_starts(samples: dict[str, Any]) -> None:
    seen: set[str] = set()
    cold: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for _, docs in samples["lambda-cold-starts"]:
        svc = next(d for d in docs if d.get("origin") == "AWS::Lambda")
        fn = next(d for d in docs if d.get("origin") == "AWS::Lambda::Function")
        assert "parent_id" not in svc and fn["parent_id"] == svc["id"]
        subs = {s["name"]: s for s in fn["subsegments"]}
        handler = next(s for name, s in subs.items() if name.startswith("## "))
        is_cold = "Initialization" in subs
        assert handler["annotations"]["ColdStart"] is is_cold
        assert handler["annotations"]["Service"] == fn["name"]
        if fn["name"] not in seen:
            assert is_cold, "the first invocation of a function is always cold"
            seen.add(fn["name"])
        if is_cold:
            init = subs["Initialization"]
            assert svc["start_time"] < init["start_time"] < init["end_time"] < fn["start_time"]
        total[fn["name"]] += 1
        cold[fn["name"]] += is_cold
    ratio = {name: cold[name] / total[name] for name in total}
    assert set(ratio) == {"auth-token", "image-resize", "report-builder", "notify"}
    assert ratio["auth-token"] < 0.02 < ratio["notify"]
    assert ratio["report-builder"] > 0.4 > ratio["image-resize"]


def test_cold_start_initialization_is_slower_for_java(samples: dict[str, Any]) -> None:
    init = defaultdict(list)
    for _, docs in samples["lambda-cold-starts"]:
        fn = next(d for d in docs if d.get("origin") == "AWS::Lambda::Function")
        for sub in fn["subsegments"]:
            if sub["name"] == "Initialization":
                init[fn["name"]].append(sub["end_time"] - sub["start_time"])
    assert min(init["report-builder"]) > max(init["auth-token"])


# --------------------------------------------------------------------------- cross-account


def test_cross_account_ids(samples: dict[str, Any]) -> None:
    accounts = set()
    for _, docs in samples["cross-account"]:
        by_parent = {d["parent_id"]: d for d in docs if "parent_id" in d}
        for doc in docs:
            account = doc["aws"]["account_id"]
            assert re.fullmatch(r"\d{12}", account)
            accounts.add(account)
            for entity, depth in _walk(doc):
                if depth and entity.get("namespace") == "aws":
                    callee = by_parent[entity["id"]]
                    assert entity["aws"]["account_id"] == callee["aws"]["account_id"]
                    if entity["name"] == "SQS":
                        assert f"/{entity['aws']['account_id']}/" in entity["aws"]["queue_url"]
    assert accounts == {"111111111111", "222222222222", "333333333333"}
    crossing = 0
    for _, docs in samples["cross-account"]:
        segments = {d["id"]: d for d in docs}
        subs = {e["id"]: d for d in docs for e, depth in _walk(d) if depth}
        for doc in docs:
            caller = subs.get(doc.get("parent_id", ""))
            if caller is not None and caller["aws"]["account_id"] != doc["aws"]["account_id"]:
                crossing += 1
        assert segments
    assert crossing >= 2 * len(samples["cross-account"])


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize("name", [*SYNTHETIC, "sdk-capture"])
def test_every_sample_loads_without_problems(name: str) -> None:
    path = next(SAMPLES.glob(f"{name}.*.gz"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traces = xraykit.load_file(path)
    assert len(traces) > 0
    assert traces.problems.empty, traces.problems.head().to_dict("records")
    assert not traces.traces["is_partial"].any()


def test_loaded_shop_matches_the_documents(samples: dict[str, Any]) -> None:
    traces = xraykit.load_file(SAMPLES / "shop.jsonl.gz")
    assert len(traces) == len(samples["shop"])
    assert len(traces.segments) == sum(len(docs) for _, docs in samples["shop"])
    assert traces.segments["inferred"].sum() == sum(
        d.get("inferred", False) for _, docs in samples["shop"] for d in docs
    )
    assert traces.traces["has_throttle"].sum() == sum(
        any(e.get("throttle") for d in docs for e, _ in _walk(d)) for _, docs in samples["shop"]
    )


# --------------------------------------------------------------------------- benchmark data


def test_generate_traces_shape() -> None:
    responses = list(generate_traces(400, seed=5))
    assert all(1 <= len(r["Traces"]) <= 5 for r in responses)
    pairs = _traces(responses)
    assert len(pairs) == 400
    segments = sum(len(docs) for _, docs in pairs)
    assert 2.5 <= segments / 400 <= 3.5
    assert list(generate_traces(400, seed=5)) == responses
    for trace, docs in pairs:
        assert int(trace["Id"][2:10], 16) == int(min(d["start_time"] for d in docs))
    kinds = {type(v) for _, docs in pairs for d in docs for v in d.get("annotations", {}).values()}
    assert {str, int, bool} <= kinds
    assert any(d.get("throttle") for _, docs in pairs for d in docs)
    assert any(d.get("fault") for _, docs in pairs for d in docs)


def test_generate_traces_is_lazy() -> None:
    stream = generate_traces(10**9)
    first = next(stream)
    assert len(first["Traces"]) == 5


# --------------------------------------------------------------------------- writing


def test_write_responses_gzip_is_reproducible_and_anonymous(tmp_path: Path) -> None:
    responses = generate_cross_account(n_traces=12, seed=4)
    a = write_responses(responses, tmp_path / "a.jsonl.gz").read_bytes()
    b = write_responses(iter(responses), tmp_path / "b.jsonl.gz").read_bytes()
    assert a == b
    assert a[:2] == b"\x1f\x8b"
    assert a[3] & 0x08 == 0  # no FNAME field
    assert a[4:8] == b"\0\0\0\0"  # mtime 0
    lines = gzip.decompress(a).decode().splitlines()
    assert [json.loads(line) for line in lines] == responses
    assert all(" " not in line.split('"Document"')[0] for line in lines)


def test_write_responses_plain(tmp_path: Path) -> None:
    responses = generate_cross_account(n_traces=6, seed=4)
    out = write_responses(responses, str(tmp_path / "plain.jsonl"))
    assert out == tmp_path / "plain.jsonl"
    assert out.read_text().count("\n") == len(responses) == 2
    assert len(xraykit.load_file(out)) == 6

"""Benchmark: loading OpenTelemetry (OTLP/JSON) traces against the same traces as X-Ray JSON.

The benchmark traces of :mod:`common` (``BatchGetTraces`` responses, one per line) are
written once more as OTLP/JSON export requests, one request (one trace) per line: each
segment a SERVER span of its own resource (``service.name``), each subsegment a CLIENT span
(remote or AWS calls, with their HTTP, AWS and SQL attributes) or an INTERNAL span,
annotations as attributes listed in ``aws.xray.annotations``. Prints, measured in one run:

* (a) ``xraykit.load_file`` of the X-Ray JSON lines;
* (b) ``xraykit.load_file`` of the OTLP/JSON lines (translated span by span, as the ADOT
  collector's X-Ray exporter would, then read as segment documents);
* (b)/(a): target ≤ 3. The two alternate for ``--rounds`` rounds; the fastest of each counts.
  Both wall-clock and CPU time (of the process, all threads) are printed: on a machine that
  other work shares, CPU time is the steadier measure.

Usage::

    .venv/bin/python benchmarks/bench_otlp.py            # 50,000 traces
    .venv/bin/python benchmarks/bench_otlp.py --small    # 2,000 traces (a quick look)
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from common import benchmark_file

import xraykit

_KINDS = {"server": 2, "client": 3, "internal": 1}


def _value(value: Any) -> dict[str, Any]:
    if type(value) is bool:
        return {"boolValue": value}
    if type(value) is int:
        return {"intValue": str(value)}
    if type(value) is float:
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attrs(pairs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in pairs.items() if v is not None]


def _span(entity: dict[str, Any], trace_id: str, parent: str, kind: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    request = (entity.get("http") or {}).get("request") or {}
    response = (entity.get("http") or {}).get("response") or {}
    attrs["http.request.method"] = request.get("method")
    attrs["url.full"] = request.get("url")
    attrs["user_agent.original"] = request.get("user_agent")
    attrs["client.address"] = request.get("client_ip")
    attrs["http.response.status_code"] = response.get("status")
    aws = entity.get("aws") or {}
    if entity.get("namespace") == "aws":
        attrs.update({"rpc.system": "aws-api", "aws.service": entity["name"]})
        attrs["rpc.method"] = aws.get("operation")
        attrs["aws.region"] = aws.get("region")
        attrs["aws.request_id"] = aws.get("request_id")
        attrs["aws.table_name"] = aws.get("table_name")
        attrs["aws.queue_url"] = aws.get("queue_url")
    elif entity.get("namespace") == "remote":
        attrs["peer.service"] = entity["name"]
    sql = entity.get("sql") or {}
    if sql:
        attrs.update({"db.system": "postgresql", "db.statement": sql.get("sanitized_query")})
    attrs["enduser.id"] = entity.get("user")
    annotations = entity.get("annotations") or {}
    attrs.update(annotations)
    span: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": entity["id"],
        "name": entity["name"],
        "kind": _KINDS[kind],
        "startTimeUnixNano": str(round(entity["start_time"] * 1e9)),
        "endTimeUnixNano": str(round(entity.get("end_time", entity["start_time"]) * 1e9)),
        "attributes": _attrs(attrs),
    }
    if annotations:
        keys = [{"stringValue": k} for k in annotations]
        span["attributes"].append(
            {"key": "aws.xray.annotations", "value": {"arrayValue": {"values": keys}}}
        )
    if parent:
        span["parentSpanId"] = parent
    if entity.get("fault"):
        span["status"] = {"code": "STATUS_CODE_ERROR"}
    return span


def otlp_request(trace: dict[str, Any]) -> dict[str, Any]:
    """One X-Ray trace (``{"Id", "Segments"}``) as an OTLP/JSON export request."""
    trace_id = trace["Id"][2:].replace("-", "")
    resources = []
    for segment in trace["Segments"]:
        doc = orjson.loads(segment["Document"])
        if doc.get("inferred"):
            continue
        spans = [_span(doc, trace_id, doc.get("parent_id", ""), "server")]
        stack = [(sub, doc["id"]) for sub in doc.get("subsegments", [])]
        while stack:
            sub, parent = stack.pop()
            kind = "client" if sub.get("namespace") in ("aws", "remote") else "internal"
            spans.append(_span(sub, trace_id, parent, kind))
            stack.extend((child, sub["id"]) for child in sub.get("subsegments", []))
        resource = {"service.name": doc["name"], "telemetry.sdk.language": "python"}
        if doc.get("origin") == "AWS::EC2::Instance":
            resource.update({"cloud.provider": "aws", "cloud.platform": "aws_ec2"})
        resources.append(
            {"resource": {"attributes": _attrs(resource)}, "scopeSpans": [{"spans": spans}]}
        )
    return {"resourceSpans": resources}


def otlp_file(path: Path) -> Path:
    """The traces of ``path`` as OTLP/JSON, one request per line (written once, beside it)."""
    out = path.with_name(path.stem + ".otlp.jsonl")
    if not out.exists():
        partial = out.with_suffix(".partial")
        with open(path, "rb") as f, open(partial, "wb") as g:
            for line in f:
                for trace in orjson.loads(line)["Traces"]:
                    g.write(orjson.dumps(otlp_request(trace)) + b"\n")
        partial.rename(out)
    return out


def alternating_times(rounds: int, *funcs: Callable[[], object]) -> list[tuple[float, float]]:
    """The fastest wall-clock and CPU time of each of ``funcs``, run in turn for ``rounds``
    rounds (seconds)."""
    times: list[list[tuple[float, float]]] = [[] for _ in funcs]
    for _ in range(rounds):
        for own, func in zip(times, funcs, strict=True):
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            func()
            own.append((time.perf_counter() - wall, time.process_time() - cpu))
    return [(min(t[0] for t in own), min(t[1] for t in own)) for own in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=50_000)
    parser.add_argument("--small", action="store_true", help="2,000 traces, a quick look")
    parser.add_argument("--rounds", type=int, default=3, help="timings of (a) and (b), alternated")
    args = parser.parse_args()
    n = 2_000 if args.small else args.traces
    xray_path = benchmark_file(n)
    otlp_path = otlp_file(xray_path)
    (a, a_cpu), (b, b_cpu) = alternating_times(
        args.rounds, lambda: xraykit.load_file(xray_path), lambda: xraykit.load_file(otlp_path)
    )
    xray, otlp = xraykit.load_file(xray_path), xraykit.load_file(otlp_path)
    print(
        f"data: {len(xray):,} traces; X-Ray {xray_path.stat().st_size / 1e6:.1f} MB, "
        f"OTLP {otlp_path.stat().st_size / 1e6:.1f} MB ({len(otlp):,} traces, "
        f"{len(otlp.segments):,} segments, {len(otlp.subsegments):,} subsegments, "
        f"{len(otlp.problems)} problems)"
    )
    print(f"(a) load X-Ray JSON lines      {a:8.3f} s wall  {a_cpu:8.3f} s CPU")
    print(f"(b) load OTLP/JSON lines       {b:8.3f} s wall  {b_cpu:8.3f} s CPU")
    for label, ratio in (("wall", b / a), ("CPU", b_cpu / a_cpu)):
        verdict = "met" if ratio <= 3 else "NOT MET"
        print(f"OTLP / X-Ray ({label:4s})   (b)/(a) {ratio:6.2f}   target <= 3    {verdict}")


if __name__ == "__main__":
    main()

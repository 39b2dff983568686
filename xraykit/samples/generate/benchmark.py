"""Generic traces for the load benchmarks, generated lazily and quickly.

Not a story: a mix of front ends, one optional instrumented back end and every kind of
field a loader must handle (nested subsegments, annotations of three types, metadata,
errors, throttles, faults, exceptions).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from xraykit.samples.generate.calls import AwsCalls
from xraykit.samples.generate.documents import (
    BATCH,
    Doc,
    TraceDocuments,
    check_count,
    exception_doc,
    segment,
    start_epoch,
    status_flags,
    subsegment,
)
from xraykit.samples.generate.rng import USER_AGENTS, Rng

__all__ = ["generate_traces"]


def generate_traces(
    n_traces: int, *, seed: int = 0, start: datetime | str | float | None = None
) -> Iterator[Doc]:
    """Yield BatchGetTraces responses for ``n_traces`` generic traces, quickly.

    Made for load benchmarks: three segments per trace on average (a front-end service
    and an inferred DynamoDB table; for half the traces also an instrumented back end with
    its own inferred table), with
    nested subsegments, annotations of all three types, metadata, errors, faults,
    throttles and exceptions, at roughly 20 traces per second of simulated time.

    Parameters
    ----------
    n_traces : int
        Number of traces to generate.
    seed : int
        Seed of the random generator.
    start : datetime, str or float, optional
        Time of the first trace; default ``2025-03-04T09:00:00Z``.

    Yields
    ------
    dict
        A BatchGetTraces response with up to 5 traces.

    Examples
    --------
    >>> responses = list(generate_traces(12, seed=3))
    >>> [len(r["Traces"]) for r in responses]
    [5, 5, 2]
    """
    check_count("n_traces", n_traces)
    rng = Rng(seed)
    aws = AwsCalls(rng, "123456789012")
    t = start_epoch(start)
    fronts = [
        ("web-frontend", "AWS::EC2::Instance"),
        ("mobile-api", "AWS::ECS::Container"),
        ("partner-api", "AWS::ElasticBeanstalk::Environment"),
    ]
    paths = ("/", "/search", "/items/{id}", "/basket", "/account")
    batch: list[Doc] = []
    for i in range(n_traces):
        t += rng.lognormal(0.04, 0.8)
        tr = TraceDocuments(rng.trace_id(t))
        name, origin = fronts[i % 3]
        path = rng.pick(paths).replace("{id}", str(int(rng.u(1, 5000))))
        work_start = t + rng.u(0.0005, 0.002)
        ddb = aws.dynamodb(
            tr,
            work_start + rng.u(0.0002, 0.001),
            rng.pick(("GetItem", "Query", "PutItem")),
            "items",
            rng.lognormal(0.008, 0.4),
        )
        work = subsegment(
            rng,
            "render",
            work_start,
            ddb["end_time"] + rng.lognormal(0.003, 0.5),
            namespace="local",
            subsegments=[ddb],
            annotations={"template": path.split("/")[1] or "home"},
        )
        subs: list[Doc] = [work]
        cursor = work["end_time"] + rng.u(0.0002, 0.001)
        status = 200
        if rng.chance(0.5):
            sub_id = rng.entity_id()
            seg_start = cursor + rng.u(0.0005, 0.002)
            back_status = rng.weighted((200, 404, 429, 500), (0.95, 0.03, 0.01, 0.01))
            prices = aws.dynamodb(
                tr, seg_start + 0.001, "GetItem", "prices", rng.lognormal(0.006, 0.4)
            )
            inner = subsegment(
                rng,
                "compute-price",
                seg_start + 0.0005,
                prices["end_time"] + rng.lognormal(0.01, 0.5),
                namespace="local",
                metadata={"debug": {"rules": [1, 2, 3]}},
                subsegments=[prices],
            )
            seg_end = inner["end_time"] + rng.u(0.0005, 0.002)
            back_fields: Doc = {
                "parent_id": sub_id,
                "http": {
                    "request": {"method": "GET", "url": "http://pricing/price"},
                    "response": {"status": back_status},
                },
                **status_flags(back_status),
                "origin": "AWS::ECS::Container",
                "subsegments": [inner],
            }
            if back_status >= 500:
                back_fields["cause"] = {
                    "working_directory": "/app",
                    "exceptions": [
                        exception_doc(
                            rng,
                            "RuntimeError",
                            "price rules unavailable",
                            [("pricing.py", 17, "price")],
                        )
                    ],
                }
            segment(rng, tr, "pricing", seg_start, seg_end, **back_fields)
            call = subsegment(
                rng,
                "pricing",
                cursor,
                seg_end + rng.u(0.0005, 0.002),
                id=sub_id,
                **status_flags(back_status),
                http={
                    "request": {"method": "get", "url": "http://pricing/price", "traced": True},
                    "response": {"status": back_status},
                },
                namespace="remote",
            )
            subs.append(call)
            cursor = call["end_time"] + rng.u(0.0002, 0.001)
            if back_status >= 500:
                status = 502
            elif back_status == 429:
                status = 503
        elif rng.chance(0.04):
            status = 404
        cursor += rng.u(0.0005, 0.002)
        segment(
            rng,
            tr,
            name,
            t,
            cursor,
            http={
                "request": {
                    "method": "GET",
                    "url": f"https://example.com{path}",
                    "user_agent": rng.pick(USER_AGENTS),
                    "client_ip": rng.client_ip(),
                },
                "response": {"status": status},
            },
            **status_flags(status),
            user=f"user-{int(rng.u(0, 5000))}",
            annotations={
                "tier": rng.pick(("free", "paid")),
                "items": int(rng.u(0, 20)),
                "beta": rng.chance(0.1),
            },
            metadata={"default": {"request": {"path": path, "flags": ["a", "b"]}}},
            origin=origin,
            subsegments=subs,
        )
        batch.append(tr.record())
        if len(batch) == BATCH:
            yield {"Traces": batch, "UnprocessedTraceIds": []}
            batch = []
    if batch:
        yield {"Traces": batch, "UnprocessedTraceIds": []}

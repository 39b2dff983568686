"""The ``lambda-cold-starts`` scenario: six hours of four Lambda functions, cold and warm.

Four runtimes and four traffic shapes (steady, two busy spells, hourly bursts, sparse), so
cold starts come from scaling out and from idle environments being reclaimed.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from xraykit.samples.generate.calls import AwsCalls
from xraykit.samples.generate.documents import (
    Doc,
    TraceDocuments,
    batch_responses,
    check_count,
    exception_doc,
    start_epoch,
    subsegment,
)
from xraykit.samples.generate.lambdas import LambdaInvocations
from xraykit.samples.generate.rng import Rng

__all__ = ["generate_lambda_cold_starts"]


class _ColdStarts:
    """Lambda functions with different runtimes and traffic shapes; see :func:`generate_lambda_cold_starts`."""

    ACCOUNT = "123456789012"
    HOURS = 6
    #: name, runtime, memory MB, median init s, median handler s, call, traffic share
    FUNCTIONS = (
        ("auth-token", "nodejs20.x", 256, 0.19, 0.012, "GetItem:sessions", 0.52),
        ("image-resize", "python3.12", 1024, 0.95, 0.42, "PutItem:images", 0.27),
        ("report-builder", "java21", 2048, 3.1, 6.0, "Query:orders", 0.18),
        ("notify", "python3.12", 128, 0.42, 0.03, "Publish:customer-notifications", 0.03),
    )

    def __init__(self, seed: int, t0: float) -> None:
        self.rng = Rng(seed)
        self.t0 = t0
        self.aws = AwsCalls(self.rng, self.ACCOUNT)
        self.lam = LambdaInvocations(self.rng, self.ACCOUNT)

    def arrivals(self, n: int) -> list[tuple[float, tuple[Any, ...]]]:
        rng = self.rng
        seconds = self.HOURS * 3600
        out: list[tuple[float, tuple[Any, ...]]] = []
        counts = [round(n * f[-1]) for f in self.FUNCTIONS]
        counts[0] += n - sum(counts)
        for spec, count in zip(self.FUNCTIONS, counts, strict=True):
            name = spec[0]
            if name == "report-builder":  # hourly batch jobs: bursts of parallel invocations

                def rate(s: float) -> float:
                    return 0.02 + 40.0 * math.exp(-((((s % 3600) - 60.0) / 10.0) ** 2))
            elif name == "image-resize":  # uploads in two busy spells

                def rate(s: float) -> float:
                    return (
                        0.3
                        + 3.0 * math.exp(-(((s - 5400.0) / 900.0) ** 2))
                        + 2.0 * math.exp(-(((s - 15000.0) / 600.0) ** 2))
                    )
            elif name == "notify":  # sparse: most environments are reclaimed between calls

                def rate(s: float) -> float:
                    return 1.0
            else:  # steady, with a daily-shape rise

                def rate(s: float) -> float:
                    return 1.0 + s / seconds

            out.extend((t, spec) for t in rng.arrivals(count, self.t0, seconds, rate))
        out.sort(key=lambda x: x[0])
        return out

    def run(self, n: int) -> list[Doc]:
        records = []
        for t, spec in self.arrivals(n):
            records.append(self.invocation(t, spec))
        return batch_responses(records)

    def invocation(self, t: float, spec: tuple[Any, ...]) -> Doc:
        rng = self.rng
        name, runtime, memory, init_median, work_median, call, _share = spec
        tr = TraceDocuments(rng.trace_id(t))
        operation, resource = call.split(":")

        def body(start: float) -> tuple[list[Doc], float, Doc]:
            cold = self.lam.cold
            t1 = start + rng.lognormal(work_median * 0.4, 0.4) * (1.6 if cold else 1.0)
            if operation == "Publish":
                sub = self.aws.sns_publish(tr, t1, resource, rng.lognormal(0.02, 0.3))
            else:
                sub = self.aws.dynamodb(
                    tr,
                    t1,
                    operation,
                    resource,
                    rng.lognormal(0.007 if operation != "Query" else 0.08, 0.3),
                )
            end = sub["end_time"] + rng.lognormal(work_median * 0.6, 0.4)
            outcome: Doc = {}
            fields: Doc = {}
            if rng.chance(0.01):
                exc = exception_doc(
                    rng,
                    "ValueError"
                    if runtime.startswith("python")
                    else "java.lang.IllegalStateException"
                    if runtime.startswith("java")
                    else "TypeError",
                    "payload is missing 'customer_id'",
                    [("handler", 42, "handle")],
                )
                outcome["exception"] = exc
                fields = {
                    "fault": True,
                    "cause": {
                        "working_directory": "/var/task",
                        "exceptions": [dict(exc, id=rng.entity_id())],
                    },
                }
            handler = subsegment(
                rng,
                f"## {name}.handler",
                start,
                end,
                **fields,
                annotations={"ColdStart": cold, "Service": name},
                metadata={
                    name: {
                        "handler response": {
                            "ok": "exception" not in outcome,
                            "memory_mb": memory,
                            "runtime": runtime,
                        }
                    }
                },
                namespace="local",
                subsegments=[sub],
            )
            return [handler], end, outcome

        self.lam.invoke(tr, name, t, body, init_median=init_median)
        return tr.record()


def generate_lambda_cold_starts(
    n_traces: int = 1200, *, start: datetime | str | float | None = None, seed: int = 0
) -> list[Doc]:
    """Generate six hours of four Lambda functions, with cold and warm invocations.

    ``auth-token`` (Node.js, steady traffic, mostly warm), ``image-resize`` (Python, two
    busy spells that scale out), ``report-builder`` (Java, hourly bursts of parallel
    invocations that scale out to a dozen or more fresh environments) and ``notify``
    (sparse traffic: its idle environments are often reclaimed, so about a quarter of its
    calls are cold). Each trace is one direct invocation: an ``AWS::Lambda`` segment and an
    ``AWS::Lambda::Function`` segment with ``Initialization`` (cold starts only),
    ``Invocation`` and ``Overhead`` subsegments, a handler subsegment annotated
    ``ColdStart`` (boolean) and ``Service``, and one DynamoDB or SNS call.

    Parameters
    ----------
    n_traces : int
        Number of invocations (traces).
    start : datetime, str or float, optional
        Start of the six hours; default ``2025-03-04T09:00:00Z``.
    seed : int
        Seed of the random generator.

    Returns
    -------
    list of dict
        BatchGetTraces responses with up to 5 traces each, in start order.

    Examples
    --------
    >>> import json
    >>> responses = generate_lambda_cold_starts(8)
    >>> first = responses[0]["Traces"][0]
    >>> fn = [json.loads(s["Document"]) for s in first["Segments"]
    ...       if '"AWS::Lambda::Function"' in s["Document"]][0]
    >>> [s["name"] for s in fn["subsegments"]][:3]  # the very first call is cold
    ['Initialization', 'Invocation', 'Overhead']
    """
    return _ColdStarts(seed, start_epoch(start)).run(check_count("n_traces", n_traces))

"""The ``cross-account`` scenario: a storefront in one AWS account calling two others.

Every segment carries the ``aws.account_id`` it runs in; every AWS SDK subsegment carries the
account that owns the called resource, and its inferred segment inherits it.
"""

from __future__ import annotations

import math
from datetime import datetime

from xraykit.samples.generate.calls import AwsCalls
from xraykit.samples.generate.documents import (
    Doc,
    TraceDocuments,
    batch_responses,
    check_count,
    exception_doc,
    segment,
    start_epoch,
    status_flags,
    subsegment,
)
from xraykit.samples.generate.lambdas import LambdaInvocations
from xraykit.samples.generate.rng import USER_AGENTS, Rng

__all__ = ["generate_cross_account"]


class _CrossAccount:
    """A storefront in one account calling services in two others; see :func:`generate_cross_account`."""

    WEB, ORDERS, SHARED = "111111111111", "222222222222", "333333333333"
    MINUTES = 30

    def __init__(self, seed: int, t0: float) -> None:
        self.rng = Rng(seed)
        self.t0 = t0
        self.aws = AwsCalls(self.rng, self.ORDERS)
        self.lam = LambdaInvocations(self.rng, self.SHARED, tag_account=True)
        self.tasks = [f"storefront-{self.rng.hex(8)}" for _ in range(3)]
        self.instances = [(f"i-0{self.rng.hex(16)}", z) for z in ("us-east-1a", "us-east-1c")]

    def run(self, n: int) -> list[Doc]:
        rng = self.rng
        records = []
        for t in rng.arrivals(
            n, self.t0, self.MINUTES * 60, lambda s: 1.0 + 0.5 * math.sin(s / 300)
        ):
            records.append(self.request(t))
        return batch_responses(records)

    def request(self, t: float) -> Doc:
        rng = self.rng
        tr = TraceDocuments(rng.trace_id(t))
        customer = f"cust-{10000 + int(rng.r.random() * 200)}"
        path = rng.weighted(("/orders", "/orders/history"), (0.6, 0.4))
        method = "POST" if path == "/orders" else "GET"
        tt = t + rng.u(0.0005, 0.002)
        subs: list[Doc] = []
        # 1. authorise through the shared account's Lambda (cross-account Invoke)
        auth_sub_id = rng.entity_id()
        denied = rng.chance(0.03)

        def auth_body(start: float) -> tuple[list[Doc], float, Doc]:
            ddb = self.aws.dynamodb(
                tr,
                start + rng.u(0.0005, 0.002),
                "GetItem",
                "sessions",
                rng.lognormal(0.005, 0.3),
                account=self.SHARED,
            )
            end = ddb["end_time"] + rng.u(0.0005, 0.002)
            return (
                [
                    subsegment(
                        rng,
                        "## authorize",
                        start,
                        end,
                        namespace="local",
                        annotations={"token_valid": not denied},
                        subsegments=[ddb],
                    )
                ],
                end,
                {},
            )

        svc_end, _cold, _ = self.lam.invoke(
            tr,
            "identity-authorizer",
            tt + rng.u(0.002, 0.006),
            auth_body,
            parent_id=auth_sub_id,
            init_median=0.3,
        )
        auth = self.lam.invoke_subsegment(
            "identity-authorizer", tt, svc_end + rng.u(0.001, 0.003), account=self.SHARED
        )
        auth["id"] = auth_sub_id
        subs.append(auth)
        tt = auth["end_time"] + rng.u(0.0005, 0.002)
        status = 401 if denied else 200
        if not denied:
            # 2. the orders API in the orders account
            sub_id = rng.entity_id()
            url = f"https://orders.internal.example{path}"
            seg_start = tt + rng.lognormal(0.002, 0.3)
            seg_end, status = self.orders(tr, seg_start, sub_id, customer, method, url)
            end = seg_end + rng.lognormal(0.002, 0.3)
            subs.append(
                subsegment(
                    rng,
                    "orders.internal.example",
                    tt,
                    end,
                    id=sub_id,
                    **status_flags(status),
                    http={
                        "request": {"url": url, "method": method, "traced": True},
                        "response": {"status": status},
                    },
                    namespace="remote",
                )
            )
            tt = end + rng.u(0.0005, 0.002)
        end = tt + rng.u(0.001, 0.004)
        segment(
            rng,
            tr,
            "storefront",
            t,
            end,
            http={
                "request": {
                    "method": method,
                    "url": f"https://shop.example.com{path}",
                    "user_agent": rng.pick(USER_AGENTS),
                    "client_ip": rng.client_ip(),
                },
                "response": {"status": status, "content_length": 200 + int(rng.u(0, 3000))},
            },
            **status_flags(status),
            user=customer,
            annotations={"account_role": "web"},
            aws={
                "account_id": self.WEB,
                "ecs": {"container": rng.pick(self.tasks)},
                "xray": {"sdk": "X-Ray for Python", "sdk_version": "2.15.0"},
            },
            service={"runtime": "CPython", "runtime_version": "3.12.9"},
            origin="AWS::ECS::Container",
            subsegments=subs,
        )
        return tr.record()

    def orders(
        self, tr: TraceDocuments, start: float, parent_id: str, customer: str, method: str, url: str
    ) -> tuple[float, int]:
        rng = self.rng
        t = start + rng.u(0.0005, 0.002)
        subs: list[Doc] = []
        if method == "POST":
            throttled = rng.chance(0.02)
            ddb_status = 400 if throttled else 200
            ddb = self.aws.dynamodb(
                tr,
                t,
                "PutItem",
                "orders",
                rng.lognormal(0.009, 0.3),
                account=self.ORDERS,
                status=ddb_status,
            )
            if throttled:
                ddb["cause"] = {
                    "working_directory": "/srv/orders",
                    "exceptions": [
                        exception_doc(
                            rng,
                            "ProvisionedThroughputExceededException",
                            "The level of configured provisioned throughput for the table was exceeded.",
                            [("OrderRepository.java", 61, "save")],
                            remote=True,
                        )
                    ],
                }
            subs.append(ddb)
            t = ddb["end_time"] + rng.u(0.0005, 0.002)
            status = 500 if throttled else 201
            if not throttled:
                sqs = self.aws.sqs_send(
                    tr, t, "audit-events", rng.lognormal(0.015, 0.3), account=self.SHARED
                )
                subs.append(sqs)
                t = sqs["end_time"] + rng.u(0.0005, 0.002)
        else:
            ddb = self.aws.dynamodb(
                tr, t, "Query", "orders", rng.lognormal(0.02, 0.35), account=self.ORDERS
            )
            subs.append(ddb)
            t = ddb["end_time"] + rng.u(0.0005, 0.002)
            status = 404 if rng.chance(0.04) else 200
        end = t + rng.u(0.001, 0.003)
        instance, zone = rng.pick(self.instances)
        segment(
            rng,
            tr,
            "orders-api",
            start,
            end,
            parent_id=parent_id,
            http={
                "request": {
                    "method": method,
                    "url": url,
                    "user_agent": "python-requests/2.32.3",
                    "client_ip": f"10.1.{int(rng.u(0, 4))}.{int(rng.u(4, 250))}",
                },
                "response": {"status": status},
            },
            **status_flags(status),
            user=customer,
            aws={
                "account_id": self.ORDERS,
                "ec2": {"instance_id": instance, "availability_zone": zone},
                "xray": {"sdk": "X-Ray for Java", "sdk_version": "2.18.2"},
            },
            origin="AWS::EC2::Instance",
            subsegments=subs,
        )
        return end, status


def generate_cross_account(
    n_traces: int = 400, *, start: datetime | str | float | None = None, seed: int = 0
) -> list[Doc]:
    """Generate 30 minutes of services spread over three AWS accounts.

    ``storefront`` (ECS, account 111111111111) authorises each request by invoking the
    ``identity-authorizer`` Lambda in the shared account 333333333333 (which reads its
    ``sessions`` table there), then calls ``orders-api`` (EC2, account 222222222222), which
    writes its ``orders`` table and sends an audit message to an SQS queue owned by the
    shared account. Every segment has ``aws.account_id``; every AWS SDK subsegment has the
    account that owns the called resource.

    Parameters
    ----------
    n_traces : int
        Number of requests (traces).
    start : datetime, str or float, optional
        Start of the half hour; default ``2025-03-04T09:00:00Z``.
    seed : int
        Seed of the random generator.

    Returns
    -------
    list of dict
        BatchGetTraces responses with up to 5 traces each, in start order.

    Examples
    --------
    >>> import json
    >>> responses = generate_cross_account(5)
    >>> docs = [json.loads(s["Document"]) for r in responses for tr in r["Traces"]
    ...         for s in tr["Segments"]]
    >>> sorted({d["aws"]["account_id"] for d in docs if not d.get("inferred")})
    ['111111111111', '222222222222', '333333333333']
    """
    return _CrossAccount(seed, start_epoch(start)).run(check_count("n_traces", n_traces))

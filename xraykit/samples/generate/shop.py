"""The ``shop`` scenario: one hour of a serverless web shop behind API Gateway.

Traffic, the API Gateway stage, the three Lambda functions' handlers (catalog, cart,
checkout) and the SQS-linked ``order-worker`` consumer trace; the back-end services the
handlers call are in :mod:`xraykit.samples.generate.shop_services`.
"""

from __future__ import annotations

import math
from datetime import datetime

from xraykit.samples.generate.calls import AwsCalls
from xraykit.samples.generate.documents import (
    REGION,
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
from xraykit.samples.generate.shop_services import ShopServices

__all__ = ["generate_shop"]


class _Shop:
    """One hour of a web shop; see :func:`generate_shop`."""

    ACCOUNT = "123456789012"
    API_ID = "k7x2qv9d1m"
    API = "shop-api/prod"
    HOUR = 3600
    PEAK_AT, PEAK_WIDTH = 1500.0, 420.0  # traffic peak around minute 25
    ROUTES = (
        ("GET", "/products/{sku}", "shop-catalog"),
        ("GET", "/cart", "shop-cart"),
        ("POST", "/cart/items", "shop-cart"),
        ("POST", "/checkout", "shop-checkout"),
    )
    ROUTE_WEIGHTS = (0.40, 0.15, 0.20, 0.25)

    def __init__(self, seed: int, t0: float) -> None:
        self.rng = Rng(seed)
        self.t0 = t0
        self.aws = AwsCalls(self.rng, self.ACCOUNT)
        self.lam = LambdaInvocations(self.rng, self.ACCOUNT)
        rng = self.rng
        tiers = ("free", "plus", "premium")
        self.customers = [
            (
                f"cust-{10000 + i}",
                rng.weighted(tiers, (0.6, 0.3, 0.1)),
                rng.client_ip(),
                rng.pick(USER_AGENTS),
            )
            for i in range(320)
        ]
        self.skus = [f"SKU-{1000 + 37 * i}" for i in range(60)]
        self.services = ShopServices(rng, t0, self.load)
        self.max_rate = self.rate(self.PEAK_AT)

    def rate(self, s: float) -> float:
        return 1.0 + 2.2 * math.exp(-(((s - self.PEAK_AT) / self.PEAK_WIDTH) ** 2))

    def load(self, t: float) -> float:
        return self.rate(t - self.t0) / self.max_rate

    # --- the run ------------------------------------------------------------------

    def run(self, n: int) -> list[Doc]:
        rng = self.rng
        records: list[tuple[float, Doc]] = []
        for t in rng.arrivals(n, self.t0, self.HOUR, self.rate):
            method, path, function = rng.weighted(self.ROUTES, self.ROUTE_WEIGHTS)
            customer = rng.pick(self.customers)
            tr, consumer = self.request(t, method, path, function, customer)
            records.append((t, tr.record()))
            if consumer is not None:
                records.append(consumer)
        records.sort(key=lambda r: r[0])
        return batch_responses([r for _, r in records])

    def request(
        self, t: float, method: str, route: str, function: str, customer: tuple[str, str, str, str]
    ) -> tuple[TraceDocuments, tuple[float, Doc] | None]:
        rng = self.rng
        tr = TraceDocuments(rng.trace_id(t))
        sku = rng.pick(self.skus)
        path = route.replace("{sku}", sku)
        state: Doc = {
            "customer": customer,
            "sku": sku,
            "path": path,
            "method": method,
            "consumer": None,
        }
        sub_start = t + rng.u(0.002, 0.009)
        svc_start = sub_start + rng.u(0.001, 0.004)
        invoke_sub_id = rng.entity_id()

        def body(start: float) -> tuple[list[Doc], float, Doc]:
            return self.handler(tr, function, start, state)

        svc_end, _cold, outcome = self.lam.invoke(
            tr, function, svc_start, body, parent_id=invoke_sub_id
        )
        status = 502 if "exception" in outcome else outcome["status"]
        sub_end = svc_end + rng.u(0.0005, 0.002)
        lambda_sub = self.lam.invoke_subsegment(function, sub_start, sub_end)
        lambda_sub["id"] = invoke_sub_id
        end = sub_end + rng.u(0.001, 0.006)
        request_id = rng.uuid()
        segment(
            rng,
            tr,
            self.API,
            t,
            end,
            http={
                "request": {
                    "url": f"https://{self.API_ID}.execute-api.{REGION}.amazonaws.com/prod{path}",
                    "method": method,
                    "user_agent": customer[3],
                    "client_ip": customer[2],
                    "x_forwarded_for": True,
                },
                "response": {"status": status, "content_length": 0},
            },
            **status_flags(status),
            aws={
                "api_gateway": {
                    "account_id": self.ACCOUNT,
                    "rest_api_id": self.API_ID,
                    "stage": "prod",
                    "request_id": request_id,
                }
            },
            annotations={"aws:api_id": self.API_ID, "aws:api_stage": "prod"},
            metadata={
                "default": {"extended_request_id": rng.alnum(16) + "=", "request_id": request_id}
            },
            origin="AWS::ApiGateway::Stage",
            resource_arn=f"arn:aws:apigateway:{REGION}::/restapis/{self.API_ID}/stages/prod",
            subsegments=[lambda_sub],
        )
        return tr, state["consumer"]

    # --- Lambda handlers ---------------------------------------------------------------

    def handler(
        self, tr: TraceDocuments, function: str, start: float, state: Doc
    ) -> tuple[list[Doc], float, Doc]:
        rng = self.rng
        cust_id, tier, _ip, _ua = state["customer"]
        calls: list[Doc] = []
        annotations: Doc = {"customer_tier": tier, "is_retry": rng.chance(0.03)}
        meta: Doc = {"request": {"method": state["method"], "path": state["path"]}}
        t = start + rng.u(0.0005, 0.003)
        status = 200
        if function == "shop-catalog":
            sub = self.aws.dynamodb(tr, t, "GetItem", "products", rng.lognormal(0.006, 0.3))
            calls.append(sub)
            t = sub["end_time"] + rng.u(0.0005, 0.003)
            if rng.chance(0.05):
                status = 404
                meta["response"] = {"message": f"product {state['sku']} not found"}
            elif rng.chance(0.5):
                sub = self.aws.dynamodb(tr, t, "Query", "products", rng.lognormal(0.011, 0.35))
                calls.append(sub)
                t = sub["end_time"] + rng.u(0.0005, 0.003)
        elif function == "shop-cart" and state["method"] == "GET":
            sub = self.aws.dynamodb(tr, t, "GetItem", "carts", rng.lognormal(0.005, 0.3))
            calls.append(sub)
            t = sub["end_time"] + rng.u(0.0005, 0.002)
            annotations["cart_value"] = round(rng.lognormal(60.0, 0.7), 2)
        elif function == "shop-cart":
            qty = 1 + int(rng.r.random() * 3)
            meta["request"]["body"] = {"sku": state["sku"], "quantity": qty}
            if rng.chance(0.04):
                status = 400
                meta["response"] = {"message": "quantity must be between 1 and 10"}
            else:
                sub, inv_status = self.services.call_inventory(
                    tr, t, cust_id, "GET", f"/stock/{state['sku']}"
                )
                calls.append(sub)
                t = sub["end_time"] + rng.u(0.0005, 0.002)
                if inv_status >= 500:
                    status = 503
                else:
                    sub = self.aws.dynamodb(tr, t, "UpdateItem", "carts", rng.lognormal(0.008, 0.3))
                    calls.append(sub)
                    t = sub["end_time"] + rng.u(0.0005, 0.002)
                    status = 201
                    annotations["cart_value"] = round(rng.lognormal(75.0, 0.7), 2)
        else:  # shop-checkout
            status, t = self.checkout(tr, t, state, calls, annotations, meta)
        outcome: Doc = {"status": status}
        handler_fields: Doc = {}
        if rng.chance(0.004):  # an unhandled exception: Lambda reports a function error
            exc = exception_doc(
                rng,
                "KeyError",
                "'shipping_address'",
                [("app.py", 88, "lambda_handler"), ("shop/orders.py", 41, "build_order")],
            )
            outcome["exception"] = exc
            handler_fields = {
                "fault": True,
                "cause": {
                    "working_directory": "/var/task",
                    "exceptions": [dict(exc, id=rng.entity_id())],
                },
            }
        if "exception" not in outcome:
            meta["response"] = dict(meta.get("response", {}), status=status)
        end = t + rng.u(0.0005, 0.004)
        handler = subsegment(
            rng,
            "## lambda_handler",
            start,
            end,
            **handler_fields,
            annotations=annotations,
            metadata={"shop": meta},
            namespace="local",
            subsegments=calls,
        )
        return [handler], end, outcome

    def checkout(
        self,
        tr: TraceDocuments,
        t: float,
        state: Doc,
        calls: list[Doc],
        annotations: Doc,
        meta: Doc,
    ) -> tuple[int, float]:
        rng = self.rng
        cust_id, tier, _ip, _ua = state["customer"]
        lines = [
            {"sku": rng.pick(self.skus), "qty": 1 + int(rng.r.random() * 3)}
            for _ in range(1 + int(rng.r.random() * 4))
        ]
        value = round(sum(rng.lognormal(24.0, 0.6) * ln["qty"] for ln in lines), 2)
        order_id = f"ord-{rng.hex(12)}"
        annotations["cart_value"] = value
        meta["order"] = {"order_id": order_id, "lines": lines, "currency": "EUR", "total": value}
        sub, inv_status = self.services.call_inventory(
            tr, t, cust_id, "POST", "/reservations", lines=len(lines)
        )
        calls.append(sub)
        t = sub["end_time"] + rng.u(0.0005, 0.002)
        if inv_status >= 500:
            return 503, t
        sub, pay_status = self.services.call_payments(tr, t, cust_id, tier, value)
        calls.append(sub)
        t = sub["end_time"] + rng.u(0.0005, 0.002)
        if pay_status == 402:
            return 402, t
        if pay_status >= 500:
            return 502, t
        sub = self.aws.dynamodb(tr, t, "PutItem", "orders", rng.lognormal(0.009, 0.3))
        calls.append(sub)
        t = sub["end_time"] + rng.u(0.0005, 0.002)
        sqs = self.aws.sqs_send(tr, t, "order-events", rng.lognormal(0.014, 0.3))
        calls.append(sqs)
        t = sqs["end_time"] + rng.u(0.0005, 0.002)
        state["consumer"] = self.consumer(tr.trace_id, sqs, order_id, value)
        return 201, t

    # --- the linked consumer ---------------------------------------------------------------

    def consumer(
        self, producer_trace: str, sqs: Doc, order_id: str, value: float
    ) -> tuple[float, Doc]:
        """The linked trace of the SQS-triggered ``order-worker`` Lambda."""
        rng = self.rng
        start = sqs["end_time"] + rng.lognormal(0.35, 0.8)
        tr = TraceDocuments(rng.trace_id(start))

        def body(t: float) -> tuple[list[Doc], float, Doc]:
            sub = self.aws.dynamodb(
                tr, t + rng.u(0.0005, 0.002), "UpdateItem", "orders", rng.lognormal(0.008, 0.3)
            )
            calls = [sub]
            t2 = sub["end_time"] + rng.u(0.0005, 0.002)
            if rng.chance(0.5):
                sns = self.aws.sns_publish(tr, t2, "order-notifications", rng.lognormal(0.02, 0.3))
                calls.append(sns)
                t2 = sns["end_time"] + rng.u(0.0005, 0.002)
            end = t2 + rng.u(0.0005, 0.002)
            handler = subsegment(
                rng,
                "## process_order",
                t,
                end,
                namespace="local",
                annotations={"order_id": order_id, "order_value": value},
                metadata={
                    "orders": {"message": {"order_id": order_id, "source_trace": producer_trace}}
                },
                subsegments=calls,
            )
            return [handler], end, {}

        self.lam.invoke(
            tr,
            "order-worker",
            start,
            body,
            init_median=0.3,
            links=[{"trace_id": producer_trace, "id": sqs["id"]}],
        )
        return start, tr.record()


def generate_shop(
    n_traces: int = 2000, *, start: datetime | str | float | None = None, seed: int = 0
) -> list[Doc]:
    """Generate one hour of a serverless web shop as BatchGetTraces responses.

    ``shop-api/prod`` (API Gateway) invokes three Lambda functions (``shop-catalog``,
    ``shop-cart``, ``shop-checkout``) that read and write DynamoDB tables, call an EC2
    ``inventory`` service backed by PostgreSQL and an ECS ``payments`` service that calls an
    external payment API, and send an SQS message per order that an ``order-worker`` Lambda
    consumes in a linked trace. Traffic peaks around minute 25, when the payment API
    throttles (429); in minutes 38-58 the inventory database slows down about tenfold and
    some statements time out.

    Parameters
    ----------
    n_traces : int
        Number of incoming web requests; each checkout adds one linked consumer trace,
        so about a quarter more traces are returned.
    start : datetime, str or float, optional
        Start of the hour (a naive value is UTC); default ``2025-03-04T09:00:00Z``.
    seed : int
        Seed of the random generator; the same seed gives the same documents.

    Returns
    -------
    list of dict
        BatchGetTraces responses with up to 5 traces each, in trace start order.

    Examples
    --------
    >>> import json
    >>> responses = generate_shop(10)
    >>> docs = [json.loads(s["Document"]) for r in responses for tr in r["Traces"]
    ...         for s in tr["Segments"]]
    >>> origins = {d.get("origin") for d in docs}
    >>> {"AWS::ApiGateway::Stage", "AWS::Lambda", "AWS::Lambda::Function"} <= origins
    True
    """
    return _Shop(seed, start_epoch(start)).run(check_count("n_traces", n_traces))

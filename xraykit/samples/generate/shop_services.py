"""The shop's back ends: the EC2 ``inventory`` service and the ECS ``payments`` service.

``inventory`` (Java SDK) runs SQL against PostgreSQL, which slows down about tenfold during
the incident (minutes 38–58) and then times some statements out; ``payments`` (Python SDK)
calls an external payment API that throttles (429) when the shop's traffic peaks, and retries
once. Each call gives the Lambda's HTTP subsegment and the service's own segment.
"""

from __future__ import annotations

from collections.abc import Callable

from xraykit.samples.generate.documents import (
    Doc,
    TraceDocuments,
    exception_doc,
    inferred_segment,
    segment,
    status_flags,
    subsegment,
)
from xraykit.samples.generate.rng import Rng

__all__ = ["ShopServices"]


class ShopServices:
    """The two instrumented services the shop's Lambda functions call over HTTP."""

    INCIDENT = (2280.0, 3480.0)  # minutes 38-58: the inventory database slows down
    DB_HOST = "inventory-db.cluster-c7hq2m4xk1pz.us-east-1.rds.amazonaws.com"
    PAYGATE = "api.paygate.example"

    def __init__(self, rng: Rng, t0: float, load: Callable[[float], float]) -> None:
        self.rng = rng
        self.t0 = t0
        self.load = load  # the shop's traffic at a time, 1 at the peak
        zones = ("us-east-1a", "us-east-1b")
        self.instances = [(f"i-0{rng.hex(16)}", zones[i % 2]) for i in range(3)]
        self.containers = [
            f"payments-{rng.hex(6)}-{rng.alnum(5, 'bcdfghjklmnpqrstvwxz2456789')}" for _ in range(2)
        ]

    def incident(self, t: float) -> float:
        """0 outside the incident, ramping to 1 over three minutes inside it."""
        s = t - self.t0
        a, b = self.INCIDENT
        if not a <= s < b:
            return 0.0
        return min(1.0, (s - a) / 180.0, (b - s) / 60.0)

    def call_inventory(
        self, tr: TraceDocuments, t: float, customer: str, method: str, path: str, *, lines: int = 1
    ) -> tuple[Doc, int]:
        """The Lambda's HTTP call to the EC2 inventory service and that service's segment."""
        rng = self.rng
        sub_id = rng.entity_id()
        url = f"http://inventory.internal.shop:8080{path}"
        seg_start = t + rng.lognormal(0.0012, 0.3)
        seg_end, status = self.inventory(tr, seg_start, sub_id, customer, method, url, lines)
        end = seg_end + rng.lognormal(0.0012, 0.3)
        sub = subsegment(
            rng,
            "inventory.internal.shop",
            t,
            end,
            id=sub_id,
            **status_flags(status),
            http={
                "request": {"url": url, "method": method.lower(), "traced": True},
                "response": {"status": status, "content_length": 20 + int(rng.u(0, 200))},
            },
            namespace="remote",
        )
        if status >= 500:
            sub["cause"] = {
                "working_directory": "/var/task",
                "exceptions": [
                    exception_doc(
                        rng,
                        "HTTPError",
                        f"{status} Server Error for url: {url}",
                        [
                            ("shop/clients.py", 57, "call_inventory"),
                            ("app.py", 64, "lambda_handler"),
                        ],
                        remote=True,
                    )
                ],
            }
        return sub, status

    def inventory(
        self,
        tr: TraceDocuments,
        start: float,
        parent_id: str,
        customer: str,
        method: str,
        url: str,
        lines: int,
    ) -> tuple[float, int]:
        rng = self.rng
        incident = self.incident(start)
        instance, zone = rng.pick(self.instances)
        if method == "GET":
            queries = ["SELECT sku, available, reserved FROM stock WHERE sku = ?"]
        else:
            queries = ["SELECT sku, available FROM stock WHERE sku = ? FOR UPDATE"] * lines + [
                "UPDATE stock SET reserved = reserved + ? WHERE sku = ?",
                "INSERT INTO reservations (id, customer_id, sku, quantity, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
            ]
        timeout = incident > 0 and rng.chance(0.1 * incident)
        t = start + rng.u(0.0008, 0.003)
        subs: list[Doc] = []
        status = 200 if method == "GET" else 201
        seg_cause: Doc | None = None
        for i, query in enumerate(queries):
            median = 0.0022 if query.startswith("SELECT") else 0.004
            latency = rng.lognormal(median * (1 + 11 * incident), 0.35 + 0.3 * incident)
            failing = timeout and i == len(queries) - 1
            if failing:
                latency = 2.0  # statement_timeout = 2 s
            sub = subsegment(
                rng,
                f"inventory@{self.DB_HOST}",
                t,
                t + latency,
                namespace="remote",
                sql={
                    "url": f"jdbc:postgresql://{self.DB_HOST}:5432/inventory",
                    "preparation": "statement",
                    "database_type": "PostgreSQL",
                    "database_version": "15.8",
                    "driver_version": "PostgreSQL JDBC Driver 42.7.4",
                    "user": "inventory_app",
                    "sanitized_query": query,
                },
            )
            if failing:
                sql_exc = exception_doc(
                    rng,
                    "org.postgresql.util.PSQLException",
                    "ERROR: canceling statement due to statement timeout",
                    [
                        ("QueryExecutorImpl.java", 2733, "receiveErrorResponse"),
                        ("StockRepository.java", 88, "reserve"),
                    ],
                    remote=True,
                )
                sub["fault"] = True
                sub["cause"] = {"working_directory": "/opt/inventory", "exceptions": [sql_exc]}
                seg_exc = exception_doc(
                    rng,
                    "org.springframework.dao.QueryTimeoutException",
                    "PreparedStatementCallback; SQL [" + query + "]; canceling statement",
                    [
                        ("StockService.java", 54, "reserve"),
                        ("StockController.java", 37, "postReservation"),
                    ],
                    cause=sql_exc["id"],
                )
                seg_cause = {"working_directory": "/opt/inventory", "exceptions": [seg_exc]}
                status = 500
            subs.append(sub)
            inferred_segment(rng, tr, sub, name=sub["name"], origin="Database::SQL")
            t = sub["end_time"] + rng.u(0.0002, 0.0015)
            if failing:
                break
        end = t + rng.u(0.0005, 0.003)
        fields: Doc = {
            "parent_id": parent_id,
            "http": {
                "request": {
                    "method": method,
                    "url": url,
                    "user_agent": "python-requests/2.32.3",
                    "client_ip": f"10.0.{rng.pick((12, 13, 28))}.{int(rng.u(4, 250))}",
                },
                "response": {"status": status, "content_length": 20 + int(rng.u(0, 200))},
            },
            **status_flags(status),
            "user": customer,
            "aws": {
                "ec2": {"instance_id": instance, "availability_zone": zone},
                "xray": {"sdk": "X-Ray for Java", "sdk_version": "2.18.2"},
            },
            "service": {"version": "3.4.1"},
            "annotations": {"warehouse": "EU-CENTRAL-1", "items": len(queries)},
            "metadata": {
                "inventory": {"db_pool": {"active": int(rng.u(2, 9 + 30 * incident)), "max": 40}}
            },
            "origin": "AWS::EC2::Instance",
            "subsegments": subs,
        }
        if seg_cause is not None:
            fields["cause"] = seg_cause
        segment(rng, tr, "inventory", start, end, **fields)
        return end, status

    def call_payments(
        self, tr: TraceDocuments, t: float, customer: str, tier: str, amount: float
    ) -> tuple[Doc, int]:
        rng = self.rng
        sub_id = rng.entity_id()
        url = "http://payments.internal.shop/charges"
        seg_start = t + rng.lognormal(0.0015, 0.3)
        seg_end, status = self.payments(tr, seg_start, sub_id, customer, tier, amount, url)
        end = seg_end + rng.lognormal(0.0015, 0.3)
        sub = subsegment(
            rng,
            "payments.internal.shop",
            t,
            end,
            id=sub_id,
            **status_flags(status),
            http={
                "request": {"url": url, "method": "post", "traced": True},
                "response": {"status": status, "content_length": 60 + int(rng.u(0, 90))},
            },
            namespace="remote",
        )
        return sub, status

    def payments(
        self,
        tr: TraceDocuments,
        start: float,
        parent_id: str,
        customer: str,
        tier: str,
        amount: float,
        url: str,
    ) -> tuple[float, int]:
        """The ECS payments service (Python SDK) calling the external payment API."""
        rng = self.rng
        p_throttle = 0.35 * max(0.0, (self.load(start) - 0.72) / 0.28)
        t = start + rng.u(0.001, 0.004)
        subs: list[Doc] = []
        status = 201
        cause: str | None = None
        for attempt in range(2):
            if rng.chance(p_throttle):
                api_status = 429
            elif attempt == 0 and rng.chance(0.02):
                api_status = 402
            elif rng.chance(0.003):
                api_status = 500
            else:
                api_status = 200
            latency = rng.lognormal(0.045 if api_status == 429 else 0.19, 0.35)
            api_url = f"https://{self.PAYGATE}/v1/charges"
            sub = subsegment(
                rng,
                self.PAYGATE,
                t,
                t + latency,
                **status_flags(api_status),
                http={
                    "request": {"method": "post", "url": api_url},
                    "response": {"status": api_status, "content_length": 90 + int(rng.u(0, 400))},
                },
                namespace="remote",
            )
            if api_status >= 400:
                reason = {
                    429: "Too Many Requests",
                    402: "Payment Required",
                    500: "Internal Server Error",
                }[api_status]
                kind = "Client" if api_status < 500 else "Server"
                exc = exception_doc(
                    rng,
                    "HTTPError",
                    f"{api_status} {kind} Error: {reason} for url: {api_url}",
                    [
                        ("models.py", 1024, "raise_for_status"),
                        ("paygate.py", 71, "create_charge"),
                        ("app.py", 112, "post_charge"),
                    ],
                    remote=True,
                )
                sub["cause"] = {"working_directory": "/app", "exceptions": [exc]}
                cause = exc["id"]
            subs.append(sub)
            inferred_segment(rng, tr, sub, name=self.PAYGATE, origin="remote")
            t = sub["end_time"] + rng.u(0.0005, 0.002)
            if api_status == 429 and attempt == 0:
                t += rng.u(0.15, 0.3)  # back off, then retry once
                continue
            status = {200: 201, 402: 402, 429: 503, 500: 502}[api_status]
            break
        end = t + rng.u(0.001, 0.004)
        fields: Doc = {
            "parent_id": parent_id,
            "http": {
                "request": {
                    "url": url,
                    "method": "POST",
                    "user_agent": "python-requests/2.32.3",
                    "client_ip": f"10.0.{rng.pick((12, 13))}.{int(rng.u(4, 250))}",
                },
                "response": {"status": status, "content_length": 60 + int(rng.u(0, 90))},
            },
            **status_flags(status),
            "user": customer,
            "annotations": {
                "payment_provider": "paygate",
                "customer_tier": tier,
                "charge_amount": amount,
            },
            "metadata": {
                "default": {
                    "charge": {
                        "amount": amount,
                        "currency": "EUR",
                        "card_brand": rng.pick(("visa", "mastercard", "amex")),
                        "attempts": len(subs),
                    }
                }
            },
            "aws": {
                "xray": {"sdk": "X-Ray for Python", "sdk_version": "2.15.0"},
                "ecs": {"container": rng.pick(self.containers)},
            },
            "service": {"runtime": "CPython", "runtime_version": "3.12.9"},
            "origin": "AWS::ECS::Container",
            "subsegments": subs,
        }
        if status >= 500 and cause:
            fields["cause"] = cause  # the Python SDK's bare-string cause [sdk]
        segment(rng, tr, "payments", start, end, **fields)
        return end, status

"""Generate X-Ray-faithful sample traces, deterministically.

Every ``simulate_*`` function returns what ``BatchGetTraces`` would have returned for a
made-up application: a list of response dicts, each ``{"Traces": [...up to 5 traces...],
"UnprocessedTraceIds": []}``, where every trace is ``{"Id", "Duration", "LimitExceeded",
"Segments": [{"Id", "Document"}]}`` and ``Document`` is the segment document as a JSON
string. :func:`write_responses` stores them as (gzipped) JSON lines, byte for byte the same
on every run. The shipped samples in ``sample_traces/`` are made this way (see
``scripts/make_samples.py``); ``sdk-capture`` is the exception: it is recorded from the
real SDK by ``scripts/capture_sdk.py``.

Randomness comes only from a :class:`random.Random` seeded with ``seed`` (its ``random()``
and ``getrandbits()`` streams are stable across Python versions); there is no wall clock
and no ``os.urandom``, so a seed and a start time always give the same bytes.

Modelling decisions and their sources
-------------------------------------
Sources are cited as ``[gettingdata]`` = AWS X-Ray developer guide, "Getting data from
AWS X-Ray", real ``batch-get-traces`` output (awsdocs/aws-xray-developer-guide,
doc-source/xray-api-gettingdata.md); ``[segdocs]`` = "AWS X-Ray segment documents"
(xray-api-segmentdocuments.md) and the v1.0.0 JSON schema; ``[facts]`` = our
reference/xray-facts.md; ``[sdk]`` = reference/moto-and-sdk.md Part B (what
aws-xray-sdk 2.15.0 emits, observed); ``[otel]`` = OpenTelemetry collector X-Ray segment
model (opentelemetry-collector-contrib internal/aws/xray/tracesegment.go);
``[linking]`` = "Tracing event-driven applications" (xray-tracelinking.md) and
aws/aws-xray-sdk-node#637 (maintainer: the X-Ray service supports ``links`` for the
SQS → Lambda case only).

* Ids: trace id ``1-<8 hex epoch seconds of the trace's first start>-<24 hex>``; entity and
  exception ids 16 lowercase hex; all from the seeded rng [facts §1.3].
* Times are float epoch seconds rounded to the microsecond; ``Duration`` is first start to
  last end, rounded to the millisecond as the API shows it [gettingdata].
* Documents are compact JSON (no spaces), keys in the order X-Ray returns them, false flags
  omitted [gettingdata]. Embedded subsegments carry no ``trace_id``/``parent_id``/``type``
  (X-Ray strips them when it nests; streamed ones keep them, see ``sdk-capture``).
  ``Segments`` are listed in id order, i.e. in no meaningful order, as the API does.
* Downstream segments' ``parent_id`` is the caller's subsegment id [facts §1.4].
* Inferred segments (``"inferred": true``) get a fresh id, ``parent_id`` = the subsegment
  that produced them, the subsegment's times, and copies of its ``http``/``aws``/``sql``
  blocks and flags [gettingdata: DynamoDB and SNS examples]. Names and origins:
  DynamoDB → name ``DynamoDB``, origin ``AWS::DynamoDB::Table``; SNS → ``SNS``,
  ``AWS::SNS`` [gettingdata]; SQS → ``SQS``, ``AWS::SQS::Queue`` (the type the service map
  shows for queues; unconfirmed in raw documents); an HTTP downstream that sends no segment
  → name = host, origin ``remote``; a SQL database → name = the SQL subsegment's name
  (``database@host``, the Java SDK's convention), origin ``Database::SQL`` [facts §1.5,
  §7: "observed in third-party code"; ``remote`` is the documented GetServiceGraph type].
* AWS SDK subsegments are named ``DynamoDB``/``SQS``/``SNS``/``Lambda`` with namespace
  ``aws`` and ``aws.operation/region/request_id/table_name/queue_url/resource_names``
  [gettingdata]. (The Python SDK names them ``dynamodb``/``sqs``; ``sdk-capture`` shows
  that.) HTTP subsegments are named after the host, namespace ``remote``, with
  ``http.request.url/method`` and ``http.request.traced: true`` when the callee is
  instrumented [segdocs]; the Python services use ``requests``, so their methods are lower
  case as the SDK sends them [sdk]. SQL subsegments have namespace ``remote`` and
  ``sql.url/database_type/database_version/driver_version/user/preparation/
  sanitized_query`` [segdocs §SQL].
* Flags follow the status: 5xx → ``fault``; 429 → ``throttle`` and ``error``; other 4xx →
  ``error`` [facts §1.8]. A Lambda function's unhandled exception sets ``fault`` with a
  ``cause`` on the function segment while Invoke itself returns 200 and API Gateway answers
  502 (proxy integration). Causes are objects with exceptions and stacks; the Python
  services (``payments``) record the exception on the failing subsegment and put its id as
  a bare-string ``cause`` on the segment, as the Python SDK does [sdk]; the Java service
  (``inventory``) chains exceptions through ``exception.cause`` [segdocs].
* Lambda: two segments per invocation with the same name, ``AWS::Lambda`` (the service:
  ``http.response.status``, ``aws.request_id``, ``resource_arn``; ``parent_id`` = the
  caller's ``Lambda`` Invoke subsegment) and ``AWS::Lambda::Function`` (the function:
  ``aws.function_arn/resource_names/account_id``) whose ``parent_id`` is the service
  segment's id — a segment, not a subsegment — exactly as in [gettingdata]. The function
  segment holds ``Initialization`` (cold starts only; it starts *before* the function
  segment, inside the service segment, as in [gettingdata]), ``Invocation`` and
  ``Overhead``; code subsegments (``## lambda_handler``, where annotations and metadata
  live because the function segment is immutable from code [facts §6.4]) are direct
  children of the function segment, as the Python SDK's facade segment produces.
  A cold start happens when no idle execution environment exists: environments serve one
  invocation at a time and are reclaimed after 5–15 idle minutes.
* API Gateway: segment name ``<api>/<stage>``, origin ``AWS::ApiGateway::Stage``,
  ``aws.api_gateway{account_id, rest_api_id, stage, request_id}``, annotations
  ``aws:api_id``/``aws:api_stage`` (keys with a colon), metadata
  ``default.extended_request_id``, ``resource_arn`` of the stage, and one ``Lambda``
  subsegment per integration call [facts §1.5].
* SQS → Lambda: X-Ray links the consumer's trace to the producer's instead of merging them
  [linking]. The consumer is a separate trace whose root ``AWS::Lambda`` segment carries
  ``"links": [{"trace_id": <producer trace>, "id": <producer's SQS SendMessage subsegment
  id>}]`` — the segment ``links`` field of [otel]; the link's ``id`` is the span that sent
  the message. Which of Lambda's two segments carries the link is our choice (the service
  segment: Lambda's poller creates it when it receives the batch).
* Cross-account: every segment carries ``aws.account_id`` of the account it runs in;
  AWS SDK subsegments carry the *callee's* account in ``aws.account_id`` ("owner of the
  called resource"), which their inferred segments inherit [facts §1.7].

Examples
--------
>>> from xraykit.samples.generate import simulate_shop
>>> responses = simulate_shop(traces=20, seed=1)
>>> trace = responses[0]["Traces"][0]
>>> trace["Id"][:2], len(trace["Id"])
('1-', 35)
>>> sum(len(r["Traces"]) for r in responses) >= 20
True
"""

from __future__ import annotations

import base64
import bisect
import gzip
import json
import math
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "simulate_cross_account",
    "simulate_lambda_cold_starts",
    "simulate_shop",
    "simulate_traces",
    "write_responses",
]

Doc = dict[str, Any]

#: Start of each scenario unless ``start`` is given (a Tuesday; no wall clock is read).
DEFAULT_START = "2025-03-04T09:00:00+00:00"
REGION = "us-east-1"
BATCH = 5  # BatchGetTraces returns at most 5 traces per call [facts §2.2]

_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/133.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.3 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0",
    "ShopApp/4.12.0 (Android 15; Pixel 8)",
)
# documentation address ranges (RFC 5737): no real client is named
_CLIENT_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")


# --------------------------------------------------------------------------- helpers


def _epoch(start: datetime | str | float | None) -> float:
    """Return ``start`` as epoch seconds (a naive datetime or string is taken as UTC)."""
    if start is None:
        start = DEFAULT_START
    if isinstance(start, bool):
        raise TypeError(
            f"`start` must be a datetime, an ISO 8601 string or epoch seconds, "
            f"but {start!r} was passed."
        )
    if isinstance(start, int | float):
        return float(start)
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start)
        except ValueError:
            raise ValueError(
                f"`start` must be an ISO 8601 time such as '2025-03-04T09:00:00Z', but "
                f"{start!r} was passed."
            ) from None
    if isinstance(start, datetime):
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return start.timestamp()
    raise TypeError(
        f"`start` must be a datetime, an ISO 8601 string or epoch seconds, but {start!r} "
        f"was passed."
    )


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, but {value!r} was passed.")
    return value


def _t(x: float) -> float:
    return round(x, 6)


def _flags(status: int) -> Doc:
    """Return the X-Ray flags for an HTTP status (only the true ones, as SDKs emit them)."""
    if status >= 500:
        return {"fault": True}
    if status == 429:
        return {"error": True, "throttle": True}
    if status >= 400:
        return {"error": True}
    return {}


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class _Rng:
    """The single source of randomness: a seeded :class:`random.Random` plus id helpers."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def u(self, a: float, b: float) -> float:
        return a + (b - a) * self.r.random()

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def pick(self, seq: tuple[Any, ...] | list[Any]) -> Any:
        return seq[int(self.r.random() * len(seq))]

    def weighted(self, items: tuple[Any, ...], weights: tuple[float, ...]) -> Any:
        x = self.r.random() * sum(weights)
        for item, w in zip(items, weights, strict=True):
            x -= w
            if x < 0:
                return item
        return items[-1]

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * self.r.gauss(0.0, 1.0))

    def hex(self, digits: int) -> str:
        return f"{self.r.getrandbits(4 * digits):0{digits}x}"

    def entity_id(self) -> str:
        return self.hex(16)

    def trace_id(self, start: float) -> str:
        return f"1-{int(start):08x}-{self.hex(24)}"

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def alnum(self, n: int, alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") -> str:
        return "".join(alphabet[int(self.r.random() * len(alphabet))] for _ in range(n))

    def dynamodb_request_id(self) -> str:
        """52 upper-case letters and digits, like DynamoDB's x-amzn-RequestId."""
        return base64.b32hexencode(self.r.getrandbits(280).to_bytes(35, "big")).decode()[:52]

    def client_ip(self) -> str:
        return f"{self.pick(_CLIENT_NETS)}{1 + int(self.r.random() * 254)}"

    def arrivals(
        self, n: int, t0: float, seconds: int, rate: Callable[[float], float]
    ) -> list[float]:
        """Draw ``n`` sorted arrival times in ``[t0, t0 + seconds)`` with density ``rate``."""
        cum: list[float] = []
        total = 0.0
        for s in range(seconds):
            total += rate(s + 0.5)
            cum.append(total)
        times = []
        for _ in range(n):
            s = bisect.bisect_right(cum, self.r.random() * total)
            times.append(t0 + min(s, seconds - 1) + self.r.random())
        return sorted(times)


class _Trace:
    """The segment documents of one trace, collected while it is being built."""

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.docs: list[Doc] = []

    def add(self, doc: Doc) -> Doc:
        self.docs.append(doc)
        return doc

    def record(self) -> Doc:
        starts = [d["start_time"] for d in self.docs]
        ends = [d["end_time"] for d in self.docs]
        ordered = sorted(self.docs, key=lambda d: d["id"])
        return {
            "Id": self.trace_id,
            "Duration": round(max(ends) - min(starts), 3),
            "LimitExceeded": False,
            "Segments": [{"Id": d["id"], "Document": _dumps(d)} for d in ordered],
        }


def _segment(rng: _Rng, tr: _Trace, name: str, start: float, end: float, **fields: Any) -> Doc:
    """Start a segment document with X-Ray's leading keys; more keys follow in ``fields``."""
    doc: Doc = {
        "id": fields.pop("id", None) or rng.entity_id(),
        "name": name,
        "start_time": _t(start),
        "end_time": _t(end),
    }
    parent = fields.pop("parent_id", None)
    if parent:
        doc["parent_id"] = parent
    doc.update({k: v for k, v in fields.items() if k not in ("origin", "subsegments")})
    doc["trace_id"] = tr.trace_id
    if "origin" in fields:
        doc["origin"] = fields["origin"]
    if fields.get("subsegments"):
        doc["subsegments"] = fields["subsegments"]
    return tr.add(doc)


def _sub(rng: _Rng, name: str, start: float, end: float, **fields: Any) -> Doc:
    doc: Doc = {
        "id": fields.pop("id", None) or rng.entity_id(),
        "name": name,
        "start_time": _t(start),
        "end_time": _t(end),
    }
    doc.update({k: v for k, v in fields.items() if v is not None and v != []})
    return doc


def _inferred(rng: _Rng, tr: _Trace, sub: Doc, *, name: str, origin: str) -> Doc:
    """Add the inferred segment X-Ray makes from ``sub`` (see the module notes)."""
    doc: Doc = {
        "id": rng.entity_id(),
        "name": name,
        "start_time": sub["start_time"],
        "end_time": sub["end_time"],
        "parent_id": sub["id"],
        "inferred": True,
    }
    for key in ("error", "throttle", "fault", "http", "aws", "sql"):
        if key in sub:
            doc[key] = sub[key]
    doc["trace_id"] = tr.trace_id
    doc["origin"] = origin
    return tr.add(doc)


def _batch(records: list[Doc]) -> list[Doc]:
    return [
        {"Traces": records[i : i + BATCH], "UnprocessedTraceIds": []}
        for i in range(0, len(records), BATCH)
    ]


def _exception(
    rng: _Rng,
    etype: str,
    message: str,
    stack: list[tuple[str, int, str]],
    *,
    remote: bool = False,
    cause: str | None = None,
) -> Doc:
    exc: Doc = {"id": rng.entity_id(), "message": message, "type": etype}
    if remote:
        exc["remote"] = True
    if cause:
        exc["cause"] = cause
    exc["stack"] = [{"path": p, "line": ln, "label": lb} for p, ln, lb in stack]
    return exc


# --------------------------------------------------------------------------- AWS calls


class _Aws:
    """AWS SDK subsegments and their inferred segments, shared by the scenarios."""

    def __init__(self, rng: _Rng, account: str) -> None:
        self.rng = rng
        self.account = account

    def dynamodb(
        self,
        tr: _Trace,
        start: float,
        operation: str,
        table: str,
        latency: float,
        *,
        account: str | None = None,
        status: int = 200,
    ) -> Doc:
        rng = self.rng
        aws: Doc = {
            "operation": operation,
            "region": REGION,
            "request_id": rng.dynamodb_request_id(),
            "table_name": table,
            "resource_names": [table],
        }
        if account:
            aws["account_id"] = account
        sub = _sub(
            rng,
            "DynamoDB",
            start,
            start + latency,
            **_flags(status),
            http={"response": {"status": status, "content_length": 2 + int(rng.u(0, 900))}},
            aws=aws,
            namespace="aws",
        )
        _inferred(rng, tr, sub, name="DynamoDB", origin="AWS::DynamoDB::Table")
        return sub

    def sqs_send(
        self, tr: _Trace, start: float, queue: str, latency: float, *, account: str | None = None
    ) -> Doc:
        rng = self.rng
        owner = account or self.account
        aws: Doc = {
            "operation": "SendMessage",
            "region": REGION,
            "request_id": rng.uuid(),
            "queue_url": f"https://sqs.{REGION}.amazonaws.com/{owner}/{queue}",
            "message_id": rng.uuid(),
            "resource_names": [queue],
        }
        if account:
            aws["account_id"] = account
        sub = _sub(
            rng,
            "SQS",
            start,
            start + latency,
            http={"response": {"status": 200, "content_length": 378}},
            aws=aws,
            namespace="aws",
        )
        _inferred(rng, tr, sub, name="SQS", origin="AWS::SQS::Queue")
        return sub

    def sns_publish(self, tr: _Trace, start: float, topic: str, latency: float) -> Doc:
        rng = self.rng
        sub = _sub(
            rng,
            "SNS",
            start,
            start + latency,
            http={"response": {"status": 200}},
            aws={
                "operation": "Publish",
                "region": REGION,
                "request_id": rng.uuid(),
                "topic_arn": f"arn:aws:sns:{REGION}:{self.account}:{topic}",
            },
            namespace="aws",
        )
        _inferred(rng, tr, sub, name="SNS", origin="AWS::SNS")
        return sub


class _Lambda:
    """Lambda invocations: the service/function segment pair and execution environments."""

    def __init__(self, rng: _Rng, account: str, *, tag_account: bool = False) -> None:
        self.rng = rng
        self.account = account
        self.tag_account = tag_account
        self.pools: dict[str, list[dict[str, float]]] = {}
        self.cold = False

    def arn(self, function: str) -> str:
        return f"arn:aws:lambda:{REGION}:{self.account}:function:{function}"

    def environment(self, function: str, t: float) -> tuple[dict[str, float], bool]:
        """Return a free warm environment for ``function`` at ``t``, or a new (cold) one."""
        pool = self.pools.setdefault(function, [])
        pool[:] = [e for e in pool if e["busy_until"] > t or t - e["busy_until"] <= e["ttl"]]
        free = [e for e in pool if e["busy_until"] <= t]
        if free:
            return max(free, key=lambda e: e["busy_until"]), False
        env = {"busy_until": t, "ttl": self.rng.u(300.0, 900.0)}
        pool.append(env)
        return env, True

    def invoke(
        self,
        tr: _Trace,
        function: str,
        start: float,
        body: Callable[[float], tuple[list[Doc], float, Doc]],
        *,
        parent_id: str | None = None,
        init_median: float = 0.35,
        links: list[Doc] | None = None,
        service_id: str | None = None,
    ) -> tuple[float, bool, Doc]:
        """Build one invocation starting at ``start``; ``body(t)`` builds the handler.

        ``body`` returns (code subsegments, their end, outcome) where outcome may hold
        ``"exception"`` (an unhandled error) and anything the caller wants back.
        Returns (service segment end, cold, outcome).
        """
        rng = self.rng
        env, cold = self.environment(function, start)
        self.cold = cold  # the handler may read it, as Powertools' ColdStart annotation does
        subs: list[Doc] = []
        if cold:
            init_start = start + rng.u(0.004, 0.02)
            init_end = init_start + rng.lognormal(init_median, 0.25)
            subs.append(
                _sub(
                    rng,
                    "Initialization",
                    init_start,
                    init_end,
                    aws={"function_arn": self.arn(function)},
                )
            )
            fn_start = init_end + rng.u(0.0005, 0.004)
        else:
            fn_start = start + rng.u(0.002, 0.012)
        inv_start = fn_start + rng.u(0.0001, 0.0006)
        code, code_end, outcome = body(inv_start + rng.u(0.0002, 0.001))
        inv_end = code_end + rng.u(0.0003, 0.002)
        fn_end = inv_end + rng.u(0.0002, 0.0025)
        subs.append(
            _sub(rng, "Invocation", inv_start, inv_end, aws={"function_arn": self.arn(function)})
        )
        subs.append(
            _sub(rng, "Overhead", inv_end, fn_end, aws={"function_arn": self.arn(function)})
        )
        subs.extend(code)
        end = fn_end + rng.u(0.0004, 0.003)
        env["busy_until"] = end
        svc_id = service_id or rng.entity_id()
        svc_aws: Doc = {"request_id": rng.uuid()}
        fn_aws: Doc = {
            "function_arn": self.arn(function),
            "resource_names": [function],
            "account_id": self.account,
        }
        if self.tag_account:
            svc_aws["account_id"] = self.account
        svc_fields: Doc = {
            "id": svc_id,
            "parent_id": parent_id,
            "http": {"response": {"status": 200}},
            "aws": svc_aws,
            "origin": "AWS::Lambda",
            "resource_arn": self.arn(function),
        }
        if links:
            svc_fields["links"] = links
        _segment(rng, tr, function, start, end, **svc_fields)
        fn_fields: Doc = {"parent_id": svc_id, "aws": fn_aws}
        exc = outcome.get("exception")
        if exc is not None:
            fn_fields["fault"] = True
            fn_fields["cause"] = {"working_directory": "/var/task", "exceptions": [exc]}
        fn_fields["origin"] = "AWS::Lambda::Function"
        fn_fields["subsegments"] = subs
        _segment(rng, tr, function, fn_start, fn_end, **fn_fields)
        return end, cold, outcome

    def invoke_subsegment(
        self,
        function: str,
        start: float,
        end: float,
        status: int = 200,
        *,
        account: str | None = None,
    ) -> Doc:
        """The caller's ``Lambda`` Invoke subsegment (API Gateway or an AWS SDK client)."""
        rng = self.rng
        aws: Doc = {
            "function_name": function,
            "region": REGION,
            "operation": "Invoke",
            "request_id": rng.uuid(),
            "resource_names": [function],
        }
        if account:
            aws["account_id"] = account
        return _sub(
            rng,
            "Lambda",
            start,
            end,
            **_flags(status),
            http={
                "request": {
                    "url": f"https://lambda.{REGION}.amazonaws.com/2015-03-31/"
                    f"functions/{self.arn(function)}/invocations",
                    "method": "POST",
                },
                "response": {"status": status, "content_length": 40 + int(rng.u(0, 600))},
            },
            aws=aws,
            namespace="aws",
        )


# --------------------------------------------------------------------------- the shop


class _Shop:
    """One hour of a web shop; see :func:`simulate_shop`."""

    ACCOUNT = "123456789012"
    API_ID = "k7x2qv9d1m"
    API = "shop-api/prod"
    HOUR = 3600
    PEAK_AT, PEAK_WIDTH = 1500.0, 420.0  # traffic peak around minute 25
    INCIDENT = (2280.0, 3480.0)  # minutes 38-58: the inventory database slows down
    DB_HOST = "inventory-db.cluster-c7hq2m4xk1pz.us-east-1.rds.amazonaws.com"
    PAYGATE = "api.paygate.example"
    ROUTES = (
        ("GET", "/products/{sku}", "shop-catalog"),
        ("GET", "/cart", "shop-cart"),
        ("POST", "/cart/items", "shop-cart"),
        ("POST", "/checkout", "shop-checkout"),
    )
    ROUTE_WEIGHTS = (0.40, 0.15, 0.20, 0.25)

    def __init__(self, seed: int, t0: float) -> None:
        self.rng = _Rng(seed)
        self.t0 = t0
        self.aws = _Aws(self.rng, self.ACCOUNT)
        self.lam = _Lambda(self.rng, self.ACCOUNT)
        rng = self.rng
        tiers = ("free", "plus", "premium")
        self.customers = [
            (
                f"cust-{10000 + i}",
                rng.weighted(tiers, (0.6, 0.3, 0.1)),
                rng.client_ip(),
                rng.pick(_USER_AGENTS),
            )
            for i in range(320)
        ]
        self.skus = [f"SKU-{1000 + 37 * i}" for i in range(60)]
        zones = ("us-east-1a", "us-east-1b")
        self.instances = [(f"i-0{rng.hex(16)}", zones[i % 2]) for i in range(3)]
        self.containers = [
            f"payments-{rng.hex(6)}-{rng.alnum(5, 'bcdfghjklmnpqrstvwxz2456789')}" for _ in range(2)
        ]
        self.max_rate = self.rate(self.PEAK_AT)

    def rate(self, s: float) -> float:
        return 1.0 + 2.2 * math.exp(-(((s - self.PEAK_AT) / self.PEAK_WIDTH) ** 2))

    def load(self, t: float) -> float:
        return self.rate(t - self.t0) / self.max_rate

    def incident(self, t: float) -> float:
        """0 outside the incident, ramping to 1 over three minutes inside it."""
        s = t - self.t0
        a, b = self.INCIDENT
        if not a <= s < b:
            return 0.0
        return min(1.0, (s - a) / 180.0, (b - s) / 60.0)

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
        return _batch([r for _, r in records])

    def request(
        self, t: float, method: str, route: str, function: str, customer: tuple[str, str, str, str]
    ) -> tuple[_Trace, tuple[float, Doc] | None]:
        rng = self.rng
        tr = _Trace(rng.trace_id(t))
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
        _segment(
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
            **_flags(status),
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
        self, tr: _Trace, function: str, start: float, state: Doc
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
                sub, inv_status = self.call_inventory(
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
            exc = _exception(
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
        handler = _sub(
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
        self, tr: _Trace, t: float, state: Doc, calls: list[Doc], annotations: Doc, meta: Doc
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
        sub, inv_status = self.call_inventory(
            tr, t, cust_id, "POST", "/reservations", lines=len(lines)
        )
        calls.append(sub)
        t = sub["end_time"] + rng.u(0.0005, 0.002)
        if inv_status >= 500:
            return 503, t
        sub, pay_status = self.call_payments(tr, t, cust_id, tier, value)
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

    # --- downstream services ---------------------------------------------------------------

    def call_inventory(
        self, tr: _Trace, t: float, customer: str, method: str, path: str, *, lines: int = 1
    ) -> tuple[Doc, int]:
        """The Lambda's HTTP call to the EC2 inventory service and that service's segment."""
        rng = self.rng
        sub_id = rng.entity_id()
        url = f"http://inventory.internal.shop:8080{path}"
        seg_start = t + rng.lognormal(0.0012, 0.3)
        seg_end, status = self.inventory(tr, seg_start, sub_id, customer, method, url, lines)
        end = seg_end + rng.lognormal(0.0012, 0.3)
        sub = _sub(
            rng,
            "inventory.internal.shop",
            t,
            end,
            id=sub_id,
            **_flags(status),
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
                    _exception(
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
        tr: _Trace,
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
            sub = _sub(
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
                sql_exc = _exception(
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
                seg_exc = _exception(
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
            _inferred(rng, tr, sub, name=sub["name"], origin="Database::SQL")
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
            **_flags(status),
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
        _segment(rng, tr, "inventory", start, end, **fields)
        return end, status

    def call_payments(
        self, tr: _Trace, t: float, customer: str, tier: str, amount: float
    ) -> tuple[Doc, int]:
        rng = self.rng
        sub_id = rng.entity_id()
        url = "http://payments.internal.shop/charges"
        seg_start = t + rng.lognormal(0.0015, 0.3)
        seg_end, status = self.payments(tr, seg_start, sub_id, customer, tier, amount, url)
        end = seg_end + rng.lognormal(0.0015, 0.3)
        sub = _sub(
            rng,
            "payments.internal.shop",
            t,
            end,
            id=sub_id,
            **_flags(status),
            http={
                "request": {"url": url, "method": "post", "traced": True},
                "response": {"status": status, "content_length": 60 + int(rng.u(0, 90))},
            },
            namespace="remote",
        )
        return sub, status

    def payments(
        self,
        tr: _Trace,
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
            sub = _sub(
                rng,
                self.PAYGATE,
                t,
                t + latency,
                **_flags(api_status),
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
                exc = _exception(
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
            _inferred(rng, tr, sub, name=self.PAYGATE, origin="remote")
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
            **_flags(status),
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
        _segment(rng, tr, "payments", start, end, **fields)
        return end, status

    def consumer(
        self, producer_trace: str, sqs: Doc, order_id: str, value: float
    ) -> tuple[float, Doc]:
        """The linked trace of the SQS-triggered ``order-worker`` Lambda."""
        rng = self.rng
        start = sqs["end_time"] + rng.lognormal(0.35, 0.8)
        tr = _Trace(rng.trace_id(start))

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
            handler = _sub(
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


def simulate_shop(
    *, traces: int = 2000, start: datetime | str | float | None = None, seed: int = 0
) -> list[Doc]:
    """Simulate one hour of a serverless web shop as BatchGetTraces responses.

    ``shop-api/prod`` (API Gateway) invokes three Lambda functions (``shop-catalog``,
    ``shop-cart``, ``shop-checkout``) that read and write DynamoDB tables, call an EC2
    ``inventory`` service backed by PostgreSQL and an ECS ``payments`` service that calls an
    external payment API, and send an SQS message per order that an ``order-worker`` Lambda
    consumes in a linked trace. Traffic peaks around minute 25, when the payment API
    throttles (429); in minutes 38-58 the inventory database slows down about tenfold and
    some statements time out.

    Parameters
    ----------
    traces : int
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
    >>> responses = simulate_shop(traces=10)
    >>> docs = [json.loads(s["Document"]) for r in responses for tr in r["Traces"]
    ...         for s in tr["Segments"]]
    >>> origins = {d.get("origin") for d in docs}
    >>> {"AWS::ApiGateway::Stage", "AWS::Lambda", "AWS::Lambda::Function"} <= origins
    True
    """
    return _Shop(seed, _epoch(start)).run(_check_count("traces", traces))


# --------------------------------------------------------------------------- cold starts


class _ColdStarts:
    """Lambda functions with different runtimes and traffic shapes; see the public doc."""

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
        self.rng = _Rng(seed)
        self.t0 = t0
        self.aws = _Aws(self.rng, self.ACCOUNT)
        self.lam = _Lambda(self.rng, self.ACCOUNT)

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
        return _batch(records)

    def invocation(self, t: float, spec: tuple[Any, ...]) -> Doc:
        rng = self.rng
        name, runtime, memory, init_median, work_median, call, _share = spec
        tr = _Trace(rng.trace_id(t))
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
                exc = _exception(
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
            handler = _sub(
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


def simulate_lambda_cold_starts(
    *, traces: int = 1200, start: datetime | str | float | None = None, seed: int = 0
) -> list[Doc]:
    """Simulate six hours of four Lambda functions, with cold and warm invocations.

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
    traces : int
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
    >>> responses = simulate_lambda_cold_starts(traces=8)
    >>> first = responses[0]["Traces"][0]
    >>> fn = [json.loads(s["Document"]) for s in first["Segments"]
    ...       if '"AWS::Lambda::Function"' in s["Document"]][0]
    >>> [s["name"] for s in fn["subsegments"]][:3]  # the very first call is cold
    ['Initialization', 'Invocation', 'Overhead']
    """
    return _ColdStarts(seed, _epoch(start)).run(_check_count("traces", traces))


# --------------------------------------------------------------------------- cross-account


class _CrossAccount:
    """A storefront in one account calling services in two others; see the public doc."""

    WEB, ORDERS, SHARED = "111111111111", "222222222222", "333333333333"
    MINUTES = 30

    def __init__(self, seed: int, t0: float) -> None:
        self.rng = _Rng(seed)
        self.t0 = t0
        self.aws = _Aws(self.rng, self.ORDERS)
        self.lam = _Lambda(self.rng, self.SHARED, tag_account=True)
        self.tasks = [f"storefront-{self.rng.hex(8)}" for _ in range(3)]
        self.instances = [(f"i-0{self.rng.hex(16)}", z) for z in ("us-east-1a", "us-east-1c")]

    def run(self, n: int) -> list[Doc]:
        rng = self.rng
        records = []
        for t in rng.arrivals(
            n, self.t0, self.MINUTES * 60, lambda s: 1.0 + 0.5 * math.sin(s / 300)
        ):
            records.append(self.request(t))
        return _batch(records)

    def request(self, t: float) -> Doc:
        rng = self.rng
        tr = _Trace(rng.trace_id(t))
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
                    _sub(
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
                _sub(
                    rng,
                    "orders.internal.example",
                    tt,
                    end,
                    id=sub_id,
                    **_flags(status),
                    http={
                        "request": {"url": url, "method": method, "traced": True},
                        "response": {"status": status},
                    },
                    namespace="remote",
                )
            )
            tt = end + rng.u(0.0005, 0.002)
        end = tt + rng.u(0.001, 0.004)
        _segment(
            rng,
            tr,
            "storefront",
            t,
            end,
            http={
                "request": {
                    "method": method,
                    "url": f"https://shop.example.com{path}",
                    "user_agent": rng.pick(_USER_AGENTS),
                    "client_ip": rng.client_ip(),
                },
                "response": {"status": status, "content_length": 200 + int(rng.u(0, 3000))},
            },
            **_flags(status),
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
        self, tr: _Trace, start: float, parent_id: str, customer: str, method: str, url: str
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
                        _exception(
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
        _segment(
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
            **_flags(status),
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


def simulate_cross_account(
    *, traces: int = 400, start: datetime | str | float | None = None, seed: int = 0
) -> list[Doc]:
    """Simulate 30 minutes of services spread over three AWS accounts.

    ``storefront`` (ECS, account 111111111111) authorises each request by invoking the
    ``identity-authorizer`` Lambda in the shared account 333333333333 (which reads its
    ``sessions`` table there), then calls ``orders-api`` (EC2, account 222222222222), which
    writes its ``orders`` table and sends an audit message to an SQS queue owned by the
    shared account. Every segment has ``aws.account_id``; every AWS SDK subsegment has the
    account that owns the called resource.

    Parameters
    ----------
    traces : int
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
    >>> responses = simulate_cross_account(traces=5)
    >>> docs = [json.loads(s["Document"]) for r in responses for tr in r["Traces"]
    ...         for s in tr["Segments"]]
    >>> sorted({d["aws"]["account_id"] for d in docs if not d.get("inferred")})
    ['111111111111', '222222222222', '333333333333']
    """
    return _CrossAccount(seed, _epoch(start)).run(_check_count("traces", traces))


# --------------------------------------------------------------------------- benchmark data


def simulate_traces(
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
    >>> responses = list(simulate_traces(12, seed=3))
    >>> [len(r["Traces"]) for r in responses]
    [5, 5, 2]
    """
    _check_count("n_traces", n_traces)
    rng = _Rng(seed)
    aws = _Aws(rng, "123456789012")
    t = _epoch(start)
    fronts = [
        ("web-frontend", "AWS::EC2::Instance"),
        ("mobile-api", "AWS::ECS::Container"),
        ("partner-api", "AWS::ElasticBeanstalk::Environment"),
    ]
    paths = ("/", "/search", "/items/{id}", "/basket", "/account")
    batch: list[Doc] = []
    for i in range(n_traces):
        t += rng.lognormal(0.04, 0.8)
        tr = _Trace(rng.trace_id(t))
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
        work = _sub(
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
            inner = _sub(
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
                **_flags(back_status),
                "origin": "AWS::ECS::Container",
                "subsegments": [inner],
            }
            if back_status >= 500:
                back_fields["cause"] = {
                    "working_directory": "/app",
                    "exceptions": [
                        _exception(
                            rng,
                            "RuntimeError",
                            "price rules unavailable",
                            [("pricing.py", 17, "price")],
                        )
                    ],
                }
            _segment(rng, tr, "pricing", seg_start, seg_end, **back_fields)
            call = _sub(
                rng,
                "pricing",
                cursor,
                seg_end + rng.u(0.0005, 0.002),
                id=sub_id,
                **_flags(back_status),
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
        _segment(
            rng,
            tr,
            name,
            t,
            cursor,
            http={
                "request": {
                    "method": "GET",
                    "url": f"https://example.com{path}",
                    "user_agent": rng.pick(_USER_AGENTS),
                    "client_ip": rng.client_ip(),
                },
                "response": {"status": status},
            },
            **_flags(status),
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


# --------------------------------------------------------------------------- writing


def write_responses(responses: Iterable[Doc], path: str | Path) -> Path:
    """Write BatchGetTraces responses as JSON lines, gzipped if ``path`` ends in ``.gz``.

    The bytes depend only on the responses: compact JSON, one response per line, and a gzip
    header with no file name and a zero time stamp.

    Parameters
    ----------
    responses : iterable of dict
        Responses such as :func:`simulate_shop` returns; consumed once, lazily.
    path : str or Path
        Where to write; parent folders must exist.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = write_responses(simulate_shop(traces=3), pathlib.Path(folder) / "tiny.jsonl.gz")
    ...     gzip.decompress(out.read_bytes()).startswith(b'{"Traces":[{"Id":"1-')
    True
    """
    path = Path(path)
    with path.open("wb") as raw:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
                for response in responses:
                    gz.write((_dumps(response) + "\n").encode())
        else:
            for response in responses:
                raw.write((_dumps(response) + "\n").encode())
    return path

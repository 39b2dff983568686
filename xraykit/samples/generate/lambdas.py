"""Lambda invocations: the service and function segment pair, and execution environments.

Each invocation gives two segments named after the function (``AWS::Lambda`` and
``AWS::Lambda::Function``), with ``Initialization`` on cold starts, ``Invocation`` and
``Overhead``; an environment serves one invocation at a time and is reclaimed after 5–15
idle minutes, so cold starts follow from the traffic. Also the caller's ``Lambda`` Invoke
subsegment.
"""

from __future__ import annotations

from collections.abc import Callable

from xraykit.samples.generate.documents import (
    REGION,
    Doc,
    TraceDocuments,
    segment,
    status_flags,
    subsegment,
)
from xraykit.samples.generate.rng import Rng

__all__ = ["LambdaInvocations"]


class LambdaInvocations:
    """Lambda invocations: the service/function segment pair and execution environments."""

    def __init__(self, rng: Rng, account: str, *, tag_account: bool = False) -> None:
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
        tr: TraceDocuments,
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
                subsegment(
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
            subsegment(
                rng, "Invocation", inv_start, inv_end, aws={"function_arn": self.arn(function)}
            )
        )
        subs.append(
            subsegment(rng, "Overhead", inv_end, fn_end, aws={"function_arn": self.arn(function)})
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
        segment(rng, tr, function, start, end, **svc_fields)
        fn_fields: Doc = {"parent_id": svc_id, "aws": fn_aws}
        exc = outcome.get("exception")
        if exc is not None:
            fn_fields["fault"] = True
            fn_fields["cause"] = {"working_directory": "/var/task", "exceptions": [exc]}
        fn_fields["origin"] = "AWS::Lambda::Function"
        fn_fields["subsegments"] = subs
        segment(rng, tr, function, fn_start, fn_end, **fn_fields)
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
        return subsegment(
            rng,
            "Lambda",
            start,
            end,
            **status_flags(status),
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

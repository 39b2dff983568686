"""AWS SDK call subsegments (DynamoDB, SQS, SNS) and the inferred segments X-Ray makes of them.

Subsegments are named after the service with namespace ``aws`` and the ``aws`` block the
service API fills (operation, region, request id, the resource); an ``account`` argument
names the account that owns the called resource, for cross-account calls.
"""

from __future__ import annotations

from xraykit.samples.generate.documents import (
    REGION,
    Doc,
    TraceDocuments,
    inferred_segment,
    status_flags,
    subsegment,
)
from xraykit.samples.generate.rng import Rng

__all__ = ["AwsCalls"]


class AwsCalls:
    """AWS SDK subsegments and their inferred segments, shared by the scenarios."""

    def __init__(self, rng: Rng, account: str) -> None:
        self.rng = rng
        self.account = account

    def dynamodb(
        self,
        tr: TraceDocuments,
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
        sub = subsegment(
            rng,
            "DynamoDB",
            start,
            start + latency,
            **status_flags(status),
            http={"response": {"status": status, "content_length": 2 + int(rng.u(0, 900))}},
            aws=aws,
            namespace="aws",
        )
        inferred_segment(rng, tr, sub, name="DynamoDB", origin="AWS::DynamoDB::Table")
        return sub

    def sqs_send(
        self,
        tr: TraceDocuments,
        start: float,
        queue: str,
        latency: float,
        *,
        account: str | None = None,
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
        sub = subsegment(
            rng,
            "SQS",
            start,
            start + latency,
            http={"response": {"status": 200, "content_length": 378}},
            aws=aws,
            namespace="aws",
        )
        inferred_segment(rng, tr, sub, name="SQS", origin="AWS::SQS::Queue")
        return sub

    def sns_publish(self, tr: TraceDocuments, start: float, topic: str, latency: float) -> Doc:
        rng = self.rng
        sub = subsegment(
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
        inferred_segment(rng, tr, sub, name="SNS", origin="AWS::SNS")
        return sub

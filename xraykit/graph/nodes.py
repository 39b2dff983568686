"""Identity of downstream nodes: the node (name, type, account) a call to another service stands for.

A subsegment in the ``aws`` or ``remote`` namespace, or one with a ``sql`` block, is a call
to a downstream service. Its node is named after the DynamoDB table, the SQS queue or the
Lambda function when the call names one, else after the AWS service (``AWS::<Service>``);
``Database::SQL`` for SQL and ``remote`` for any other downstream (docs/service-graph.md).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.graph.arrays import _NO_TEXT, _strings

# Lower-cased AWS SDK service names (endpoint prefixes from the Python SDK, service ids
# from other SDKs) -> the name X-Ray uses for the service.
_AWS_SERVICES: dict[str, str] = {
    "dynamodb": "DynamoDB",
    "dynamodbv2": "DynamoDB",
    "sqs": "SQS",
    "sns": "SNS",
    "s3": "S3",
    "lambda": "Lambda",
    "kinesis": "Kinesis",
    "firehose": "Firehose",
    "states": "StepFunctions",
    "sfn": "StepFunctions",
    "stepfunctions": "StepFunctions",
    "secretsmanager": "SecretsManager",
    "ssm": "SSM",
    "sts": "STS",
    "events": "EventBridge",
    "eventbridge": "EventBridge",
    "ses": "SES",
    "email": "SES",
    "kms": "KMS",
    "ec2": "EC2",
    "athena": "Athena",
    "monitoring": "CloudWatch",
    "cloudwatch": "CloudWatch",
    "logs": "CloudWatchLogs",
    "cloudwatchlogs": "CloudWatchLogs",
    "apigateway": "ApiGateway",
    "execute-api": "ApiGateway",
    "rds-data": "RDSDataService",
    "cognito-idp": "CognitoIdentityProvider",
}


def _canonical_service(name: str) -> str:
    key = name.strip().lower().replace(" ", "")
    for prefix in ("amazon", "aws"):
        if (
            key not in _AWS_SERVICES
            and key.startswith(prefix)
            and key[len(prefix) :] in _AWS_SERVICES
        ):
            key = key[len(prefix) :]
    return _AWS_SERVICES.get(key, name.strip().replace(" ", ""))


_QUEUE = re.compile(r"([^/]+)/?$")
_FUNCTION = re.compile(r"function:([^:]+)")


def _identity(
    name: str, kind: str, table: str, queue_url: str, function: str, account: str, owner: str
) -> tuple[str, str, str]:
    """Name, type and account of the node one downstream call stands for.

    ``kind`` is ``"sql"`` for a call with a ``sql`` block, else the subsegment's namespace.
    """
    if kind == "sql":
        return name, "Database::SQL", ""
    if kind != "aws":
        return name, "remote", ""
    service = _canonical_service(name)
    node, type_ = service, f"AWS::{service}"
    match = _QUEUE.search(queue_url)
    queue = match.group(1) if match else ""
    if service == "DynamoDB" and table:
        node, type_ = table, "AWS::DynamoDB::Table"
    elif service == "SQS" and queue:
        node, type_ = queue, "AWS::SQS::Queue"
    elif service == "Lambda" and function:
        found = _FUNCTION.search(function) if function.startswith("arn:") else None
        node = found.group(1) if found else function
    return node, type_, account or owner


def _downstream_identity(
    subs: pd.DataFrame, rows: np.ndarray, is_sql: np.ndarray, owner_account: pa.Array
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Name, type and account (Arrow arrays) of the node each downstream call stands for.

    ``rows`` are the calls' positions in ``subs``, ``is_sql`` whether each has a ``sql``
    block, ``owner_account`` the calling segment's account. The rules run once per distinct
    combination of the fields they read, not once per call.
    """
    kind = pc.if_else(
        pa.array(is_sql, pa.bool_()),
        pa.scalar("sql", pa.large_string()),
        _strings(subs["namespace"]).take(rows),
    )
    fields = [
        _strings(subs["name"]).take(rows),
        kind,
        *(
            _strings(subs[c]).take(rows)
            for c in ("table_name", "queue_url", "function_name", "aws_account_id")
        ),
        owner_account,
    ]
    combo = np.zeros(len(rows), dtype=np.int64)
    codes: list[np.ndarray] = []
    values: list[list[str]] = []
    for field_ in fields:
        encoded = pc.dictionary_encode(pc.fill_null(field_, _NO_TEXT))
        codes.append(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64))
        values.append(encoded.dictionary.to_pylist())
        combo = pd.factorize(combo * (len(values[-1]) + 1) + codes[-1])[0]
    first = np.unique(combo, return_index=True)[1]  # a row of each combination, in combo order
    found = [
        _identity(*(vals[c] for vals, c in zip(values, row, strict=True)))
        for row in zip(*(field_codes[first].tolist() for field_codes in codes), strict=True)
    ]
    take = pa.array(combo)
    return (
        pa.array([f[0] for f in found], pa.large_string()).take(take),
        pa.array([f[1] for f in found], pa.large_string()).take(take),
        pa.array([f[2] for f in found], pa.large_string()).take(take),
    )


def _is_call(subs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Subsegments that stand for a call to a downstream service, and those with SQL."""
    is_sql = (
        subs["sql_url"].notna().to_numpy()
        | subs["sql_database_type"].notna().to_numpy()
        | subs["sql_sanitized_query"].notna().to_numpy()
    )
    namespace = pc.is_in(
        _strings(subs["namespace"]), value_set=pa.array(["aws", "remote"], pa.large_string())
    )
    return pc.fill_null(namespace, False).to_numpy(zero_copy_only=False) | is_sql, is_sql

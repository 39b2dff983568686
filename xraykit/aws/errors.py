"""What went wrong with AWS, said with the fix: botocore errors become
:class:`~xraykit.exceptions.LiveAccessError` naming the IAM action, the credentials or the
region to correct; the retry classification (throttle, transient) of an error code; the
offline check of a filter expression before any call.
"""

from __future__ import annotations

from typing import Any

from xraykit.exceptions import FilterExpressionError, LiveAccessError, LiveFilterExpressionError
from xraykit.query import validate as _validate_expression

__all__ = ["translate_error"]

_READ_ONLY_POLICY = "AWSXrayReadOnlyAccess"
_THROTTLE_CODES = frozenset(
    {
        "ThrottledException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "429",
    }
)
_TRANSIENT_CODES = frozenset(
    {"InternalFailure", "InternalServerError", "ServiceUnavailable", "RequestTimeout"}
)
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedException",
        "Forbidden",
        "403",
    }
)
_EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
)
_BAD_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)


def _error_code(exc: Any) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "") or "")


def _error_message(exc: Any) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "") or str(exc))


def _retry_kind(exc: Any) -> str | None:
    code = _error_code(exc)
    status = (
        (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    )
    if code in _THROTTLE_CODES or status == 429:
        return "throttle"
    if code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500):
        return "transient"
    return None


def translate_error(exc: BaseException, operation: str, params: dict[str, Any]) -> LiveAccessError:
    """Turn a boto3/botocore error into a LiveAccessError that says how to fix it."""
    name = type(exc).__name__
    code = _error_code(exc)
    message = _error_message(exc)
    action = f"xray:{operation}" if not operation.startswith("sts:") else operation
    if name in {"NoCredentialsError", "PartialCredentialsError"}:
        return LiveAccessError(
            f"No AWS credentials were found ({exc}). Expected a profile or credentials in the "
            "environment. Fix: run `aws configure` (or `aws sso login --profile NAME`) and pass "
            "profile='NAME', or set AWS_PROFILE; to work offline, use "
            "xraykit.load_sample('shop') instead."
        )
    if name == "ProfileNotFound":
        profile = getattr(exc, "kwargs", {}).get("profile")
        return LiveAccessError(
            f"The AWS profile {profile!r} was not found in ~/.aws/config or ~/.aws/credentials. "
            "Fix: pass the name of a profile from ~/.aws/config (`aws configure "
            "list-profiles` lists them), or create one with `aws configure --profile NAME`."
        )
    if name == "NoRegionError":
        return LiveAccessError(
            "No AWS region was given. Fix: pass region='us-east-1' (the region your traces are "
            "in), or set AWS_REGION / AWS_DEFAULT_REGION, or add `region = ...` to the profile."
        )
    if (
        name
        in {
            "TokenRetrievalError",
            "SSOTokenLoadError",
            "UnauthorizedSSOTokenError",
            "CredentialRetrievalError",
        }
        or code in _EXPIRED_CODES
    ):
        return LiveAccessError(
            f"The AWS credentials have expired or could not be refreshed ({code or name}: "
            f"{message}). Fix: refresh them (`aws sso login --profile NAME`, or new temporary "
            "keys for AWS_SESSION_TOKEN) and call again; cached traces are kept."
        )
    if name in {"EndpointConnectionError", "ConnectTimeoutError"}:
        return LiveAccessError(
            f"The X-Ray endpoint could not be reached ({exc}). Fix: check the network, any "
            "proxy (HTTPS_PROXY) or VPC endpoint, and that the region name is right; to work "
            "offline, use xraykit.load_sample('shop')."
        )
    if code in _DENIED_CODES:
        return LiveAccessError(
            f"AWS refused {action} ({code}: {message}). Fix: allow the IAM action {action!r} "
            f"for these credentials, {_remedy(action)}"
        )
    if code in _BAD_CREDENTIAL_CODES:
        return LiveAccessError(
            f"AWS did not accept these credentials ({code}: {message}). Fix: check the access "
            "key and secret (`aws sts get-caller-identity` shows who you are), or choose "
            "another profile with profile='NAME'."
        )
    if code == "InvalidRequestException" and params.get("FilterExpression"):
        expression = params["FilterExpression"]
        return LiveFilterExpressionError(
            f"X-Ray rejected the filter expression {expression!r}: {message}. Fix: correct it "
            "(xraykit.query.validate(expression) checks one offline) and call again.",
            expression=expression,
        )
    if code == "InvalidRequestException":
        shown = {k: v for k, v in params.items() if k != "TraceIds"}
        return LiveAccessError(
            f"X-Ray rejected {operation} with {shown!r}: {message}. Fix: check the time window "
            "(at most 30 days back, start before end) and the group name."
        )
    return LiveAccessError(
        f"{operation} failed ({code or name}: {message}). Fix: check the credentials, region "
        "and permissions, then call again; cached traces are kept."
    )


#: Actions the managed policy AWSXrayReadOnlyAccess does not grant (Transaction Search).
_TRANSACTION_SEARCH_ACTIONS = frozenset(
    {"xray:StartTraceRetrieval", "xray:ListRetrievedTraces", "xray:GetTraceSegmentDestination"}
)


def _remedy(action: str) -> str:
    """How to grant ``action``: the policy that holds it."""
    if action in _TRANSACTION_SEARCH_ACTIONS:
        return (
            f"which {_READ_ONLY_POLICY} does not grant: attach the policy "
            "xraykit.aws.policies.read_only_policy(transaction_search=True) returns (it has the "
            "Transaction Search actions xray:StartTraceRetrieval, xray:ListRetrievedTraces "
            "and xray:GetTraceSegmentDestination)."
        )
    if action == "sts:AssumeRole":
        return (
            "with xraykit.aws.policies.assume_role_policy([...]), and check that the role's trust "
            "policy names you (xraykit.aws.policies.trust_policy(...))."
        )
    if action.startswith("sts:"):
        return "(any IAM identity may call it unless an explicit Deny or an SCP forbids it)."
    return (
        f"for example by attaching the managed policy {_READ_ONLY_POLICY} "
        "(xraykit.aws.policies.read_only_policy() returns a minimal one)."
    )


def _validate_filter(expression: str | None) -> None:
    """Check a filter expression offline (xraykit.query), before any API call."""
    if expression is None:
        return
    if not isinstance(expression, str):
        raise LiveFilterExpressionError(
            f"`filter_expression` must be a string, but {expression!r} was passed.",
            expression=repr(expression),
        )
    if not expression.strip():
        raise LiveFilterExpressionError(
            "`filter_expression` must not be empty; pass None to fetch every trace.",
            expression=expression,
        )
    try:
        _validate_expression(expression)
    except FilterExpressionError as exc:
        raise LiveFilterExpressionError(
            f"The filter expression is not valid, so no API call was made: {exc}",
            expression=expression,
            position=exc.position,
        ) from exc

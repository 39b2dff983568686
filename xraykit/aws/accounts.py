"""Traces of several AWS accounts in one TraceSet, by assuming a role in each.

:func:`fetch_accounts` assumes every role with STS, pulls the accounts in parallel (each with
its own boto3 session and client, created on the calling thread because sessions are not
thread-safe), fills ``segments.account_id`` from the role's account where a document does not
say, and returns one TraceSet. With CloudWatch cross-account observability a plain
:func:`xraykit.fetch` in the monitoring account is enough (see ``docs/aws.md``). The IAM
policies and the daemon set-up for either way are in :mod:`xraykit.aws.policies`.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from xraykit.aws.client import client_config, connect
from xraykit.aws.errors import translate_error
from xraykit.aws.policies import _role_account
from xraykit.aws.pull import build_query, pull
from xraykit.exceptions import (
    ArgumentError,
    ArgumentTypeError,
    LiveAccessError,
    XrayKitWarning,
    require,
)
from xraykit.traceset import TraceSet, concat

__all__ = ["fetch_accounts"]

_QUERY_OPTIONS = frozenset(
    {"since", "start", "end", "filter_expression", "group", "time_range_type", "max_traces"}
)


def _assume(sts: Any, role_arn: str, *, external_id: str | None, session_name: str,
            duration_seconds: int) -> dict[str, Any]:  # fmt: skip
    botocore_exceptions = require("botocore.exceptions", "aws")
    params: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": duration_seconds,
    }
    if external_id is not None:
        params["ExternalId"] = external_id
    try:
        return sts.assume_role(**params)
    except botocore_exceptions.ClientError as exc:  # type: ignore[attr-defined]
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code in ("AccessDenied", "AccessDeniedException"):
            raise LiveAccessError(
                f"STS refused sts:AssumeRole on {role_arn!r} ({code}: {message}). Fix: allow "
                "'sts:AssumeRole' on that ARN for your credentials "
                "(xraykit.aws.policies.assume_role_policy([...])), and check that the role's trust "
                "policy names your account or role"
                + (" and the external id" if external_id else "")
                + " (xraykit.aws.policies.trust_policy(...))."
            ) from exc
        raise LiveAccessError(
            f"STS could not assume {role_arn!r} ({code}: {message}). Fix: check the ARN, the "
            "role's trust policy and your credentials."
        ) from exc
    except botocore_exceptions.BotoCoreError as exc:  # type: ignore[attr-defined]
        raise translate_error(exc, "sts:AssumeRole", {}) from exc


def fetch_accounts(
    role_arns: Sequence[str],
    *,
    external_id: str | None = None,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    session_name: str = "xraykit",
    concurrency: int = 8,
    **fetch_options: Any,
) -> TraceSet:
    """Fetch traces from several accounts by assuming a role in each; return one TraceSet.

    Each role is assumed with STS from ``session`` / ``profile``; the accounts are pulled in
    parallel, each with :func:`xraykit.fetch`'s machinery (its own client, ``concurrency``
    threads, retries, cache per account). ``segments.account_id`` is set to the role's
    account where a document does not carry ``aws.account_id``; ``summaries`` gains an
    ``account_id`` column; ``cost`` is the sum over accounts.

    Parameters
    ----------
    role_arns : list of str
        ``arn:aws:iam::<account>:role/<name>``, one per account.
    external_id : str, optional
        Passed to ``AssumeRole`` when the roles' trust policy requires one.
    session, profile, region
        The credentials that assume the roles, and the region to read.
    session_name : str
        ``RoleSessionName`` (shows in CloudTrail).
    concurrency : int
        Threads per account.
    **fetch_options
        Forwarded to :func:`xraykit.fetch`: ``since``, ``start``, ``end``,
        ``filter_expression``, ``group``, ``time_range_type``, ``max_traces``, ``cache``,
        ``cache_dir``, ``progress``, ``retry``.

    Raises
    ------
    LiveAccessError
        When a role cannot be assumed (naming ``sts:AssumeRole`` and the trust policy) or an
        account's pull fails.

    Examples
    --------
    Needs AWS credentials and the roles, so not run as a test (tests/test_accounts.py runs
    it against moto on 127.0.0.1):

    >>> import xraykit
    >>> ts = xraykit.fetch_accounts(
    ...     ["arn:aws:iam::111111111111:role/xraykit-read",
    ...      "arn:aws:iam::222222222222:role/xraykit-read"],
    ...     since="1h", profile="central",
    ... )  # doctest: +SKIP
    >>> ts.segments.groupby("account_id").size()  # doctest: +SKIP
    """
    if isinstance(role_arns, str):
        raise ArgumentError("`role_arns` must be a list of role ARNs, not one string.")
    arns = list(dict.fromkeys(role_arns))
    if not arns:
        raise ArgumentError("`role_arns` must name at least one role ARN.")
    accounts = [_role_account(a) for a in arns]
    allowed = {"since", "start", "end", "filter_expression", "group", "time_range_type",
               "max_traces", "cache", "cache_dir", "progress", "retry"}  # fmt: skip
    unknown = sorted(set(fetch_options) - allowed)
    if unknown:
        raise ArgumentTypeError(
            f"fetch_accounts() got unexpected options {unknown}; allowed: {sorted(allowed)}."
        )
    query = build_query(**{k: v for k, v in fetch_options.items() if k in _QUERY_OPTIONS})

    boto3 = require("boto3", "aws")
    botocore_exceptions = require("botocore.exceptions", "aws")
    if session is not None and profile is not None:
        raise ArgumentError("Pass either `session` or `profile`, not both.")
    try:
        base = session or boto3.Session(profile_name=profile)  # type: ignore[attr-defined]
        sts = base.client("sts", region_name=region, config=client_config(1))
    except botocore_exceptions.BotoCoreError as exc:  # type: ignore[attr-defined]
        raise translate_error(exc, "sts:AssumeRole", {}) from exc

    # sessions and clients are built here, on one thread; only clients cross to the workers
    connections = []
    for arn, account in zip(arns, accounts, strict=True):
        answer = _assume(sts, arn, external_id=external_id, session_name=session_name,
                         duration_seconds=3600)  # fmt: skip
        credentials = answer["Credentials"]
        assumed = answer.get("AssumedRoleUser", {}).get("Arn", "")
        account = assumed.split(":")[4] if assumed.count(":") >= 5 else account
        role_session = boto3.Session(  # type: ignore[attr-defined]
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region or base.region_name,
        )
        conn = connect(session=role_session, region=region, concurrency=concurrency)
        connections.append((account, conn))

    cancel = threading.Event()
    options = {
        "concurrency": concurrency,
        "cache": fetch_options.get("cache", True),
        "cache_dir": fetch_options.get("cache_dir"),
        "progress": fetch_options.get("progress", True) and len(connections) == 1,
        "retry": fetch_options.get("retry"),
    }
    results: dict[str, TraceSet] = {}
    with cf.ThreadPoolExecutor(
        max_workers=len(connections), thread_name_prefix="xraykit-acct"
    ) as pool:
        futures = {
            pool.submit(
                pull, conn, query, account_id=account, fill_account=True, cancel=cancel,
                **options,
            ): account
            for account, conn in connections
        }  # fmt: skip
        pending = set(futures)
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.2)
                for future in done:
                    results[futures[future]] = future.result()
        except KeyboardInterrupt:
            cancel.set()
            for future in pending:
                try:
                    results[futures[future]] = future.result()
                except LiveAccessError:
                    continue
            warnings.warn(
                f"Interrupted: returning what {len(results)} of {len(connections)} accounts "
                "returned so far; call again to resume from the cache.",
                XrayKitWarning,
                stacklevel=2,
            )
        except BaseException:
            cancel.set()
            raise
    ordered = [results[a] for a, _ in connections if a in results]
    merged = concat(ordered)
    cost = None
    for part in ordered:
        cost = part.cost if cost is None else cost + part.cost
    merged.cost = cost
    return merged

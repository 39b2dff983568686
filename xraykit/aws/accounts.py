"""Cross-account X-Ray: pull traces from several accounts, and the IAM and daemon set-up.

Two ways to see traces of several accounts (xray-facts §6.2, §6.3):

* **Roles** — each source account has a role that a central principal may assume.
  :func:`fetch_accounts` assumes every role with STS, pulls each account in parallel (its own
  boto3 session and client, created on the calling thread because sessions are not
  thread-safe), fills ``segments.account_id`` from the role's account where a document does
  not say, and returns one TraceSet.
* **CloudWatch cross-account observability** — in a *monitoring* account, a plain
  ``xraykit.fetch`` already returns the source accounts' traces, and ``account_id`` comes
  from the data (``aws.account_id``, ``ServiceIds[].AccountId``).

The generators return plain ``dict`` (JSON-ready) or ``str`` outputs, for the policies and
configuration the lessons talk about:

=================================  =====================================================
:func:`read_only_policy`           what xraykit's live functions need (IAM policy)
:func:`assume_role_policy`         lets a principal assume the source accounts' roles
:func:`daemon_write_policy`        what the X-Ray daemon / SDK needs to send traces
:func:`trust_policy`               who may assume a cross-account role
:func:`daemon_config`              the daemon's ``cfg.yaml`` (``RoleARN`` for cross-account)
:func:`daemon_command`             the same as command-line flags
:func:`cross_account_role_template`  a CloudFormation template for the role
=================================  =====================================================

Examples
--------
>>> from xraykit.aws.accounts import read_only_policy, daemon_config
>>> "xray:BatchGetTraces" in read_only_policy()["Statement"][0]["Action"]
True
>>> print(daemon_config(region="eu-west-1",
...                     role_arn="arn:aws:iam::111122223333:role/xray-writer"))  # doctest: +ELLIPSIS
# X-Ray daemon configuration (cfg.yaml), written by xraykit
Version: 2
Region: "eu-west-1"
RoleARN: "arn:aws:iam::111122223333:role/xray-writer"
...
"""

from __future__ import annotations

import concurrent.futures as cf
import re
import threading
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from xraykit import aws as _aws
from xraykit.exceptions import LiveAccessError, XrayKitWarning, require
from xraykit.traceset import concat

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = [
    "DAEMON_WRITE_ACTIONS",
    "XRAYKIT_READ_ACTIONS",
    "assume_role_policy",
    "cross_account_role_template",
    "daemon_command",
    "daemon_config",
    "daemon_write_policy",
    "fetch_accounts",
    "read_only_policy",
    "trust_policy",
]

#: What xraykit's live functions call (all covered by AWSXrayReadOnlyAccess except the
#: Transaction Search trio at the end).
XRAYKIT_READ_ACTIONS = (
    "xray:GetTraceSummaries",
    "xray:BatchGetTraces",
    "xray:GetServiceGraph",
    "xray:GetTraceGraph",
    "xray:GetSamplingRules",
    "xray:GetGroups",
    "xray:GetGroup",
    "xray:GetTraceSegmentDestination",
    "xray:StartTraceRetrieval",
    "xray:ListRetrievedTraces",
)
#: The actions of the managed policy AWSXRayDaemonWriteAccess.
DAEMON_WRITE_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
)

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_POLICY_VERSION = "2012-10-17"
_QUERY_OPTIONS = frozenset(
    {"since", "start", "end", "filter_expression", "group", "time_range_type", "max_traces"}
)


def _role_account(role_arn: str) -> str:
    match = _ROLE_ARN.match(role_arn) if isinstance(role_arn, str) else None
    if match is None:
        raise ValueError(
            "A role ARN must look like 'arn:aws:iam::123456789012:role/NAME', "
            f"but {role_arn!r} was passed."
        )
    return match.group(1)


def _check_account(account_id: str, name: str = "account_id") -> str:
    if not isinstance(account_id, str) or not _ACCOUNT.match(account_id):
        raise ValueError(
            f"`{name}` must be a 12-digit AWS account id such as '123456789012', "
            f"but {account_id!r} was passed."
        )
    return account_id


def _check_region(region: str | None) -> None:
    if region is not None and not _REGION.match(str(region)):
        raise ValueError(f"`region` must look like 'us-east-1', but {region!r} was passed.")


# --------------------------------------------------------------------------------------
# policies


def read_only_policy(*, transaction_search: bool = True) -> dict[str, Any]:
    """Return the least-privilege IAM policy for xraykit's live functions.

    The managed policy ``AWSXrayReadOnlyAccess`` covers the same X-Ray reads; attach it
    instead if you prefer a managed policy (add the Transaction Search actions for accounts
    that send traces to CloudWatch Logs).

    Parameters
    ----------
    transaction_search : bool
        Include ``xray:StartTraceRetrieval`` and ``xray:ListRetrievedTraces``.

    Examples
    --------
    >>> policy = read_only_policy(transaction_search=False)
    >>> policy["Statement"][0]["Action"][:2]
    ['xray:GetTraceSummaries', 'xray:BatchGetTraces']
    """
    actions = [
        a
        for a in XRAYKIT_READ_ACTIONS
        if transaction_search or a not in ("xray:StartTraceRetrieval", "xray:ListRetrievedTraces")
    ]
    return {
        "Version": _POLICY_VERSION,
        "Statement": [
            {"Sid": "XrayKitRead", "Effect": "Allow", "Action": actions, "Resource": "*"}
        ],
    }


def assume_role_policy(role_arns: Iterable[str]) -> dict[str, Any]:
    """Return the policy that lets a principal assume the given roles (for fetch_accounts).

    Examples
    --------
    >>> assume_role_policy(["arn:aws:iam::111111111111:role/xraykit-read"])["Statement"][0]["Action"]
    'sts:AssumeRole'
    """
    arns = sorted(set(role_arns))
    for arn in arns:
        _role_account(arn)
    if not arns:
        raise ValueError("`role_arns` must name at least one role ARN.")
    return {
        "Version": _POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AssumeXrayRoles",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": arns,
            }
        ],
    }


def daemon_write_policy() -> dict[str, Any]:
    """Return the IAM policy the X-Ray daemon (or an SDK) needs: AWSXRayDaemonWriteAccess.

    Examples
    --------
    >>> "xray:PutTraceSegments" in daemon_write_policy()["Statement"][0]["Action"]
    True
    """
    return {
        "Version": _POLICY_VERSION,
        "Statement": [
            {
                "Sid": "XrayDaemonWrite",
                "Effect": "Allow",
                "Action": list(DAEMON_WRITE_ACTIONS),
                "Resource": "*",
            }
        ],
    }


def trust_policy(principal: str, *, external_id: str | None = None) -> dict[str, Any]:
    """Return a role trust policy allowing ``principal`` to assume the role.

    Parameters
    ----------
    principal : str
        A 12-digit account id (its administrators decide who may assume) or an IAM ARN
        (a role or user, e.g. the daemon's instance role).
    external_id : str, optional
        Require this ``sts:ExternalId`` (recommended when a third party assumes the role).

    Examples
    --------
    >>> trust_policy("111111111111", external_id="xk-42")["Statement"][0]["Condition"]
    {'StringEquals': {'sts:ExternalId': 'xk-42'}}
    """
    if isinstance(principal, str) and _ACCOUNT.match(principal):
        aws: str = f"arn:aws:iam::{principal}:root"
    elif isinstance(principal, str) and principal.startswith("arn:"):
        aws = principal
    else:
        raise ValueError(
            "`principal` must be a 12-digit account id or an IAM ARN, "
            f"but {principal!r} was passed."
        )
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": aws},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": _POLICY_VERSION, "Statement": [statement]}


# --------------------------------------------------------------------------------------
# the daemon


def daemon_config(
    *,
    region: str | None = None,
    role_arn: str | None = None,
    local_mode: bool = False,
    udp_address: str = "127.0.0.1:2000",
    tcp_address: str = "127.0.0.1:2000",
    buffer_mb: int = 0,
    log_level: str = "prod",
) -> str:
    """Return an X-Ray daemon ``cfg.yaml`` (version 2).

    For cross-account upload, ``role_arn`` is the role in the central account that the
    daemon assumes (its own credentials need ``sts:AssumeRole`` on it; the role needs
    :func:`daemon_write_policy`). In containers, bind to ``0.0.0.0:2000``.

    Parameters
    ----------
    region : str, optional
    role_arn : str, optional
    local_mode : bool
        Skip the EC2 instance-metadata lookup (when not on EC2).
    udp_address, tcp_address : str
        ``host:port`` the daemon listens on.
    buffer_mb : int
        Buffer memory in MB; 0 means 1 % of the host's memory, otherwise at least 3.
    log_level : {"dev", "debug", "info", "warn", "error", "prod"}

    Examples
    --------
    >>> "LocalMode: true" in daemon_config(local_mode=True)
    True
    """
    _check_region(region)
    if role_arn is not None:
        _role_account(role_arn)
    levels = ("dev", "debug", "info", "warn", "error", "prod")
    if log_level not in levels:
        raise ValueError(
            f"`log_level` must be one of {list(levels)}, but {log_level!r} was passed."
        )
    if not isinstance(buffer_mb, int) or (buffer_mb != 0 and buffer_mb < 3):
        raise ValueError(
            f"`buffer_mb` must be 0 (automatic) or at least 3, but {buffer_mb!r} was passed."
        )
    for name, address in (("udp_address", udp_address), ("tcp_address", tcp_address)):
        if not re.match(r"^[\w.:\[\]-]+:\d{1,5}$", str(address)):
            raise ValueError(f"`{name}` must be 'host:port', but {address!r} was passed.")
    lines = [
        "# X-Ray daemon configuration (cfg.yaml), written by xraykit",
        "Version: 2",
        f'Region: "{region or ""}"',
        f'RoleARN: "{role_arn or ""}"',
        f"TotalBufferSizeMB: {buffer_mb}",
        "Concurrency: 8",
        "Socket:",
        f'  UDPAddress: "{udp_address}"',
        f'  TCPAddress: "{tcp_address}"',
        "Logging:",
        "  LogRotation: true",
        f'  LogLevel: "{log_level}"',
        f"LocalMode: {'true' if local_mode else 'false'}",
        "",
    ]
    return "\n".join(lines)


def daemon_command(
    *,
    region: str | None = None,
    role_arn: str | None = None,
    local_mode: bool = False,
    bind: str | None = None,
    executable: str = "xray",
) -> list[str]:
    """Return the daemon's command line (flags ``-n``, ``-r``, ``-o``, ``-b``/``-t``).

    Examples
    --------
    >>> " ".join(daemon_command(region="us-east-2", local_mode=True,
    ...                         role_arn="arn:aws:iam::111122223333:role/xray-writer"))
    'xray -o -n us-east-2 -r arn:aws:iam::111122223333:role/xray-writer'
    """
    _check_region(region)
    command = [executable]
    if local_mode:
        command.append("-o")
    if region is not None:
        command += ["-n", region]
    if role_arn is not None:
        _role_account(role_arn)
        command += ["-r", role_arn]
    if bind is not None:
        command += ["-b", bind, "-t", bind]
    return command


def cross_account_role_template(
    *,
    trusted: str,
    access: str = "read",
    role_name: str = "xraykit-cross-account",
    external_id: str | None = None,
) -> dict[str, Any]:
    """Return a CloudFormation template (a dict; ``json.dumps`` it) for a cross-account role.

    Parameters
    ----------
    trusted : str
        Who may assume the role: an account id or an IAM ARN (see :func:`trust_policy`).
    access : {"read", "write"}
        ``"read"``: the role lets xraykit (or the console) read traces, for
        :func:`fetch_accounts`; deploy it in every source account. ``"write"``: the role lets a
        daemon in another account send traces here; deploy it in the central account.
    role_name : str
    external_id : str, optional

    Examples
    --------
    >>> t = cross_account_role_template(trusted="111111111111", access="write")
    >>> t["Resources"]["XrayRole"]["Properties"]["ManagedPolicyArns"]
    ['arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess']
    """
    if access not in ("read", "write"):
        raise ValueError(f"`access` must be 'read' or 'write', but {access!r} was passed.")
    if not re.match(r"^[\w+=,.@-]{1,64}$", str(role_name)):
        raise ValueError(
            f"`role_name` must be 1-64 letters, digits or +=,.@_-, but {role_name!r} was passed."
        )
    properties: dict[str, Any] = {
        "RoleName": role_name,
        "AssumeRolePolicyDocument": trust_policy(trusted, external_id=external_id),
        "Description": (
            "Lets xraykit read X-Ray traces from this account"
            if access == "read"
            else "Lets an X-Ray daemon in another account send traces to this account"
        ),
    }
    if access == "read":
        properties["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AWSXrayReadOnlyAccess"]
        properties["Policies"] = [
            {"PolicyName": "xraykit-transaction-search", "PolicyDocument": {
                "Version": _POLICY_VERSION,
                "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
                    "xray:GetTraceSegmentDestination", "xray:StartTraceRetrieval",
                    "xray:ListRetrievedTraces"]}]}}
        ]  # fmt: skip
    else:
        properties["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"]
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"xraykit: cross-account X-Ray {access} role",
        "Resources": {"XrayRole": {"Type": "AWS::IAM::Role", "Properties": properties}},
        "Outputs": {
            "RoleArn": {
                "Description": "Pass this ARN to xraykit.fetch_accounts"
                if access == "read"
                else "Pass this ARN to the daemon as RoleARN / -r",
                "Value": {"Fn::GetAtt": ["XrayRole", "Arn"]},
            }
        },
    }


# --------------------------------------------------------------------------------------
# fetching several accounts


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
                "(xraykit.aws.accounts.assume_role_policy([...])), and check that the role's trust "
                "policy names your account or role"
                + (" and the external id" if external_id else "")
                + " (xraykit.aws.accounts.trust_policy(...))."
            ) from exc
        raise LiveAccessError(
            f"STS could not assume {role_arn!r} ({code}: {message}). Fix: check the ARN, the "
            "role's trust policy and your credentials."
        ) from exc
    except botocore_exceptions.BotoCoreError as exc:  # type: ignore[attr-defined]
        raise _aws.translate_error(exc, "sts:AssumeRole", {}) from exc


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
        raise ValueError("`role_arns` must be a list of role ARNs, not one string.")
    arns = list(dict.fromkeys(role_arns))
    if not arns:
        raise ValueError("`role_arns` must name at least one role ARN.")
    accounts = [_role_account(a) for a in arns]
    allowed = {"since", "start", "end", "filter_expression", "group", "time_range_type",
               "max_traces", "cache", "cache_dir", "progress", "retry"}  # fmt: skip
    unknown = sorted(set(fetch_options) - allowed)
    if unknown:
        raise TypeError(
            f"fetch_accounts() got unexpected options {unknown}; allowed: {sorted(allowed)}."
        )
    query = _aws.build_query(**{k: v for k, v in fetch_options.items() if k in _QUERY_OPTIONS})

    boto3 = require("boto3", "aws")
    botocore_exceptions = require("botocore.exceptions", "aws")
    if session is not None and profile is not None:
        raise ValueError("Pass either `session` or `profile`, not both.")
    try:
        base = session or boto3.Session(profile_name=profile)  # type: ignore[attr-defined]
        sts = base.client("sts", region_name=region, config=_aws.client_config(1))
    except botocore_exceptions.BotoCoreError as exc:  # type: ignore[attr-defined]
        raise _aws.translate_error(exc, "sts:AssumeRole", {}) from exc

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
        conn = _aws.connect(session=role_session, region=region, concurrency=concurrency)
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
                _aws.pull, conn, query, account_id=account, fill_account=True, cancel=cancel,
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

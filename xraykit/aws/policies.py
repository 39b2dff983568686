"""The IAM and daemon set-up the lessons talk about, as plain ``dict`` (JSON-ready) or
``str``:

=================================  =====================================================
:func:`read_only_policy`           what xraykit's live functions need (IAM policy)
:func:`assume_role_policy`         lets a principal assume the source accounts' roles
:func:`daemon_write_policy`        what the X-Ray daemon / SDK needs to send traces
:func:`trust_policy`               who may assume a cross-account role
:func:`cross_account_role_template`  a CloudFormation template for such a role
:func:`daemon_config`              the daemon's ``cfg.yaml`` (``RoleARN`` for cross-account)
:func:`daemon_command`             the same as command-line flags
=================================  =====================================================

Examples
--------
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

import re
from collections.abc import Iterable
from typing import Any

from xraykit.exceptions import ArgumentError

__all__ = [
    "DAEMON_WRITE_ACTIONS",
    "XRAYKIT_READ_ACTIONS",
    "assume_role_policy",
    "cross_account_role_template",
    "daemon_command",
    "daemon_config",
    "daemon_write_policy",
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


def _role_account(role_arn: str) -> str:
    match = _ROLE_ARN.match(role_arn) if isinstance(role_arn, str) else None
    if match is None:
        raise ArgumentError(
            "A role ARN must look like 'arn:aws:iam::123456789012:role/NAME', "
            f"but {role_arn!r} was passed."
        )
    return match.group(1)


def _check_account(account_id: str, name: str = "account_id") -> str:
    if not isinstance(account_id, str) or not _ACCOUNT.match(account_id):
        raise ArgumentError(
            f"`{name}` must be a 12-digit AWS account id such as '123456789012', "
            f"but {account_id!r} was passed."
        )
    return account_id


def _check_region(region: str | None) -> None:
    if region is not None and not _REGION.match(str(region)):
        raise ArgumentError(f"`region` must look like 'us-east-1', but {region!r} was passed.")


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
        raise ArgumentError("`role_arns` must name at least one role ARN.")
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
        raise ArgumentError(
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
        raise ArgumentError(
            f"`log_level` must be one of {list(levels)}, but {log_level!r} was passed."
        )
    if not isinstance(buffer_mb, int) or (buffer_mb != 0 and buffer_mb < 3):
        raise ArgumentError(
            f"`buffer_mb` must be 0 (automatic) or at least 3, but {buffer_mb!r} was passed."
        )
    for name, address in (("udp_address", udp_address), ("tcp_address", tcp_address)):
        if not re.match(r"^[\w.:\[\]-]+:\d{1,5}$", str(address)):
            raise ArgumentError(f"`{name}` must be 'host:port', but {address!r} was passed.")
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
        raise ArgumentError(f"`access` must be 'read' or 'write', but {access!r} was passed.")
    if not re.match(r"^[\w+=,.@-]{1,64}$", str(role_name)):
        raise ArgumentError(
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

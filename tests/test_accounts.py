"""Tests for xraykit.aws.accounts (STS assume-role into two moto accounts) and the
generators of xraykit.aws.policies."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

# the moto server behind its fault injector, the fixtures and trace helpers live in test_aws
import test_aws as _shared
from botocore.stub import Stubber

from xraykit import aws
from xraykit.aws import accounts, policies
from xraykit.exceptions import LiveAccessError

NOW, REGION, make_trace, trace_id = (
    _shared.NOW,
    _shared.REGION,
    _shared.make_trace,
    _shared.trace_id,
)
moto_server = _shared.moto_server
moto = _shared.moto
policy = _shared.policy
delays = _shared.delays
_isolated = _shared._isolated

ROLE_A = "arn:aws:iam::111111111111:role/xraykit-read"
ROLE_B = "arn:aws:iam::222222222222:role/xraykit-read"


def put_as(url: str, role_arn: str, documents: list[dict[str, Any]]) -> None:
    """Store documents in the account of ``role_arn`` (moto partitions data per account)."""
    sts = boto3.client("sts", endpoint_url=url, region_name=REGION)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="seed")["Credentials"]
    xray = boto3.client(
        "xray",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    answer = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in documents])
    assert answer["UnprocessedTraceSegments"] == []


@pytest.fixture
def two_accounts(moto: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    url, injector = moto
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)  # every boto3 client xraykit makes goes to moto
    when = NOW - timedelta(minutes=30)
    a_docs = [d for n in range(1, 4) for d in make_trace(when, n)]
    # one document in account B says where it runs itself: that value is kept
    b_docs = [d for n in range(10, 12) for d in make_trace(when, n, account="333333333333")]
    b_docs += make_trace(when, 12)
    put_as(url, ROLE_A, a_docs)
    put_as(url, ROLE_B, b_docs)
    ids_a = [trace_id(when, n) for n in range(1, 4)]
    ids_b = [trace_id(when, n) for n in range(10, 13)]
    return url, injector, ids_a, ids_b


def test_two_accounts_merge_into_one_traceset(two_accounts: Any, policy: Any) -> None:
    _, injector, ids_a, ids_b = two_accounts
    # the default account sees neither account's traces
    plain = aws.fetch(since="2h", cache=False, progress=False, retry=policy)
    assert len(plain) == 0
    ts = accounts.fetch_accounts([ROLE_A, ROLE_B], since="2h", cache=False, progress=False,
                                 retry=policy)  # fmt: skip
    assert sorted(ts.traces["trace_id"]) == sorted(ids_a + ids_b)
    roots = ts.segments[ts.segments["name"] == "orders-api"].set_index("trace_id")["account_id"]
    assert set(roots[ids_a]) == {"111111111111"}
    assert roots[ids_b[:2]].tolist() == ["333333333333", "333333333333"]  # from the data
    assert roots[ids_b[2]] == "222222222222"  # filled from the role
    downstream = ts.segments[ts.segments["name"] == "inventory"]
    assert downstream["account_id"].notna().all()
    by_account = ts.summaries.set_index("trace_id")["account_id"]
    assert set(by_account[ids_a]) == {"111111111111"} and set(by_account[ids_b]) == {"222222222222"}
    assert ts.cost.traces_retrieved == 6
    assert ts.cost.api_calls["BatchGetTraces"] == 2
    sessions = [e for e in injector.log if b"AssumeRole" in e["request"]]
    assert len(sessions) == 2 + 2  # two seeding the data, two by fetch_accounts
    assert b"RoleSessionName=xraykit" in sessions[-1]["request"]


def test_each_account_has_its_own_cache(two_accounts: Any, policy: Any, tmp_path: Path) -> None:
    _, injector, _, _ = two_accounts
    accounts.fetch_accounts([ROLE_A, ROLE_B], since="2h", cache_dir=tmp_path, progress=False,
                            retry=policy)  # fmt: skip
    folders = sorted(p.name for p in (tmp_path / "xray").iterdir())
    assert folders == ["111111111111", "222222222222"]
    injector.reset()
    again = accounts.fetch_accounts([ROLE_A, ROLE_B], since="2h", cache_dir=tmp_path,
                                    progress=False, retry=policy)  # fmt: skip
    assert len(again) == 6
    assert injector.calls("/Traces") == 0
    assert again.cost.cached_traces == 6


def test_external_id_is_passed_and_denial_names_the_fix(policy: Any) -> None:
    sts = boto3.client("sts", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")

    class Session:
        region_name = REGION

        def client(self, name: str, **kwargs: Any) -> Any:
            assert name == "sts"
            return sts

    with Stubber(sts) as stub:
        stub.add_client_error(
            "assume_role", "AccessDenied", "not authorized to perform: sts:AssumeRole", 403,
            expected_params={"RoleArn": ROLE_A, "RoleSessionName": "xraykit",
                             "DurationSeconds": 3600, "ExternalId": "xk-42"},
        )  # fmt: skip
        with pytest.raises(LiveAccessError, match=r"sts:AssumeRole.*trust policy.*external id"):
            accounts.fetch_accounts([ROLE_A], external_id="xk-42", session=Session(),
                                    progress=False, cache=False, retry=policy)  # fmt: skip
        stub.assert_no_pending_responses()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="arn:aws:iam::123456789012:role/NAME"):
        accounts.fetch_accounts(["arn:aws:iam::12:role/x"])
    with pytest.raises(ValueError, match="list of role ARNs"):
        accounts.fetch_accounts(ROLE_A)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        accounts.fetch_accounts([])
    with pytest.raises(TypeError, match="unexpected options"):
        accounts.fetch_accounts([ROLE_A], client=object())


# --------------------------------------------------------------------------------------
# generators


def test_read_only_policy_covers_every_call_live_makes() -> None:
    iam = policies.read_only_policy()
    actions = set(iam["Statement"][0]["Action"])
    called = {"GetTraceSummaries", "BatchGetTraces", "GetServiceGraph", "GetSamplingRules",
              "GetGroups", "GetTraceSegmentDestination", "StartTraceRetrieval",
              "ListRetrievedTraces"}  # fmt: skip
    assert {f"xray:{c}" for c in called} <= actions
    assert all(a.startswith("xray:Get") or a.startswith(("xray:Batch", "xray:List", "xray:Start"))
               for a in actions)  # fmt: skip
    assert iam["Statement"][0]["Resource"] == "*"
    assert json.loads(json.dumps(iam)) == iam
    narrow = set(policies.read_only_policy(transaction_search=False)["Statement"][0]["Action"])
    assert "xray:StartTraceRetrieval" not in narrow


def test_daemon_write_policy_matches_the_managed_policy() -> None:
    actions = policies.daemon_write_policy()["Statement"][0]["Action"]
    assert sorted(actions) == sorted([
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
        "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries",
    ])  # fmt: skip


def test_trust_and_assume_role_policies() -> None:
    trust = policies.trust_policy("111111111111")["Statement"][0]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
    assert "Condition" not in trust
    role = "arn:aws:iam::111111111111:role/daemon"
    assert policies.trust_policy(role)["Statement"][0]["Principal"]["AWS"] == role
    with pytest.raises(ValueError, match="12-digit account id or an IAM ARN"):
        policies.trust_policy("me")
    assume = policies.assume_role_policy([ROLE_B, ROLE_A, ROLE_A])["Statement"][0]
    assert assume["Resource"] == [ROLE_A, ROLE_B]


def test_daemon_config_is_valid_yaml_with_the_role() -> None:
    text = policies.daemon_config(region="eu-west-1", role_arn=ROLE_A, local_mode=True,
                                  udp_address="0.0.0.0:2000", tcp_address="0.0.0.0:2000")  # fmt: skip
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(text)
    assert config["Version"] == 2
    assert config["RoleARN"] == ROLE_A
    assert config["Region"] == "eu-west-1"
    assert config["LocalMode"] is True
    assert config["Socket"] == {"UDPAddress": "0.0.0.0:2000", "TCPAddress": "0.0.0.0:2000"}
    assert config["Logging"]["LogLevel"] == "prod"
    with pytest.raises(ValueError, match="`region` must look like"):
        policies.daemon_config(region="Frankfurt")
    with pytest.raises(ValueError, match="`buffer_mb` must be 0"):
        policies.daemon_config(buffer_mb=1)
    with pytest.raises(ValueError, match="`udp_address` must be 'host:port'"):
        policies.daemon_config(udp_address="2000")


def test_daemon_command_flags() -> None:
    assert policies.daemon_command() == ["xray"]
    assert policies.daemon_command(region="us-east-2", role_arn=ROLE_B, bind="0.0.0.0:2000") == [
        "xray", "-n", "us-east-2", "-r", ROLE_B, "-b", "0.0.0.0:2000", "-t", "0.0.0.0:2000",
    ]  # fmt: skip


def test_cloudformation_templates() -> None:
    read = policies.cross_account_role_template(trusted="999999999999", external_id="xk")
    role = read["Resources"]["XrayRole"]
    assert role["Type"] == "AWS::IAM::Role"
    props = role["Properties"]
    assert props["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/AWSXrayReadOnlyAccess"]
    statement = props["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"]["AWS"] == "arn:aws:iam::999999999999:root"
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == "xk"
    extra = props["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"]
    assert "xray:StartTraceRetrieval" in extra
    assert read["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["XrayRole", "Arn"]}
    assert json.loads(json.dumps(read)) == read
    write = policies.cross_account_role_template(trusted=ROLE_A, access="write")
    assert write["Resources"]["XrayRole"]["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"
    ]
    with pytest.raises(ValueError, match="`access` must be 'read' or 'write'"):
        policies.cross_account_role_template(trusted="999999999999", access="admin")
    with pytest.raises(ValueError, match="`role_name` must be"):
        policies.cross_account_role_template(trusted="999999999999", role_name="bad name")

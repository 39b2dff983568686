"""The platform set-up generators (xraykit.aws.platform) and the IAM policies of
xraykit.aws.policies: every template and policy passes cfn-lint with no error, and says
what X-Ray's documentation says it must (managed policies, ports, variables)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from xraykit.aws import platform, policies
from xraykit.exceptions import ArgumentError, ArgumentTypeError, FilterExpressionError
from xraykit.sampling import SamplingRule

cfnlint_api = pytest.importorskip("cfnlint.api")

WRITE = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"
ROLE = "arn:aws:iam::111122223333:role/xray-central-writer"


def lint_errors(template: dict[str, Any]) -> list[str]:
    """cfn-lint's errors (rule ids starting with E) for a template, as readable strings."""
    matches = cfnlint_api.lint(json.dumps(template), regions=["us-east-1"])
    return [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]


def as_managed_policy(document: dict[str, Any]) -> dict[str, Any]:
    return platform.managed_policy_template(document, description="under test")


def as_role_trust(document: dict[str, Any]) -> dict[str, Any]:
    """A trust policy is only valid as a role's AssumeRolePolicyDocument."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": document}}
        },
    }


TEMPLATES: dict[str, Callable[[], dict[str, Any]]] = {
    "policy-daemon-write": lambda: as_managed_policy(policies.daemon_write_policy()),
    "policy-read-only": lambda: as_managed_policy(policies.read_only_policy()),
    "policy-read-only-classic": lambda: as_managed_policy(
        policies.read_only_policy(transaction_search=False)
    ),
    "policy-assume-role": lambda: as_managed_policy(
        policies.assume_role_policy([ROLE, "arn:aws:iam::444455556666:role/reader"])
    ),
    "trust-account": lambda: as_role_trust(policies.trust_policy("111122223333")),
    "trust-role-external-id": lambda: as_role_trust(policies.trust_policy(ROLE, external_id="x")),
    "cross-account-read": lambda: policies.cross_account_role_template(trusted="999999999999"),
    "cross-account-write": lambda: policies.cross_account_role_template(
        trusted=ROLE, access="write", external_id="xk"
    ),
    "managed-policy-default": platform.managed_policy_template,
    "ec2": platform.ec2_instance_template,
    "ecs-awsvpc": platform.ecs_task_template,
    "ecs-bridge-cross-account": lambda: platform.ecs_task_template(
        network_mode="bridge", role_arn=ROLE
    ),
    "beanstalk": platform.beanstalk_environment_template,
    "lambda-active": platform.lambda_function_template,
    "lambda-passthrough": lambda: platform.lambda_function_template(mode="PassThrough"),
    "api-gateway": platform.api_gateway_stage_template,
    "api-gateway-no-rule": lambda: platform.api_gateway_stage_template(
        api_name="orders api", stage_name="beta", sampling_rule=False
    ),
    "sampling-rule": lambda: platform.sampling_rule_template(
        SamplingRule("checkout", 100, 0.5, 2, url_path="/checkout*", http_method="POST")
    ),
    "group-insights": lambda: platform.group_template(
        "slow-checkout",
        'service("checkout") { fault } OR responsetime > 2',
        insights=True,
        notifications=True,
    ),
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_cfn_lint_finds_no_error(name: str) -> None:
    assert lint_errors(TEMPLATES[name]()) == []


def test_cfn_lint_does_catch_a_broken_template() -> None:
    """The check above can fail: a wrong tracing mode and a wrong attribute are errors."""
    template = platform.lambda_function_template()
    template["Resources"]["Function"]["Properties"]["TracingConfig"]["Mode"] = "Activ"
    template["Outputs"]["FunctionArn"]["Value"]["Fn::GetAtt"][1] = "Nope"
    errors = lint_errors(template)
    assert any("Activ" in e for e in errors) and any("Nope" in e for e in errors), errors


def managed_arns(template: dict[str, Any], role: str) -> list[str]:
    return template["Resources"][role]["Properties"]["ManagedPolicyArns"]


def trusted_service(template: dict[str, Any], role: str) -> str:
    document = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
    return document["Statement"][0]["Principal"]["Service"]


def test_every_platform_role_may_send_traces() -> None:
    roles = {
        "ec2": (platform.ec2_instance_template(), "InstanceRole", "ec2.amazonaws.com"),
        "ecs": (platform.ecs_task_template(), "TaskRole", "ecs-tasks.amazonaws.com"),
        "eb": (platform.beanstalk_environment_template(), "InstanceRole", "ec2.amazonaws.com"),
        "lambda": (platform.lambda_function_template(), "FunctionRole", "lambda.amazonaws.com"),
    }
    for template, role, service in roles.values():
        assert WRITE in managed_arns(template, role)
        assert trusted_service(template, role) == service
    assert managed_arns(*roles["lambda"][:2]) == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        WRITE,
    ]
    assert platform.MANAGED_POLICY_ARNS["AWSXrayReadOnlyAccess"].endswith("/AWSXrayReadOnlyAccess")


def test_ec2_profile_and_user_data_install_the_daemon() -> None:
    resources = platform.ec2_instance_template(instance_type="m7g.large")["Resources"]
    instance = resources["Instance"]["Properties"]
    assert instance["InstanceType"] == "m7g.large"
    assert instance["IamInstanceProfile"] == {"Ref": "InstanceProfile"}
    assert resources["InstanceProfile"]["Properties"]["Roles"] == [{"Ref": "InstanceRole"}]
    script = instance["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert script.startswith("#!/bin/bash\n")
    assert "aws-xray-assets.${AWS::Region}/xray-daemon/aws-xray-daemon-3.x.rpm" in script
    with pytest.raises(ArgumentError, match="instance_type"):
        platform.ec2_instance_template(instance_type="big")


def containers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    definitions = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    return {c["Name"]: c for c in definitions}


def test_ecs_sidecar_bridge_needs_the_address_and_awsvpc_does_not() -> None:
    bridge = platform.ecs_task_template(network_mode="bridge")
    awsvpc = platform.ecs_task_template(network_mode="awsvpc")
    for template in (bridge, awsvpc):
        daemon = containers(template)["xray-daemon"]
        assert daemon["PortMappings"] == [{"ContainerPort": 2000, "Protocol": "udp"}]
        assert daemon["Image"] == platform.DAEMON_IMAGE
        assert "Command" not in daemon
    app = containers(bridge)["app"]
    assert app["Environment"] == [{"Name": "AWS_XRAY_DAEMON_ADDRESS", "Value": "xray-daemon:2000"}]
    assert app["Links"] == ["xray-daemon"]
    assert "Environment" not in containers(awsvpc)["app"]
    assert "Links" not in containers(awsvpc)["app"]
    task = awsvpc["Resources"]["TaskDefinition"]["Properties"]
    assert task["NetworkMode"] == "awsvpc" and task["RequiresCompatibilities"] == ["FARGATE"]
    with pytest.raises(ArgumentError, match="network_mode"):
        platform.ecs_task_template(network_mode="host")


def test_ecs_daemon_assumes_a_central_role() -> None:
    daemon = containers(platform.ecs_task_template(role_arn=ROLE))["xray-daemon"]
    assert daemon["Command"] == ["--role-arn", ROLE]
    with pytest.raises(ArgumentError, match="role_arn"):
        platform.ecs_task_template(role_arn="xray-central-writer")


def test_beanstalk_enables_the_daemon() -> None:
    config = yaml.safe_load(platform.beanstalk_extension())
    assert config == {"option_settings": {"aws:elasticbeanstalk:xray": {"XRayEnabled": True}}}
    template = platform.beanstalk_environment_template(solution_stack="my stack")
    settings = template["Resources"]["Environment"]["Properties"]["OptionSettings"]
    assert {(s["Namespace"], s["OptionName"]): s["Value"] for s in settings} == {
        ("aws:elasticbeanstalk:xray", "XRayEnabled"): "true",
        ("aws:autoscaling:launchconfiguration", "IamInstanceProfile"): {"Ref": "InstanceProfile"},
    }
    assert template["Parameters"]["SolutionStackName"]["Default"] == "my stack"
    assert managed_arns(template, "InstanceRole") == [
        "arn:aws:iam::aws:policy/AWSElasticBeanstalkWebTier",
        WRITE,
    ]


def test_lambda_tracing_modes() -> None:
    for mode in ("Active", "PassThrough"):
        function = platform.lambda_function_template(mode=mode)["Resources"]["Function"]
        assert function["Properties"]["TracingConfig"] == {"Mode": mode}
        assert "_X_AMZN_TRACE_ID" in function["Properties"]["Code"]["ZipFile"]
    with pytest.raises(ArgumentError, match="mode"):
        platform.lambda_function_template(mode="active")
    with pytest.raises(ArgumentError, match="runtime"):
        platform.lambda_function_template(runtime="nodejs20.x")


def test_api_gateway_stage_tracing_and_its_sampling_rule() -> None:
    template = platform.api_gateway_stage_template(api_name="shop-api", stage_name="prod")
    stage = template["Resources"]["Stage"]["Properties"]
    assert stage["TracingEnabled"] is True and stage["StageName"] == "prod"
    rule = SamplingRule.from_api(
        template["Resources"]["SamplingRule"]["Properties"]["SamplingRule"]
    )
    # the rule applies to the stage's segments and to nothing else
    assert rule.matches({"service": "shop-api/prod", "service_type": "AWS::ApiGateway::Stage"})
    assert not rule.matches({"service": "shop-api/beta", "service_type": "AWS::ApiGateway::Stage"})
    assert not rule.matches({"service": "shop-api/prod", "service_type": "AWS::EC2::Instance"})
    assert (
        "SamplingRule" not in platform.api_gateway_stage_template(sampling_rule=False)["Resources"]
    )
    with pytest.raises(ArgumentError, match="stage_name"):
        platform.api_gateway_stage_template(stage_name="prod/v1")


def test_sampling_rule_round_trips_through_the_template() -> None:
    rule = SamplingRule("checkout", 100, 0.5, 2, url_path="/checkout*", http_method="POST")
    body = platform.sampling_rule_template(rule)["Resources"]["SamplingRule"]["Properties"]
    assert SamplingRule.from_api(body["SamplingRule"]) == rule
    assert "Attributes" not in body["SamplingRule"]  # empty ones are left out
    with pytest.raises(ArgumentError, match="Default"):
        platform.sampling_rule_template(SamplingRule("Default", 10000, 0.05, 1))
    with pytest.raises(ArgumentTypeError, match="SamplingRule"):
        platform.sampling_rule_template({"RuleName": "x"})  # type: ignore[arg-type]


def test_group_checks_its_filter_expression() -> None:
    group = platform.group_template("errors", "error", insights=True)["Resources"]["Group"]
    assert group["Properties"]["InsightsConfiguration"] == {
        "InsightsEnabled": True,
        "NotificationsEnabled": False,
    }
    with pytest.raises(FilterExpressionError):
        platform.group_template("typo", "responstime > 2")
    with pytest.raises(ArgumentError, match="insights"):
        platform.group_template("errors", "error", notifications=True)
    with pytest.raises(ArgumentError, match="name"):
        platform.group_template("a name with spaces", "error")


def test_adot_collector_takes_the_daemons_ports() -> None:
    config = yaml.safe_load(
        platform.adot_collector_config(
            region="eu-west-1", bind="0.0.0.0", role_arn=ROLE, indexed_attributes=["customer_id"]
        )
    )
    receiver = config["receivers"]["awsxray"]
    assert receiver == {
        "endpoint": "0.0.0.0:2000",
        "transport": "udp",
        "proxy_server": {"endpoint": "0.0.0.0:2000"},
    }
    assert config["receivers"]["otlp"]["protocols"] == {
        "grpc": {"endpoint": "0.0.0.0:4317"},
        "http": {"endpoint": "0.0.0.0:4318"},
    }
    assert config["exporters"]["awsxray"] == {
        "region": "eu-west-1",
        "role_arn": ROLE,
        "indexed_attributes": ["customer_id"],
    }
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline == {
        "receivers": ["awsxray", "otlp"],
        "processors": ["batch"],
        "exporters": ["awsxray"],
    }
    assert (
        "role_arn" not in yaml.safe_load(platform.adot_collector_config())["exporters"]["awsxray"]
    )
    with pytest.raises(ArgumentError, match="region"):
        platform.adot_collector_config(region="Ireland")
    with pytest.raises(ArgumentError, match="bind"):
        platform.adot_collector_config(bind="10.0.0.1")


def test_cloudwatch_agent_listens_where_the_daemon_did() -> None:
    traces = platform.cloudwatch_agent_traces_config()["traces"]["traces_collected"]
    assert traces["xray"] == {
        "bind_address": "127.0.0.1:2000",
        "tcp_proxy": {"bind_address": "127.0.0.1:2000"},
    }
    assert traces["otlp"] == {"grpc_endpoint": "127.0.0.1:4317", "http_endpoint": "127.0.0.1:4318"}
    json.dumps(platform.cloudwatch_agent_traces_config(bind="0.0.0.0"))  # JSON-ready


def test_managed_policy_template_wants_a_policy_document() -> None:
    with pytest.raises(ArgumentTypeError, match="policy document"):
        platform.managed_policy_template(["xray:PutTraceSegments"])  # type: ignore[arg-type]

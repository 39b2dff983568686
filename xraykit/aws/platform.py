"""What each AWS platform needs so that traces reach X-Ray, as CloudFormation and config data.

Every ``*_template`` function returns a CloudFormation template as a ``dict`` (``json.dumps``
it, or paste it into a YAML template); the tests check each one with cfn-lint. The
collector functions return the configuration of the daemon's successors.

=====================================  =================================================
:func:`managed_policy_template`        any IAM policy document as an AWS::IAM::ManagedPolicy
:func:`ec2_instance_template`          instance profile with AWSXRayDaemonWriteAccess,
                                       daemon installed from user data
:func:`ecs_task_template`              the daemon as a sidecar (``bridge`` or ``awsvpc``)
:func:`beanstalk_extension`            ``.ebextensions/xray-daemon.config`` (text)
:func:`beanstalk_environment_template` an environment with ``XRayEnabled``
:func:`lambda_function_template`       ``TracingConfig: {Mode: Active}``
:func:`api_gateway_stage_template`     a stage with ``TracingEnabled`` and a sampling rule
:func:`sampling_rule_template`         an AWS::XRay::SamplingRule
:func:`group_template`                 an AWS::XRay::Group (filter expression, Insights)
:func:`adot_collector_config`          ADOT collector YAML: X-Ray SDK and OTLP in, X-Ray out
:func:`cloudwatch_agent_traces_config` the CloudWatch agent's ``traces`` section
=====================================  =================================================

Examples
--------
>>> t = ecs_task_template(network_mode="bridge")
>>> app = t["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
>>> app["Environment"], app["Links"]
([{'Name': 'AWS_XRAY_DAEMON_ADDRESS', 'Value': 'xray-daemon:2000'}], ['xray-daemon'])
>>> lambda_function_template()["Resources"]["Function"]["Properties"]["TracingConfig"]
{'Mode': 'Active'}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from xraykit.arguments import check_choice
from xraykit.aws.policies import daemon_write_policy
from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.query import parse as parse_filter_expression
from xraykit.sampling import SamplingRule

__all__ = [
    "DAEMON_IMAGE",
    "MANAGED_POLICY_ARNS",
    "adot_collector_config",
    "api_gateway_stage_template",
    "beanstalk_environment_template",
    "beanstalk_extension",
    "cloudwatch_agent_traces_config",
    "ec2_instance_template",
    "ecs_task_template",
    "group_template",
    "lambda_function_template",
    "managed_policy_template",
    "sampling_rule_template",
]

#: The AWS managed policies the platforms use, by name.
MANAGED_POLICY_ARNS = {
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
    "AWSXrayReadOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayReadOnlyAccess",
    "AWSXrayFullAccess": "arn:aws:iam::aws:policy/AWSXrayFullAccess",
    "AWSLambdaBasicExecutionRole": (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ),
    "AWSElasticBeanstalkWebTier": "arn:aws:iam::aws:policy/AWSElasticBeanstalkWebTier",
}
#: The daemon's container image (ECR Public; Docker Hub has ``amazon/aws-xray-daemon``).
DAEMON_IMAGE = "public.ecr.aws/xray/aws-xray-daemon:3.x"

_FORMAT_VERSION = "2010-09-09"
_WRITE = MANAGED_POLICY_ARNS["AWSXRayDaemonWriteAccess"]
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_API = re.compile(r"^[A-Za-z0-9 ._-]{1,128}$")
_LAMBDA_CODE = """\
import os


def handler(event, context):
    # Lambda put this invocation's tracing header here (Root, Parent, Sampled)
    return {"statusCode": 200, "body": os.environ.get("_X_AMZN_TRACE_ID", "")}
"""


def _check_name(name: str, value: object, pattern: re.Pattern[str], allowed: str) -> None:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"`{name}` must be a string, but {value!r} was passed.")
    if not pattern.match(value):
        raise ArgumentError(f"`{name}` must be {allowed}, but {value!r} was passed.")


def _template(description: str, resources: dict[str, Any], **sections: Any) -> dict[str, Any]:
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": _FORMAT_VERSION,
        "Description": f"xraykit: {description}",
    }
    if "Parameters" in sections:
        template["Parameters"] = sections.pop("Parameters")
    template["Resources"] = resources
    template.update(sections)
    return template


def _service_role(service: str, policy_arns: Iterable[str]) -> dict[str, Any]:
    """An IAM role that ``service`` (e.g. ``ec2.amazonaws.com``) assumes."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": service},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "ManagedPolicyArns": list(policy_arns),
        },
    }


def _arn_output(resource: str, description: str) -> dict[str, Any]:
    return {"Description": description, "Value": {"Fn::GetAtt": [resource, "Arn"]}}


# --------------------------------------------------------------------------------------
# IAM


def managed_policy_template(
    document: Mapping[str, Any] | None = None, *, description: str = "X-Ray permissions"
) -> dict[str, Any]:
    """Return a template that creates ``document`` as a customer managed IAM policy.

    Parameters
    ----------
    document : mapping, optional
        An IAM policy document, e.g. from :func:`xraykit.aws.policies.read_only_policy`;
        default :func:`~xraykit.aws.policies.daemon_write_policy`.
    description : str

    Examples
    --------
    >>> t = managed_policy_template()
    >>> t["Resources"]["Policy"]["Properties"]["PolicyDocument"]["Statement"][0]["Sid"]
    'XrayDaemonWrite'
    """
    if document is None:
        document = daemon_write_policy()
    if not isinstance(document, Mapping) or "Statement" not in document:
        raise ArgumentTypeError(
            "`document` must be an IAM policy document (a dict with 'Version' and "
            f"'Statement'), but {document!r} was passed."
        )
    policy = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {"Description": description, "PolicyDocument": dict(document)},
    }
    outputs = {"PolicyArn": {"Description": "Attach this policy", "Value": {"Ref": "Policy"}}}
    return _template(description, {"Policy": policy}, Outputs=outputs)


# --------------------------------------------------------------------------------------
# compute platforms


def ec2_instance_template(*, instance_type: str = "t3.micro") -> dict[str, Any]:
    """Return an EC2 instance whose profile may send traces and whose user data installs
    and starts the daemon (it then listens on UDP and TCP 127.0.0.1:2000).

    Examples
    --------
    >>> t = ec2_instance_template()
    >>> t["Resources"]["InstanceRole"]["Properties"]["ManagedPolicyArns"]
    ['arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess']
    """
    _check_name("instance_type", instance_type, re.compile(r"^[a-z0-9-]+\.[a-z0-9]+$"),
                "an instance type such as 't3.micro'")  # fmt: skip
    user_data = "\n".join(
        [
            "#!/bin/bash",
            "# the X-Ray daemon: installed as a service, listening on UDP/TCP 127.0.0.1:2000",
            "curl -sSfo /tmp/xray.rpm "
            "https://s3.${AWS::Region}.amazonaws.com/aws-xray-assets.${AWS::Region}"
            "/xray-daemon/aws-xray-daemon-3.x.rpm",
            "yum install -y /tmp/xray.rpm",
            "",
        ]
    )
    resources = {
        "InstanceRole": _service_role("ec2.amazonaws.com", [_WRITE]),
        "InstanceProfile": {
            "Type": "AWS::IAM::InstanceProfile",
            "Properties": {"Roles": [{"Ref": "InstanceRole"}]},
        },
        "Instance": {
            "Type": "AWS::EC2::Instance",
            "Properties": {
                "ImageId": {"Ref": "LatestAmiId"},
                "InstanceType": instance_type,
                "IamInstanceProfile": {"Ref": "InstanceProfile"},
                "UserData": {"Fn::Base64": {"Fn::Sub": user_data}},
            },
        },
    }
    parameters = {
        "LatestAmiId": {
            "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            "Default": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        }
    }
    return _template("EC2 instance running the X-Ray daemon", resources, Parameters=parameters,
                     Outputs={"RoleArn": _arn_output("InstanceRole", "The instance's role")})  # fmt: skip


def ecs_task_template(
    *,
    network_mode: str = "awsvpc",
    app_image: str = "public.ecr.aws/docker/library/python:3.12-slim",
    role_arn: str | None = None,
) -> dict[str, Any]:
    """Return an ECS task definition: the application plus the daemon as a sidecar.

    Parameters
    ----------
    network_mode : {"awsvpc", "bridge"}
        ``awsvpc`` (Fargate): the containers share ``localhost``, so the SDK's default
        ``127.0.0.1:2000`` reaches the daemon. ``bridge`` (EC2): each container has its own
        address; the application is linked to the daemon and gets
        ``AWS_XRAY_DAEMON_ADDRESS=xray-daemon:2000``.
    app_image : str
    role_arn : str, optional
        A role in another account for the daemon to assume (``--role-arn``), so the traces
        land there.

    Examples
    --------
    >>> t = ecs_task_template()
    >>> [c["Name"] for c in t["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]]
    ['app', 'xray-daemon']
    """
    check_choice("network_mode", network_mode, ("awsvpc", "bridge"))
    daemon: dict[str, Any] = {
        "Name": "xray-daemon",
        "Image": DAEMON_IMAGE,
        "Essential": True,
        "Cpu": 32,
        "MemoryReservation": 256,
        "PortMappings": [{"ContainerPort": 2000, "Protocol": "udp"}],
    }
    if role_arn is not None:
        if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/", str(role_arn)):
            raise ArgumentError(
                "`role_arn` must look like 'arn:aws:iam::123456789012:role/NAME', "
                f"but {role_arn!r} was passed."
            )
        daemon["Command"] = ["--role-arn", role_arn]
    app: dict[str, Any] = {"Name": "app", "Image": app_image, "Essential": True,
                           "MemoryReservation": 256}  # fmt: skip
    properties: dict[str, Any] = {
        "Family": "xray-sidecar-demo",
        "NetworkMode": network_mode,
        "TaskRoleArn": {"Fn::GetAtt": ["TaskRole", "Arn"]},
        "ContainerDefinitions": [app, daemon],
    }
    if network_mode == "bridge":
        app["Links"] = ["xray-daemon"]
        app["Environment"] = [{"Name": "AWS_XRAY_DAEMON_ADDRESS", "Value": "xray-daemon:2000"}]
        properties["RequiresCompatibilities"] = ["EC2"]
    else:
        properties.update(RequiresCompatibilities=["FARGATE"], Cpu="256", Memory="512")
    resources = {
        "TaskRole": _service_role("ecs-tasks.amazonaws.com", [_WRITE]),
        "TaskDefinition": {"Type": "AWS::ECS::TaskDefinition", "Properties": properties},
    }
    return _template(f"ECS task with the X-Ray daemon as a sidecar ({network_mode})", resources,
                     Outputs={"TaskRoleArn": _arn_output("TaskRole", "The task's role")})  # fmt: skip


def beanstalk_extension() -> str:
    """Return ``.ebextensions/xray-daemon.config``: Elastic Beanstalk then runs the daemon.

    Examples
    --------
    >>> print(beanstalk_extension())  # doctest: +ELLIPSIS
    # .ebextensions/xray-daemon.config ...
    option_settings:
      aws:elasticbeanstalk:xray:
        XRayEnabled: true
    """
    return (
        "# .ebextensions/xray-daemon.config (the instance profile needs AWSXRayDaemonWriteAccess)\n"
        "option_settings:\n"
        "  aws:elasticbeanstalk:xray:\n"
        "    XRayEnabled: true\n"
    )


def beanstalk_environment_template(*, solution_stack: str | None = None) -> dict[str, Any]:
    """Return an Elastic Beanstalk application and environment with ``XRayEnabled``.

    The instance profile carries AWSElasticBeanstalkWebTier and AWSXRayDaemonWriteAccess.

    Parameters
    ----------
    solution_stack : str, optional
        The default of the template's ``SolutionStackName`` parameter. Platform versions are
        retired over time: take a current name from
        ``aws elasticbeanstalk list-available-solution-stacks``.

    Examples
    --------
    >>> env = beanstalk_environment_template()["Resources"]["Environment"]["Properties"]
    >>> env["OptionSettings"][0]
    {'Namespace': 'aws:elasticbeanstalk:xray', 'OptionName': 'XRayEnabled', 'Value': 'true'}
    """
    stack = solution_stack or "64bit Amazon Linux 2023 v4.3.0 running Python 3.12"
    if not isinstance(stack, str):
        raise ArgumentTypeError(f"`solution_stack` must be a string, but {stack!r} was passed.")
    role = _service_role("ec2.amazonaws.com", [MANAGED_POLICY_ARNS["AWSElasticBeanstalkWebTier"],
                                                _WRITE])  # fmt: skip
    resources = {
        "InstanceRole": role,
        "InstanceProfile": {
            "Type": "AWS::IAM::InstanceProfile",
            "Properties": {"Roles": [{"Ref": "InstanceRole"}]},
        },
        "Application": {"Type": "AWS::ElasticBeanstalk::Application", "Properties": {}},
        "Environment": {
            "Type": "AWS::ElasticBeanstalk::Environment",
            "Properties": {
                "ApplicationName": {"Ref": "Application"},
                "SolutionStackName": {"Ref": "SolutionStackName"},
                "OptionSettings": [
                    {"Namespace": "aws:elasticbeanstalk:xray", "OptionName": "XRayEnabled",
                     "Value": "true"},
                    {"Namespace": "aws:autoscaling:launchconfiguration",
                     "OptionName": "IamInstanceProfile", "Value": {"Ref": "InstanceProfile"}},
                ],
            },
        },
    }  # fmt: skip
    parameters = {"SolutionStackName": {"Type": "String", "Default": stack}}
    return _template("Elastic Beanstalk environment with the X-Ray daemon", resources,
                     Parameters=parameters)  # fmt: skip


def lambda_function_template(
    *, mode: str = "Active", runtime: str = "python3.12"
) -> dict[str, Any]:
    """Return a Lambda function with X-Ray tracing (Lambda runs the daemon itself).

    Parameters
    ----------
    mode : {"Active", "PassThrough"}
        ``Active``: Lambda samples requests that arrive without a sampling decision and
        records the function's segments. ``PassThrough``: only follow an upstream ``Sampled=1``.
    runtime : str

    Examples
    --------
    >>> t = lambda_function_template(mode="PassThrough")
    >>> t["Resources"]["FunctionRole"]["Properties"]["ManagedPolicyArns"][-1]
    'arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess'
    """
    check_choice("mode", mode, ("Active", "PassThrough"))
    _check_name(
        "runtime", runtime, re.compile(r"^python3\.\d+$"), "a Python runtime such as 'python3.12'"
    )
    role = _service_role("lambda.amazonaws.com",
                         [MANAGED_POLICY_ARNS["AWSLambdaBasicExecutionRole"], _WRITE])  # fmt: skip
    function = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": runtime,
            "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Code": {"ZipFile": _LAMBDA_CODE},
            "TracingConfig": {"Mode": mode},
        },
    }
    return _template(f"Lambda function with X-Ray tracing ({mode})",
                     {"FunctionRole": role, "Function": function},
                     Outputs={"FunctionArn": _arn_output("Function", "The function")})  # fmt: skip


def api_gateway_stage_template(
    *, api_name: str = "shop-api", stage_name: str = "prod", sampling_rule: bool = True
) -> dict[str, Any]:
    """Return a REST API whose stage has X-Ray tracing on, and a sampling rule for it.

    In traces the stage is a node of type ``AWS::ApiGateway::Stage`` named
    ``api_name/stage_name``, which is what the rule's ``ServiceName`` matches.

    Examples
    --------
    >>> t = api_gateway_stage_template()
    >>> t["Resources"]["Stage"]["Properties"]["TracingEnabled"]
    True
    >>> rule = t["Resources"]["SamplingRule"]["Properties"]["SamplingRule"]
    >>> rule["ServiceName"], rule["ServiceType"]
    ('shop-api/prod', 'AWS::ApiGateway::Stage')
    """
    _check_name("api_name", api_name, _API, "1-128 letters, digits, spaces or ._-")
    _check_name("stage_name", stage_name, _STAGE, "1-128 letters, digits, _ or -")
    api = {"Ref": "RestApi"}
    resources: dict[str, Any] = {
        "RestApi": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": api_name}},
        "RootGet": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": api,
                "ResourceId": {"Fn::GetAtt": ["RestApi", "RootResourceId"]},
                "HttpMethod": "GET",
                "AuthorizationType": "NONE",
                "Integration": {
                    "Type": "MOCK",
                    "RequestTemplates": {"application/json": '{"statusCode": 200}'},
                    "IntegrationResponses": [{"StatusCode": "200"}],
                },
                "MethodResponses": [{"StatusCode": "200"}],
            },
        },
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": ["RootGet"],
            "Properties": {"RestApiId": api},
        },
        "Stage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {
                "RestApiId": api,
                "DeploymentId": {"Ref": "Deployment"},
                "StageName": stage_name,
                "TracingEnabled": True,
            },
        },
    }
    if sampling_rule:
        rule = SamplingRule(f"{stage_name}-{api_name}"[:32].replace(" ", "-"), 100, 0.1, 5,
                            service_name=f"{api_name}/{stage_name}",
                            service_type="AWS::ApiGateway::Stage")  # fmt: skip
        resources["SamplingRule"] = sampling_rule_template(rule)["Resources"]["SamplingRule"]
    return _template(f"API Gateway stage {api_name}/{stage_name} with X-Ray tracing", resources)


# --------------------------------------------------------------------------------------
# X-Ray resources


def sampling_rule_template(rule: SamplingRule) -> dict[str, Any]:
    """Return an AWS::XRay::SamplingRule for ``rule`` (a :class:`xraykit.sampling.SamplingRule`).

    Examples
    --------
    >>> rule = SamplingRule("checkout", 100, 0.5, 2, url_path="/checkout*")
    >>> sampling_rule_template(rule)["Resources"]["SamplingRule"]["Properties"]["SamplingRule"]["URLPath"]
    '/checkout*'
    """
    if not isinstance(rule, SamplingRule):
        raise ArgumentTypeError(
            f"`rule` must be an xraykit.sampling.SamplingRule, but {rule!r} was passed."
        )
    if rule.is_default:
        raise ArgumentError(
            "The 'Default' rule exists in every account and cannot be created; give the rule "
            "another name."
        )
    body = {k: v for k, v in rule.to_api().items() if k != "Attributes" or v}
    resource = {"Type": "AWS::XRay::SamplingRule", "Properties": {"SamplingRule": body}}
    return _template(f"X-Ray sampling rule {rule.name}", {"SamplingRule": resource})


def group_template(
    name: str, filter_expression: str, *, insights: bool = False, notifications: bool = False
) -> dict[str, Any]:
    """Return an AWS::XRay::Group: a filter expression with its own service map and metrics.

    The expression is parsed first (:func:`xraykit.query.parse`), so a typo fails here
    rather than in CloudFormation. ``notifications`` (Insights events to EventBridge)
    needs ``insights``.

    Examples
    --------
    >>> g = group_template("slow-checkout", 'service("checkout") AND responsetime > 2')
    >>> g["Resources"]["Group"]["Properties"]["FilterExpression"]
    'service("checkout") AND responsetime > 2'
    """
    _check_name("name", name, _NAME, "1-32 letters, digits, _ or -")
    parse_filter_expression(filter_expression)
    if notifications and not insights:
        raise ArgumentError("`notifications=True` needs `insights=True`: Insights sends them.")
    properties = {
        "GroupName": name,
        "FilterExpression": filter_expression,
        "InsightsConfiguration": {
            "InsightsEnabled": bool(insights),
            "NotificationsEnabled": bool(notifications),
        },
    }
    return _template(f"X-Ray group {name}",
                     {"Group": {"Type": "AWS::XRay::Group", "Properties": properties}},
                     Outputs={"GroupArn": {"Description": "The group",
                                           "Value": {"Fn::GetAtt": ["Group", "GroupARN"]}}})  # fmt: skip


# --------------------------------------------------------------------------------------
# the forward path: collectors that replace the daemon


def adot_collector_config(
    *,
    region: str = "us-east-1",
    bind: str = "127.0.0.1",
    role_arn: str | None = None,
    indexed_attributes: Iterable[str] = (),
) -> str:
    """Return an AWS Distro for OpenTelemetry collector configuration (YAML).

    Its ``awsxray`` receiver takes the daemon's place (X-Ray SDK segments on UDP 2000, the
    sampling proxy on TCP 2000), its ``otlp`` receiver takes OpenTelemetry SDKs (4317 gRPC,
    4318 HTTP), and the ``awsxray`` exporter sends both to X-Ray with PutTraceSegments.
    ``indexed_attributes`` become annotations. In a container bind to ``0.0.0.0``.

    Examples
    --------
    >>> text = adot_collector_config(region="eu-west-1")
    >>> "    endpoint: 127.0.0.1:2000" in text, "    region: eu-west-1" in text
    (True, True)
    """
    if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", str(region)):
        raise ArgumentError(f"`region` must look like 'us-east-1', but {region!r} was passed.")
    check_choice("bind", bind, ("127.0.0.1", "0.0.0.0"))
    attributes = [indexed_attributes] if isinstance(indexed_attributes, str) else indexed_attributes
    attributes = list(attributes)
    for attribute in attributes:
        _check_name("indexed_attributes", attribute, re.compile(r"^[\w.-]{1,100}$"),
                    "attribute names (letters, digits, '.', '_', '-')")  # fmt: skip
    lines = [
        "# AWS Distro for OpenTelemetry collector, in the X-Ray daemon's place (xraykit)",
        "receivers:",
        "  awsxray:                 # segments from X-Ray SDKs, as the daemon receives them",
        f"    endpoint: {bind}:2000",
        "    transport: udp",
        "    proxy_server:          # the SDKs' sampling calls (GetSamplingRules/Targets)",
        f"      endpoint: {bind}:2000",
        "  otlp:                    # spans from OpenTelemetry SDKs",
        "    protocols:",
        "      grpc:",
        f"        endpoint: {bind}:4317",
        "      http:",
        f"        endpoint: {bind}:4318",
        "processors:",
        "  batch: {}",
        "exporters:",
        "  awsxray:",
        f"    region: {region}",
    ]
    if role_arn is not None:
        if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", str(role_arn)):
            raise ArgumentError(
                "`role_arn` must look like 'arn:aws:iam::123456789012:role/NAME', "
                f"but {role_arn!r} was passed."
            )
        lines.append(f"    role_arn: {role_arn}")
    if attributes:
        lines.append(f"    indexed_attributes: [{', '.join(attributes)}]")
    lines += [
        "service:",
        "  pipelines:",
        "    traces:",
        "      receivers: [awsxray, otlp]",
        "      processors: [batch]",
        "      exporters: [awsxray]",
        "",
    ]
    return "\n".join(lines)


def cloudwatch_agent_traces_config(*, bind: str = "127.0.0.1") -> dict[str, Any]:
    """Return the ``traces`` section of a CloudWatch agent configuration (JSON).

    The agent (1.300025.0 and later) can replace the daemon: it listens for X-Ray SDK
    segments on UDP 2000, proxies sampling calls on TCP 2000, and takes OTLP on 4317/4318.

    Examples
    --------
    >>> cloudwatch_agent_traces_config()["traces"]["traces_collected"]["xray"]["bind_address"]
    '127.0.0.1:2000'
    """
    check_choice("bind", bind, ("127.0.0.1", "0.0.0.0"))
    return {
        "traces": {
            "traces_collected": {
                "xray": {
                    "bind_address": f"{bind}:2000",
                    "tcp_proxy": {"bind_address": f"{bind}:2000"},
                },
                "otlp": {"grpc_endpoint": f"{bind}:4317", "http_endpoint": f"{bind}:4318"},
            }
        }
    }

"""The local X-Ray's sampling rules and targets, and the real SDK's centralized sampler
parsing them (through a botocore client whose requests are answered in process)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from typing import Any

import botocore.awsrequest
import botocore.session
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xraykit.exceptions import ArgumentError, SamplingRuleError, XrayKitError
from xraykit.local.sampling_service import RULE_ARN_PREFIX, SamplingService
from xraykit.local.store import Store

MODEL = botocore.session.get_session().get_service_model("xray")

RULE = {
    "RuleName": "checkout",
    "Priority": 100,
    "FixedRate": 0.25,
    "ReservoirSize": 10,
    "ServiceName": "*",
    "ServiceType": "*",
    "Host": "*",
    "HTTPMethod": "POST",
    "URLPath": "/checkout*",
    "ResourceARN": "*",
    "Version": 1,
}


@pytest.fixture
def store():
    with Store(":memory:") as store:
        yield store


@pytest.fixture
def service(store):
    return SamplingService(store)


def stats(rule: str, client: str, requests: int = 5) -> dict[str, Any]:
    return {
        "RuleName": rule,
        "ClientID": client * 24 if len(client) == 1 else client,
        "Timestamp": 1_700_000_000,
        "RequestCount": requests,
        "SampledCount": 1,
        "BorrowCount": 0,
    }


def names(service: SamplingService) -> list[str]:
    return [r["SamplingRule"]["RuleName"] for r in service.get_rules()["SamplingRuleRecords"]]


# -- rules ----------------------------------------------------------------------------


def test_default_rule_is_always_there(service, store):
    records = service.get_rules()["SamplingRuleRecords"]
    assert [r["SamplingRule"]["RuleName"] for r in records] == ["Default"]
    default = records[0]["SamplingRule"]
    assert (default["Priority"], default["FixedRate"], default["ReservoirSize"]) == (10000, 0.05, 1)
    assert default["RuleARN"] == RULE_ARN_PREFIX + "Default"
    # the Default rule is saved once; a store that lost it gets it back
    assert [r["RuleName"] for r in store.rules()] == ["Default"]
    store.delete_rule("Default")
    assert names(service) == ["Default"]


def test_create_rule_returns_the_record_in_the_model_shape(service):
    before = time.time()
    record = service.create_rule({"SamplingRule": RULE, "Tags": [{"Key": "a", "Value": "b"}]})
    record = record["SamplingRuleRecord"]
    assert record["SamplingRule"]["RuleARN"] == RULE_ARN_PREFIX + "checkout"
    assert record["CreatedAt"] == record["ModifiedAt"] >= before
    assert names(service) == ["checkout", "Default"]  # by priority
    out = MODEL.operation_model("GetSamplingRules").output_shape
    _assert_members(service.get_rules(), out)


def _assert_members(value: Any, shape: Any) -> None:
    if shape.type_name == "structure":
        assert set(value) <= set(shape.members), set(value) - set(shape.members)
        for key, item in value.items():
            _assert_members(item, shape.members[key])
    elif shape.type_name == "list":
        for item in value:
            _assert_members(item, shape.member)


@pytest.mark.parametrize(
    "change",
    [
        {"FixedRate": 1.5},
        {"Priority": 0},
        {"ReservoirSize": -1},
        {"HTTPMethod": "X" * 11},
        {"Attributes": "not a map"},
        {"Unknown": 1},
        {"RuleName": "x" * 33},
        {"SamplingRateBoost": {"MaxRate": 2, "CooldownWindowMinutes": 1}},
    ],
)
def test_create_rule_refuses_what_xray_refuses(service, change):
    with pytest.raises(SamplingRuleError):
        service.create_rule({"SamplingRule": {**RULE, **change}})
    assert names(service) == ["Default"]


def test_create_rule_refuses_duplicates_missing_fields_and_bad_bodies(service):
    service.create_rule({"SamplingRule": RULE})
    with pytest.raises(SamplingRuleError, match="already exists"):
        service.create_rule({"SamplingRule": RULE})
    with pytest.raises(SamplingRuleError, match="already exists"):
        service.create_rule({"SamplingRule": {**RULE, "RuleName": "Default", "Priority": 10000}})
    missing = {k: v for k, v in RULE.items() if k != "URLPath"}
    with pytest.raises(SamplingRuleError, match="URLPath"):
        service.create_rule({"SamplingRule": {**missing, "RuleName": "other"}})
    with pytest.raises(SamplingRuleError):
        service.create_rule({"SamplingRule": "checkout"})
    with pytest.raises(ArgumentError):
        service.create_rule(["not", "an", "object"])  # type: ignore[arg-type,unused-ignore]
    # a rule may be named by its ARN alone
    arn = {**RULE, "RuleARN": RULE_ARN_PREFIX + "by-arn"}
    del arn["RuleName"]
    service.create_rule({"SamplingRule": arn})
    assert "by-arn" in names(service)


def test_update_rule_changes_only_what_is_given(service):
    created = service.create_rule({"SamplingRule": RULE})["SamplingRuleRecord"]
    time.sleep(0.01)
    updated = service.update_rule(
        {"SamplingRuleUpdate": {"RuleARN": RULE_ARN_PREFIX + "checkout", "FixedRate": 0.5}}
    )["SamplingRuleRecord"]
    assert updated["SamplingRule"] == {**created["SamplingRule"], "FixedRate": 0.5}
    assert updated["CreatedAt"] == created["CreatedAt"] < updated["ModifiedAt"]
    default = service.update_rule(
        {"SamplingRuleUpdate": {"RuleName": "Default", "ReservoirSize": 3}}
    )
    assert default["SamplingRuleRecord"]["SamplingRule"]["ReservoirSize"] == 3


@pytest.mark.parametrize(
    "update",
    [
        {"RuleName": "Default", "ServiceName": "shop"},  # Default matches everything
        {"RuleName": "Default", "Priority": 5},
        {"RuleName": "nope", "FixedRate": 0.5},
        {"RuleName": "checkout", "Version": 2},  # not a SamplingRuleUpdate member
        {"RuleName": "checkout", "FixedRate": "half"},
        {"RuleName": "checkout", "RuleARN": RULE_ARN_PREFIX + "other"},
        {"FixedRate": 0.5},
    ],
)
def test_update_rule_refuses_what_xray_refuses(service, update):
    service.create_rule({"SamplingRule": RULE})
    with pytest.raises(SamplingRuleError):
        service.update_rule({"SamplingRuleUpdate": update})
    assert service.get_rules()["SamplingRuleRecords"][0]["SamplingRule"]["FixedRate"] == 0.25


def test_delete_rule(service):
    service.create_rule({"SamplingRule": RULE})
    with pytest.raises(SamplingRuleError, match="cannot be deleted"):
        service.delete_rule({"RuleName": "Default"})
    with pytest.raises(SamplingRuleError, match="cannot be deleted"):
        service.delete_rule({"RuleARN": RULE_ARN_PREFIX + "Default"})
    with pytest.raises(SamplingRuleError, match="No sampling rule"):
        service.delete_rule({"RuleName": "nope"})
    deleted = service.delete_rule({"RuleARN": RULE_ARN_PREFIX + "checkout"})
    assert deleted["SamplingRuleRecord"]["SamplingRule"]["RuleName"] == "checkout"
    assert names(service) == ["Default"]


def test_rules_survive_a_restart(tmp_path):
    path = tmp_path / "local.sqlite3"
    with Store(path) as store:
        service = SamplingService(store)
        service.create_rule({"SamplingRule": RULE})
        default = service.get_rules()["SamplingRuleRecords"][1]
    with Store(path) as store:
        records = SamplingService(store).get_rules()["SamplingRuleRecords"]
    assert [r["SamplingRule"]["RuleName"] for r in records] == ["checkout", "Default"]
    assert records[1] == default  # the Default rule keeps its times


# -- targets --------------------------------------------------------------------------


def test_two_clients_share_the_reservoir(service):
    service.create_rule({"SamplingRule": RULE})  # ReservoirSize 10
    first = service.targets({"SamplingStatisticsDocuments": [stats("checkout", "a")]}, now=1000.0)
    (alone,) = first["SamplingTargetDocuments"]
    assert alone == {
        "RuleName": "checkout",
        "FixedRate": 0.25,
        "ReservoirQuota": 10,
        "ReservoirQuotaTTL": 1010.0,
        "Interval": 10,
    }
    second = service.targets({"SamplingStatisticsDocuments": [stats("checkout", "b")]}, now=1005.0)
    assert second["SamplingTargetDocuments"][0]["ReservoirQuota"] == 5
    again = service.targets({"SamplingStatisticsDocuments": [stats("checkout", "a")]}, now=1010.0)
    assert again["SamplingTargetDocuments"][0]["ReservoirQuota"] == 5
    # client b stopped reporting: after an interval and a half, a has it all again
    late = service.targets({"SamplingStatisticsDocuments": [stats("checkout", "a")]}, now=1021.0)
    assert late["SamplingTargetDocuments"][0]["ReservoirQuota"] == 10


def test_an_uneven_split_never_exceeds_the_reservoir(service):
    service.create_rule({"SamplingRule": RULE})
    quotas = {}
    for client in "abc":
        service.targets({"SamplingStatisticsDocuments": [stats("checkout", client)]}, now=50.0)
    for client in "abc":
        docs = service.targets(
            {"SamplingStatisticsDocuments": [stats("checkout", client)]}, now=51.0
        )
        quotas[client] = docs["SamplingTargetDocuments"][0]["ReservoirQuota"]
    assert sorted(quotas.values()) == [3, 3, 4] and sum(quotas.values()) == 10


def test_default_rule_and_unknown_rules(service):
    response = service.targets(
        {"SamplingStatisticsDocuments": [stats("Default", "a"), stats("gone", "a")]}, now=2000.0
    )
    (target,) = response["SamplingTargetDocuments"]
    assert (target["RuleName"], target["FixedRate"], target["ReservoirQuota"]) == (
        "Default",
        0.05,
        1,
    )
    (unprocessed,) = response["UnprocessedStatistics"]
    assert unprocessed["RuleName"] == "gone" and unprocessed["ErrorCode"]
    assert response["UnprocessedBoostStatistics"] == []
    _assert_members(response, MODEL.operation_model("GetSamplingTargets").output_shape)


def test_last_rule_modification_follows_changes(service):
    def last() -> float:
        body = {"SamplingStatisticsDocuments": [stats("Default", "a")]}
        return service.targets(body, now=time.time())["LastRuleModification"]

    start = last()
    assert start == math.ceil(start)  # whole seconds, rounded up
    created = service.create_rule({"SamplingRule": RULE})["SamplingRuleRecord"]
    assert last() >= created["ModifiedAt"] and last() >= start
    time.sleep(0.01)
    before_delete = time.time()
    service.delete_rule({"RuleName": "checkout"})
    assert last() >= before_delete


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"SamplingStatisticsDocuments": "Default"},
        {"SamplingStatisticsDocuments": [stats("Default", "a")] * 26},
        {"SamplingStatisticsDocuments": [{**stats("Default", "a"), "ClientID": "short"}]},
        {"SamplingStatisticsDocuments": [{**stats("Default", "a"), "RequestCount": -1}]},
        {"SamplingStatisticsDocuments": [{**stats("Default", "a"), "Timestamp": "now"}]},
        {"SamplingStatisticsDocuments": [["Default"]]},
    ],
)
def test_targets_refuse_malformed_requests(service, body):
    with pytest.raises(ArgumentError):
        service.targets(body, now=1.0)


def test_a_missing_count_is_named_with_the_members_that_came(service):
    # The ADOT Python remote sampler (0.21) reports its sampled count as "SampleCount".
    document = {k: v for k, v in stats("Default", "a").items() if k != "SampledCount"}
    document["SampleCount"] = 2
    with pytest.raises(ArgumentError) as refused:
        service.targets({"SamplingStatisticsDocuments": [document]}, now=1.0)
    message = str(refused.value)
    assert "SamplingStatisticsDocuments[0]: SampledCount is missing" in message
    assert "SampleCount" in message.split("The document has")[1]


_KEYS = st.sampled_from([*RULE, "RuleARN", "Attributes", "SamplingRateBoost", "Tags", "x"])
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 20_000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=10,
)
_RULES = st.fixed_dictionaries({}, optional={k: _VALUES | st.just(v) for k, v in RULE.items()})
_STATS = st.fixed_dictionaries(
    {},
    optional={
        "RuleName": st.sampled_from(["Default", "checkout"]) | _VALUES,
        "ClientID": st.just("a" * 24) | _VALUES,
        "Timestamp": st.just(1) | _VALUES,
        "RequestCount": st.just(1) | _VALUES,
        "SampledCount": st.just(0) | _VALUES,
        "BorrowCount": _VALUES,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=_RULES,
    update=_RULES,
    delete=st.dictionaries(st.sampled_from(["RuleName", "RuleARN"]), _VALUES, max_size=2),
    documents=st.lists(_STATS, max_size=4) | _VALUES,
)
def test_any_request_is_answered_or_refused_with_an_xraykit_error(rule, update, delete, documents):
    with Store(":memory:") as store:
        service = SamplingService(store)
        calls = [
            lambda: service.create_rule({"SamplingRule": rule}),
            lambda: service.update_rule({"SamplingRuleUpdate": update}),
            lambda: service.targets({"SamplingStatisticsDocuments": documents}, now=10.0),
            lambda: service.delete_rule(delete),
        ]
        for call in calls:
            with contextlib.suppress(XrayKitError):  # a refusal, as X-Ray's
                assert isinstance(call(), dict)
            json.dumps(service.get_rules(), allow_nan=False)  # never a broken rule stored


# -- the real SDK ---------------------------------------------------------------------


class _Body(io.BytesIO):
    def stream(self, **_: Any):
        yield self.getvalue()


def local_client(service: SamplingService) -> Any:
    """An unsigned botocore X-Ray client, as the SDK makes it, answered by ``service``
    (refusals as the API sends them: 400, ``InvalidRequestException``)."""
    routes = {
        "/GetSamplingRules": lambda body: service.get_rules(),
        "/SamplingTargets": service.targets,
        "/CreateSamplingRule": service.create_rule,
        "/UpdateSamplingRule": service.update_rule,
        "/DeleteSamplingRule": service.delete_rule,
    }
    client = botocore.session.get_session().create_client(
        "xray",
        endpoint_url="http://127.0.0.1:2000",
        region_name="us-west-2",
        config=Config(signature_version=UNSIGNED),
    )

    def answer(request: Any, **_: Any) -> botocore.awsrequest.AWSResponse:
        path = request.url.split("127.0.0.1:2000", 1)[1]
        status, headers = 200, {}
        try:
            payload = routes[path](json.loads(request.body or b"{}"))
        except ArgumentError as error:  # what the API answers for a refused request
            status, headers = 400, {"x-amzn-ErrorType": "InvalidRequestException"}
            payload = {"message": str(error)}
        body = json.dumps(payload).encode()
        return botocore.awsrequest.AWSResponse(request.url, status, headers, _Body(body))

    client.meta.events.register("before-send.xray", answer)
    return client


def test_the_sdk_reads_rules_and_targets(service):
    from aws_xray_sdk.core.sampling.connector import ServiceConnector
    from aws_xray_sdk.core.sampling.reservoir import ReservoirDecision
    from aws_xray_sdk.core.sampling.rule_cache import RuleCache

    client = local_client(service)
    client.create_sampling_rule(SamplingRule={**RULE, "ReservoirSize": 2})  # as boto3 would
    connectors = [ServiceConnector(), ServiceConnector()]
    caches = []
    for connector in connectors:
        connector.setup_xray_client(None, None, client)
        rules = connector.fetch_sampling_rules()
        assert [(r.name, r.priority, r.rate) for r in rules] == [
            ("checkout", 100, 0.25),
            ("Default", 10000, 0.05),
        ]
        cache = RuleCache()
        cache.load_rules(rules)
        cache.last_updated = int(time.time())
        caches.append(cache)
        rule = cache.get_matched_rule({"method": "POST", "path": "/checkout/pay"}, time.time())
        assert rule.name == "checkout"
        rule.increment_request_count()
    # both instances report; the second one's answer splits the reservoir of 2
    for connector, cache in zip(connectors, caches, strict=True):
        targets, modified = connector.fetch_sampling_target([cache.rules[0]])
        cache.load_targets(targets)
    now = int(time.time())
    assert targets["checkout"]["quota"] == 1 and targets["checkout"]["interval"] == 10
    assert now < targets["checkout"]["TTL"] <= now + 11
    assert modified <= now + 1
    reservoir = caches[1].rules[0].reservoir
    assert reservoir.borrow_or_take(now, True) == ReservoirDecision.TAKE
    assert reservoir.borrow_or_take(now, True) == ReservoirDecision.NO
    # a rule deleted through boto3 is gone for the SDK at its next refresh
    client.delete_sampling_rule(RuleName="checkout")
    assert [r.name for r in connectors[0].fetch_sampling_rules()] == ["Default"]
    with pytest.raises(ClientError) as refused:
        client.delete_sampling_rule(RuleName="Default")
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"

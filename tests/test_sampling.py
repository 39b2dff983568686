"""Tests for xraykit.sampling: rules, matching, decisions, simulation, summary, plot, cost.

The local-mode simulation is checked against the real SDK (``aws_xray_sdk``'s
``LocalSampler`` driven with a simulated clock and seeded randomness); centralized mode
against quota schedules computed by hand.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xraykit.exceptions import (
    ArgumentError,
    ArgumentTypeError,
    NotFoundError,
    SamplingRuleError,
    XrayKitWarning,
)
from xraykit.plotting.sampling import plot_sampling
from xraykit.sampling import (
    DEFAULT_RULE,
    REASONS,
    RuleSet,
    SamplingDecision,
    SamplingRule,
    decide,
    estimate_cost,
    load_rules,
    sampling_summary,
    simulate_sampling,
    traffic,
)

matplotlib.use("Agg")

DATA = Path(__file__).parent / "data"
START = pd.Timestamp("2024-01-01T00:00:00Z")


def api_rule(name: str, priority: int, **fields: object) -> dict[str, object]:
    rule: dict[str, object] = {
        "RuleName": name,
        "Priority": priority,
        "FixedRate": 0.1,
        "ReservoirSize": 1,
        "ServiceName": "*",
        "ServiceType": "*",
        "Host": "*",
        "HTTPMethod": "*",
        "URLPath": "*",
        "ResourceARN": "*",
        "Version": 1,
        "Attributes": {},
    }
    rule.update(fields)
    return rule


def stream(per_second: dict[int, dict[int, int]], **columns: object) -> pd.DataFrame:
    """Requests: {second: {instance: count}}, evenly spread inside each second."""
    rows = []
    for second, by_instance in per_second.items():
        for instance, count in by_instance.items():
            for i in range(count):
                offset = pd.Timedelta(seconds=second + (i + 0.5) / (count + 1))
                rows.append({"time": START + offset, "instance": instance})
    frame = pd.DataFrame(rows).sort_values("time", kind="stable").reset_index(drop=True)
    for name, value in columns.items():
        frame[name] = value
    return frame


# ---------------------------------------------------------------------------------------------
# rules


def test_default_rule_is_xrays_builtin() -> None:
    assert (DEFAULT_RULE.priority, DEFAULT_RULE.reservoir_size, DEFAULT_RULE.fixed_rate) == (
        10000,
        1,
        0.05,
    )
    assert DEFAULT_RULE.to_api()["URLPath"] == "*"
    assert SamplingRule.from_api(DEFAULT_RULE.to_api()) == dataclasses.replace(
        DEFAULT_RULE, description=""
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"Priority": 0}, ["'r'", "priority", "1 to 9999"]),
        ({"Priority": 10000}, ["priority", "1 to 9999"]),
        ({"Priority": 1.5}, ["priority", "integer"]),
        ({"FixedRate": 5}, ["fixed rate", "0 to 1", "0.05"]),
        ({"FixedRate": -0.1}, ["fixed rate"]),
        ({"ReservoirSize": -1}, ["reservoir size", "-1"]),
        ({"ReservoirSize": 0.5}, ["reservoir size"]),
        ({"HTTPMethod": "X" * 11}, ["http_method", "10 characters"]),
        ({"URLPath": "/" * 129}, ["url_path", "128"]),
        ({"Attributes": {f"k{i}": "v" for i in range(6)}}, ["attributes", "5 entries"]),
        ({"Version": 0}, ["version"]),
    ],
)
def test_invalid_api_rule_names_rule_and_field(changes: dict, words: list[str]) -> None:
    with pytest.raises(SamplingRuleError) as info:
        load_rules([api_rule("r", 5, **changes)])
    for word in words:
        assert word in str(info.value)
    assert "was given" in str(info.value)


def test_rule_name_length() -> None:
    with pytest.raises(SamplingRuleError, match="1 to 32 characters"):
        load_rules([api_rule("x" * 33, 5)])


@pytest.mark.parametrize("field", ["Host", "URLPath", "ServiceName", "HTTPMethod"])
def test_default_rule_cannot_match_specific_requests(field: str) -> None:
    with pytest.raises(SamplingRuleError, match="Default rule matches every request"):
        load_rules([api_rule("Default", 10000, **{field: "/x"})])


def test_default_rule_priority_is_fixed() -> None:
    with pytest.raises(SamplingRuleError, match="always 10000"):
        load_rules([api_rule("Default", 5)])


def test_missing_api_keys_are_listed() -> None:
    rule = api_rule("r", 5)
    del rule["URLPath"], rule["Version"]
    with pytest.raises(SamplingRuleError) as info:
        load_rules([rule])
    assert "'r'" in str(info.value) and "['URLPath', 'Version']" in str(info.value)


def test_unknown_api_key() -> None:
    with pytest.raises(SamplingRuleError, match=r"unknown key.*'Fixedrate'"):
        load_rules([{**api_rule("r", 5), "Fixedrate": 0.1}])


def test_duplicate_names_rejected() -> None:
    with pytest.raises(SamplingRuleError, match=r"unique.*'a'"):
        load_rules([api_rule("a", 1), api_rule("a", 2)])


def test_load_api_response_file_orders_by_priority_then_name() -> None:
    rules = load_rules(DATA / "sampling_api_rules.json")
    assert rules.names == ["health", "products", "Default"]
    assert rules.mode == "centralized"
    assert rules.rule("products").reservoir_size == 9
    assert rules.rule("products").service_type == "AWS::EC2::Instance"


def test_load_every_api_shape_gives_the_same_rules() -> None:
    response = json.loads((DATA / "sampling_api_rules.json").read_text())
    records = response["SamplingRuleRecords"]
    expected = load_rules(response)
    as_objects = [SamplingRule.from_api(r["SamplingRule"]) for r in records]
    for source in (
        records,
        [r["SamplingRule"] for r in records],
        [response],  # paginated responses
        json.dumps(response),
        str(DATA / "sampling_api_rules.json"),
        as_objects,
        expected,
    ):
        assert list(load_rules(source)) == list(expected)


def test_single_rule_and_rule_arn_only() -> None:
    rule = api_rule("ignored", 7)
    del rule["RuleName"]
    rule["RuleARN"] = "arn:aws:xray:us-east-1:123456789012:sampling-rule/by-arn"
    assert load_rules(rule).names == ["by-arn", "Default"]


def test_default_added_when_missing() -> None:
    rules = load_rules([api_rule("a", 3)])
    assert rules.names == ["a", "Default"]
    assert rules[-1] is DEFAULT_RULE
    assert load_rules([]).names == ["Default"]


def test_local_v2_file() -> None:
    rules = load_rules(DATA / "sampling_local_v2.json")
    assert rules.mode == "local"
    assert rules.names == ["rule-1", "rule-2", "rule-3", "Default"]
    products = rules.rule("rule-2")
    assert (products.host, products.http_method, products.url_path) == (
        "shop.example.com",
        "GET",
        "/products/*",
    )
    assert (products.reservoir_size, products.fixed_rate) == (2, 0.1)
    assert products.description.startswith("Product pages")
    assert (rules.rule("Default").reservoir_size, rules.rule("Default").fixed_rate) == (1, 0.05)


def test_local_v1_file_uses_service_name_as_host() -> None:
    rules = load_rules(DATA / "sampling_local_v1.json")
    checkout = rules.rule("rule-1")
    assert checkout.host == "shop.example.com"
    assert checkout.matches({"host": "SHOP.example.com", "method": "post", "path": "/checkout"})
    assert not checkout.matches({"host": "other", "method": "POST", "path": "/checkout"})
    assert rules.rule("Default").reservoir_size == 0


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"version": 3, "default": {"fixed_target": 1, "rate": 0.1}}, ["version", "1 or 2", "3"]),
        ({"version": 2, "rules": []}, ["default"]),
        (
            {"version": 2, "default": {"fixed_target": 1, "rate": 0.1, "url_path": "/x"}},
            ["default rule must not have", "url_path"],
        ),
        (
            {"version": 1, "default": {"fixed_target": 1, "rate": 0.1, "service_name": "x"}},
            ["default rule must not have", "service_name"],
        ),
        ({"version": 2, "default": {"fixed_target": 1}}, ["'Default'", "missing 'rate'"]),
        (
            {
                "version": 2,
                "default": {"fixed_target": 1, "rate": 0.1},
                "rules": [{"host": "*", "http_method": "*", "fixed_target": 1, "rate": 0.1}],
            },
            ["rule 1", "missing ['url_path']", "host, http_method, url_path"],
        ),
        (
            {
                "version": 1,
                "default": {"fixed_target": 1, "rate": 0.1},
                "rules": [{"service_name": "*", "url_path": "*", "fixed_target": 1, "rate": 0.1}],
            },
            ["rule 1", "missing ['http_method']", "service_name, http_method, url_path"],
        ),
        (
            {
                "version": 2,
                "default": {"fixed_target": 1, "rate": 0.1},
                "rules": [
                    {
                        "description": "old",
                        "service_name": "*",
                        "http_method": "*",
                        "url_path": "*",
                        "fixed_target": 1,
                        "rate": 0.1,
                    }
                ],
            },
            ["rule 1 ('old')", "'service_name'", "names the host field 'host'"],
        ),
        (
            {
                "version": 2,
                "default": {"fixed_target": 1, "rate": 0.1},
                "rules": [
                    {
                        "host": "*",
                        "http_method": "*",
                        "url_path": "*",
                        "fixed_target": -1,
                        "rate": 0.1,
                    }
                ],
            },
            ["rule 1", "fixed_target", "-1"],
        ),
        (
            {"version": 2, "default": {"fixed_target": 1, "rate": 1.5}},
            ["'Default'", "rate", "0 to 1"],
        ),
        (
            {"version": 2, "default": {"fixed_target": 1, "rate": 0.1}, "rule": []},
            ["top-level", "'rule'"],
        ),
    ],
)
def test_invalid_local_file(document: dict, words: list[str]) -> None:
    with pytest.raises(SamplingRuleError) as info:
        load_rules(document)
    for word in words:
        assert word in str(info.value)


def test_unreadable_sources(tmp_path: Path) -> None:
    with pytest.raises(SamplingRuleError, match="Could not read"):
        load_rules(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SamplingRuleError, match=r"not valid JSON.*line 1"):
        load_rules(bad)
    with pytest.raises(SamplingRuleError, match="Expected a GetSamplingRules response"):
        load_rules({"Rules": []})


@pytest.mark.parametrize(
    "changes",
    [{"Attributes": {"tenant": "a"}}, {"ResourceARN": "arn:aws:apigateway:x"}, {"Version": 2}],
)
def test_rules_the_sdk_ignores_warn_and_never_match(changes: dict) -> None:
    with pytest.warns(XrayKitWarning, match="ignored by the X-Ray SDKs"):
        rules = load_rules([api_rule("special", 1, **changes)])
    assert not rules.rule("special").sdk_supported
    assert rules.match({"host": "any", "path": "/"}).name == "Default"
    result = simulate_sampling(stream({0: {0: 5}}), rules, seed=0)
    assert set(result["rule"]) == {"Default"}


def test_rule_set_frame_and_api_round_trip() -> None:
    rules = load_rules(DATA / "sampling_api_rules.json")
    frame = rules.to_frame()
    assert list(frame.index) == rules.names
    assert frame.loc["products", "url_path"] == "/products/*"
    assert "<table" in rules._repr_html_()
    assert list(load_rules(rules.to_api())) == list(rules)
    assert list(load_rules(frame)) == list(rules)


def test_load_rules_from_the_live_rules_frame() -> None:
    from xraykit.aws import sampling_rules_frame

    response = json.loads((DATA / "sampling_api_rules.json").read_text())
    frame = sampling_rules_frame(response["SamplingRuleRecords"])
    assert list(load_rules(frame)) == list(load_rules(response))
    with pytest.raises(SamplingRuleError, match="lacks \\['fixed_rate'\\]"):
        load_rules(frame.drop(columns="fixed_rate"))


# ---------------------------------------------------------------------------------------------
# matching


def test_a_literal_wildcard_character_in_the_request_is_where_the_sdk_differs() -> None:
    """The SDK first compares a pattern's `*` or `?` literally with the text, and does not
    backtrack from that choice; a plain glob does. Only requests whose host, method or path
    contain `*` or `?` themselves can be decided differently."""
    from aws_xray_sdk.core.utils.search_pattern import wildcard_match

    from xraykit.sampling.matching import _wildcard_regex

    assert _wildcard_regex("?*").fullmatch("?*?")  # "?" matches "?", "*" matches "*?"
    assert not wildcard_match("?*", "?*?")


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.text(alphabet="ab*?Ab./-", max_size=8),
    # requests hold no wildcard characters of their own: see the test below for why
    text=st.text(alphabet="abAB./-=&", max_size=10),
)
def test_wildcards_agree_with_the_sdk(pattern: str, text: str) -> None:
    from aws_xray_sdk.core.sampling.sampling_rule import SamplingRule as SdkRule
    from aws_xray_sdk.core.utils.search_pattern import wildcard_match

    from xraykit.sampling.matching import _wildcard_regex

    assert bool(_wildcard_regex(pattern).fullmatch(text)) == wildcard_match(pattern, text)
    # at rule level an empty request field matches anything, in both
    ours = SamplingRule("r", 1, 0.1, 1, url_path=pattern).matches({"path": text})
    sdk = SdkRule(
        "r", 1, 0.1, 1, host="*", method="*", path=pattern, service="*", service_type="*"
    ).match({"path": text})
    assert ours == sdk


def test_match_examples() -> None:
    rule = SamplingRule("r", 1, 0.1, 1, host="*.example.com", url_path="/api/v?/*")
    assert rule.matches({"host": "Shop.Example.COM", "path": "/API/V2/orders"})
    assert not rule.matches({"host": "example.com", "path": "/api/v2/orders"})
    assert not rule.matches({"host": "a.example.com", "path": "/api/v10/orders"})
    assert rule.matches({"host": "", "path": None})  # missing fields match anything
    with pytest.raises(ArgumentError, match="Unknown request field 'url'"):
        rule.matches({"url": "/api"})


request_strategy = st.fixed_dictionaries(
    {},
    optional={
        "host": st.sampled_from(["shop.example.com", "admin.example.com", "", "x"]),
        "method": st.sampled_from(["GET", "post", "PUT"]),
        "path": st.sampled_from(["/health", "/products/12", "/cart", "/", "/admin/a"]),
        "service": st.sampled_from(["shop-api", "orders", "SHOP-web"]),
        "service_type": st.sampled_from(["AWS::EC2::Instance", "AWS::ECS::Container"]),
    },
)


@settings(max_examples=150, deadline=None)
@given(request=request_strategy)
def test_rule_matching_agrees_with_the_sdks_centralized_rules(request: dict) -> None:
    from aws_xray_sdk.core.sampling.rule_cache import RuleCache
    from aws_xray_sdk.core.sampling.sampling_rule import SamplingRule as SdkRule

    rules = load_rules(DATA / "sampling_api_rules.json")
    cache = RuleCache()
    cache.load_rules(
        [
            SdkRule(
                name=r.name,
                priority=r.priority,
                rate=r.fixed_rate,
                reservoir_size=r.reservoir_size,
                host=r.host,
                method=r.http_method,
                path=r.url_path,
                service=r.service_name,
                service_type=r.service_type,
            )
            for r in rules
        ]
    )
    cache.last_updated = 1000
    assert rules.match(request).name == cache.get_matched_rule(dict(request), 1000).name


def test_frame_matching_agrees_with_single_requests() -> None:
    rules = load_rules(DATA / "sampling_local_v2.json")
    requests = traffic(5, duration_s=40, seed=4)
    requests.loc[requests.index[:3], "host"] = pd.NA  # missing fields match anything
    result = simulate_sampling(requests, rules, mode="local", seed=4)
    expected = [
        rules.match({k: v for k, v in row.items() if isinstance(v, str)}).name
        for row in requests[["host", "method", "path"]].to_dict("records")
    ]
    assert list(result["rule"].astype(str)) == expected
    assert {"rule-1", "rule-2", "rule-3", "Default"} <= set(expected)


# ---------------------------------------------------------------------------------------------
# decide


def test_decide_reservoir_then_rate_per_second() -> None:
    rules = RuleSet([SamplingRule("two", 1, 0.0, 2)], mode="local")
    rng = random.Random(0)
    reasons = [decide(rules, {"path": "/"}, clock=100 + i / 10, rng=rng).reason for i in range(15)]
    assert (
        reasons == ["reservoir"] * 2 + ["not sampled"] * 8 + ["reservoir"] * 2 + ["not sampled"] * 3
    )
    always = RuleSet([SamplingRule("all", 1, 1.0, 0)], mode="local")
    assert decide(always, {}, clock=5, rng=rng) == SamplingDecision(True, "all", "rate")


def test_decide_upstream_wins() -> None:
    rules = load_rules([], mode="local")
    rng = np.random.default_rng(0)
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert decide(rules, {"trace_header": header}, clock=1, rng=rng) == SamplingDecision(
        True, None, "upstream"
    )
    assert decide(rules, {"upstream": "0"}, clock=1, rng=rng).sampled is False
    # the upstream requests did not use the reservoir: the next local one still gets it
    assert decide(rules, {"upstream": "?"}, clock=1, rng=rng).reason == "reservoir"
    with pytest.raises(ArgumentError, match="upstream decision"):
        decide(rules, {"upstream": "yes"}, clock=1, rng=rng)


def test_decide_centralized_borrow_quota_and_expiry() -> None:
    rules = load_rules([api_rule("api", 1, ReservoirSize=6, FixedRate=0.0)])
    rng = random.Random(1)
    at = lambda t: decide(rules, {"path": "/"}, clock=t, rng=rng).reason  # noqa: E731
    assert [at(10.1), at(10.2), at(11.0)] == ["borrow", "not sampled", "borrow"]
    rules.load_quota("api", 2, ttl=20)
    assert [at(12.1), at(12.2), at(12.3)] == ["reservoir", "reservoir", "not sampled"]
    assert [at(20.5), at(20.6), at(20.7)] == ["reservoir", "reservoir", "not sampled"]
    assert [at(21.0), at(21.1)] == ["borrow", "not sampled"]  # quota expired after 20
    rules.reset()
    assert at(21.5) == "borrow"
    zero = load_rules([api_rule("none", 1, ReservoirSize=0, FixedRate=0.0)])
    assert decide(zero, {}, clock=1, rng=rng).reason == "not sampled"  # nothing to borrow


def test_decide_clock_forms_and_type_errors() -> None:
    rules = load_rules([], mode="local")
    rng = random.Random(0)
    now = pd.Timestamp("2024-01-01T00:00:00.5Z")
    assert decide(rules, {}, clock=now.to_pydatetime(), rng=rng).reason == "reservoir"
    assert decide(rules, {}, clock=lambda: now.timestamp(), rng=rng).reason != "reservoir"
    with pytest.raises(ArgumentTypeError, match="must be a RuleSet"):
        decide([DEFAULT_RULE], {}, clock=1, rng=rng)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="`rng` must be a random generator"):
        decide(rules, {}, clock=1, rng=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="holds SamplingRule objects"):
        RuleSet([{"RuleName": "r"}])  # type: ignore[list-item]
    with pytest.raises(NotFoundError, match="No sampling rule named 'nope'"):
        rules.load_quota("nope", 1, ttl=10)


# ---------------------------------------------------------------------------------------------
# agreement with the real SDK (local mode)


class FakeTime:
    """Stands in for the ``time`` module inside the SDK's local reservoir."""

    now = 0.0

    @classmethod
    def time(cls) -> float:
        return cls.now


def run_sdk_local(
    requests: pd.DataFrame, rules_document: dict, seed: int, monkeypatch: pytest.MonkeyPatch
) -> pd.DataFrame:
    """Drive one SDK LocalSampler per instance; record rule, reservoir take and decision."""
    from aws_xray_sdk.core.sampling.local import reservoir as local_reservoir
    from aws_xray_sdk.core.sampling.local.sampler import LocalSampler

    monkeypatch.setattr(local_reservoir, "time", FakeTime)
    log: list[tuple[str, bool]] = []
    samplers = {}
    for instance in sorted(requests["instance"].unique()):
        sampler = LocalSampler(rules_document)
        sampler._random = random.Random(seed + int(instance))
        labelled = [(f"rule-{i}", rule) for i, rule in enumerate(sampler._rules, start=1)]
        for label, rule in [*labelled, ("Default", sampler._default_rule)]:

            def take(original=rule.reservoir.take, label=label) -> bool:
                taken = original()
                log.append((label, taken))
                return taken

            rule.reservoir.take = take
        samplers[instance] = sampler
    rows = []
    epoch = requests["time"].map(pd.Timestamp.timestamp)
    for row, now in zip(requests.itertuples(index=False), epoch, strict=True):
        FakeTime.now = now
        sampled = samplers[row.instance].should_trace(
            {"host": row.host, "method": row.method, "path": row.path}
        )
        label, taken = log[-1]
        rows.append((label, taken, sampled))
    return pd.DataFrame(rows, columns=["rule", "reservoir", "sampled"], index=requests.index)


def binomial_tolerance(n: int, p: float) -> float:
    """Allowed |count - n·p| for a Binomial(n, p) count: 4 standard deviations plus 1."""
    return 4 * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize(
    ("rules_file", "hosts"),
    [("sampling_local_v2.json", 1), ("sampling_local_v2.json", 3), ("sampling_local_v1.json", 2)],
)
def test_local_simulation_agrees_with_sdk_local_sampler(
    rules_file: str, hosts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = json.loads((DATA / rules_file).read_text())
    requests = traffic(40, duration_s=120, peaks=1, seed=11)
    requests["instance"] = np.random.default_rng(11).integers(0, hosts, len(requests))
    ours = simulate_sampling(requests, load_rules(document), mode="local", seed=5)
    sdk = run_sdk_local(requests, document, seed=5, monkeypatch=monkeypatch)

    # the same rule for every request, and identical reservoir decisions
    assert (ours["rule"].astype(str) == sdk["rule"]).all()
    assert ((ours["reason"] == "reservoir") == sdk["reservoir"]).all()
    assert (
        ours.loc[sdk["reservoir"], "sampled"].all() and sdk.loc[sdk["reservoir"], "sampled"].all()
    )
    # per (instance, rule, second) the reservoir never exceeds the fixed target
    second = ours["time"].dt.floor("s")
    per_second = (
        ours[ours["reason"] == "reservoir"]
        .groupby(["instance", "rule", second], observed=True)
        .size()
    )
    targets = load_rules(document).to_frame()["reservoir_size"]
    assert (
        per_second <= targets.reindex(per_second.index.get_level_values("rule")).to_numpy()
    ).all()

    # rate decisions: both counts are Binomial(n, p) over the same n requests
    rules = load_rules(document)
    checked = 0
    for rule in rules:
        beyond = (ours["rule"] == rule.name) & ~sdk["reservoir"]
        n = int(beyond.sum())
        if n == 0:
            continue
        expected = n * rule.fixed_rate
        tolerance = binomial_tolerance(n, rule.fixed_rate)
        ours_count = int(ours.loc[beyond, "sampled"].sum())
        sdk_count = int(sdk.loc[beyond, "sampled"].sum())
        assert abs(ours_count - expected) <= tolerance, (rule.name, ours_count, expected)
        assert abs(sdk_count - expected) <= tolerance, (rule.name, sdk_count, expected)
        checked += 1
    assert checked >= 2


def test_local_fixed_target_multiplies_with_hosts() -> None:
    requests = traffic(60, duration_s=60, peaks=0, seed=3)
    rules = [api_rule("all", 1, ReservoirSize=2, FixedRate=0.0)]
    for hosts in (1, 4):
        result = simulate_sampling(requests, rules, hosts=hosts, mode="local", seed=3)
        per_second = result.groupby(result["time"].dt.floor("s"))["sampled"].sum()
        assert per_second.median() == 2 * hosts


# ---------------------------------------------------------------------------------------------
# centralized mode against hand-computed quota schedules


def reservoir_rule(size: int) -> list[dict[str, object]]:
    return [api_rule("r", 1, ReservoirSize=size, FixedRate=0.0)]


def per_second_reasons(result: pd.DataFrame) -> pd.DataFrame:
    second = ((result["time"] - START) // pd.Timedelta(seconds=1)).rename("second")
    return pd.crosstab([second, result["instance"]], result["reason"]).reindex(
        columns=list(REASONS), fill_value=0
    )


def test_centralized_three_hosts_split_reservoir_nine() -> None:
    requests = stream({s: {0: 20, 1: 20, 2: 20} for s in range(30)})
    result = simulate_sampling(requests, reservoir_rule(9), seed=0)
    table = per_second_reasons(result)
    # seconds 0-9: no quota yet, every host borrows 1 per second
    early = table.loc[(slice(0, 9), slice(None)), :]
    assert (early["borrow"] == 1).all() and (early["reservoir"] == 0).all()
    # from second 10 on: quota 9 / 3 = 3 per host per second, fleet total 9
    late = table.loc[(slice(10, 29), slice(None)), :]
    assert (late["reservoir"] == 3).all() and (late["borrow"] == 0).all()
    fleet = result[result["sampled"]].groupby(result["time"].dt.floor("s")).size()
    assert list(fleet) == [3] * 10 + [9] * 20
    assert set(result.loc[~result["sampled"], "reason"]) == {"not sampled"}


def test_centralized_remainder_rotates_between_hosts() -> None:
    requests = stream({s: {0: 10, 1: 10} for s in range(30)})
    table = per_second_reasons(simulate_sampling(requests, reservoir_rule(3), seed=0))
    # reservoir 3 over 2 hosts: quotas 2 + 1; the extra one moves to the other host each report
    # report at 10 (tick 1): host 1 gets 2; at 20 (tick 2): host 0 gets 2
    assert list(table.loc[15, "reservoir"]) == [1, 2]
    assert list(table.loc[25, "reservoir"]) == [2, 1]
    fleet = table["reservoir"].groupby(level="second").sum()
    assert (fleet.loc[10:] == 3).all()


def test_centralized_small_reservoir_and_zero_reservoir() -> None:
    requests = stream({s: {0: 5, 1: 5, 2: 5} for s in range(20)})
    table = per_second_reasons(simulate_sampling(requests, reservoir_rule(1), seed=0))
    assert (table.loc[10:, "reservoir"].groupby(level="second").sum() == 1).all()
    assert (table.loc[10:, "borrow"] == 0).all()
    none = per_second_reasons(simulate_sampling(requests, reservoir_rule(0), seed=0))
    assert none["borrow"].sum() == 0 and none["reservoir"].sum() == 0  # no borrowing from 0


def test_centralized_quota_expiry_and_idle_hosts() -> None:
    # host 0 is busy for seconds 0-9, idle 10-49, busy again 50-59; hosts 1 and 2 always busy
    plan = {s: {1: 10, 2: 10} | ({0: 10} if s < 10 or s >= 50 else {}) for s in range(60)}
    result = simulate_sampling(stream(plan), reservoir_rule(9), seed=0, quota_ttl_s=20)
    table = per_second_reasons(result)
    # report at 10: three hosts reported -> 3 each; host 0's quota is valid until second 30
    assert list(table.loc[15, "reservoir"]) == [3, 3]  # hosts 1, 2 (host 0 idle)
    # report at 20: only hosts 1 and 2 -> 9 = 5 + 4, extra rotating
    assert sorted(table.loc[25, "reservoir"]) == [4, 5]
    # host 0 returns at 50: its last quota (from second 10) expired at 30 -> it borrows again
    assert table.loc[(50, 0), "borrow"] == 1 and table.loc[(50, 0), "reservoir"] == 0
    assert table.loc[(59, 0), "borrow"] == 1
    # at the report of 60 host 0 would be counted again; before that hosts 1, 2 keep 5 + 4
    assert sorted(table.loc[55, "reservoir"])[-2:] == [4, 5]


def test_centralized_reservoir_mechanics_agree_with_sdk_reservoir() -> None:
    """Replay our quota schedule into the SDK's centralized Reservoir: same take/borrow."""
    from aws_xray_sdk.core.sampling.reservoir import Reservoir, ReservoirDecision

    # host 2 leaves at 25 and comes back at 52, after its last quota (from 30) expired at 45
    plan = {s: {0: 6, 1: 6} | ({2: 6} if s < 25 or s >= 52 else {}) for s in range(60)}
    requests = stream(plan)
    result = simulate_sampling(requests, reservoir_rule(5), seed=0, quota_ttl_s=15)
    second = ((result["time"] - START) // pd.Timedelta(seconds=1)).to_numpy()
    start_epoch = int(START.timestamp())
    reservoirs = {i: Reservoir() for i in range(3)}
    decisions = []
    pending: dict[int, list[tuple[int, int]]] = {0: [], 1: [], 2: []}
    # quotas as X-Ray sends them at each report: reservoir 5 over the hosts that reported
    # (3 at 10, 20 and 30; 2 at 40 and 50), the extra ones rotating (worked out by hand)
    schedule = {
        10: {0: 1, 1: 2, 2: 2},
        20: {0: 2, 1: 1, 2: 2},
        30: {0: 2, 1: 2, 2: 1},
        40: {0: 3, 1: 2},
        50: {0: 2, 1: 3},
    }
    for tick, quotas in schedule.items():
        for instance, quota in quotas.items():
            pending[instance].append((tick, quota))
    for row, sec in zip(result.itertuples(index=False), second, strict=True):
        reservoir = reservoirs[row.instance]
        while pending[row.instance] and pending[row.instance][0][0] <= sec:
            tick, quota = pending[row.instance].pop(0)
            reservoir.load_quota(quota, start_epoch + tick + 15, 10)
        decision = reservoir.borrow_or_take(start_epoch + int(sec), True)
        decisions.append(
            {ReservoirDecision.TAKE: "reservoir", ReservoirDecision.BORROW: "borrow"}.get(
                decision, "not sampled"
            )
        )
    assert decisions == list(result["reason"].astype(str))
    assert {"reservoir", "borrow", "not sampled"} == set(decisions)
    back = result[(result["instance"] == 2) & (second >= 52)]
    assert set(back["reason"].astype(str)) == {"borrow", "not sampled"}


# ---------------------------------------------------------------------------------------------
# simulation behaviour


def test_simulate_keeps_input_and_is_seeded() -> None:
    requests = traffic(20, duration_s=60, seed=1).sample(frac=1.0, random_state=0)
    before = requests.copy()
    first = simulate_sampling(requests, [], hosts=3, seed=9)
    second = simulate_sampling(requests, [], hosts=3, seed=9)
    pd.testing.assert_frame_equal(requests, before)  # not modified
    pd.testing.assert_frame_equal(first, second)
    assert first.index.equals(requests.index)
    assert list(first.columns) == [*requests.columns, "instance", "rule", "reason", "sampled"]
    assert list(first["reason"].cat.categories) == list(REASONS)
    assert first.attrs["sampling"]["hosts"] == 3
    # the reservoir goes to the earliest requests of a second even if rows are shuffled
    taken = first[first["reason"].isin(["reservoir", "borrow"])]
    for (_, _), group in first.groupby(["instance", first["time"].dt.floor("s")]):
        got = group[group["reason"].isin(["reservoir", "borrow"])]
        if len(got):
            assert got["time"].max() <= group["time"].sort_values().iloc[len(got) - 1]
    assert len(taken) > 0


def test_simulate_follows_upstream_decisions() -> None:
    requests = stream({0: {0: 6}}, path="/")
    requests["upstream"] = ["1", "0", None, "?", True, pd.NA]
    result = simulate_sampling(
        requests, [api_rule("r", 1, ReservoirSize=1, FixedRate=0.0)], mode="local", seed=0
    )
    assert list(result["reason"].astype(str)) == [
        "upstream",
        "upstream",
        "reservoir",
        "not sampled",
        "upstream",
        "not sampled",
    ]
    assert list(result["sampled"]) == [True, False, True, False, True, False]
    assert result["rule"].isna().tolist() == [True, True, False, False, True, False]
    summary = sampling_summary(result)
    assert summary.loc["(upstream)", ["requests", "sampled", "upstream"]].tolist() == [3, 2, 3]
    assert summary.loc["r", ["requests", "reservoir"]].tolist() == [3, 1]
    assert int(summary["requests"].sum()) == 6
    assert [line.get_label() for line in plot_sampling(result).lines] == [
        "r requests",
        "r sampled",
        "(upstream) requests",
        "(upstream) sampled",
    ]
    import matplotlib.pyplot as plt

    plt.close("all")


def test_simulate_numeric_times_and_errors() -> None:
    requests = pd.DataFrame({"time": [10.1, 10.2, 11.5], "path": ["/", "/", "/"]})
    result = simulate_sampling(requests, [], mode="local", seed=0)
    assert list(result["reason"].astype(str))[::2] == ["reservoir", "reservoir"]
    with pytest.raises(ArgumentError, match="`mode` must be one of"):
        simulate_sampling(requests, [], mode="global")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`time` column"):
        simulate_sampling(requests.drop(columns="time"), [])
    with pytest.raises(ValueError, match="either"):
        simulate_sampling(requests.assign(instance=0), [], hosts=2)
    with pytest.raises(ValueError, match="`hosts` must be 1 or more"):
        simulate_sampling(requests, [], hosts=0)
    empty = simulate_sampling(requests.iloc[:0], [], seed=0)
    assert len(empty) == 0 and "sampled" in empty.columns


@pytest.mark.slow
def test_simulate_an_hour_at_100_per_second_keeps_the_fleet_reservoir() -> None:
    requests = traffic(100, duration_s=3600, peaks=2, seed=0)
    assert len(requests) > 360_000
    result = simulate_sampling(requests, DATA / "sampling_api_rules.json", hosts=5, seed=0)
    reservoir = result[result["reason"] == "reservoir"]
    per_second = reservoir.groupby(["rule", reservoir["time"].dt.floor("s")], observed=True).size()
    assert per_second.loc["Default"].max() <= 1
    # 'products' needs ServiceName shop-* which this stream lacks -> matches (missing = any)
    assert per_second.loc["products"].max() <= 9
    assert per_second.loc["products"].median() == 9


# ---------------------------------------------------------------------------------------------
# traffic


def test_traffic_is_seeded_and_has_peaks() -> None:
    first = traffic(10, duration_s=300, peaks=2, peak_factor=5, seed=7)
    pd.testing.assert_frame_equal(
        first, traffic(10, duration_s=300, peaks=2, peak_factor=5, seed=7)
    )
    assert first["time"].is_monotonic_increasing
    assert str(first["time"].dtype) == "datetime64[ns, UTC]"
    per_second = first.groupby(first["time"].dt.floor("s")).size()
    seconds = ((per_second.index - first["time"].min().floor("s")).total_seconds()).astype(int)
    assert per_second[(seconds >= 70) & (seconds < 80)].mean() > 30  # peak at 75
    assert per_second[(seconds >= 140) & (seconds < 160)].mean() < 15  # trough at 150
    assert not first["path"].str.contains("{id}", regex=False).any()
    assert first["path"].str.match(r"^/products/\d+$").sum() > 100


def test_traffic_custom_curve_and_endpoints() -> None:
    requests = traffic(
        [0, 0, 50, 0], endpoints=[("h", "PUT", "/x", 1.0)], seed=1, start="2024-05-01T12:00:00"
    )
    assert set(requests["time"].dt.floor("s")) == {pd.Timestamp("2024-05-01T12:00:02Z")}
    assert set(requests["method"]) == {"PUT"}
    custom = pd.DataFrame(
        {
            "host": ["a"],
            "method": ["GET"],
            "path": ["/"],
            "weight": [1],
            "service": ["orders"],
            "service_type": ["AWS::ECS::Container"],
        }
    )
    assert {"service", "service_type"} <= set(
        traffic(5, duration_s=5, endpoints=custom, seed=0).columns
    )
    with pytest.raises(ValueError, match="`endpoints` needs"):
        traffic(5, endpoints=pd.DataFrame({"host": ["a"]}), seed=0)
    with pytest.raises(ValueError, match="`rate` must be"):
        traffic(-1, seed=0)


# ---------------------------------------------------------------------------------------------
# summary and plot


def test_sampling_summary_counts() -> None:
    requests = stream({s: {0: 10} for s in range(20)}, path="/")
    result = simulate_sampling(requests, reservoir_rule(2), mode="local", seed=0)
    summary = sampling_summary(result)
    row = summary.loc["r"]
    assert (row["requests"], row["sampled"], row["reservoir"], row["not_sampled"]) == (
        200,
        40,
        40,
        160,
    )
    assert row["sampled_share"] == pytest.approx(0.2)
    assert row["sampled_per_s"] == pytest.approx(2.0)
    by_second = sampling_summary(result, by="second")
    assert len(by_second) == 20 and (by_second["sampled"] == 2).all()
    assert str(by_second.index.dtype) == "datetime64[ns, UTC]"
    total = sampling_summary(result, by=None)
    assert int(total["requests"].iloc[0]) == 200
    both = sampling_summary(result, by=["instance", "rule"])
    assert both.index.names == ["instance", "rule"]
    with pytest.raises(ValueError, match="`by` must be among"):
        sampling_summary(result, by="colour")
    with pytest.raises(ValueError, match="simulate_sampling"):
        sampling_summary(requests)


def test_plot_sampling_draws_requests_and_sampled_per_rule() -> None:
    import matplotlib.pyplot as plt

    rules = load_rules(DATA / "sampling_local_v2.json")
    result = simulate_sampling(traffic(10, duration_s=30, seed=2), rules, mode="local", seed=2)
    ax = plot_sampling(result)
    try:
        labels = [line.get_label() for line in ax.lines]
        assert labels[:2] == ["rule-1 requests", "rule-1 sampled"]
        assert len(labels) == 8
        second = (result["time"].dt.floor("s") - result["time"].min().floor("s")).dt.seconds
        default = result["rule"] == "Default"
        expected = (
            result[default]
            .groupby(second[default])["sampled"]
            .sum()
            .reindex(range(30), fill_value=0)
        )
        drawn = dict(zip(labels, ax.lines, strict=True))["Default sampled"].get_xydata()
        assert drawn[:, 0].tolist() == list(range(30))
        assert drawn[:, 1].tolist() == expected.tolist()
        assert ax.get_xlabel() == "seconds since the first request"
        assert "local, 1 host)" in ax.get_title()
        _, other = plt.subplots()
        assert plot_sampling(result, rules=["rule-2"], ax=other) is other
        assert [line.get_label() for line in other.lines] == ["rule-2 requests", "rule-2 sampled"]
        with pytest.raises(ValueError, match="`rules` must name"):
            plot_sampling(result, rules=["nope"], ax=other)
    finally:
        plt.close("all")


# ---------------------------------------------------------------------------------------------
# cost


def test_estimate_cost_by_hand() -> None:
    # 100 req/s, one host, default rule: 1 + 0.05 · 99 = 5.95 traces/s (Poisson: reservoir ~1)
    cost = estimate_cost(100.0)
    recorded = 5.95 * 30 * 86_400
    assert cost.loc["recorded", "traces"] == pytest.approx(recorded, rel=1e-9)
    assert cost.loc["recorded", "cost_usd"] == pytest.approx((recorded - 100_000) * 5e-6)
    retrieved, scanned = 0.05 * recorded, recorded
    read_billable = retrieved + scanned - 1_000_000
    assert cost.loc["retrieved", "free"] == pytest.approx(retrieved)
    assert cost.loc[["retrieved", "scanned"], "billable"].sum() == pytest.approx(read_billable)
    assert cost.loc["total", "cost_usd"] == pytest.approx(
        (recorded - 100_000) * 5e-6 + read_billable * 0.5e-6
    )


def test_estimate_cost_free_tier_and_hosts() -> None:
    tiny = estimate_cost(0.01, days=30)  # far below the free tier
    assert tiny.loc["total", "cost_usd"] == 0.0
    # Poisson arrivals: a 1/s reservoir at 0.01 req/s takes E[min(N,1)] = 1 - e^-0.01,
    # and 5 % of the few requests left over
    taken = 1 - math.exp(-0.01)
    assert tiny.attrs["assumptions"]["sampled_per_s"] == pytest.approx(
        taken + 0.05 * (0.01 - taken)
    )
    rule = SamplingRule("r", 1, 0.0, 10)
    local = estimate_cost(1000.0, rules=rule, hosts=10, mode="local")
    central = estimate_cost(1000.0, rules=rule, hosts=10, mode="centralized")
    assert local.attrs["assumptions"]["sampled_per_s"] == pytest.approx(100.0)
    assert central.attrs["assumptions"]["sampled_per_s"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="one rule"):
        estimate_cost(5.0, rules=[api_rule("a", 1), api_rule("b", 2)])


def test_estimate_cost_from_a_stream_scales_to_a_month() -> None:
    requests = stream({s: {0: 10} for s in range(10)}, path="/")
    result = simulate_sampling(requests, reservoir_rule(3), mode="local", seed=0)
    cost = estimate_cost(result, days=1)
    assert cost.loc["recorded", "traces"] == pytest.approx(3 * 86_400)
    unsimulated = estimate_cost(
        requests.drop(columns="instance"), rules=reservoir_rule(3), mode="local", days=1
    )
    assert unsimulated.loc["recorded", "traces"] == pytest.approx(3 * 86_400)


# ---------------------------------------------------------------------------------------------
# the error tree


def test_sampling_raises_only_xraykit_errors() -> None:
    import ast

    import xraykit
    from xraykit import exceptions

    root = Path(xraykit.__file__).parent
    files = [*sorted((root / "sampling").glob("*.py")), root / "plotting" / "sampling.py"]
    raised: dict[str, set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # a local helper that builds the error (`raise fail(...)`): its return annotation
        factories = {
            node.name: ast.unparse(node.returns)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.returns is not None
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = call.id if isinstance(call, ast.Name) else ast.unparse(call)
                raised.setdefault(factories.get(name, name), set()).add(path.name)
    assert {"SamplingRuleError", "ArgumentError", "ArgumentTypeError"} <= set(raised)
    for name, where in raised.items():
        cls = getattr(exceptions, name, None)
        assert isinstance(cls, type) and issubclass(cls, exceptions.XrayKitError), (name, where)


def test_argument_errors_are_not_rule_errors() -> None:
    requests = traffic(5, duration_s=5, seed=0)
    with pytest.raises(ArgumentError) as info:
        simulate_sampling(requests, [], hosts=0)
    assert not isinstance(info.value, SamplingRuleError)
    with pytest.raises(ArgumentError, match="`data` must be requests per second"):
        estimate_cost(-1.0)


def test_plot_sampling_checks_its_data_and_draws_on_the_current_axes() -> None:
    import matplotlib.pyplot as plt

    result = simulate_sampling(traffic(5, duration_s=10, seed=4), [], seed=4)
    try:
        with pytest.raises(ArgumentTypeError, match="DataFrame"):
            plot_sampling(result.to_dict())  # type: ignore[arg-type]
        with pytest.raises(ArgumentError, match=r"lacks \['reason'\]"):
            plot_sampling(result.drop(columns="reason"))
        _, ax = plt.subplots()
        assert plot_sampling(result) is ax
        drawn = dict(zip([line.get_label() for line in ax.lines], ax.lines, strict=True))
        assert drawn["Default requests"].get_ydata().sum() == len(result)
        assert drawn["Default sampled"].get_ydata().sum() == int(result["sampled"].sum())
        empty = plot_sampling(result.iloc[:0], ax=plt.subplots()[1])
        assert len(empty.lines) == 0 and empty.get_legend() is None
    finally:
        plt.close("all")

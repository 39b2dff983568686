"""One sampling rule: :class:`SamplingRule`, the validation of its fields against the API's
limits, its ``SamplingRule`` API structure both ways, and X-Ray's built-in :data:`DEFAULT_RULE`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xraykit.exceptions import SamplingRuleError
from xraykit.sampling.matching import _MATCH_FIELDS, _request_fields, _wildcard_regex


@dataclass(frozen=True)
class SamplingRule:
    """One sampling rule, with the fields of the X-Ray API's ``SamplingRule``.

    Parameters
    ----------
    name : str
        ``RuleName``; ``"Default"`` is the built-in rule. Rules from a local file are
        named ``"rule-1"``, ``"rule-2"``, ... in file order.
    priority : int
        1-9999, lower is tried first; the Default rule has 10000.
    fixed_rate : float
        Fraction (0-1) of the requests sampled once the reservoir is used up.
    reservoir_size : int
        Requests per second sampled before the fixed rate applies. Centralized: for all
        hosts together (X-Ray splits it into quotas); local: per host (``fixed_target``).
    service_name, service_type, host, http_method, url_path : str
        Match fields; ``*`` and ``?`` wildcards, case-insensitive. ``service_name`` matches
        the segment name, ``service_type`` its origin (``AWS::EC2::Instance``, ...).
    resource_arn : str
        The SDKs only use rules whose ARN is ``*``.
    attributes : mapping of str to str
        The SDKs ignore rules that have attributes.
    version : int
        The SDKs only use version 1 rules.
    description : str
        Free text (local rules files carry one per rule).

    Examples
    --------
    >>> rule = SamplingRule("checkout", 100, 0.5, 2, url_path="/checkout*", http_method="POST")
    >>> rule.matches({"method": "post", "path": "/checkout/confirm"})
    True
    >>> rule.matches({"method": "GET", "path": "/checkout"})
    False
    """

    name: str
    priority: int
    fixed_rate: float
    reservoir_size: int
    service_name: str = "*"
    service_type: str = "*"
    host: str = "*"
    http_method: str = "*"
    url_path: str = "*"
    resource_arn: str = "*"
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)
    version: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        _validate_rule(self)

    @property
    def is_default(self) -> bool:
        """Whether this is X-Ray's built-in ``Default`` rule (it matches every request)."""
        return self.name == "Default"

    @property
    def sdk_supported(self) -> bool:
        """Whether the X-Ray SDKs use this rule.

        They skip rules with a ``ResourceARN`` other than ``*``, with ``Attributes``, with a
        ``Version`` other than 1 or with an empty ``ServiceType``; such rules never match.
        """
        return (
            self.version == 1
            and self.resource_arn == "*"
            and not self.attributes
            and self.service_type != ""
        )

    def matches(self, request: Mapping[str, Any]) -> bool:
        """Whether this rule applies to ``request``, as the SDK decides it.

        ``request`` has any of the keys ``host``, ``method``, ``path``, ``service`` and
        ``service_type``; a missing or empty one matches anything. A rule the SDK skips
        (see :attr:`sdk_supported`) never matches; the Default rule always does.

        >>> DEFAULT_RULE.matches({"host": "example.com"})
        True
        """
        if not self.sdk_supported:
            return False
        if self.is_default:
            return True
        fields = _request_fields(request)
        for key, attribute in _MATCH_FIELDS.items():
            value = fields.get(key)
            if value is None or value == "":
                continue
            if not _wildcard_regex(getattr(self, attribute)).fullmatch(str(value)):
                return False
        return True

    def to_api(self) -> dict[str, Any]:
        """Return the rule as the API's ``SamplingRule`` structure.

        >>> DEFAULT_RULE.to_api()["ReservoirSize"]
        1
        """
        return {
            "RuleName": self.name,
            "Priority": self.priority,
            "FixedRate": self.fixed_rate,
            "ReservoirSize": self.reservoir_size,
            "ServiceName": self.service_name,
            "ServiceType": self.service_type,
            "Host": self.host,
            "HTTPMethod": self.http_method,
            "URLPath": self.url_path,
            "ResourceARN": self.resource_arn,
            "Attributes": dict(self.attributes),
            "Version": self.version,
        }

    @classmethod
    def from_api(cls, rule: Mapping[str, Any]) -> SamplingRule:
        """Build a rule from the API's ``SamplingRule`` structure (a ``GetSamplingRules`` item).

        Raises
        ------
        SamplingRuleError
            If a required key is missing or a value is out of range.

        Examples
        --------
        >>> SamplingRule.from_api({"RuleName": "r", "Priority": 5, "FixedRate": 0.1,
        ...     "ReservoirSize": 0, "ServiceName": "*", "ServiceType": "*", "Host": "*",
        ...     "HTTPMethod": "GET", "URLPath": "*", "ResourceARN": "*", "Version": 1}).http_method
        'GET'
        """
        return _rule_from_api(rule, position=None)


_API_LIMITS = {  # field -> maximum length (xray-facts §4.1)
    "service_name": 64,
    "service_type": 64,
    "host": 64,
    "http_method": 10,
    "url_path": 128,
    "resource_arn": 500,
}
_API_KEYS = {  # API key -> SamplingRule field
    "RuleName": "name",
    "Priority": "priority",
    "FixedRate": "fixed_rate",
    "ReservoirSize": "reservoir_size",
    "ServiceName": "service_name",
    "ServiceType": "service_type",
    "Host": "host",
    "HTTPMethod": "http_method",
    "URLPath": "url_path",
    "ResourceARN": "resource_arn",
    "Attributes": "attributes",
    "Version": "version",
}
_API_OPTIONAL = {"Attributes", "RuleARN", "SamplingRateBoost"}


def _validate_rule(rule: SamplingRule) -> None:
    def fail(what: str, value: object, fix: str) -> SamplingRuleError:
        return SamplingRuleError(
            f"Sampling rule {rule.name!r}: {what}, but {value!r} was given. {fix}"
        )

    if not isinstance(rule.name, str) or not 1 <= len(rule.name) <= 32:
        raise SamplingRuleError(
            f"A sampling rule's name must be a string of 1 to 32 characters, but {rule.name!r} "
            "was given. Give the rule a short unique name."
        )
    if isinstance(rule.priority, bool) or not isinstance(rule.priority, int | np.integer):
        raise fail("priority must be an integer", rule.priority, "Use 1-9999.")
    if rule.is_default:
        if rule.priority != 10000:
            raise fail(
                "the Default rule's priority is always 10000",
                rule.priority,
                "Leave the Default rule's priority at 10000.",
            )
        for attribute in (
            "service_name",
            "service_type",
            "host",
            "http_method",
            "url_path",
            "resource_arn",
        ):
            if getattr(rule, attribute) != "*":
                raise fail(
                    f"the Default rule matches every request, so its {attribute} must be '*'",
                    getattr(rule, attribute),
                    "Only its fixed rate and reservoir size can be changed; add a "
                    "separate rule to match specific requests.",
                )
        if rule.attributes:
            raise fail(
                "the Default rule cannot have attributes",
                dict(rule.attributes),
                "Remove them, or put them on a separate rule.",
            )
    elif not 1 <= rule.priority <= 9999:
        raise fail(
            "priority must be from 1 to 9999 (10000 belongs to the Default rule)",
            rule.priority,
            "Lower numbers are tried first; pick one in 1-9999.",
        )
    rate = rule.fixed_rate
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float | np.number)
        or not 0 <= float(rate) <= 1
    ):
        raise fail(
            "fixed rate must be a fraction from 0 to 1",
            rate,
            "Write 5 % as 0.05 (the console shows percent, the API and files fractions).",
        )
    size = rule.reservoir_size
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 0:
        raise fail(
            "reservoir size must be a whole number of requests per second, 0 or more",
            size,
            "Use 0 for no reservoir.",
        )
    for attribute, limit in _API_LIMITS.items():
        value = getattr(rule, attribute)
        if not isinstance(value, str) or len(value) > limit:
            raise fail(
                f"{attribute} must be a string of at most {limit} characters",
                value,
                "Use '*' to match anything.",
            )
    if isinstance(rule.version, bool) or not isinstance(rule.version, int) or rule.version < 1:
        raise fail("version must be an integer, 1 or more", rule.version, "Use 1.")
    if not isinstance(rule.attributes, Mapping) or len(rule.attributes) > 5:
        raise fail(
            "attributes must be a mapping of at most 5 entries",
            rule.attributes,
            "Remove some attributes.",
        )
    for key, value in rule.attributes.items():
        if not (
            isinstance(key, str)
            and isinstance(value, str)
            and 1 <= len(key) <= 32
            and 1 <= len(value) <= 32
        ):
            raise fail(
                "attribute keys and values must be strings of 1 to 32 characters",
                {key: value},
                "Shorten the attribute.",
            )


def _rule_from_api(rule: Mapping[str, Any], position: int | None) -> SamplingRule:
    where = f"rule {position}" if position is not None else "the rule"
    if isinstance(rule, SamplingRule):
        return rule
    if not isinstance(rule, Mapping):
        raise SamplingRuleError(
            f"Expected {where} to be a SamplingRule structure (a dict with RuleName, Priority, "
            f"FixedRate, ...), but got {rule!r}."
        )
    if "SamplingRule" in rule:  # a SamplingRuleRecord
        return _rule_from_api(rule["SamplingRule"], position)
    values = dict(rule)
    name = values.get("RuleName")
    if name is None and isinstance(values.get("RuleARN"), str):
        name = values["RuleARN"].rsplit("/", 1)[-1]
        values["RuleName"] = name
    label = repr(name) if name is not None else where
    unknown = sorted(set(values) - set(_API_KEYS) - _API_OPTIONAL)
    if unknown:
        raise SamplingRuleError(
            f"Sampling rule {label}: unknown key(s) {unknown!r}. Allowed keys: "
            f"{sorted(set(_API_KEYS) | _API_OPTIONAL)}."
        )
    required = [key for key in _API_KEYS if key not in _API_OPTIONAL]
    if name == "Default":  # GetSamplingRules always returns every key, but be lenient
        for key in ("ServiceName", "ServiceType", "Host", "HTTPMethod", "URLPath", "ResourceARN"):
            values.setdefault(key, "*")
        values.setdefault("Version", 1)
    missing = [key for key in required if key not in values]
    if missing:
        raise SamplingRuleError(
            f"Sampling rule {label} is missing the required key(s) {missing!r}. "
            f"A SamplingRule needs {required!r} (Attributes is optional); "
            "use '*' for a match field that should match anything."
        )
    kwargs = {_API_KEYS[key]: value for key, value in values.items() if key in _API_KEYS}
    kwargs["attributes"] = dict(kwargs.get("attributes") or {})
    return SamplingRule(**kwargs)


#: X-Ray's built-in rule: priority 10000, 1 request per second, then 5 % of the rest.
DEFAULT_RULE = SamplingRule("Default", 10000, 0.05, 1, description="X-Ray's built-in default rule")

"""Sampling rules, sampling decisions and a what-if simulator that agrees with the X-Ray SDK.

X-Ray does not trace every request. Each instrumented service asks its sampler, for every
incoming request that carries no upstream decision, whether to record it. The sampler tries
the sampling rules in order of ``(priority, name)``; the first rule whose match fields all
match decides: it takes the request from its per-second **reservoir** while that has room,
and otherwise samples it with probability **fixed rate**. The built-in ``Default`` rule
(priority 10000) keeps one request per second and 5 % of the rest.

This module models that exactly, following the Python SDK (``aws_xray_sdk.core.sampling``):

- :class:`SamplingRule` — one rule with the fields of the API's ``SamplingRule``;
  :data:`DEFAULT_RULE` is the built-in default.
- :func:`load_rules` — read a ``GetSamplingRules`` response, a list of rules, or a local
  SDK rules file (version 1 or 2) into a :class:`RuleSet`, validating every field.
- :func:`decide` — the decision for one request (upstream, reservoir, borrow, rate).
- :func:`traffic` and :func:`simulate_sampling` — a seeded request stream and the
  decisions a fleet of hosts makes for it, in local or centralized mode.
- :func:`sampling_summary`, :func:`plot_sampling` and :func:`estimate_cost` — what was
  sampled, when, by which rule and reason, and what recording it would cost per month.

Matching follows the SDK: ``*`` matches any run of characters, ``?`` exactly one, case is
ignored, and a request field that is missing or empty matches anything. The SDK ignores
centralized rules whose ``ResourceARN`` is not ``*``, that have ``Attributes`` or whose
``Version`` is not 1 (only API Gateway evaluates those); xraykit does the same, so such a
rule never matches here, and :func:`load_rules` warns when it reads one.

Examples
--------
>>> from xraykit.sampling import load_rules, simulate_sampling, traffic
>>> requests = traffic(20, duration_s=60, seed=1)
>>> result = simulate_sampling(requests, load_rules([]), hosts=1, seed=1)
>>> sorted(result["reason"].unique())
['borrow', 'not sampled', 'rate', 'reservoir']
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeAlias, overload

import numpy as np
import pandas as pd

from xraykit.exceptions import SamplingRuleError, XrayKitWarning
from xraykit.pricing import PRICES

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "DEFAULT_RULE",
    "PRICES",
    "REASONS",
    "RuleSet",
    "SamplingDecision",
    "SamplingRule",
    "decide",
    "estimate_cost",
    "load_rules",
    "plot_sampling",
    "sampling_summary",
    "simulate_sampling",
    "traffic",
]

#: The reasons a decision can have, in the order a sampler considers them.
REASONS: tuple[str, ...] = ("upstream", "reservoir", "borrow", "rate", "not sampled")


Mode = Literal["centralized", "local"]
_MODES = ("centralized", "local")
_EPOCH = pd.Timestamp(0, tz="UTC")

# request field -> the SamplingRule attribute that matches it (the SDK's order)
_MATCH_FIELDS: dict[str, str] = {
    "host": "host",
    "method": "http_method",
    "path": "url_path",
    "service": "service_name",
    "service_type": "service_type",
}
# accepted spellings of the request fields
_REQUEST_ALIASES: dict[str, str] = {
    "host": "host",
    "method": "method",
    "http_method": "method",
    "path": "path",
    "url_path": "path",
    "service": "service",
    "service_name": "service",
    "service_type": "service_type",
    "origin": "service_type",
}


# ---------------------------------------------------------------------------------------------
# rules


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

_LOCAL_KEYS = {
    1: ("service_name", "http_method", "url_path"),
    2: ("host", "http_method", "url_path"),
}


def _rules_from_local(document: Mapping[str, Any]) -> list[SamplingRule]:
    version = document.get("version")
    if version not in (1, 2) or isinstance(version, bool):
        raise SamplingRuleError(
            f'A local sampling rules file must have "version": 1 or 2, but {version!r} was '
            'given. Version 2 matches requests on "host"; version 1 calls that key '
            '"service_name".'
        )
    unknown = sorted(set(document) - {"version", "default", "rules"})
    if unknown:
        raise SamplingRuleError(
            f"Unknown top-level key(s) {unknown!r} in a version {version} sampling rules "
            'file; allowed: "version", "default", "rules".'
        )
    match_keys = _LOCAL_KEYS[version]
    other_host_key = _LOCAL_KEYS[3 - version][0]
    if "default" not in document:
        raise SamplingRuleError(
            'A local sampling rules file must have a "default" rule, e.g. '
            '"default": {"fixed_target": 1, "rate": 0.05}; it applies when no rule matches.'
        )
    default = document["default"]
    if not isinstance(default, Mapping):
        raise SamplingRuleError(
            f'The "default" rule must be an object with fixed_target and rate, but got {default!r}.'
        )
    forbidden = [key for key in (*match_keys, other_host_key) if key in default]
    if forbidden:
        raise SamplingRuleError(
            f"The default rule must not have {forbidden!r} (it matches every request), but "
            f"got {dict(default)!r}. Remove those keys, or move them into a rule under "
            '"rules".'
        )

    def number(rule: Mapping[str, Any], key: str, label: str) -> Any:
        if key not in rule:
            raise SamplingRuleError(
                f"Sampling rule {label} is missing {key!r}; every rule in a version "
                f"{version} file needs fixed_target and rate"
                + (f" and {', '.join(match_keys)}." if label != "'Default'" else ".")
            )
        return rule[key]

    def build(rule: Mapping[str, Any], name: str, priority: int, label: str) -> SamplingRule:
        allowed = {"description", "fixed_target", "rate"} | (
            set() if name == "Default" else set(match_keys)
        )
        extra = sorted(set(rule) - allowed)
        if extra:
            hint = ""
            if other_host_key in extra:
                hint = (
                    f" A version {version} file names the host field "
                    f"{match_keys[0]!r}, not {other_host_key!r}."
                )
            raise SamplingRuleError(
                f"Sampling rule {label} has unknown key(s) {extra!r}; allowed: "
                f"{sorted(allowed)}.{hint}"
            )
        fixed_target = number(rule, "fixed_target", label)
        rate = number(rule, "rate", label)
        match = {}
        if name != "Default":
            missing = [key for key in match_keys if key not in rule]
            if missing:
                raise SamplingRuleError(
                    f"Sampling rule {label} is missing {missing!r}; every rule in a version "
                    f'{version} file needs {", ".join(match_keys)} (use "*" to match '
                    "anything), fixed_target and rate."
                )
            # version 1 calls the host field service_name; both match the request's Host
            match = {
                "host": rule[match_keys[0]],
                "http_method": rule["http_method"],
                "url_path": rule["url_path"],
            }
        try:
            return SamplingRule(
                name,
                priority,
                rate,
                fixed_target,
                description=str(rule.get("description", "")),
                **match,
            )
        except SamplingRuleError as exc:
            message = (
                str(exc).replace("fixed rate", "rate").replace("reservoir size", "fixed_target")
            )
            raise SamplingRuleError(
                message.replace(f"Sampling rule {name!r}", f"Sampling rule {label}")
            ) from None

    rules = document.get("rules", [])
    if not isinstance(rules, list):
        raise SamplingRuleError(f'"rules" must be a list of rule objects, but got {rules!r}.')
    out = [build(default, "Default", 10000, "'Default'")]
    for index, rule in enumerate(rules, start=1):
        if not isinstance(rule, Mapping):
            raise SamplingRuleError(f"Sampling rule {index} must be an object, but got {rule!r}.")
        description = rule.get("description")
        label = f"{index} ({description!r})" if description else f"{index}"
        out.append(build(rule, f"rule-{index}", index, label))
    return out


class RuleSet(Sequence[SamplingRule]):
    """An ordered set of sampling rules plus the reservoir state :func:`decide` keeps.

    Rules are kept in the SDK's order, ``(priority, name)``. X-Ray always has a ``Default``
    rule; a rule set built without one gets :data:`DEFAULT_RULE`.

    Parameters
    ----------
    rules : iterable of SamplingRule
    mode : {"centralized", "local"}
        How :func:`decide` uses the reservoir: ``"local"`` gives every host the whole
        reservoir each second; ``"centralized"`` borrows 1 per second until a quota is
        loaded with :meth:`load_quota`. :func:`load_rules` picks ``"local"`` for a local
        rules file and ``"centralized"`` otherwise.

    Examples
    --------
    >>> rules = RuleSet([SamplingRule("health", 1, 0.0, 0, url_path="/health")])
    >>> rules.names
    ['health', 'Default']
    >>> rules.match({"path": "/index.html"}).name
    'Default'
    """

    def __init__(self, rules: Iterable[SamplingRule] = (), *, mode: Mode = "centralized") -> None:
        rules = list(rules)
        for rule in rules:
            if not isinstance(rule, SamplingRule):
                raise SamplingRuleError(
                    f"A RuleSet holds SamplingRule objects, but got {rule!r}. "
                    "Use load_rules() to read API structures or a rules file."
                )
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise SamplingRuleError(
                f"Sampling rule names must be unique, but {duplicates!r} appear more than once."
            )
        if "Default" not in names:
            rules.append(DEFAULT_RULE)
        _check_mode(mode)
        self._rules: tuple[SamplingRule, ...] = tuple(
            sorted(rules, key=lambda rule: (rule.priority, rule.name))
        )
        self.mode: Mode = mode
        self.reset()

    # Sequence protocol
    @overload
    def __getitem__(self, index: int) -> SamplingRule: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[SamplingRule]: ...
    def __getitem__(self, index: int | slice) -> SamplingRule | Sequence[SamplingRule]:
        return self._rules[index]

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[SamplingRule]:
        return iter(self._rules)

    def __repr__(self) -> str:
        return f"RuleSet({list(self.names)!r}, mode={self.mode!r})"

    def _repr_html_(self) -> str:
        return str(self.to_frame()._repr_html_())

    @property
    def names(self) -> list[str]:
        """Rule names in the order the sampler tries them."""
        return [rule.name for rule in self._rules]

    def rule(self, name: str) -> SamplingRule:
        """Return the rule called ``name``.

        >>> load_rules([]).rule("Default").fixed_rate
        0.05
        """
        for rule in self._rules:
            if rule.name == name:
                return rule
        raise SamplingRuleError(f"No sampling rule named {name!r}; the rules are {self.names}.")

    def match(self, request: Mapping[str, Any]) -> SamplingRule:
        """Return the first rule that applies to ``request`` (the Default rule at the latest)."""
        for rule in self._rules:
            if rule.matches(request):
                return rule
        raise AssertionError("unreachable: the Default rule matches every request")

    def to_frame(self) -> pd.DataFrame:
        """Return the rules as a DataFrame, one row per rule in evaluation order.

        >>> list(load_rules([]).to_frame()["reservoir_size"])
        [1]
        """
        rows = [dataclasses.asdict(rule) for rule in self._rules]
        frame = pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(SamplingRule)])
        frame["sdk_supported"] = [rule.sdk_supported for rule in self._rules]
        return frame.set_index("name")

    def to_api(self) -> dict[str, Any]:
        """Return the rules as a ``GetSamplingRules`` response (``SamplingRuleRecords``)."""
        return {"SamplingRuleRecords": [{"SamplingRule": rule.to_api()} for rule in self._rules]}

    # decide() state
    def reset(self) -> None:
        """Forget reservoir counts and quotas (the state :func:`decide` keeps)."""
        self._second: dict[str, int] = {}
        self._taken: dict[str, int] = {}
        self._borrowed: dict[str, int] = {}
        self._quota: dict[str, tuple[int, int]] = {}

    def load_quota(self, rule: str, quota: int, ttl: float | datetime) -> None:
        """Give this host a reservoir quota for ``rule`` until ``ttl`` (centralized mode).

        This is what a ``GetSamplingTargets`` response does: ``quota`` requests per second
        from the reservoir, valid up to and including the second ``ttl`` (epoch seconds or
        a datetime).
        """
        self.rule(rule)
        self._quota[rule] = (int(quota), _epoch_second(ttl))


def _check_mode(mode: object) -> None:
    if mode not in _MODES:
        raise SamplingRuleError(f"`mode` must be one of {list(_MODES)}, but {mode!r} was passed.")


RuleSource: TypeAlias = (
    RuleSet
    | Sequence[SamplingRule | Mapping[str, Any]]
    | Mapping[str, Any]
    | pd.DataFrame
    | str
    | Path
)


def load_rules(source: RuleSource, *, mode: Mode | None = None) -> RuleSet:
    """Read sampling rules from an API response, a list of rules or a local rules file.

    Parameters
    ----------
    source : dict, list, DataFrame, str or path
        One of: a ``GetSamplingRules`` response (or a list of its pages); a list of
        ``SamplingRule`` structures, ``SamplingRuleRecords`` or :class:`SamplingRule`
        objects; a local SDK rules document (``{"version": 1 or 2, "default": ...,
        "rules": [...]}``); the path or JSON text of any of these; or a frame of rules
        (from :meth:`RuleSet.to_frame` or ``xraykit.aws.fetch_sampling_rules``).
    mode : {"centralized", "local"}, optional
        The :class:`RuleSet`'s mode for :func:`decide`; by default ``"local"`` for a local
        rules file and ``"centralized"`` otherwise.

    Returns
    -------
    RuleSet
        The rules in evaluation order, with the Default rule added if it was missing.
        Local file rules keep file order (priorities 1, 2, ... named ``rule-1``, ...); their
        ``default`` becomes the Default rule; a version 1 file's ``service_name`` is the
        request's host, as in the SDK.

    Raises
    ------
    SamplingRuleError
        Naming the rule and field: a missing required key, a priority outside 1-9999, a
        rate outside 0-1, a negative reservoir, match fields on the default rule, ...

    Warns
    -----
    XrayKitWarning
        For a rule the X-Ray SDKs ignore (attributes, a resource ARN other than ``*``,
        version other than 1); it never matches in xraykit either.

    Examples
    --------
    >>> rules = load_rules({"version": 2, "default": {"fixed_target": 1, "rate": 0.1},
    ...     "rules": [{"description": "moves", "host": "*", "http_method": "*",
    ...                "url_path": "/api/move/*", "fixed_target": 0, "rate": 0.05}]})
    >>> rules.names, rules.mode
    (['rule-1', 'Default'], 'local')
    >>> load_rules([{"RuleName": "x", "Priority": 0}])
    Traceback (most recent call last):
    ...
    xraykit.exceptions.SamplingRuleError: Sampling rule 'x' is missing the required key(s) ...
    """
    if isinstance(source, RuleSet):
        return RuleSet(source, mode=mode or source.mode)
    document: Any = source
    if isinstance(source, Path) or (
        isinstance(source, str) and not source.lstrip().startswith(("{", "["))
    ):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SamplingRuleError(
                f"Could not read sampling rules from {str(path)!r}: {exc.strerror or exc}. "
                "Pass a path to a JSON rules file, a dict, or a list of rules."
            ) from None
        document = _parse_json(text, str(path))
    elif isinstance(source, str):
        document = _parse_json(source, "<text>")

    local = False
    if isinstance(document, pd.DataFrame):
        rules = _rules_from_frame(document)
    elif isinstance(document, Mapping) and "version" in document:
        rules = _rules_from_local(document)
        local = True
    elif isinstance(document, Mapping) and "SamplingRuleRecords" in document:
        rules = [
            _rule_from_api(record, i)
            for i, record in enumerate(document["SamplingRuleRecords"], start=1)
        ]
    elif isinstance(document, Mapping) and {"SamplingRule", "RuleName", "RuleARN"} & set(document):
        rules = [_rule_from_api(document, None)]
    elif isinstance(document, Sequence) and not isinstance(document, str | bytes):
        rules = []
        for i, item in enumerate(document, start=1):
            if isinstance(item, Mapping) and "SamplingRuleRecords" in item:  # pages
                rules.extend(_rule_from_api(record, i) for record in item["SamplingRuleRecords"])
            else:
                rules.append(_rule_from_api(item, i))
    else:
        raise SamplingRuleError(
            "Expected a GetSamplingRules response (with SamplingRuleRecords), a list of "
            'SamplingRule structures, or a local rules file ({"version": 2, "default": '
            f'..., "rules": [...]}}), but got {_short(document)}.'
        )
    for rule in rules:
        if not rule.sdk_supported:
            warnings.warn(
                f"Sampling rule {rule.name!r} is ignored by the X-Ray SDKs (they skip rules "
                "with Attributes, a ResourceARN other than '*', a Version other than 1 or an "
                "empty ServiceType; only API Gateway evaluates those), so it never matches "
                "here either.",
                XrayKitWarning,
                stacklevel=2,
            )
    return RuleSet(rules, mode=mode or ("local" if local else "centralized"))


def _rules_from_frame(frame: pd.DataFrame) -> list[SamplingRule]:
    """Rules from a frame like ``RuleSet.to_frame()`` or ``live.fetch_sampling_rules()``."""
    table = frame.reset_index() if "name" in (frame.index.names or []) else frame
    table = table.rename(columns={"rule_name": "name"})
    names = [f.name for f in dataclasses.fields(SamplingRule)]
    required = ["name", "priority", "fixed_rate", "reservoir_size"]
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise SamplingRuleError(
            f"A frame of sampling rules needs the columns {required!r} (plus any match "
            f"fields); it lacks {missing!r}. Columns given: {list(table.columns)!r}."
        )
    rules = []
    for record in table[[c for c in names if c in table.columns]].to_dict("records"):
        values = {
            key: value
            for key, value in record.items()
            if not (np.ndim(value) == 0 and pd.isna(value))
        }
        for key in ("priority", "reservoir_size", "version"):
            if (
                key in values
                and isinstance(values[key], float | np.number)
                and float(values[key]).is_integer()
            ):
                values[key] = int(values[key])
        if "fixed_rate" in values:
            values["fixed_rate"] = float(values["fixed_rate"])
        values["attributes"] = dict(values.get("attributes") or {})
        rules.append(SamplingRule(**values))
    return rules


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SamplingRuleError(
            f"Sampling rules in {where} are not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}."
        ) from None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _as_rule_set(rules: RuleSource | SamplingRule) -> RuleSet:
    if isinstance(rules, SamplingRule):
        return RuleSet([rules])
    if isinstance(rules, RuleSet):
        return rules
    with warnings.catch_warnings():  # the caller saw the warning when loading, if they did
        warnings.simplefilter("ignore", XrayKitWarning)
        return load_rules(rules)


# ---------------------------------------------------------------------------------------------
# matching


@functools.lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """Compile an X-Ray wildcard pattern (``*`` any run, ``?`` one character)."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _request_fields(request: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in request.items():
        canonical = _REQUEST_ALIASES.get(key)
        if canonical is not None:
            fields[canonical] = value
        elif key not in {"upstream", "trace_header", "time", "instance"}:
            raise SamplingRuleError(
                f"Unknown request field {key!r}; a request has any of "
                f'{sorted(_MATCH_FIELDS)} plus \'upstream\' ("1", "0" or "?") or '
                "'trace_header' (an X-Amzn-Trace-Id value)."
            )
    return fields


def _match_frame(rules: RuleSet, frame: pd.DataFrame) -> np.ndarray:
    """Index (into ``rules``) of the first rule matching each row, vectorised."""
    n = len(frame)
    chosen = np.full(n, -1, dtype=np.int64)
    columns = {key: _frame_column(frame, key) for key in _MATCH_FIELDS}
    encoded: dict[str, tuple[np.ndarray, pd.Index]] = {}
    for key, column in columns.items():
        if column is not None:
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            encoded[key] = (codes, pd.Index(uniques))
    for index, rule in enumerate(rules):
        if not rule.sdk_supported:
            continue
        open_rows = chosen < 0
        if not open_rows.any():
            break
        mask = open_rows.copy()
        if not rule.is_default:
            for key, attribute in _MATCH_FIELDS.items():
                pattern = getattr(rule, attribute)
                if pattern == "*" or key not in encoded:
                    continue
                codes, uniques = encoded[key]
                regex = _wildcard_regex(pattern)
                hit = np.fromiter(
                    (value == "" or bool(regex.fullmatch(str(value))) for value in uniques),
                    dtype=bool,
                    count=len(uniques),
                )
                hit = np.append(hit, True)  # code -1 (missing) matches anything
                mask &= hit[codes]
        chosen[mask] = index
    return chosen


def _frame_column(frame: pd.DataFrame, key: str) -> pd.Series | None:
    for name, canonical in _REQUEST_ALIASES.items():
        if canonical == key and name in frame.columns:
            return frame[name]
    return None


# ---------------------------------------------------------------------------------------------
# one decision


class SamplingDecision(NamedTuple):
    """What the sampler decided for one request, by which rule and why."""

    sampled: bool
    rule: str | None
    reason: str


class _Random(Protocol):
    def random(self) -> float: ...


Clock = float | int | datetime | Callable[[], float | int | datetime]


def _epoch_second(value: float | int | datetime) -> int:
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return int((stamp - _EPOCH) // pd.Timedelta(seconds=1))
    return math.floor(value)


def _upstream(value: object) -> bool | None:
    """The upstream ``Sampled`` decision: True, False, or None (decide here)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value).strip()
    if text in {"1", "1.0"}:
        return True
    if text in {"0", "0.0"}:
        return False
    if text in {"", "?"}:
        return None
    raise SamplingRuleError(
        f'An upstream decision must be "1" (sampled), "0" (not sampled), "?" or empty '
        f"(decide here), but {value!r} was given."
    )


def _header_decision(header: str) -> bool | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Sampled":
            return _upstream(value)
    return None


def decide(
    rule_set: RuleSet,
    request: Mapping[str, Any],
    *,
    clock: Clock,
    rng: _Random,
) -> SamplingDecision:
    """Decide whether to sample one request, as an instrumented service's SDK does.

    An upstream decision (``Sampled=1`` or ``Sampled=0`` in the tracing header) wins.
    Otherwise the first matching rule decides: its reservoir for the current second first,
    then its fixed rate. The per-second reservoir counts live in ``rule_set`` (call
    :meth:`RuleSet.reset` to start over). In a ``"centralized"`` rule set a rule without a
    valid quota (see :meth:`RuleSet.load_quota`) borrows 1 request per second if its
    reservoir is not 0.

    Parameters
    ----------
    rule_set : RuleSet
        From :func:`load_rules` or ``RuleSet(rules)``; keeps the reservoir state.
    request : mapping
        Any of ``host``, ``method``, ``path``, ``service``, ``service_type``; and
        ``upstream`` (``"1"``, ``"0"``, ``"?"``) or ``trace_header`` (an
        ``X-Amzn-Trace-Id`` value). Missing match fields match anything.
    clock : float, datetime or callable
        Now, in epoch seconds or as a datetime, or a function returning it.
    rng : numpy.random.Generator or random.Random
        The source of the fixed-rate draws.

    Returns
    -------
    SamplingDecision
        ``(sampled, rule, reason)`` with reason one of ``"upstream"``, ``"reservoir"``,
        ``"borrow"``, ``"rate"`` and ``"not sampled"``; ``rule`` is None for upstream.

    Examples
    --------
    >>> import random
    >>> rules = load_rules([], mode="local")
    >>> rng = random.Random(0)
    >>> decide(rules, {"path": "/"}, clock=100.2, rng=rng)
    SamplingDecision(sampled=True, rule='Default', reason='reservoir')
    >>> decide(rules, {"path": "/"}, clock=100.7, rng=rng).reason in {"rate", "not sampled"}
    True
    >>> decide(rules, {"trace_header": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"},
    ...        clock=101, rng=rng)
    SamplingDecision(sampled=False, rule=None, reason='upstream')
    >>> decide(rules, {"path": "/"}, clock=102, rng=None)  # checked even when unused
    Traceback (most recent call last):
    ...
    xraykit.exceptions.SamplingRuleError: `rng` must be a random generator with a .random() method, such as numpy.random.default_rng(0) or random.Random(0), but None was passed.
    """
    if not isinstance(rule_set, RuleSet):
        raise SamplingRuleError(
            f"`rule_set` must be a RuleSet (it keeps the per-second reservoir counts between "
            f"calls), but {type(rule_set).__name__!r} was passed. Wrap your rules once, "
            "rules = RuleSet(rules) or load_rules(...), and pass the same object every time."
        )
    if not callable(getattr(rng, "random", None)):
        raise SamplingRuleError(
            "`rng` must be a random generator with a .random() method, such as "
            f"numpy.random.default_rng(0) or random.Random(0), but {rng!r} was passed."
        )
    upstream = _upstream(request.get("upstream"))
    if upstream is None and request.get("trace_header"):
        upstream = _header_decision(str(request["trace_header"]))
    if upstream is not None:
        return SamplingDecision(upstream, None, "upstream")
    rule = rule_set.match(request)
    now = _epoch_second(clock() if callable(clock) else clock)
    name = rule.name
    if rule_set._second.get(name) != now:
        rule_set._second[name] = now
        rule_set._taken[name] = 0
        rule_set._borrowed[name] = 0
    if rule_set.mode == "local":
        if rule_set._taken[name] < rule.reservoir_size:
            rule_set._taken[name] += 1
            return SamplingDecision(True, name, "reservoir")
    else:
        quota = rule_set._quota.get(name)
        if quota is not None and quota[1] >= now:
            if rule_set._taken[name] < quota[0]:
                rule_set._taken[name] += 1
                return SamplingDecision(True, name, "reservoir")
        elif rule.reservoir_size > 0 and rule_set._borrowed[name] < 1:
            rule_set._borrowed[name] += 1
            return SamplingDecision(True, name, "borrow")
    if rng.random() < rule.fixed_rate:
        return SamplingDecision(True, name, "rate")
    return SamplingDecision(False, name, "not sampled")


# ---------------------------------------------------------------------------------------------
# traffic and simulation

_DEFAULT_ENDPOINTS = pd.DataFrame(
    [
        ("shop.example.com", "GET", "/", 0.20),
        ("shop.example.com", "GET", "/products/{id}", 0.35),
        ("shop.example.com", "POST", "/cart", 0.10),
        ("shop.example.com", "POST", "/checkout", 0.05),
        ("shop.example.com", "GET", "/health", 0.20),
        ("admin.example.com", "GET", "/admin/reports", 0.10),
    ],
    columns=["host", "method", "path", "weight"],
)


def _generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def traffic(
    rate: float | Sequence[float] | np.ndarray = 10.0,
    *,
    duration_s: int = 600,
    peaks: int = 1,
    peak_factor: float = 4.0,
    endpoints: pd.DataFrame | Sequence[tuple[str, str, str, float]] | None = None,
    start: str | datetime = "2024-01-01T00:00:00Z",
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Generate a seeded stream of incoming requests.

    Requests arrive as a Poisson process whose rate follows a curve: ``rate`` requests per
    second at the base, rising smoothly to ``peak_factor`` times that at ``peaks`` evenly
    spaced peaks. Each request picks an endpoint by weight; ``{id}`` in a path becomes a
    random number.

    Parameters
    ----------
    rate : float or array of float
        Base requests per second; or the rate for every second (then ``duration_s``,
        ``peaks`` and ``peak_factor`` are not used).
    duration_s : int
        Length of the stream in seconds.
    peaks : int
        Number of traffic peaks (0 for a flat rate).
    peak_factor : float
        Rate at the top of a peak relative to the base.
    endpoints : DataFrame or list of (host, method, path, weight), optional
        The request mix; a DataFrame may add ``service`` and ``service_type`` columns.
        Default: a small shop (``shop.example.com``: ``/``, ``/products/{id}``, ``/cart``,
        ``/checkout``, ``/health``; ``admin.example.com``: ``/admin/reports``).
    start : str or datetime
        Time of the first second (UTC).
    seed : int or numpy.random.Generator, optional
        Randomness; the same seed gives the same stream.

    Returns
    -------
    DataFrame
        One row per request in time order: ``time`` (UTC), ``host``, ``method``, ``path``,
        plus ``service``/``service_type`` if the endpoints have them.

    Examples
    --------
    >>> requests = traffic(5, duration_s=60, seed=0)
    >>> list(requests.columns)
    ['time', 'host', 'method', 'path']
    >>> 200 < len(requests) < 1000
    True
    """
    rng = _generator(seed)
    if np.ndim(rate) == 0:
        base = float(rate)  # type: ignore[arg-type]
        if not base >= 0 or not math.isfinite(base):
            raise SamplingRuleError(
                f"`rate` must be a non-negative number of requests per second, but "
                f"{rate!r} was passed."
            )
        if int(duration_s) < 1:
            raise SamplingRuleError(
                f"`duration_s` must be at least 1, but {duration_s!r} was passed."
            )
        seconds = np.arange(int(duration_s), dtype=np.float64)
        curve = np.ones_like(seconds)
        if peaks > 0:
            centres = (np.arange(peaks) + 0.5) * duration_s / peaks
            width = duration_s / (8.0 * peaks)
            bumps = np.exp(-0.5 * ((seconds[:, None] + 0.5 - centres[None, :]) / width) ** 2)
            curve = 1.0 + (float(peak_factor) - 1.0) * bumps.max(axis=1)
        per_second = base * curve
    else:
        per_second = np.asarray(rate, dtype=np.float64)
        if per_second.ndim != 1 or (per_second < 0).any() or not np.isfinite(per_second).all():
            raise SamplingRuleError("`rate` as an array must be one non-negative rate per second.")
    counts = rng.poisson(per_second)
    total = int(counts.sum())
    second_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offset_ns = second_of * 1_000_000_000 + (rng.random(total) * 1e9).astype(np.int64)
    offset_ns.sort()
    start_ts = pd.Timestamp(start)
    start_ts = (
        start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    )
    times = pd.DatetimeIndex(start_ts.as_unit("ns") + pd.to_timedelta(offset_ns, unit="ns"))

    mix = endpoints if endpoints is not None else _DEFAULT_ENDPOINTS
    if not isinstance(mix, pd.DataFrame):
        mix = pd.DataFrame(list(mix), columns=["host", "method", "path", "weight"])
    missing = {"host", "method", "path", "weight"} - set(mix.columns)
    if missing or len(mix) == 0:
        raise SamplingRuleError(
            f"`endpoints` needs rows with host, method, path and weight; missing "
            f"{sorted(missing)!r} in {list(mix.columns)!r}."
        )
    weights = mix["weight"].to_numpy(dtype=np.float64)
    if (weights < 0).any() or weights.sum() <= 0:
        raise SamplingRuleError(
            f"endpoint weights must be non-negative and not all 0, got {weights.tolist()!r}."
        )
    pick = rng.choice(len(mix), size=total, p=weights / weights.sum())
    columns: dict[str, Any] = {"time": times}
    for column in ["host", "method", "path", "service", "service_type"]:
        if column in mix.columns:
            values = mix[column].astype(str).to_numpy(dtype=object)
            if column == "path":  # fill {id} per endpoint, one vectorised step each
                paths = values[pick].astype(object)
                for endpoint, template in enumerate(values):
                    if "{id}" not in template:
                        continue
                    rows = np.flatnonzero(pick == endpoint)
                    prefix, suffix = template.split("{id}", 1)
                    ids = rng.integers(1, 10_000, size=rows.size).astype(str)
                    paths[rows] = np.char.add(np.char.add(prefix, ids), suffix).astype(object)
                columns[column] = pd.array(paths, dtype="str")
            else:
                categories = pd.array(values, dtype="str")
                columns[column] = categories.take(pick)
    frame = pd.DataFrame(columns)
    return frame


def simulate_sampling(
    requests: pd.DataFrame,
    rules: RuleSource | SamplingRule,
    *,
    hosts: int = 1,
    mode: Mode = "centralized",
    seed: int | np.random.Generator | None = None,
    report_interval_s: int = 10,
    quota_ttl_s: int = 300,
) -> pd.DataFrame:
    """Simulate the sampling decisions a fleet of hosts makes for a request stream.

    Every request is matched to its rule exactly as the SDK matches it; requests whose
    ``upstream`` column says ``"1"`` or ``"0"`` simply follow it. The reservoir works per
    host, rule and wall-clock second (the SDK keys on ``int(time.time())``): the first
    requests of a second take from it, in time order; the rest are sampled with the rule's
    fixed rate.

    - ``mode="local"``: every host applies the rules on its own, so each host samples up
      to ``reservoir_size`` requests per second — the fleet's fixed target is the
      reservoir times the number of hosts.
    - ``mode="centralized"``: hosts report each rule they used every ``report_interval_s``
      seconds from the first request on (all hosts at the same moments, rules already
      fetched). X-Ray splits the rule's reservoir evenly among the hosts that reported it
      (the remainder goes one each to hosts in an order that rotates every report), and a
      quota applies from the report's second until it is replaced or ``quota_ttl_s``
      seconds after that report. A host without a valid quota borrows 1 request per second
      if the rule's reservoir is not 0. So the fleet stays near the reservoir size.

    Parameters
    ----------
    requests : DataFrame
        A ``time`` column (datetimes, or epoch seconds) and any of ``host``, ``method``,
        ``path``, ``service``, ``service_type`` (missing ones match anything), ``upstream``
        and ``instance`` (which host serves the request; otherwise each request goes to a
        random one of ``hosts``, like a load balancer). Not modified.
    rules : RuleSet, list of rules, or anything :func:`load_rules` reads
    hosts : int
        Number of instances (SDK processes) behind the load balancer.
    mode : {"centralized", "local"}
    seed : int or numpy.random.Generator, optional
        Randomness for host assignment and fixed-rate draws.
    report_interval_s : int
        Seconds between statistics reports (``Interval``; 10 by default).
    quota_ttl_s : int
        Seconds a quota stays valid after the report that granted it.

    Returns
    -------
    DataFrame
        ``requests`` (same index and order) plus ``instance``, ``rule`` (categorical, in
        evaluation order; missing for upstream decisions), ``reason`` (categorical:
        ``upstream``, ``reservoir``, ``borrow``, ``rate``, ``not sampled``) and ``sampled``.

    Examples
    --------
    >>> requests = traffic(50, duration_s=30, peaks=0, seed=0)
    >>> local = simulate_sampling(requests, [], hosts=4, mode="local", seed=0)
    >>> per_second = local.groupby(local["time"].dt.floor("s"))["reason"]
    >>> int(per_second.agg(lambda r: (r == "reservoir").sum()).max())  # 1 per host
    4
    >>> central = simulate_sampling(requests, [], hosts=4, mode="centralized", seed=0)
    >>> later = central[central["time"] >= central["time"].min() + pd.Timedelta("10s")]
    >>> int(later.groupby(later["time"].dt.floor("s"))["reason"].agg(
    ...     lambda r: (r == "reservoir").sum()).max())  # 1 for the fleet, once quotas arrive
    1
    """
    _check_mode(mode)
    rule_set = _as_rule_set(rules)
    if not isinstance(requests, pd.DataFrame) or "time" not in requests.columns:
        raise SamplingRuleError(
            "`requests` must be a DataFrame with a `time` column (see traffic()), but got "
            f"{_short(getattr(requests, 'columns', requests))}."
        )
    if int(hosts) < 1:
        raise SamplingRuleError(f"`hosts` must be 1 or more, but {hosts!r} was passed.")
    if int(report_interval_s) < 1 or int(quota_ttl_s) < 0:
        raise SamplingRuleError(
            "`report_interval_s` must be 1 or more and `quota_ttl_s` 0 or more, "
            f"but {report_interval_s!r} and {quota_ttl_s!r} were passed."
        )
    rng = _generator(seed)
    n = len(requests)
    result = requests.copy()

    time_ns = _time_ns(requests["time"])
    second = np.floor_divide(time_ns, 1_000_000_000)
    if "instance" in requests.columns:
        if hosts != 1:
            raise SamplingRuleError(
                "`requests` already has an `instance` column; pass either that or "
                f"`hosts`, not both (hosts={hosts!r})."
            )
        instance_codes, _ = pd.factorize(requests["instance"])
        if (instance_codes < 0).any():
            raise SamplingRuleError(
                "The `instance` column has missing values; give every request a host."
            )
    else:
        instance_codes = rng.integers(0, int(hosts), size=n)
        result["instance"] = instance_codes

    if "upstream" in requests.columns:
        upstream_values = pd.Series(requests["upstream"].to_numpy(dtype=object))
        mapped = upstream_values.map(_upstream)
        has_upstream = mapped.notna().to_numpy()
        upstream_sampled = mapped.fillna(False).to_numpy(dtype=bool)
    else:
        has_upstream = np.zeros(n, dtype=bool)
        upstream_sampled = np.zeros(n, dtype=bool)

    rule_index = _match_frame(rule_set, requests)
    rule_index[has_upstream] = -1
    reservoir = np.array([rule.reservoir_size for rule in rule_set], dtype=np.int64)
    rate = np.array([rule.fixed_rate for rule in rule_set], dtype=np.float64)

    local_rows = np.flatnonzero(~has_upstream)
    # time order within each (instance, rule, second); ties keep input order
    order = local_rows[
        np.lexsort(
            (
                np.arange(local_rows.size),
                time_ns[local_rows],
                rule_index[local_rows],
                instance_codes[local_rows],
            )
        )
    ]
    inst_o, rule_o, sec_o = instance_codes[order], rule_index[order], second[order]
    new_group = np.ones(order.size, dtype=bool)
    new_group[1:] = (
        (inst_o[1:] != inst_o[:-1]) | (rule_o[1:] != rule_o[:-1]) | (sec_o[1:] != sec_o[:-1])
    )
    group_start = np.flatnonzero(new_group)
    group_id = np.cumsum(new_group) - 1
    rank = np.arange(order.size) - group_start[group_id]

    if mode == "local":
        cap = reservoir[rule_o]
        from_reservoir = np.full(order.size, REASONS.index("reservoir"))
    else:
        origin = int(second.min()) if n else 0
        cap, from_reservoir = _centralized_caps(
            inst_o, rule_o, sec_o - origin, reservoir, int(report_interval_s), int(quota_ttl_s)
        )
    taken = rank < cap

    reason_code = np.full(n, REASONS.index("upstream"), dtype=np.int8)
    draws = rng.random(n)
    rate_hit = draws < rate[np.maximum(rule_index, 0)]
    sampled = upstream_sampled.copy()
    local_reason = np.where(rate_hit[order], REASONS.index("rate"), REASONS.index("not sampled"))
    local_reason = np.where(taken, from_reservoir, local_reason)
    reason_code[order] = local_reason
    sampled[order] = taken | rate_hit[order]

    result["rule"] = pd.Categorical.from_codes(rule_index, categories=rule_set.names)
    result["reason"] = pd.Categorical.from_codes(reason_code, categories=list(REASONS))
    result["sampled"] = sampled
    result.attrs["sampling"] = {
        "mode": mode,
        "hosts": int(instance_codes.max()) + 1 if n else int(hosts),
        "rules": rule_set.names,
        "report_interval_s": int(report_interval_s),
        "quota_ttl_s": int(quota_ttl_s),
    }
    return result


def _time_ns(times: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(times):
        return np.round(times.to_numpy(dtype=np.float64) * 1e9).astype(np.int64)
    stamps = pd.to_datetime(times, utc=True)
    if stamps.isna().any():
        raise SamplingRuleError("The `time` column has missing values; every request needs a time.")
    return ((stamps - _EPOCH) // pd.Timedelta(nanoseconds=1)).to_numpy(dtype=np.int64)


def _centralized_caps(
    inst: np.ndarray,
    rule: np.ndarray,
    sec: np.ndarray,
    reservoir: np.ndarray,
    interval: int,
    ttl: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per request (sorted by instance, rule, time): reservoir capacity and its reason.

    ``sec`` counts seconds from the first request. Window ``w`` covers seconds
    ``[w*interval, (w+1)*interval)``; a host that used a rule in window ``w`` reports it at
    the start of window ``w+1`` and its quota applies from that second.
    """
    size = sec.size
    if size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    window = sec // interval
    # (instance, rule, window) triples in sorted order -> one report each
    new_triple = np.ones(size, dtype=bool)
    new_triple[1:] = (inst[1:] != inst[:-1]) | (rule[1:] != rule[:-1]) | (window[1:] != window[:-1])
    starts = np.flatnonzero(new_triple)
    triple_of = np.cumsum(new_triple) - 1
    t_inst, t_rule, t_window = inst[starts], rule[starts], window[starts]
    t_tick = t_window + 1  # the report after the window
    # hosts reporting each rule at each tick: count and position (by instance)
    by_tick = np.lexsort((t_inst, t_tick, t_rule))
    r_rule, r_tick = t_rule[by_tick], t_tick[by_tick]
    new_batch = np.ones(by_tick.size, dtype=bool)
    new_batch[1:] = (r_rule[1:] != r_rule[:-1]) | (r_tick[1:] != r_tick[:-1])
    batch_start = np.flatnonzero(new_batch)
    batch_of = np.cumsum(new_batch) - 1
    batch_size = np.diff(np.append(batch_start, by_tick.size))
    position = np.arange(by_tick.size) - batch_start[batch_of]
    reporters = batch_size[batch_of]
    size_r = reservoir[r_rule]
    extra = ((position - r_tick) % reporters) < (size_r % reporters)
    quota_sorted = size_r // reporters + extra.astype(np.int64)
    t_quota = np.empty_like(quota_sorted)
    t_quota[by_tick] = quota_sorted
    # the report each request's host last received for the rule: from the previous triple
    same_stream = np.zeros(t_inst.size, dtype=bool)
    same_stream[1:] = (t_inst[1:] == t_inst[:-1]) & (t_rule[1:] == t_rule[:-1])
    prev = np.arange(t_inst.size) - 1
    has_report = same_stream[triple_of]
    prev_triple = prev[triple_of]
    report_tick = np.where(has_report, t_tick[np.maximum(prev_triple, 0)], -1)
    quota = np.where(has_report, t_quota[np.maximum(prev_triple, 0)], 0)
    valid = has_report & (sec <= report_tick * interval + ttl)
    borrow = np.where(reservoir[rule] > 0, 1, 0)
    cap = np.where(valid, quota, borrow)
    reason = np.where(valid, REASONS.index("reservoir"), REASONS.index("borrow"))
    return cap, reason


# ---------------------------------------------------------------------------------------------
# summaries, plot, cost

_SUMMARY_KEYS = ("rule", "second", "instance", "reason", "host", "method", "path")
_UPSTREAM_LABEL = "(upstream)"


def sampling_summary(
    result: pd.DataFrame, *, by: str | Sequence[str] | None = "rule"
) -> pd.DataFrame:
    """Count requests and sampled requests, split by reason, per rule, second or host.

    Parameters
    ----------
    result : DataFrame
        From :func:`simulate_sampling`. Not modified.
    by : str, list of str or None
        Any of ``"rule"``, ``"second"``, ``"instance"``, ``"reason"``, ``"host"``,
        ``"method"`` and ``"path"``; None for one overall row. Requests that followed an
        upstream decision have no rule; they are counted under ``"(upstream)"``.

    Returns
    -------
    DataFrame
        One row per group: ``requests``, ``sampled``, ``sampled_share`` (0-1),
        ``sampled_per_s`` (over the whole simulated span), and one count column per reason
        (``upstream``, ``reservoir``, ``borrow``, ``rate``, ``not_sampled``).

    Examples
    --------
    >>> result = simulate_sampling(traffic(20, duration_s=60, seed=2), [], seed=2)
    >>> summary = sampling_summary(result)
    >>> int(summary.loc["Default", "requests"]) == len(result)
    True
    >>> list(summary.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['requests', 'sampled', 'sampled_share', 'sampled_per_s', 'upstream', 'reservoir',
     'borrow', 'rate', 'not_sampled']
    """
    missing = {"time", "rule", "reason", "sampled"} - set(result.columns)
    if missing:
        raise SamplingRuleError(
            f"`result` must come from simulate_sampling(); it lacks {sorted(missing)!r}."
        )
    keys = [by] if isinstance(by, str) else list(by or [])
    for key in keys:
        if key not in _SUMMARY_KEYS or (key != "second" and key not in result.columns):
            raise SamplingRuleError(
                f"`by` must be among {list(_SUMMARY_KEYS)} (columns of the "
                f"result), but {key!r} was passed."
            )
    seconds = pd.Series(
        np.floor_divide(_time_ns(result["time"]), 1_000_000_000), index=result.index
    )
    span = int(seconds.max() - seconds.min() + 1) if len(result) else 1
    frame = pd.DataFrame(
        {
            "requests": 1,
            "sampled": result["sampled"].astype(np.int64),
            "reason": result["reason"].astype(pd.CategoricalDtype(list(REASONS))),
        },
        index=result.index,
    )
    group_keys: list[pd.Series] = []
    for key in keys:
        if key == "second":
            column = pd.Series(
                pd.to_datetime(seconds * 1_000_000_000, utc=True), index=result.index, name="second"
            )
        elif key == "rule":  # upstream decisions have no rule: give them a row of their own
            rule = result["rule"]
            if isinstance(rule.dtype, pd.CategoricalDtype):
                if _UPSTREAM_LABEL not in rule.cat.categories:
                    rule = rule.cat.add_categories(_UPSTREAM_LABEL)
            else:
                rule = rule.astype(object)
            column = rule.fillna(_UPSTREAM_LABEL).rename("rule")
        else:
            column = result[key].rename(key)
        group_keys.append(column)
    if not group_keys:
        group_keys = [pd.Series("all", index=result.index, name="total")]
    grouped = frame.groupby(group_keys, observed=True, sort=True, dropna=False)
    out = grouped[["requests", "sampled"]].sum()
    reasons = frame.groupby(
        [*group_keys, frame["reason"]], observed=False, sort=True, dropna=False
    ).size()
    reasons = reasons.unstack("reason", fill_value=0).reindex(columns=list(REASONS), fill_value=0)
    reasons.columns = [str(c).replace(" ", "_") for c in reasons.columns]
    out = out.join(reasons, how="left").fillna(0)
    out["sampled_share"] = out["sampled"] / out["requests"].where(out["requests"] > 0)
    out["sampled_per_s"] = out["sampled"] / span
    columns = [
        "requests",
        "sampled",
        "sampled_share",
        "sampled_per_s",
        *[r.replace(" ", "_") for r in REASONS],
    ]
    out = out[columns]
    integer = [c for c in columns if c not in {"sampled_share", "sampled_per_s"}]
    return out.astype(dict.fromkeys(integer, "int64"))


def plot_sampling(
    result: pd.DataFrame,
    *,
    rules: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Plot requests against sampled requests per second, one colour per rule.

    Dashed lines are the requests each rule matched per second, solid lines the requests
    it sampled; requests that followed an upstream decision are drawn as ``(upstream)``.

    Parameters
    ----------
    result : DataFrame
        From :func:`simulate_sampling`.
    rules : list of str, optional
        Only these rules (default: every rule that matched a request).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> result = simulate_sampling(traffic(10, duration_s=30, seed=3), [], seed=3)
    >>> ax = plot_sampling(result)
    >>> [line.get_label() for line in ax.lines]
    ['Default requests', 'Default sampled']
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    if {"time", "rule", "sampled"} - set(result.columns):
        raise SamplingRuleError(
            "`result` must come from simulate_sampling(): it needs time, rule and sampled columns."
        )
    seconds = np.floor_divide(_time_ns(result["time"]), 1_000_000_000)
    origin = int(seconds.min()) if len(result) else 0
    span = np.arange(int(seconds.max()) - origin + 1 if len(result) else 0)
    labels = result["rule"].astype(object).where(result["rule"].notna(), _UPSTREAM_LABEL)
    present = [
        name
        for name in [*getattr(result["rule"].dtype, "categories", []), _UPSTREAM_LABEL]
        if (labels == name).any()
    ]
    if rules is not None:
        unknown = sorted(set(rules) - set(present))
        if unknown:
            raise SamplingRuleError(
                f"`rules` must name rules that matched requests ({present}), but "
                f"{unknown!r} was passed."
            )
        present = [name for name in present if name in rules]
    frame = pd.DataFrame(
        {
            "second": seconds - origin,
            "label": labels.to_numpy(),
            "sampled": result["sampled"].to_numpy(dtype=np.int64),
        }
    )
    counts = frame.groupby(["label", "second"], sort=False)["sampled"].agg(["size", "sum"])
    colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, name in enumerate(present):
        per_second = counts.loc[name].reindex(span, fill_value=0)
        colour = colours[i % len(colours)]
        ax.plot(
            span,
            per_second["size"].to_numpy(),
            linestyle="--",
            linewidth=1,
            alpha=0.7,
            color=colour,
            label=f"{name} requests",
        )
        ax.plot(
            span,
            per_second["sum"].to_numpy(),
            linestyle="-",
            linewidth=1.6,
            color=colour,
            label=f"{name} sampled",
        )
    settings = result.attrs.get("sampling", {})
    title = "Requests and sampled requests per second"
    if settings:
        title += f" ({settings['mode']}, {settings['hosts']} host"
        title += "s)" if settings["hosts"] != 1 else ")"
    ax.set_title(title)
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel("requests per second")
    ax.set_ylim(bottom=0)
    if present:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return ax


def _expected_taken(mean: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """E[min(N, k)] for N ~ Poisson(mean): requests a per-second reservoir of k takes."""
    mean = np.asarray(mean, dtype=np.float64)
    capacity = np.asarray(capacity, dtype=np.int64)
    out = np.zeros(np.broadcast(mean, capacity).shape)
    mean_b, capacity_b = np.broadcast_arrays(mean, capacity)
    for index in np.ndindex(out.shape):
        lam, k = float(mean_b[index]), int(capacity_b[index])
        if k <= 0 or lam <= 0:
            continue
        pmf = math.exp(-lam)
        shortfall = 0.0
        for count in range(k):
            shortfall += (k - count) * pmf
            pmf *= lam / (count + 1)
        out[index] = k - shortfall
    return out


def estimate_cost(
    traffic: float | pd.DataFrame,
    *,
    rules: RuleSource | SamplingRule | None = None,
    hosts: int = 1,
    mode: Mode = "centralized",
    scans_per_trace: float = 1.0,
    retrieved_share: float = 0.05,
    days: float = 30.0,
) -> pd.DataFrame:
    """Estimate traces recorded, retrieved and scanned per month, and what they cost.

    Recorded traces are the sampled requests (downstream services join the same trace).
    Scanned traces are what trace lists, filter expressions and groups read
    (``scans_per_trace`` times each recorded trace); retrieved traces are the ones opened
    in full (``retrieved_share`` of them). Prices are the published US East prices
    (:data:`PRICES`): 100,000 recorded traces free per month, then $5.00 per million;
    1,000,000 retrieved or scanned traces free (together), then $0.50 per million.

    Parameters
    ----------
    traffic : float or DataFrame
        Requests per second across the fleet (constant), or a request stream (see
        :func:`traffic`) or :func:`simulate_sampling` result, whose sampling is scaled
        from its time span to a month.
    rules : rule, rules or rules file, optional
        Default: the Default rule. With a request rate, give at most one rule besides
        Default (every request is taken to match the first rule).
    hosts : int
        Instances behind the load balancer.
    mode : {"centralized", "local"}
    scans_per_trace, retrieved_share : float
        How much the traces are read.
    days : float
        Length of the month.

    Returns
    -------
    DataFrame
        Rows ``recorded``, ``retrieved``, ``scanned`` and ``total``; columns ``traces``
        (per month), ``free``, ``billable``, ``usd_per_million`` and ``cost_usd``. Its
        ``attrs["assumptions"]`` records the inputs and the sampled requests per second.

    Examples
    --------
    >>> cost = estimate_cost(100.0)  # 100 req/s, default rule: 1/s + 5 % of the rest
    >>> round(float(cost.loc["recorded", "traces"]) / 1e6, 2)  # million traces per month
    15.42
    >>> round(float(cost.loc["total", "cost_usd"]), 2)
    84.21
    """
    _check_mode(mode)
    if int(hosts) < 1:
        raise SamplingRuleError(f"`hosts` must be 1 or more, but {hosts!r} was passed.")
    if scans_per_trace < 0 or not 0 <= retrieved_share <= 1 or days <= 0:
        raise SamplingRuleError(
            "`scans_per_trace` must be >= 0, `retrieved_share` in 0-1 and `days` "
            f"> 0, but got {scans_per_trace!r}, {retrieved_share!r}, {days!r}."
        )
    month_s = days * 86_400.0
    if isinstance(traffic, pd.DataFrame):
        result = traffic
        if "sampled" not in result.columns:
            result = simulate_sampling(
                result, rules if rules is not None else [], hosts=hosts, mode=mode, seed=0
            )
        seconds = np.floor_divide(_time_ns(result["time"]), 1_000_000_000)
        span = float(seconds.max() - seconds.min() + 1) if len(result) else 1.0
        requests_per_s = len(result) / span
        sampled_per_s = float(result["sampled"].sum()) / span
    else:
        requests_per_s = float(traffic)
        if not requests_per_s >= 0 or not math.isfinite(requests_per_s):
            raise SamplingRuleError(
                f"`traffic` must be requests per second (>= 0) or a DataFrame, but "
                f"{traffic!r} was passed."
            )
        rule_set = _as_rule_set(rules if rules is not None else [])
        custom = [rule for rule in rule_set if not rule.is_default]
        if len(custom) > 1:
            raise SamplingRuleError(
                f"With a constant request rate, pass one rule (every request matches it); got "
                f"{rule_set.names}. To cost several rules, pass a request stream: "
                "estimate_cost(traffic(...), rules=...)."
            )
        rule = custom[0] if custom else rule_set.rule("Default")
        per_host = requests_per_s / int(hosts)
        if mode == "local":
            capacity = np.full(int(hosts), rule.reservoir_size)
        else:
            base, rest = divmod(rule.reservoir_size, int(hosts))
            capacity = base + (np.arange(int(hosts)) < rest).astype(np.int64)
        taken = _expected_taken(np.full(int(hosts), per_host), capacity)
        sampled_per_s = float((taken + rule.fixed_rate * (per_host - taken)).sum())
    recorded = sampled_per_s * month_s
    retrieved = recorded * retrieved_share
    scanned = recorded * scans_per_trace
    rec_price = PRICES["recorded"]
    read_price = PRICES["retrieved or scanned"]
    free_recorded = min(recorded, rec_price["free_per_month"])
    free_retrieved = min(retrieved, read_price["free_per_month"])
    free_scanned = min(scanned, read_price["free_per_month"] - free_retrieved)
    rows = {
        "recorded": (recorded, free_recorded, rec_price["usd_per_million"]),
        "retrieved": (retrieved, free_retrieved, read_price["usd_per_million"]),
        "scanned": (scanned, free_scanned, read_price["usd_per_million"]),
    }
    out = pd.DataFrame.from_dict(
        rows, orient="index", columns=["traces", "free", "usd_per_million"]
    )
    out["billable"] = out["traces"] - out["free"]
    out["cost_usd"] = out["billable"] / 1e6 * out["usd_per_million"]
    out.loc["total"] = [np.nan, np.nan, np.nan, np.nan, out["cost_usd"].sum()]
    out = out[["traces", "free", "billable", "usd_per_million", "cost_usd"]]
    out.attrs["assumptions"] = {
        "requests_per_s": requests_per_s,
        "sampled_per_s": sampled_per_s,
        "hosts": int(hosts),
        "mode": mode,
        "scans_per_trace": scans_per_trace,
        "retrieved_share": retrieved_share,
        "days": days,
    }
    return out

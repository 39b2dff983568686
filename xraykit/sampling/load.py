"""Reading sampling rules: :func:`load_rules` from a ``GetSamplingRules`` response, a list of
rules, a local SDK rules file (version 1 or 2), a frame of rules, or the path or JSON text
of any of these."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from xraykit.exceptions import SamplingRuleError, XrayKitWarning
from xraykit.sampling.rules import SamplingRule, _rule_from_api
from xraykit.sampling.ruleset import Mode, RuleSet

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


def _rules_from_frame(frame: pd.DataFrame) -> list[SamplingRule]:
    """Rules from a frame like ``RuleSet.to_frame()`` or ``xraykit.aws.fetch_sampling_rules()``."""
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

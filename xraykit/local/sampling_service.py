"""Sampling rules and sampling targets of the local X-Ray, as the SDK's centralized sampler uses them.

:class:`SamplingService` answers ``GetSamplingRules``, ``CreateSamplingRule``,
``UpdateSamplingRule``, ``DeleteSamplingRule`` (rules checked by
:class:`xraykit.sampling.SamplingRule`, kept in the :class:`~xraykit.local.store.Store`; the
``Default`` rule is always there and cannot be deleted) and ``GetSamplingTargets``: each SDK
instance (``ClientID``) that reported a rule within the last interval and a half gets an equal
share of the rule's ``ReservoirSize`` per second as its ``ReservoirQuota``, valid for
``quota_ttl_s``. Requests the API must refuse raise :class:`~xraykit.exceptions.SamplingRuleError`
(a rule) or :class:`~xraykit.exceptions.ArgumentError` (anything else); the API answers both
with ``InvalidRequestException``.

Examples
--------
>>> class Rules:  # the store's rule methods; xraykit.local.store.Store in the local X-Ray
...     def __init__(self): self.saved = {}
...     def rules(self): return list(self.saved.values())
...     def save_rule(self, rule): self.saved[rule["RuleName"]] = dict(rule)
...     def delete_rule(self, name): return self.saved.pop(name, None) is not None
>>> service = SamplingService(Rules())
>>> [r["SamplingRule"]["RuleName"] for r in service.get_rules()["SamplingRuleRecords"]]
['Default']
>>> doc = {"RuleName": "Default", "ClientID": "a" * 24, "Timestamp": 0,
...        "RequestCount": 5, "SampledCount": 1, "BorrowCount": 0}
>>> service.targets({"SamplingStatisticsDocuments": [doc]}, now=100.0)["SamplingTargetDocuments"]
[{'RuleName': 'Default', 'FixedRate': 0.05, 'ReservoirQuota': 1, 'ReservoirQuotaTTL': 110.0, 'Interval': 10}]
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from xraykit.exceptions import ArgumentError, ArgumentTypeError, SamplingRuleError
from xraykit.sampling import DEFAULT_RULE, SamplingRule

__all__ = ["RULE_ARN_PREFIX", "SamplingService"]

#: The ARN of a local rule is this prefix and its name.
RULE_ARN_PREFIX = "arn:aws:xray:us-east-1:000000000000:sampling-rule/"

# the record times kept next to a rule's fields in the store
_CREATED, _MODIFIED = "CreatedAt", "ModifiedAt"
# the members of the API's SamplingRuleUpdate
_UPDATE_KEYS = frozenset(
    {
        "RuleName",
        "RuleARN",
        "ResourceARN",
        "Priority",
        "FixedRate",
        "ReservoirSize",
        "Host",
        "ServiceName",
        "ServiceType",
        "HTTPMethod",
        "URLPath",
        "Attributes",
        "SamplingRateBoost",
    }
)
_MAX_DOCUMENTS = 25  # SamplingStatisticsDocuments per GetSamplingTargets call


class RuleStore(Protocol):
    """What :class:`SamplingService` needs of the store: rules persisted by ``RuleName``."""

    def rules(self) -> list[dict[str, Any]]: ...
    def save_rule(self, rule: dict[str, Any]) -> None: ...
    def delete_rule(self, name: str) -> bool: ...


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ArgumentError(f"Expected {what} to be a JSON object, but got {value!r}.")
    return value


def _rule_name(body: Mapping[str, Any], what: str) -> str:
    """The rule a request names by ``RuleName`` or ``RuleARN`` (they must agree)."""
    name, arn = body.get("RuleName"), body.get("RuleARN")
    from_arn = None
    if arn is not None:
        if not isinstance(arn, str) or ":sampling-rule/" not in arn:
            raise SamplingRuleError(
                f"{what}: RuleARN must look like '{RULE_ARN_PREFIX}<name>', but {arn!r} was given."
            )
        from_arn = arn.rsplit("/", 1)[-1]
    if name is not None and not isinstance(name, str):
        raise SamplingRuleError(f"{what}: RuleName must be a string, but {name!r} was given.")
    if name is not None and from_arn is not None and name != from_arn:
        raise SamplingRuleError(
            f"{what}: RuleName {name!r} and RuleARN {arn!r} name different rules. Give one of them."
        )
    found = name if name is not None else from_arn
    if not found:
        raise SamplingRuleError(f"{what}: give the rule's RuleName or RuleARN.")
    return found


def _boost(value: Any, name: str) -> dict[str, Any]:
    """A checked ``SamplingRateBoost`` ({MaxRate 0-1, CooldownWindowMinutes >= 0})."""
    if not isinstance(value, Mapping) or set(value) != {"MaxRate", "CooldownWindowMinutes"}:
        raise SamplingRuleError(
            f"Sampling rule {name!r}: SamplingRateBoost must be "
            f"{{'MaxRate': 0-1, 'CooldownWindowMinutes': minutes}}, but {value!r} was given."
        )
    rate, minutes = value["MaxRate"], value["CooldownWindowMinutes"]
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not 0 <= rate <= 1
        or isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or minutes < 0
    ):
        raise SamplingRuleError(
            f"Sampling rule {name!r}: SamplingRateBoost needs MaxRate from 0 to 1 and a whole "
            f"number of CooldownWindowMinutes, 0 or more, but {dict(value)!r} was given."
        )
    return {"MaxRate": float(rate), "CooldownWindowMinutes": minutes}


def _checked_rule(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The API ``SamplingRule`` (with ``RuleARN``) of checked ``fields``."""
    values = {k: v for k, v in fields.items() if k not in ("RuleARN", "SamplingRateBoost")}
    attributes = values.get("Attributes")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise SamplingRuleError(
            f"Sampling rule {values.get('RuleName')!r}: Attributes must be an object of at "
            f"most 5 string pairs, but {attributes!r} was given."
        )
    rule = SamplingRule.from_api(values).to_api()
    rule["RuleARN"] = RULE_ARN_PREFIX + rule["RuleName"]
    if fields.get("SamplingRateBoost") is not None:
        rule["SamplingRateBoost"] = _boost(fields["SamplingRateBoost"], rule["RuleName"])
    return rule


def _record(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A ``SamplingRuleRecord`` from what the store keeps."""
    rule = {k: v for k, v in stored.items() if k not in (_CREATED, _MODIFIED)}
    rule.setdefault("RuleARN", RULE_ARN_PREFIX + str(rule.get("RuleName")))
    return {
        "SamplingRule": rule,
        "CreatedAt": float(stored.get(_CREATED) or 0.0),
        "ModifiedAt": float(stored.get(_MODIFIED) or 0.0),
    }


def _whole(doc: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> int:
    value = doc.get(key)
    if value is None and not required:
        return 0
    if value is None:
        sent = ", ".join(sorted(str(k) for k in doc)[:12]) or "no members"
        raise ArgumentError(
            f"{where}: {key} is missing; it is required (a whole number, 0 or more). "
            f"The document has {sent}."
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ArgumentError(f"{where}: {key} must be a whole number, 0 or more, but got {value!r}.")
    return value


def _statistics(doc: Any, i: int) -> tuple[str, str]:
    """``(RuleName, ClientID)`` of a checked ``SamplingStatisticsDocument``."""
    where = f"SamplingStatisticsDocuments[{i}]"
    doc = _mapping(doc, where)
    name, client = doc.get("RuleName"), doc.get("ClientID")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise ArgumentError(f"{where}: RuleName must be 1 to 32 characters, but got {name!r}.")
    if not isinstance(client, str) or len(client) != 24:
        raise ArgumentError(
            f"{where}: ClientID must be 24 characters (the SDK's random hex id), but got "
            f"{client!r}."
        )
    stamp = doc.get("Timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise ArgumentError(f"{where}: Timestamp must be epoch seconds, but got {stamp!r}.")
    _whole(doc, "RequestCount", where)
    _whole(doc, "SampledCount", where)
    _whole(doc, "BorrowCount", where, required=False)
    return name, client


class SamplingService:
    """The sampling side of the local X-Ray: rules CRUD and reservoir quotas.

    Parameters
    ----------
    store : Store
        Keeps the rules (``rules()``, ``save_rule(rule)``, ``delete_rule(name)``); each saved
        rule is the API's ``SamplingRule`` plus its ``CreatedAt`` / ``ModifiedAt`` (epoch s).
    interval_s : int
        The ``Interval`` the SDK is told to report at (X-Ray's is 10 s).
    quota_ttl_s : float
        How long a ``ReservoirQuota`` is valid (``ReservoirQuotaTTL`` = now + this).

    Notes
    -----
    A client counts in a rule's split while it reported that rule within the last
    ``1.5 * interval_s`` seconds (the SDK reports every 10 s plus a little jitter, and only
    rules that matched requests). ``ReservoirSize`` is split into whole requests per second:
    ``size // n`` each, and one more for the first ``size % n`` clients in ``ClientID`` order,
    so the fleet together never takes more than the rule's reservoir.
    """

    def __init__(self, store: RuleStore, *, interval_s: int = 10, quota_ttl_s: float = 10.0):
        if isinstance(interval_s, bool) or not isinstance(interval_s, int) or interval_s < 1:
            raise ArgumentError(
                f"`interval_s` must be a whole number of seconds, got {interval_s!r}."
            )
        if isinstance(quota_ttl_s, bool) or not isinstance(quota_ttl_s, int | float):
            raise ArgumentTypeError(f"`quota_ttl_s` must be seconds, but got {quota_ttl_s!r}.")
        self.store = store
        self.interval_s = interval_s
        self.quota_ttl_s = float(quota_ttl_s)
        self._lock = threading.RLock()
        self._clients: dict[str, dict[str, float]] = {}  # rule -> client id -> last report
        self._last_change = 0.0  # deletions leave no ModifiedAt behind
        self._rules()

    # -- rules --------------------------------------------------------------------------

    def _rules(self) -> dict[str, dict[str, Any]]:
        """The stored rules by name; the Default rule is saved when it is missing."""
        with self._lock:
            rules = {str(r.get("RuleName")): dict(r) for r in self.store.rules()}
            if "Default" not in rules:
                now = time.time()
                default = {**_checked_rule(DEFAULT_RULE.to_api()), _CREATED: now, _MODIFIED: now}
                self.store.save_rule(default)
                rules["Default"] = default
            return rules

    def get_rules(self) -> dict[str, Any]:
        """``GetSamplingRules``: every rule's ``SamplingRuleRecord``, by priority then name."""
        records = [_record(r) for r in self._rules().values()]
        records.sort(
            key=lambda r: (r["SamplingRule"].get("Priority", 0), r["SamplingRule"]["RuleName"])
        )
        return {"SamplingRuleRecords": records}

    def create_rule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``CreateSamplingRule``: check and save a new rule; ``Tags`` are accepted and ignored.

        Raises
        ------
        SamplingRuleError
            For a rule X-Ray would refuse: a field missing or out of range, the name of a
            rule that exists (``Default`` included).
        """
        body = _mapping(body, "the CreateSamplingRule request")
        fields = body.get("SamplingRule")
        if not isinstance(fields, Mapping):
            raise SamplingRuleError(
                f"CreateSamplingRule needs a SamplingRule object, but got {fields!r}."
            )
        name = _rule_name(fields, "CreateSamplingRule")
        with self._lock:
            if name in self._rules():
                raise SamplingRuleError(
                    f"A sampling rule named {name!r} already exists. Change it with "
                    "UpdateSamplingRule, or pick another name."
                )
            rule = _checked_rule({**fields, "RuleName": name})
            now = time.time()
            stored = {**rule, _CREATED: now, _MODIFIED: now}
            self.store.save_rule(stored)
        return {"SamplingRuleRecord": _record(stored)}

    def update_rule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``UpdateSamplingRule``: change the fields given in ``SamplingRuleUpdate``.

        The Default rule's fixed rate and reservoir size can change, nothing else of it.

        Raises
        ------
        SamplingRuleError
            For an unknown rule, a field the update cannot carry, or a changed rule X-Ray
            would refuse.
        """
        body = _mapping(body, "the UpdateSamplingRule request")
        update = body.get("SamplingRuleUpdate")
        if not isinstance(update, Mapping):
            raise SamplingRuleError(
                f"UpdateSamplingRule needs a SamplingRuleUpdate object, but got {update!r}."
            )
        unknown = sorted(set(update) - _UPDATE_KEYS)
        if unknown:
            raise SamplingRuleError(
                f"SamplingRuleUpdate cannot carry {unknown!r}; it takes {sorted(_UPDATE_KEYS)}."
            )
        name = _rule_name(update, "UpdateSamplingRule")
        with self._lock:
            stored = self._rules().get(name)
            if stored is None:
                raise SamplingRuleError(
                    f"No sampling rule is named {name!r}. GetSamplingRules lists the rules."
                )
            changes = {
                k: v
                for k, v in update.items()
                if k not in ("RuleName", "RuleARN") and v is not None
            }
            fields = {k: v for k, v in stored.items() if k not in (_CREATED, _MODIFIED)}
            rule = _checked_rule({**fields, **changes})
            now = time.time()
            saved = {**rule, _CREATED: stored.get(_CREATED, now), _MODIFIED: now}
            self.store.save_rule(saved)
        return {"SamplingRuleRecord": _record(saved)}

    def delete_rule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``DeleteSamplingRule`` by ``RuleName`` or ``RuleARN``; returns the deleted record.

        Raises
        ------
        SamplingRuleError
            For the Default rule (it cannot be deleted) or an unknown rule.
        """
        body = _mapping(body, "the DeleteSamplingRule request")
        name = _rule_name(body, "DeleteSamplingRule")
        if name == "Default":
            raise SamplingRuleError(
                "The Default rule cannot be deleted; change its FixedRate or ReservoirSize "
                "with UpdateSamplingRule instead."
            )
        with self._lock:
            stored = self._rules().get(name)
            if stored is None:
                raise SamplingRuleError(
                    f"No sampling rule is named {name!r}. GetSamplingRules lists the rules."
                )
            self.store.delete_rule(name)
            self._clients.pop(name, None)
            self._last_change = max(self._last_change, time.time())
        return {"SamplingRuleRecord": _record(stored)}

    # -- targets ------------------------------------------------------------------------

    def _quota(self, rule: Mapping[str, Any], client: str, now: float) -> int:
        """This client's share of the rule's reservoir among the clients reporting it."""
        seen = self._clients.get(str(rule["RuleName"]), {})
        active = sorted(c for c, t in seen.items() if t >= now - 1.5 * self.interval_s)
        if client not in active:
            active = sorted([*active, client])
        base, extra = divmod(int(rule.get("ReservoirSize", 0)), len(active))
        return base + (1 if active.index(client) < extra else 0)

    def targets(self, body: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
        """``GetSamplingTargets``: a ``SamplingTargetDocument`` per rule reported.

        Parameters
        ----------
        body : dict
            The request: ``SamplingStatisticsDocuments`` (at most 25; ``RuleName``,
            ``ClientID``, ``Timestamp``, ``RequestCount``, ``SampledCount``,
            ``BorrowCount``), optionally ``SamplingBoostStatisticsDocuments``.
        now : float, optional
            Epoch seconds (default: the clock).

        Returns
        -------
        dict
            ``SamplingTargetDocuments`` (``RuleName``, ``FixedRate``, ``ReservoirQuota``,
            ``ReservoirQuotaTTL`` = now + ``quota_ttl_s``, ``Interval``),
            ``LastRuleModification`` (the latest rule change, rounded up to a whole second so
            the SDK, which compares whole seconds, never misses one),
            ``UnprocessedStatistics`` (rules that do not exist) and
            ``UnprocessedBoostStatistics`` (boosts are not simulated).

        Raises
        ------
        ArgumentError
            For a request X-Ray would refuse (not a list, more than 25 documents, a
            document with a missing or wrong member).
        """
        now = time.time() if now is None else float(now)
        body = _mapping(body, "the GetSamplingTargets request")
        documents = body.get("SamplingStatisticsDocuments")
        if not isinstance(documents, list):
            raise ArgumentError(
                f"GetSamplingTargets needs a SamplingStatisticsDocuments list, but got "
                f"{documents!r}."
            )
        if len(documents) > _MAX_DOCUMENTS:
            raise ArgumentError(
                f"GetSamplingTargets takes at most {_MAX_DOCUMENTS} "
                f"SamplingStatisticsDocuments, but {len(documents)} were sent."
            )
        reports = [_statistics(doc, i) for i, doc in enumerate(documents)]
        boosts = body.get("SamplingBoostStatisticsDocuments") or []
        if not isinstance(boosts, list):
            raise ArgumentError(
                f"SamplingBoostStatisticsDocuments must be a list, but got {boosts!r}."
            )
        with self._lock:
            rules = self._rules()
            for name, client in reports:
                if name in rules:
                    self._clients.setdefault(name, {})[client] = now
            for seen in self._clients.values():
                for client in [c for c, t in seen.items() if t < now - 3 * self.interval_s]:
                    del seen[client]
            targets, unprocessed, done = [], [], set()
            for name, client in reports:
                if name in done:
                    continue
                done.add(name)
                rule = rules.get(name)
                if rule is None:
                    unprocessed.append(
                        {
                            "RuleName": name,
                            "ErrorCode": "400",
                            "Message": f"No sampling rule is named {name!r}.",
                        }
                    )
                    continue
                targets.append(
                    {
                        "RuleName": name,
                        "FixedRate": float(rule["FixedRate"]),
                        "ReservoirQuota": self._quota(rule, client, now),
                        "ReservoirQuotaTTL": now + self.quota_ttl_s,
                        "Interval": self.interval_s,
                    }
                )
            changed = max(
                [self._last_change, *(float(r.get(_MODIFIED) or 0.0) for r in rules.values())]
            )
        return {
            "SamplingTargetDocuments": targets,
            "LastRuleModification": float(math.ceil(changed)),
            "UnprocessedStatistics": unprocessed,
            "UnprocessedBoostStatistics": [
                {
                    "RuleName": str(b.get("RuleName")) if isinstance(b, Mapping) else "",
                    "ErrorCode": "400",
                    "Message": "The local X-Ray does not simulate sampling boosts.",
                }
                for b in boosts
            ],
        }

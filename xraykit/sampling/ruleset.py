"""An ordered set of sampling rules (:class:`RuleSet`): evaluation order, lookup by name,
first match, frame and API views, the mode, and the per-second reservoir state that
:func:`~xraykit.sampling.decide` keeps in it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, overload

import pandas as pd

from xraykit.exceptions import (
    ArgumentError,
    ArgumentTypeError,
    NotFoundError,
    SamplingRuleError,
)
from xraykit.sampling.rules import DEFAULT_RULE, SamplingRule
from xraykit.sampling.times import _epoch_second

Mode = Literal["centralized", "local"]
_MODES = ("centralized", "local")


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
                raise ArgumentTypeError(
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

        >>> from xraykit.sampling import load_rules
        >>> load_rules([]).rule("Default").fixed_rate
        0.05
        """
        for rule in self._rules:
            if rule.name == name:
                return rule
        raise NotFoundError(f"No sampling rule named {name!r}; the rules are {self.names}.")

    def match(self, request: Mapping[str, Any]) -> SamplingRule:
        """Return the first rule that applies to ``request`` (the Default rule at the latest)."""
        for rule in self._rules:
            if rule.matches(request):
                return rule
        return self.rule("Default")  # it matches every request; this line is never reached

    def to_frame(self) -> pd.DataFrame:
        """Return the rules as a DataFrame, one row per rule in evaluation order.

        >>> from xraykit.sampling import load_rules
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
        raise ArgumentError(f"`mode` must be one of {list(_MODES)}, but {mode!r} was passed.")

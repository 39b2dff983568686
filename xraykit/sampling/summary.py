"""What a simulation sampled (:func:`sampling_summary`): requests, sampled requests and their
reasons, per rule, second, host or request field."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError
from xraykit.sampling.decision import REASONS
from xraykit.sampling.times import _time_ns

_SUMMARY_KEYS = ("rule", "second", "instance", "reason", "host", "method", "path")
_UPSTREAM_LABEL = "(upstream)"


def sampling_summary(
    data: pd.DataFrame, *, by: str | Sequence[str] | None = "rule"
) -> pd.DataFrame:
    """Count requests and sampled requests, split by reason, per rule, second or host.

    Parameters
    ----------
    data : DataFrame
        From :func:`~xraykit.sampling.simulate_sampling`. Not modified.
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
    >>> from xraykit.sampling import simulate_sampling, traffic
    >>> result = simulate_sampling(traffic(20, duration_s=60, seed=2), [], seed=2)
    >>> summary = sampling_summary(result)
    >>> int(summary.loc["Default", "requests"]) == len(result)
    True
    >>> list(summary.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['requests', 'sampled', 'sampled_share', 'sampled_per_s', 'upstream', 'reservoir',
     'borrow', 'rate', 'not_sampled']
    """
    missing = {"time", "rule", "reason", "sampled"} - set(data.columns)
    if missing:
        raise ArgumentError(
            f"`data` must come from simulate_sampling(); it lacks {sorted(missing)!r}."
        )
    keys = [by] if isinstance(by, str) else list(by or [])
    for key in keys:
        if key not in _SUMMARY_KEYS or (key != "second" and key not in data.columns):
            raise ArgumentError(
                f"`by` must be among {list(_SUMMARY_KEYS)} (columns of the "
                f"data), but {key!r} was passed."
            )
    seconds = pd.Series(np.floor_divide(_time_ns(data["time"]), 1_000_000_000), index=data.index)
    span = int(seconds.max() - seconds.min() + 1) if len(data) else 1
    frame = pd.DataFrame(
        {
            "requests": 1,
            "sampled": data["sampled"].astype(np.int64),
            "reason": data["reason"].astype(pd.CategoricalDtype(list(REASONS))),
        },
        index=data.index,
    )
    group_keys: list[pd.Series] = []
    for key in keys:
        if key == "second":
            column = pd.Series(
                pd.to_datetime(seconds * 1_000_000_000, utc=True), index=data.index, name="second"
            )
        elif key == "rule":  # upstream decisions have no rule: give them a row of their own
            rule = data["rule"]
            if isinstance(rule.dtype, pd.CategoricalDtype):
                if _UPSTREAM_LABEL not in rule.cat.categories:
                    rule = rule.cat.add_categories(_UPSTREAM_LABEL)
            else:
                rule = rule.astype(object)
            column = rule.fillna(_UPSTREAM_LABEL).rename("rule")
        else:
            column = data[key].rename(key)
        group_keys.append(column)
    if not group_keys:
        group_keys = [pd.Series("all", index=data.index, name="total")]
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

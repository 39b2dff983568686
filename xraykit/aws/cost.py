"""What a pull costs: traces scanned and retrieved, API calls, retries and throttles, priced
with :data:`xraykit.pricing.PRICES` (traces retrieved or scanned are billed together).

Examples
--------
>>> CostEstimate(traces_scanned=2_000_000, traces_retrieved=1_000).usd
1.0005
"""

from __future__ import annotations

import dataclasses

from xraykit.exceptions import ArgumentError
from xraykit.pricing import PRICES

__all__ = ["CostEstimate"]

# the one price table (xraykit.pricing.PRICES): traces retrieved or scanned, billed together
_READ_PRICE = PRICES["retrieved or scanned"]
_USD_PER_MILLION = float(_READ_PRICE["usd_per_million"])
_FREE_PER_MONTH = int(_READ_PRICE["free_per_month"])


@dataclasses.dataclass(kw_only=True)
class CostEstimate:
    """What a pull scanned, retrieved and cost, at the published X-Ray prices.

    X-Ray bills traces *scanned* (``GetTraceSummaries``' ``TracesProcessedCount``) and
    *retrieved* (``BatchGetTraces``) together: the first 1,000,000 each month are free, then
    $0.50 per million (US East list price, xray-facts §2.13; the table is
    :data:`xraykit.pricing.PRICES`, which :func:`xraykit.sampling.estimate_cost` uses too).

    The free tier is **not** applied by ``usd``: a single pull cannot know what else the
    account read that month. :meth:`usd_after_free_tier` applies it, given the traces
    already scanned or retrieved this month (the model of ``estimate_cost``).

    Examples
    --------
    >>> cost = CostEstimate(traces_scanned=1200, traces_retrieved=300,
    ...                     api_calls={"GetTraceSummaries": 2, "BatchGetTraces": 60})
    >>> cost.billable_traces, cost.total_calls
    (1500, 62)
    >>> cost.usd, cost.usd_after_free_tier(), cost.usd_after_free_tier(already_read=999_500)
    (0.00075, 0.0, 0.0005)
    >>> print(cost)  # doctest: +NORMALIZE_WHITESPACE
    1,200 traces scanned + 300 retrieved = 1,500 billable traces: $0.000750 at $0.50 per
    million, before the free tier (the first 1,000,000 scanned or retrieved each month are
    free). 62 API calls, 0 retries.
    """

    traces_scanned: int = 0
    traces_retrieved: int = 0
    api_calls: dict[str, int] = dataclasses.field(default_factory=dict)
    retries: int = 0
    throttles: int = 0
    cached_traces: int = 0

    @property
    def billable_traces(self) -> int:
        """Traces scanned plus traces retrieved (X-Ray prices them together)."""
        return self.traces_scanned + self.traces_retrieved

    @property
    def usd(self) -> float:
        """Price in US dollars at the list price, the monthly free tier NOT applied."""
        return round(self.billable_traces * _USD_PER_MILLION / 1e6, 10)

    def usd_after_free_tier(self, *, already_read: int = 0) -> float:
        """Price in US dollars with the monthly free tier applied.

        Parameters
        ----------
        already_read : int
            Traces the account already scanned or retrieved this month (what is left of the
            1,000,000 free ones is used first).
        """
        if isinstance(already_read, bool) or not isinstance(already_read, int) or already_read < 0:
            raise ArgumentError(
                f"`already_read` must be a count of traces (an int >= 0), but {already_read!r} "
                "was passed."
            )
        free_left = max(_FREE_PER_MONTH - already_read, 0)
        return round(max(self.billable_traces - free_left, 0) * _USD_PER_MILLION / 1e6, 10)

    @property
    def total_calls(self) -> int:
        """API calls made, retries included."""
        return sum(self.api_calls.values())

    def __add__(self, other: CostEstimate) -> CostEstimate:
        calls = dict(self.api_calls)
        for op, n in other.api_calls.items():
            calls[op] = calls.get(op, 0) + n
        return CostEstimate(
            traces_scanned=self.traces_scanned + other.traces_scanned,
            traces_retrieved=self.traces_retrieved + other.traces_retrieved,
            api_calls=calls,
            retries=self.retries + other.retries,
            throttles=self.throttles + other.throttles,
            cached_traces=self.cached_traces + other.cached_traces,
        )

    def __str__(self) -> str:
        text = (
            f"{self.traces_scanned:,} traces scanned + {self.traces_retrieved:,} retrieved = "
            f"{self.billable_traces:,} billable traces: ${self.usd:.6f} at "
            f"${_USD_PER_MILLION:.2f} per million, before the free tier (the first "
            f"{_FREE_PER_MONTH:,} scanned or retrieved each month are free). "
            f"{self.total_calls:,} API calls, {self.retries:,} retries."
        )
        if self.cached_traces:
            text += f" {self.cached_traces:,} traces came from the cache at no cost."
        return text

    def _repr_html_(self) -> str:
        rows = [
            ("traces scanned", f"{self.traces_scanned:,}"),
            ("traces retrieved", f"{self.traces_retrieved:,}"),
            ("traces from the cache", f"{self.cached_traces:,}"),
            ("price before the free tier", f"${self.usd:.6f}"),
            ("API calls (retries)", f"{self.total_calls:,} ({self.retries:,})"),
        ]
        body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        return (
            f"<table>{body}</table><small>${_USD_PER_MILLION:.2f} per million traces scanned "
            f"or retrieved; the first {_FREE_PER_MONTH:,} each month are free (not applied "
            "above).</small>"
        )

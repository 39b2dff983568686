"""What X-Ray charges, stated once: the sampling simulator and the live pull both price with it.

US East list prices. Traces *recorded* (sent by the SDK or daemon) and traces *retrieved or
scanned* (read back through ``BatchGetTraces`` and ``GetTraceSummaries``) are billed
separately, each after its own monthly free tier.

Examples
--------
>>> PRICES["retrieved or scanned"]["usd_per_million"]
0.5
>>> PRICES["recorded"]["free_per_month"]
100000
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PRICES"]

PRICES: Mapping[str, Mapping[str, float]] = {
    "recorded": {"free_per_month": 100_000, "usd_per_million": 5.00},
    "retrieved or scanned": {"free_per_month": 1_000_000, "usd_per_million": 0.50},
}

"""The generator's only source of randomness: a seeded rng, the ids it draws, arrival times.

A :class:`random.Random` seeded once per scenario; only its ``random()`` and
``getrandbits()`` streams (stable across Python versions) are used, ``gauss()`` being computed
from ``random()``. Nothing reads the wall clock or ``os.urandom``, so a seed always gives the
same bytes. Made-up clients come from the RFC 5737 documentation address ranges and a
handful of common user agents.
"""

from __future__ import annotations

import base64
import bisect
import math
import random
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["CLIENT_NETS", "USER_AGENTS", "Rng"]

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/133.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.3 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0",
    "ShopApp/4.12.0 (Android 15; Pixel 8)",
)
# documentation address ranges (RFC 5737): no real client is named
CLIENT_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")


class Rng:
    """The single source of randomness: a seeded :class:`random.Random` plus id helpers."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def u(self, a: float, b: float) -> float:
        return a + (b - a) * self.r.random()

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def pick(self, seq: tuple[Any, ...] | list[Any]) -> Any:
        return seq[int(self.r.random() * len(seq))]

    def weighted(self, items: tuple[Any, ...], weights: tuple[float, ...]) -> Any:
        x = self.r.random() * sum(weights)
        for item, w in zip(items, weights, strict=True):
            x -= w
            if x < 0:
                return item
        return items[-1]

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * self.r.gauss(0.0, 1.0))

    def hex(self, digits: int) -> str:
        return f"{self.r.getrandbits(4 * digits):0{digits}x}"

    def entity_id(self) -> str:
        return self.hex(16)

    def trace_id(self, start: float) -> str:
        return f"1-{int(start):08x}-{self.hex(24)}"

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def alnum(self, n: int, alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") -> str:
        return "".join(alphabet[int(self.r.random() * len(alphabet))] for _ in range(n))

    def dynamodb_request_id(self) -> str:
        """52 upper-case letters and digits, like DynamoDB's x-amzn-RequestId."""
        return base64.b32hexencode(self.r.getrandbits(280).to_bytes(35, "big")).decode()[:52]

    def client_ip(self) -> str:
        return f"{self.pick(CLIENT_NETS)}{1 + int(self.r.random() * 254)}"

    def arrivals(
        self, n: int, t0: float, seconds: int, rate: Callable[[float], float]
    ) -> list[float]:
        """Draw ``n`` sorted arrival times in ``[t0, t0 + seconds)`` with density ``rate``."""
        cum: list[float] = []
        total = 0.0
        for s in range(seconds):
            total += rate(s + 0.5)
            cum.append(total)
        times = []
        for _ in range(n):
            s = bisect.bisect_right(cum, self.r.random() * total)
            times.append(t0 + min(s, seconds - 1) + self.r.random())
        return sorted(times)

"""Talking to X-Ray: the connection (client, region, session), the botocore config of
xraykit's clients, the retry policy with its client-side rate cap, the caller that retries,
paces and counts every call, and the account id of a session (STS, asked once per process).

boto3 and botocore are imported only when a call needs them (``xraykit[aws]``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable
from typing import Any

from xraykit.arguments import is_loopback
from xraykit.aws.errors import _error_code, _error_message, _retry_kind, translate_error
from xraykit.exceptions import ArgumentError, XrayKitWarning, require

__all__ = ["Connection", "RetryPolicy", "client_config", "connect"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How xraykit retries and paces X-Ray calls.

    Parameters
    ----------
    max_attempts : int
        Attempts per call (and per trace id left in ``UnprocessedTraceIds``), first included.
    base_delay, max_delay : float
        Backoff before attempt *n* (n ≥ 1) is uniform in ``[0, min(max_delay,
        base_delay * 2**(n-1))]`` seconds ("full jitter").
    rate : float or None
        Client-side cap on calls per second across all threads (a token bucket); halved each
        time X-Ray throttles (not below ``min_rate``) and recovering by 1 call/s per success.
        ``None`` switches the cap off.
    burst : int
        Calls that may start at once before the cap applies.
    sleep : callable or None
        ``sleep(seconds)``; ``None`` waits on an event that Ctrl-C interrupts. Tests pass a
        function that records the delays instead of waiting.
    clock : callable
        Monotonic seconds for the token bucket (tests pass a fake clock).
    seed : int or None
        Seed of the jitter's random generator.

    Examples
    --------
    >>> delays = []
    >>> policy = RetryPolicy(sleep=delays.append, seed=1)
    >>> 0 <= policy.backoff(3, random.Random(1)) <= 0.8
    True
    """

    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 20.0
    rate: float | None = 200.0
    burst: int = 20
    min_rate: float = 1.0
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] = time.monotonic
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ArgumentError(
                f"`max_attempts` must be at least 1, but {self.max_attempts!r} was passed."
            )
        if self.rate is not None and self.rate <= 0:
            raise ArgumentError(f"`rate` must be positive or None, but {self.rate!r} was passed.")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Return the delay before retry number ``attempt`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        return rng.uniform(0.0, ceiling)


class _TokenBucket:
    """A thread-safe token bucket that hands out reservations (no busy waiting)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._max_rate = policy.rate
        self.rate = policy.rate
        self._min_rate = policy.min_rate
        self._burst = float(max(policy.burst, 1))
        self._clock = policy.clock
        self._tokens = self._burst
        self._last = self._clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        if self.rate is None:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def throttled(self) -> None:
        if self.rate is not None:
            with self._lock:
                self.rate = max(self._min_rate, self.rate / 2)

    def succeeded(self) -> None:
        if self.rate is not None and self._max_rate is not None and self.rate < self._max_rate:
            with self._lock:
                self.rate = min(self._max_rate, self.rate + 1.0)


class _Interrupted(Exception):
    """Raised inside workers once the pull was stopped."""


class _Exhausted(Exception):
    """A retryable failure that outlived every attempt."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(reason)
        self.operation = operation
        self.reason = reason


class _Caller:
    """Calls one boto3 client with retries, the rate cap, counting and error translation."""

    def __init__(self, client: Any, policy: RetryPolicy, cancel: threading.Event | None = None):
        self.client = client
        self.policy = policy
        self.stop = threading.Event()  # this pull's workers stop
        self.cancel = cancel  # set from outside (fetch_accounts' Ctrl-C): stop as well
        self.bucket = _TokenBucket(policy)
        self._rng = random.Random(policy.seed)
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.retries = 0
        self.throttles = 0

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.policy.sleep is not None:
            self.policy.sleep(seconds)
        elif self.stop.wait(seconds):
            raise _Interrupted
        if self.cancel is not None and self.cancel.is_set():
            raise _Interrupted

    def backoff(self, attempt: int) -> None:
        with self._lock:
            delay = self.policy.backoff(attempt, self._rng)
            self.retries += 1
        self.sleep(delay)

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call ``operation`` (CamelCase), retrying throttles, 5xx answers and timeouts."""
        botocore_exceptions = require("botocore.exceptions", "aws")
        method = getattr(self.client, _snake(operation))
        attempt = 0
        while True:
            if self.stop.is_set() or (self.cancel is not None and self.cancel.is_set()):
                raise _Interrupted
            self.sleep(self.bucket.reserve())
            with self._lock:
                self.calls[operation] = self.calls.get(operation, 0) + 1
            try:
                response = method(**params)
            except botocore_exceptions.ClientError as exc:  # type: ignore[attr-defined]
                kind = _retry_kind(exc)
                if kind is None:
                    raise translate_error(exc, operation, params) from exc
                if kind == "throttle":
                    self.bucket.throttled()
                    with self._lock:
                        self.throttles += 1
                reason = f"{_error_code(exc)}: {_error_message(exc)}"
            except (
                botocore_exceptions.ReadTimeoutError,  # type: ignore[attr-defined]
                botocore_exceptions.ConnectionClosedError,  # type: ignore[attr-defined]
                botocore_exceptions.ConnectTimeoutError,  # type: ignore[attr-defined]
                botocore_exceptions.EndpointConnectionError,  # type: ignore[attr-defined]
            ) as exc:
                if isinstance(exc, botocore_exceptions.EndpointConnectionError) and (  # type: ignore[attr-defined]
                    attempt + 1 >= min(self.policy.max_attempts, 3)
                ):
                    raise translate_error(exc, operation, params) from exc
                reason = f"{type(exc).__name__}: {exc}"
            except botocore_exceptions.BotoCoreError as exc:  # type: ignore[attr-defined]
                raise translate_error(exc, operation, params) from exc
            else:
                self.bucket.succeeded()
                return response
            attempt += 1
            if attempt >= self.policy.max_attempts:
                raise _Exhausted(operation, f"{reason} (after {attempt} attempts)")
            self.backoff(attempt)


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


@dataclasses.dataclass
class Connection:
    """An X-Ray client and where it points (from :func:`connect`); ``session`` when known."""

    client: Any
    region: str
    endpoint: str
    session: Any = None


def _boto3() -> Any:
    return require("boto3", "aws")


def client_config(concurrency: int) -> Any:
    """The botocore Config of xraykit's clients: no botocore retries (xraykit retries and
    counts every attempt), a connection pool for ``concurrency`` threads, timeouts."""
    botocore_config = require("botocore.config", "aws")
    return botocore_config.Config(  # type: ignore[attr-defined]
        retries={"mode": "standard", "total_max_attempts": 1},  # xraykit retries itself
        max_pool_connections=max(10, concurrency + 2),
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra="xraykit",
    )


def connect(
    *,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    concurrency: int = 8,
    endpoint_url: str | None = None,
) -> Connection:
    """Resolve the X-Ray client from ``client``, ``session`` or ``profile`` + ``region``.

    ``endpoint_url`` points the client elsewhere than AWS, e.g. at :mod:`xraykit.local`; a
    loopback endpoint needs no credentials (dummy ones are used when none are configured)
    and defaults the region to us-east-1.
    """
    if client is not None:
        return Connection(
            client=client,
            region=str(client.meta.region_name or ""),
            endpoint=str(client.meta.endpoint_url or ""),
        )
    boto3 = _boto3()
    botocore_exceptions = require("botocore.exceptions", "aws")
    if session is not None and profile is not None:
        raise ArgumentError("Pass either `session` or `profile`, not both.")
    local = endpoint_url is not None and _is_loopback(endpoint_url)
    try:
        if session is None:
            session = boto3.Session(profile_name=profile)
        credentials = session.get_credentials()
        if credentials is None and local:  # a local X-Ray checks no signature
            session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local")
        elif credentials is None:
            missing = botocore_exceptions.NoCredentialsError()  # type: ignore[attr-defined]
            raise translate_error(missing, "GetTraceSummaries", {})
        if local and region is None and session.region_name is None:
            region = "us-east-1"
        xray = session.client(
            "xray", region_name=region, endpoint_url=endpoint_url, config=client_config(concurrency)
        )
    except botocore_exceptions.BotoCoreError as exc:  # type: ignore[attr-defined]
        raise translate_error(exc, "GetTraceSummaries", {}) from exc
    return Connection(
        client=xray,
        region=str(xray.meta.region_name or ""),
        endpoint=str(xray.meta.endpoint_url or ""),
        # the session's account (asked from STS) is not the endpoint's when it is not AWS
        session=None if endpoint_url is not None else session,
    )


def _is_loopback(url: str) -> bool:
    """Whether the endpoint ``url`` is on this machine.

    >>> _is_loopback("http://127.0.0.1:2000"), _is_loopback("https://xray.us-east-1.amazonaws.com")
    (True, False)
    """
    return is_loopback(urllib.parse.urlsplit(url).hostname or "")


_IDENTITY_CACHE: dict[str, str] = {}
_IDENTITY_LOCK = threading.Lock()


def _account_id(conn: Connection, policy: RetryPolicy) -> str | None:
    """The account of the connection's session (STS GetCallerIdentity, once per process).

    None when it cannot be known: a ready client was passed (its credentials are not public),
    or STS could not be asked (no permission, an endpoint without STS); the reason is warned
    about, and the pull goes on without the cache.
    """
    if conn.session is None:
        warnings.warn(
            "The cache is kept per AWS account, and the account of a client passed as "
            "`client=` is not known: this pull does not use the cache. Pass account_id="
            "'123456789012' (or session= instead of client=) to use it, or cache=False to "
            "silence this.",
            XrayKitWarning,
            stacklevel=4,
        )
        return None
    credentials = conn.session.get_credentials()
    frozen = credentials.get_frozen_credentials() if credentials is not None else None
    access_key = getattr(frozen, "access_key", "") or ""
    key = hashlib.sha256(access_key.encode()).hexdigest()  # never the key itself
    with _IDENTITY_LOCK:
        if key in _IDENTITY_CACHE:
            return _IDENTITY_CACHE[key]
    try:
        sts = conn.session.client("sts", region_name=conn.region or None,
                                  config=client_config(1))  # fmt: skip
        account = str(_Caller(sts, policy).call("GetCallerIdentity")["Account"])
    except Exception as exc:  # the cache is optional: any failure here only costs the cache
        reason = exc.reason if isinstance(exc, _Exhausted) else f"{type(exc).__name__}: {exc}"
        warnings.warn(
            "The cache is kept per AWS account, and STS GetCallerIdentity could not tell "
            f"which account these credentials belong to ({reason.replace('xray:', 'sts:')}). "
            "This pull does not use the cache; pass account_id='123456789012' to use it, or "
            "cache=False to silence this.",
            XrayKitWarning,
            stacklevel=4,
        )
        return None
    with _IDENTITY_LOCK:
        _IDENTITY_CACHE[key] = account
    return account

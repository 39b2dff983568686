"""Load traces from a real AWS account: fast, cheap, resumable.

``fetch`` asks ``GetTraceSummaries`` which traces exist (in windows of at most six hours,
newest first, every page), then pulls the full traces with ``BatchGetTraces`` in chunks of
at most five ids on a thread pool that shares one boto3 client (clients are thread-safe,
sessions are not). It returns the same :class:`~xraykit.traceset.TraceSet` a shipped sample
gives, plus two attributes:

``ts.summaries``
    one row per ``TraceSummary`` (see :func:`summaries_frame` for the columns);
``ts.cost``
    a :class:`CostEstimate`: traces scanned and retrieved, API calls and retries, and what
    that costs at the published price.

How it deals with X-Ray's limits
--------------------------------
* Throttling (``ThrottledException``, HTTP 429), 5xx answers and timeouts are retried with
  exponential backoff and full jitter; a client-side token bucket caps the call rate and
  halves it whenever X-Ray throttles (:class:`RetryPolicy`). botocore's own retries are
  switched off on the clients xraykit creates, so every attempt is counted and the delays are
  injectable (tests pass ``RetryPolicy(sleep=...)``).
* ``UnprocessedTraceIds`` are asked for again, and only those: each trace is retrieved once.
  A trace that still fails after the last attempt becomes a row of ``ts.problems``
  (source ``"BatchGetTraces"``) instead of aborting the load.
* Ctrl-C (``KeyboardInterrupt``) stops the pull and returns what was fetched so far with an
  :class:`~xraykit.exceptions.XrayKitWarning`; the fetched traces are cached, so the next
  call resumes where this one stopped.
* Accounts whose trace segment destination is ``CloudWatchLogs`` (Transaction Search) cannot
  use ``BatchGetTraces``; ``fetch`` detects them and uses ``StartTraceRetrieval`` /
  ``ListRetrievedTraces`` in X-Ray format instead. The result has the same shape.

The cache
---------
Under ``platformdirs.user_cache_dir("xraykit")`` (or ``cache_dir=``, or the
``XRAYKIT_CACHE_DIR`` environment variable), one folder per account (from STS
``GetCallerIdentity``, asked once per process) and region:

* ``summaries/<key>.parquet`` — the summaries of one query (window, filter expression, group,
  time-range type, ``max_traces``), written only for windows that ended more than
  :data:`SETTLED_AFTER` ago, so a repeated look at the past costs no API call at all;
* ``traces/part-*.parquet`` plus ``traces/index.parquet`` — every complete trace pulled
  (saved with ``TraceSet.save``), whatever the query: a trace is retrieved from AWS once,
  a later query that lists it reads it from disk.

Nothing but trace data, summaries and the account id is written: never credentials.
The account comes from ``account_id=`` or STS (with a ``session``/``profile``); a ready
``client=`` has no public way to tell its credentials, so without ``account_id=`` it pulls
without the cache (with a warning). Summaries of a group are keyed by the group's name: a
changed group filter expression is not noticed (pass ``cache=False`` once).

Shared with xraykit.aws.accounts
----------------------------
:func:`build_query`, :class:`Query`, :func:`connect`, :class:`Connection`,
:func:`client_config`, :func:`translate_error` and :func:`pull` are what
:func:`xraykit.aws.accounts.fetch_accounts` builds on. They are documented and kept stable
between the two modules, but are not part of ``__all__``: use :func:`fetch`.

Examples
--------
Against a real account (needs ``pip install "xraykit[aws]"`` and credentials)::

    ts = xraykit.fetch(since="1h", filter_expression='service("orders-api") AND fault')
    ts.summaries.head()
    print(ts.cost)

Offline, the pieces that do not need AWS:

>>> from xraykit.aws import CostEstimate, time_windows
>>> import pandas as pd
>>> len(time_windows(pd.Timestamp("2024-05-01", tz="UTC"), pd.Timestamp("2024-05-02", tz="UTC")))
4
>>> CostEstimate(traces_scanned=2_000_000, traces_retrieved=1_000).usd
1.0005
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import os
import random
import re
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from xraykit.exceptions import (
    FilterExpressionError,
    LiveAccessError,
    LiveFilterExpressionError,
    XrayKitWarning,
    require,
)
from xraykit.pricing import PRICES
from xraykit.query import validate as _validate_expression

if TYPE_CHECKING:
    from xraykit.graph import ServiceGraph
    from xraykit.traceset import TraceSet

__all__ = [
    "MAX_IDS_PER_BATCH",
    "MAX_WINDOW",
    "SETTLED_AFTER",
    "CostEstimate",
    "RetryPolicy",
    "fetch",
    "fetch_groups",
    "fetch_sampling_rules",
    "fetch_service_graph",
    "fetch_summaries",
    "groups_frame",
    "parse_since",
    "sampling_rules_frame",
    "summaries_frame",
    "summary_root_cause_paths",
    "time_windows",
]

#: ``BatchGetTraces`` rejects more than five trace ids per call.
MAX_IDS_PER_BATCH = 5
#: ``GetTraceSummaries`` is asked over windows of at most this length.
MAX_WINDOW = timedelta(hours=6)
#: A window that ended longer ago than this is settled: its summaries are cached.
SETTLED_AFTER = timedelta(minutes=15)
#: ``StartTraceRetrieval`` takes at most this many ids.
MAX_IDS_PER_RETRIEVAL = 100
#: X-Ray keeps traces this long.
RETENTION = timedelta(days=30)
# the one price table (xraykit.pricing.PRICES): traces retrieved or scanned, billed together
_READ_PRICE = PRICES["retrieved or scanned"]
_USD_PER_MILLION = float(_READ_PRICE["usd_per_million"])
_FREE_PER_MONTH = int(_READ_PRICE["free_per_month"])

_TIME_RANGE_TYPES = ("TraceId", "Event", "Service")
_READ_ONLY_POLICY = "AWSXrayReadOnlyAccess"
_THROTTLE_CODES = frozenset(
    {
        "ThrottledException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "429",
    }
)
_TRANSIENT_CODES = frozenset(
    {"InternalFailure", "InternalServerError", "ServiceUnavailable", "RequestTimeout"}
)
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedException",
        "Forbidden",
        "403",
    }
)
_EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
)
_BAD_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)


# --------------------------------------------------------------------------------------
# time windows


_SINCE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|min|s)", re.IGNORECASE)
_SINCE_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0}


def parse_since(since: str | float | timedelta) -> timedelta:
    """Return the look-back period ``since`` as a timedelta.

    Parameters
    ----------
    since : str, number or timedelta
        ``"90s"``, ``"15m"``, ``"1h"``, ``"1h30m"``, ``"2d"``, ``"1w"``; a number is seconds.

    Raises
    ------
    ValueError
        When the text is not a positive duration.

    Examples
    --------
    >>> parse_since("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_since(45)
    datetime.timedelta(seconds=45)
    """
    if isinstance(since, timedelta):
        period = since
    elif isinstance(since, int | float) and not isinstance(since, bool):
        period = timedelta(seconds=float(since))
    elif isinstance(since, str):
        text = since.strip().replace(" ", "")
        parts = list(_SINCE_RE.finditer(text))
        if not parts or "".join(p.group(0) for p in parts).lower() != text.lower():
            raise ValueError(
                f"`since` must be a duration such as '15m', '1h', '1h30m' or '2d', "
                f"but {since!r} was passed."
            )
        seconds = sum(float(p.group(1)) * _SINCE_UNITS[p.group(2).lower()] for p in parts)
        period = timedelta(seconds=seconds)
    else:
        raise ValueError(
            f"`since` must be a string such as '1h', a number of seconds or a timedelta, "
            f"but {since!r} was passed."
        )
    if period <= timedelta(0):
        raise ValueError(f"`since` must be a positive duration, but {since!r} was passed.")
    return period


def _timestamp(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"`{name}` must be a datetime, a pandas Timestamp or an ISO 8601 string, "
            f"but {value!r} was passed."
        ) from exc
    if ts is pd.NaT:
        raise ValueError(f"`{name}` must be a time, but {value!r} was passed.")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _resolve_window(
    since: str | float | timedelta | None,
    start: Any,
    end: Any,
    now: pd.Timestamp | None = None,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the (start, end) of a query in UTC; naive times are taken as UTC."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    end_ts = now if end is None else _timestamp(end, "end")
    if start is not None:
        start_ts = _timestamp(start, "start")
    else:
        start_ts = end_ts - parse_since("1h" if since is None else since)
    if start_ts >= end_ts:
        raise ValueError(
            f"`start` must be before `end`, but start={start_ts.isoformat()!r} and "
            f"end={end_ts.isoformat()!r} were asked for. Swap them or use since='1h'."
        )
    if start_ts < now - RETENTION:
        warnings.warn(
            f"X-Ray keeps traces for 30 days; the window starting {start_ts.isoformat()!r} "
            "reaches further back, so its oldest part will be empty.",
            XrayKitWarning,
            stacklevel=3,
        )
    return start_ts, end_ts


def time_windows(
    start: pd.Timestamp, end: pd.Timestamp, *, size: timedelta = MAX_WINDOW
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Split ``[start, end)`` into consecutive windows of at most ``size``, newest first.

    ``GetTraceSummaries`` scans backwards from the end of its window, so newest first gives
    the most recent traces first when ``max_traces`` cuts a pull short.

    Examples
    --------
    >>> import pandas as pd
    >>> w = time_windows(pd.Timestamp("2024-05-01 00:00", tz="UTC"),
    ...                  pd.Timestamp("2024-05-01 07:00", tz="UTC"))
    >>> [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in w]
    [('01:00', '07:00'), ('00:00', '01:00')]
    """
    if size <= timedelta(0):
        raise ValueError(f"`size` must be positive, but {size!r} was passed.")
    windows = []
    upper = end
    while upper > start:
        lower = max(start, upper - size)
        windows.append((lower, upper))
        upper = lower
    return windows


# --------------------------------------------------------------------------------------
# retries and the rate cap


@dataclasses.dataclass(frozen=True)
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
            raise ValueError(
                f"`max_attempts` must be at least 1, but {self.max_attempts!r} was passed."
            )
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"`rate` must be positive or None, but {self.rate!r} was passed.")

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


@dataclasses.dataclass
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

    def usd_after_free_tier(self, already_read: int = 0) -> float:
        """Price in US dollars with the monthly free tier applied.

        Parameters
        ----------
        already_read : int
            Traces the account already scanned or retrieved this month (what is left of the
            1,000,000 free ones is used first).
        """
        if isinstance(already_read, bool) or not isinstance(already_read, int) or already_read < 0:
            raise ValueError(
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


def _error_code(exc: Any) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "") or "")


def _error_message(exc: Any) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "") or str(exc))


def _retry_kind(exc: Any) -> str | None:
    code = _error_code(exc)
    status = (
        (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    )
    if code in _THROTTLE_CODES or status == 429:
        return "throttle"
    if code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500):
        return "transient"
    return None


# --------------------------------------------------------------------------------------
# errors


def translate_error(exc: BaseException, operation: str, params: dict[str, Any]) -> LiveAccessError:
    """Turn a boto3/botocore error into a LiveAccessError that says how to fix it."""
    name = type(exc).__name__
    code = _error_code(exc)
    message = _error_message(exc)
    action = f"xray:{operation}" if not operation.startswith("sts:") else operation
    if name in {"NoCredentialsError", "PartialCredentialsError"}:
        return LiveAccessError(
            f"No AWS credentials were found ({exc}). Expected a profile or credentials in the "
            "environment. Fix: run `aws configure` (or `aws sso login --profile NAME`) and pass "
            "profile='NAME', or set AWS_PROFILE; to work offline, use "
            "xraykit.load_sample('shop') instead."
        )
    if name == "ProfileNotFound":
        profile = getattr(exc, "kwargs", {}).get("profile")
        return LiveAccessError(
            f"The AWS profile {profile!r} was not found in ~/.aws/config or ~/.aws/credentials. "
            "Fix: pass the name of a profile from ~/.aws/config (`aws configure "
            "list-profiles` lists them), or create one with `aws configure --profile NAME`."
        )
    if name == "NoRegionError":
        return LiveAccessError(
            "No AWS region was given. Fix: pass region='us-east-1' (the region your traces are "
            "in), or set AWS_REGION / AWS_DEFAULT_REGION, or add `region = ...` to the profile."
        )
    if (
        name
        in {
            "TokenRetrievalError",
            "SSOTokenLoadError",
            "UnauthorizedSSOTokenError",
            "CredentialRetrievalError",
        }
        or code in _EXPIRED_CODES
    ):
        return LiveAccessError(
            f"The AWS credentials have expired or could not be refreshed ({code or name}: "
            f"{message}). Fix: refresh them (`aws sso login --profile NAME`, or new temporary "
            "keys for AWS_SESSION_TOKEN) and call again; cached traces are kept."
        )
    if name in {"EndpointConnectionError", "ConnectTimeoutError"}:
        return LiveAccessError(
            f"The X-Ray endpoint could not be reached ({exc}). Fix: check the network, any "
            "proxy (HTTPS_PROXY) or VPC endpoint, and that the region name is right; to work "
            "offline, use xraykit.load_sample('shop')."
        )
    if code in _DENIED_CODES:
        return LiveAccessError(
            f"AWS refused {action} ({code}: {message}). Fix: allow the IAM action {action!r} "
            f"for these credentials, {_remedy(action)}"
        )
    if code in _BAD_CREDENTIAL_CODES:
        return LiveAccessError(
            f"AWS did not accept these credentials ({code}: {message}). Fix: check the access "
            "key and secret (`aws sts get-caller-identity` shows who you are), or choose "
            "another profile with profile='NAME'."
        )
    if code == "InvalidRequestException" and params.get("FilterExpression"):
        expression = params["FilterExpression"]
        return LiveFilterExpressionError(
            f"X-Ray rejected the filter expression {expression!r}: {message}. Fix: correct it "
            "(xraykit.query.validate(expression) checks one offline) and call again.",
            expression=expression,
        )
    if code == "InvalidRequestException":
        shown = {k: v for k, v in params.items() if k != "TraceIds"}
        return LiveAccessError(
            f"X-Ray rejected {operation} with {shown!r}: {message}. Fix: check the time window "
            "(at most 30 days back, start before end) and the group name."
        )
    return LiveAccessError(
        f"{operation} failed ({code or name}: {message}). Fix: check the credentials, region "
        "and permissions, then call again; cached traces are kept."
    )


#: Actions the managed policy AWSXrayReadOnlyAccess does not grant (Transaction Search).
_TRANSACTION_SEARCH_ACTIONS = frozenset(
    {"xray:StartTraceRetrieval", "xray:ListRetrievedTraces", "xray:GetTraceSegmentDestination"}
)


def _remedy(action: str) -> str:
    """How to grant ``action``: the policy that holds it."""
    if action in _TRANSACTION_SEARCH_ACTIONS:
        return (
            f"which {_READ_ONLY_POLICY} does not grant: attach the policy "
            "xraykit.aws.accounts.read_only_policy(transaction_search=True) returns (it has the "
            "Transaction Search actions xray:StartTraceRetrieval, xray:ListRetrievedTraces "
            "and xray:GetTraceSegmentDestination)."
        )
    if action == "sts:AssumeRole":
        return (
            "with xraykit.aws.accounts.assume_role_policy([...]), and check that the role's trust "
            "policy names you (xraykit.aws.accounts.trust_policy(...))."
        )
    if action.startswith("sts:"):
        return "(any IAM identity may call it unless an explicit Deny or an SCP forbids it)."
    return (
        f"for example by attaching the managed policy {_READ_ONLY_POLICY} "
        "(xraykit.aws.accounts.read_only_policy() returns a minimal one)."
    )


def _validate_filter(expression: str | None) -> None:
    """Check a filter expression offline (xraykit.query), before any API call."""
    if expression is None:
        return
    if not isinstance(expression, str):
        raise LiveFilterExpressionError(
            f"`filter_expression` must be a string, but {expression!r} was passed.",
            expression=repr(expression),
        )
    if not expression.strip():
        raise LiveFilterExpressionError(
            "`filter_expression` must not be empty; pass None to fetch every trace.",
            expression=expression,
        )
    try:
        _validate_expression(expression)
    except FilterExpressionError as exc:
        raise LiveFilterExpressionError(
            f"The filter expression is not valid, so no API call was made: {exc}",
            expression=expression,
            position=exc.position,
        ) from exc


# --------------------------------------------------------------------------------------
# connections


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
) -> Connection:
    """Resolve the X-Ray client from ``client``, ``session`` or ``profile`` + ``region``."""
    if client is not None:
        return Connection(
            client=client,
            region=str(client.meta.region_name or ""),
            endpoint=str(client.meta.endpoint_url or ""),
        )
    boto3 = _boto3()
    botocore_exceptions = require("botocore.exceptions", "aws")
    if session is not None and profile is not None:
        raise ValueError("Pass either `session` or `profile`, not both.")
    try:
        if session is None:
            session = boto3.Session(profile_name=profile)
        credentials = session.get_credentials()
        if credentials is None:
            raise botocore_exceptions.NoCredentialsError()  # type: ignore[attr-defined]
        xray = session.client("xray", region_name=region, config=client_config(concurrency))
    except botocore_exceptions.BotoCoreError as exc:  # type: ignore[attr-defined]
        raise translate_error(exc, "GetTraceSummaries", {}) from exc
    return Connection(
        client=xray,
        region=str(xray.meta.region_name or ""),
        endpoint=str(xray.meta.endpoint_url or ""),
        session=session,
    )


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


# --------------------------------------------------------------------------------------
# summaries


_SUMMARY_COLUMNS: dict[str, str] = {
    "trace_id": "str",
    "start": "datetime64[us, UTC]",
    "duration_s": "float64",
    "response_time_s": "float64",
    "has_fault": "bool",
    "has_error": "bool",
    "has_throttle": "bool",
    "is_partial": "bool",
    "http_method": "str",
    "http_url": "str",
    "http_status": "Int64",
    "user_agent": "str",
    "client_ip": "str",
    "users": "str",
    "entry_point_name": "str",
    "entry_point_type": "str",
    "entry_point_account_id": "str",
    "service_names": "str",
    "account_ids": "str",
    "service_count": "int64",
    "resource_arns": "str",
    "instance_ids": "str",
    "availability_zones": "str",
    "fault_root_cause_count": "int64",
    "fault_root_cause_service": "str",
    "fault_root_cause_entity": "str",
    "fault_root_cause_exception": "str",
    "fault_root_cause_message": "str",
    "error_root_cause_count": "int64",
    "error_root_cause_service": "str",
    "error_root_cause_entity": "str",
    "error_root_cause_exception": "str",
    "error_root_cause_message": "str",
    "response_time_root_cause_count": "int64",
    "response_time_root_cause_service": "str",
    "response_time_root_cause_entity": "str",
    "response_time_root_cause_coverage": "float64",
    "fault_root_causes": "str",
    "error_root_causes": "str",
    "response_time_root_causes": "str",
    "revision": "Int64",
    "matched_event_time": "datetime64[us, UTC]",
}

_ROOT_CAUSE_FIELDS = {
    "fault": "FaultRootCauses",
    "error": "ErrorRootCauses",
    "response_time": "ResponseTimeRootCauses",
}


def _trace_id_time(trace_id: str) -> float | None:
    parts = trace_id.split("-")
    if len(parts) == 3 and len(parts[1]) == 8:
        try:
            return float(int(parts[1], 16))
        except ValueError:
            return None
    return None


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _joined(values: Iterable[Any]) -> str | None:
    seen = sorted({str(v) for v in values if v not in (None, "")})
    return ",".join(seen) if seen else None


def _deepest(causes: list[dict[str, Any]]) -> tuple[str | None, str | None, dict[str, Any]]:
    """Service name, entity path and deepest entity of a trace's first root cause."""
    for cause in causes:
        for service in reversed(cause.get("Services") or []):
            path = service.get("EntityPath") or []
            if path:
                names = " > ".join(str(e.get("Name", "")) for e in path)
                return service.get("Name"), names, path[-1]
    return None, None, {}


def _summary_row(s: dict[str, Any]) -> dict[str, Any]:
    trace_id = str(s.get("Id", ""))
    http = s.get("Http") or {}
    services = s.get("ServiceIds") or []
    entry = s.get("EntryPoint") or {}
    start = _epoch(s.get("StartTime"))
    row: dict[str, Any] = {
        "trace_id": trace_id,
        "start": start if start is not None else _trace_id_time(trace_id),
        "duration_s": s.get("Duration"),
        "response_time_s": s.get("ResponseTime"),
        "has_fault": bool(s.get("HasFault", False)),
        "has_error": bool(s.get("HasError", False)),
        "has_throttle": bool(s.get("HasThrottle", False)),
        "is_partial": bool(s.get("IsPartial", False)),
        "http_method": (http.get("HttpMethod") or None),
        "http_url": http.get("HttpURL"),
        "http_status": http.get("HttpStatus"),
        "user_agent": http.get("UserAgent"),
        "client_ip": http.get("ClientIp"),
        "users": _joined(u.get("UserName") for u in s.get("Users") or []),
        "entry_point_name": entry.get("Name"),
        "entry_point_type": entry.get("Type"),
        "entry_point_account_id": entry.get("AccountId"),
        "service_names": _joined(x.get("Name") for x in services),
        "account_ids": _joined(x.get("AccountId") for x in services),
        "service_count": len(
            {(x.get("Name"), x.get("Type"), x.get("AccountId")) for x in services}
        ),
        "resource_arns": _joined(x.get("ARN") for x in s.get("ResourceARNs") or []),
        "instance_ids": _joined(x.get("Id") for x in s.get("InstanceIds") or []),
        "availability_zones": _joined(x.get("Name") for x in s.get("AvailabilityZones") or []),
        "revision": s.get("Revision"),
        "matched_event_time": _epoch(s.get("MatchedEventTime")),
    }
    if isinstance(row["http_method"], str):
        row["http_method"] = row["http_method"].upper()
    for prefix, field in _ROOT_CAUSE_FIELDS.items():
        causes = s.get(field) or []
        service, path, entity = _deepest(causes)
        row[f"{prefix}_root_cause_count"] = len(causes)
        row[f"{prefix}_root_cause_service"] = service
        row[f"{prefix}_root_cause_entity"] = path
        row[f"{prefix}_root_causes"] = json.dumps(causes, default=str) if causes else None
        if prefix == "response_time":
            row[f"{prefix}_root_cause_coverage"] = entity.get("Coverage")
        else:
            first = (entity.get("Exceptions") or [{}])[0]
            row[f"{prefix}_root_cause_exception"] = first.get("Name")
            row[f"{prefix}_root_cause_message"] = first.get("Message")
    for key, values in (s.get("Annotations") or {}).items():
        value: Any = None
        for item in values or []:
            annotation = item.get("AnnotationValue") or {}
            for kind in ("StringValue", "NumberValue", "BooleanValue"):
                if kind in annotation:
                    value = annotation[kind]
                    break
            if value is not None:
                break
        row[f"annotation.{key}"] = value
    return row


def summaries_frame(summaries: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Turn ``TraceSummary`` records (as boto3 returns them) into one row per trace.

    Columns (snake_case of the ``TraceSummary`` fields; lists joined with commas, sorted):

    ``trace_id``, ``start`` (``StartTime``, else the time in the trace id; UTC),
    ``duration_s``, ``response_time_s``, ``has_fault``, ``has_error``, ``has_throttle``,
    ``is_partial``; the root request ``http_method``, ``http_url``, ``http_status`` (Int64),
    ``user_agent``, ``client_ip``; ``users``; ``entry_point_name`` / ``_type`` /
    ``_account_id``; ``service_names``, ``account_ids``, ``service_count`` (from
    ``ServiceIds``); ``resource_arns``, ``instance_ids``, ``availability_zones``;

    root causes, flattened to the first cause's deepest entity, for ``fault``, ``error`` and
    ``response_time``: ``<kind>_root_cause_count``, ``<kind>_root_cause_service``,
    ``<kind>_root_cause_entity`` (the entity path joined with ``" > "``), then
    ``<kind>_root_cause_exception`` / ``_message`` (fault, error) or
    ``response_time_root_cause_coverage``; the complete causes as JSON text in
    ``<kind>_root_causes`` (see :func:`summary_root_cause_paths`);

    ``revision``, ``matched_event_time``; and one ``annotation.<key>`` column per annotation
    key, holding its (first) value as X-Ray typed it: float, bool or str.

    Examples
    --------
    >>> frame = summaries_frame([{
    ...     "Id": "1-66310000-0123456789abcdef01234567", "Duration": 0.25, "ResponseTime": 0.2,
    ...     "HasFault": True, "Http": {"HttpMethod": "get", "HttpStatus": 503},
    ...     "Annotations": {"tier": [{"AnnotationValue": {"StringValue": "gold"}}]},
    ... }])
    >>> frame[["http_method", "http_status", "has_fault", "annotation.tier"]]
      http_method  http_status  has_fault annotation.tier
    0         GET          503       True            gold
    >>> str(frame.loc[0, "start"])
    '2024-04-30 14:28:16+00:00'
    """
    rows = [_summary_row(s) for s in summaries]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(_SUMMARY_COLUMNS))
    out: dict[str, pd.Series] = {}
    n = len(frame)
    for column, dtype in _SUMMARY_COLUMNS.items():
        values = frame[column] if column in frame else pd.Series([None] * n, dtype=object)
        if dtype.startswith("datetime64"):
            micros = (pd.to_numeric(values, errors="coerce").astype("float64") * 1e6).round()
            out[column] = pd.to_datetime(micros, unit="us", utc=True).astype(dtype)
        elif dtype in ("float64",):
            out[column] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif dtype in ("int64", "Int64"):
            out[column] = pd.to_numeric(values, errors="coerce").astype(dtype)
        elif dtype == "bool":
            out[column] = values.fillna(False).astype(bool)
        else:
            out[column] = values.astype("str")
    for column in sorted(c for c in frame.columns if c.startswith("annotation.")):
        out[column] = _typed(frame[column])
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def _typed(values: pd.Series) -> pd.Series:
    present = values.dropna()
    if len(present) and all(isinstance(v, bool) for v in present):
        return values.astype("boolean")
    if len(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    ):
        return values.astype("float64")
    if all(isinstance(v, str) for v in present):
        return values.astype("str")
    return values.astype(object)


_ROOT_CAUSE_KIND = {"fault": "fault", "error": "error", "responsetime": "response_time"}


def summary_root_cause_paths(summaries: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Unfold the root causes of a summaries frame, one row per entity on each path.

    The columns match ``xraykit.analysis.root_cause_paths``, so what AWS reported and what
    xraykit computes from the documents line up row for row.

    Parameters
    ----------
    summaries : DataFrame
        A frame from :func:`summaries_frame` (``ts.summaries``); it is not modified.
    kind : {"fault", "error", "responsetime"}

    Returns
    -------
    DataFrame
        ``trace_id, cause_index, service_name, service_type, account_id, inferred,
        entity_index, entity_count, entity_name, entity_id, remote, coverage,
        exception_name, exception_message, service_index, client_impacting``: the entity
        paths of a cause's services in order, numbered across the whole cause.
        ``entity_id`` is NaN (summaries do not carry entity ids).

    Examples
    --------
    >>> causes = [{"Services": [{"Name": "api", "Type": "AWS::Lambda::Function",
    ...     "EntityPath": [{"Name": "api"}, {"Name": "DynamoDB", "Remote": True,
    ...                     "Exceptions": [{"Name": "Throttled", "Message": "slow down"}]}]}]}]
    >>> frame = summaries_frame([{"Id": "1-66310000-0123456789abcdef01234567",
    ...                            "FaultRootCauses": causes}])
    >>> summary_root_cause_paths(frame, "fault")[["entity_name", "remote", "exception_name"]]
      entity_name  remote exception_name
    0         api   False            NaN
    1    DynamoDB    True      Throttled
    """
    if kind not in _ROOT_CAUSE_KIND:
        raise ValueError(
            f"`kind` must be one of {sorted(_ROOT_CAUSE_KIND)}, but {kind!r} was passed."
        )
    column = f"{_ROOT_CAUSE_KIND[kind]}_root_causes"
    rows: list[dict[str, Any]] = []
    present = summaries.loc[summaries[column].notna(), ["trace_id", column]]
    for trace_id, text in zip(present["trace_id"], present[column], strict=True):
        for cause_index, cause in enumerate(json.loads(text)):
            entities = [
                (service_index, service, entity)
                for service_index, service in enumerate(cause.get("Services") or [])
                for entity in service.get("EntityPath") or []
            ]
            for entity_index, (service_index, service, entity) in enumerate(entities):
                first = (entity.get("Exceptions") or [{}])[0]
                rows.append(
                    {
                        "trace_id": trace_id,
                        "cause_index": cause_index,
                        "service_name": service.get("Name"),
                        "service_type": service.get("Type"),
                        "account_id": service.get("AccountId"),
                        "inferred": bool(service.get("Inferred", False)),
                        "entity_index": entity_index,
                        "entity_count": len(entities),
                        "entity_name": entity.get("Name"),
                        "entity_id": None,
                        "remote": bool(entity.get("Remote", False)),
                        "coverage": entity.get("Coverage"),
                        "exception_name": first.get("Name"),
                        "exception_message": first.get("Message"),
                        "service_index": service_index,
                        "client_impacting": bool(cause.get("ClientImpacting", False)),
                    }
                )
    dtypes = {
        "trace_id": "str", "cause_index": "int64", "service_name": "str", "service_type": "str",
        "account_id": "str", "inferred": "bool", "entity_index": "int64",
        "entity_count": "int64", "entity_name": "str", "entity_id": "str", "remote": "bool",
        "coverage": "float64", "exception_name": "str", "exception_message": "str",
        "service_index": "int64", "client_impacting": "bool",
    }  # fmt: skip
    return pd.DataFrame(rows, columns=list(dtypes)).astype(dtypes)


# --------------------------------------------------------------------------------------
# the pull


@dataclasses.dataclass
class Query:
    """One GetTraceSummaries query (from :func:`build_query`); its settled results are cached.

    The cache key is the window, the expression sent (the group's *name* clause ANDed with
    the caller's filter), the time-range type and ``max_traces``: a group whose filter
    expression changed keeps the same key (see :func:`fetch`, ``group``).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    filter_expression: str | None
    group: str | None
    time_range_type: str
    max_traces: int | None

    @property
    def expression(self) -> str | None:
        """The filter expression sent to AWS: the group's, ANDed with the caller's."""
        if self.group is None:
            return self.filter_expression
        key = "group.arn" if self.group.startswith("arn:") else "group.name"
        clause = f"{key} = {json.dumps(self.group)}"
        return (
            clause if self.filter_expression is None else f"{clause} AND ({self.filter_expression})"
        )

    def cache_key(self) -> str:
        text = json.dumps(
            [self.start.isoformat(), self.end.isoformat(), self.expression,
             self.time_range_type, self.max_traces]
        )  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclasses.dataclass
class _Outcome:
    summaries: list[dict[str, Any]]
    responses: list[dict[str, Any]]
    problems: list[dict[str, str]]
    scanned: int
    interrupted: bool
    complete_summaries: bool


class _Puller:
    """One pull: summaries on the calling thread, traces on a pool, results under a lock."""

    def __init__(
        self,
        caller: _Caller,
        *,
        concurrency: int,
        progress: bool,
        transaction_search: bool | cf.Future[bool],
        skip_ids: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(
                f"`concurrency` must be a positive int, but {concurrency!r} was passed."
            )
        self.caller = caller
        self.concurrency = concurrency
        self.progress = progress
        self._transaction_search = transaction_search
        self.skip_ids = skip_ids
        self._lock = threading.Lock()
        self._fetched: set[str] = set()
        self.responses: list[dict[str, Any]] = []
        self.problems: list[dict[str, str]] = []

    @property
    def transaction_search(self) -> bool:
        """Whether to use Transaction Search retrieval (the check may still be running)."""
        if isinstance(self._transaction_search, cf.Future):
            self._transaction_search = self._transaction_search.result()
        return self._transaction_search

    # -- summaries ---------------------------------------------------------------------

    def summary_pages(self, query: Query) -> Iterator[tuple[dict[str, Any], bool]]:
        """Yield (page, last page of its window) for every window, newest first."""
        for lower, upper in time_windows(query.start, query.end):
            params: dict[str, Any] = {
                "StartTime": lower.to_pydatetime(),
                "EndTime": upper.to_pydatetime(),
                "TimeRangeType": query.time_range_type,
            }
            if query.expression is not None:
                params["FilterExpression"] = query.expression
            while True:
                try:
                    page = self.caller.call("GetTraceSummaries", **params)
                except _Exhausted as exc:
                    self.problems.append(
                        {
                            "source": "GetTraceSummaries",
                            "location": f"{lower.isoformat()}/{upper.isoformat()}",
                            "reason": f"the summaries of this window could not be read: {exc.reason}",
                        }
                    )
                    break
                token = page.get("NextToken")
                yield page, not token
                if not token:
                    break
                params["NextToken"] = token

    # -- traces ------------------------------------------------------------------------

    def _keep(self, traces: Sequence[dict[str, Any]], source: str) -> int:
        """Record traces not seen before; return how many were new."""
        kept = []
        with self._lock:
            for trace in traces:
                trace_id = trace.get("Id")
                if trace_id in self._fetched:
                    continue
                self._fetched.add(str(trace_id))
                kept.append(trace)
                if trace.get("LimitExceeded"):
                    self.problems.append(
                        {
                            "source": source,
                            "location": str(trace_id),
                            "reason": "LimitExceeded: the trace is larger than X-Ray returns; "
                            "some of its segments are missing",
                        }
                    )
            if kept:
                self.responses.append({"Traces": kept, "UnprocessedTraceIds": []})
        return len(kept)

    def _failed(self, ids: Iterable[str], source: str, reason: str) -> None:
        with self._lock:
            self.problems.extend({"source": source, "location": i, "reason": reason} for i in ids)

    def get_batch(self, ids: list[str]) -> int:
        """Retrieve up to five traces; ask again for unprocessed ones only."""
        pending = ids
        attempt = 0
        got = 0
        while pending:
            try:
                response = self.caller.call("BatchGetTraces", TraceIds=pending)
            except _Exhausted as exc:
                self._failed(pending, "BatchGetTraces", f"not retrieved: {exc.reason}")
                return got
            traces = [t for t in response.get("Traces") or [] if t.get("Id") in pending]
            got += self._keep(traces, "BatchGetTraces")
            returned = {t.get("Id") for t in traces}
            pending = [i for i in pending if i not in returned]
            if not pending:
                break
            attempt += 1
            if attempt >= self.caller.policy.max_attempts:
                self._failed(
                    pending,
                    "BatchGetTraces",
                    f"still in UnprocessedTraceIds after {attempt} attempts",
                )
                break
            self.caller.backoff(attempt)
        return got

    def retrieve(self, ids: list[str], start: pd.Timestamp, end: pd.Timestamp) -> int:
        """Transaction Search: StartTraceRetrieval, then poll ListRetrievedTraces (X-Ray format)."""
        source = "ListRetrievedTraces"
        try:
            token = self.caller.call(
                "StartTraceRetrieval",
                TraceIds=ids,
                StartTime=start.to_pydatetime(),
                EndTime=end.to_pydatetime(),
            )["RetrievalToken"]
            traces: list[dict[str, Any]] = []
            polls = 0
            params: dict[str, Any] = {"RetrievalToken": token, "TraceFormat": "XRAY"}
            while True:
                page = self.caller.call("ListRetrievedTraces", **params)
                status = page.get("RetrievalStatus", "COMPLETE")
                if status in ("FAILED", "CANCELLED", "TIMEOUT"):
                    self._failed(ids, source, f"trace retrieval ended with status {status}")
                    return 0
                if status != "COMPLETE":
                    polls += 1
                    if polls > 120:
                        self._failed(ids, source, "trace retrieval did not complete in time")
                        return 0
                    self.caller.sleep(min(1.0 * polls, 5.0))
                    continue
                for item in page.get("Traces") or []:
                    traces.append(
                        {
                            "Id": item.get("Id"),
                            "Duration": item.get("Duration"),
                            "Segments": [
                                {"Id": span.get("Id"), "Document": span.get("Document")}
                                for span in item.get("Spans") or []
                            ],
                        }
                    )
                if not page.get("NextToken"):
                    break
                params["NextToken"] = page["NextToken"]
        except _Exhausted as exc:
            self._failed(ids, source, f"not retrieved: {exc.reason}")
            return 0
        kept = self._keep([t for t in traces if t.get("Id") in set(ids)], source)
        returned = {t.get("Id") for t in traces}
        self._failed([i for i in ids if i not in returned], source, "not returned by the retrieval")
        return kept

    # -- the whole pull ----------------------------------------------------------------

    def _guarded(self, work: Callable[..., int], *args: Any) -> int:
        """Run ``work`` on a worker; an interrupt or fatal error there stops every worker."""
        try:
            return work(*args)
        except BaseException:
            self.caller.stop.set()
            raise

    def run(self, query: Query, ids: list[str] | None = None) -> _Outcome:
        """List the summaries (or take ``ids``) and retrieve the traces, pipelined."""
        summaries: list[dict[str, Any]] = []
        seen: set[str] = set()
        scanned = 0
        interrupted = False
        complete = True
        buffer: list[str] = []
        bar = _progress_bar(self.progress)
        pool = cf.ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="xraykit")
        futures: dict[cf.Future[int], int] = {}
        queued = 0

        def submit(batch: list[str]) -> None:
            nonlocal queued
            if self.transaction_search:
                future = pool.submit(self._guarded, self.retrieve, batch, query.start, query.end)
            else:
                future = pool.submit(self._guarded, self.get_batch, batch)
            futures[future] = len(batch)
            queued += len(batch)
            if bar is not None:
                bar.total = queued
                bar.refresh()

        def collect(block: bool) -> None:
            if not futures:
                return
            done, _ = cf.wait(
                list(futures), timeout=0.2 if block else 0, return_when=cf.FIRST_COMPLETED
            )
            for future in done:
                size = futures.pop(future)
                future.result()  # re-raises LiveAccessError and KeyboardInterrupt
                if bar is not None:
                    bar.update(size)

        def pages() -> Iterator[dict[str, Any]]:
            if ids is None:
                for page, _last in self.summary_pages(query):
                    yield page
            else:
                yield {"TraceSummaries": [{"Id": i} for i in ids], "TracesProcessedCount": 0}

        try:
            for page in pages():
                scanned += int(page.get("TracesProcessedCount") or 0)
                for summary in page.get("TraceSummaries") or []:
                    trace_id = summary.get("Id")
                    if trace_id in seen:
                        continue
                    if query.max_traces is not None and len(seen) >= query.max_traces:
                        complete = False
                        break
                    seen.add(trace_id)
                    summaries.append(summary)
                    if trace_id not in self.skip_ids:
                        buffer.append(trace_id)
                chunk = MAX_IDS_PER_RETRIEVAL if self.transaction_search else MAX_IDS_PER_BATCH
                while len(buffer) >= chunk:
                    submit(buffer[:chunk])
                    del buffer[:chunk]
                collect(block=False)
                if not complete:
                    break
            if any(p["source"] == "GetTraceSummaries" for p in self.problems):
                complete = False
            if buffer:
                submit(buffer)
                buffer = []
            while futures:
                collect(block=True)
        except (KeyboardInterrupt, _Interrupted):
            interrupted = True
            complete = False
        finally:
            self.caller.stop.set()  # wakes sleeping workers; queued batches are cancelled
            pool.shutdown(wait=True, cancel_futures=True)
            if bar is not None:
                bar.close()
        return _Outcome(
            summaries=summaries,
            responses=self.responses,
            problems=self.problems,
            scanned=scanned,
            interrupted=interrupted,
            complete_summaries=complete,
        )


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None
    tqdm_auto = require("tqdm.auto", "aws")
    return tqdm_auto.tqdm(total=0, unit="trace", desc="BatchGetTraces")  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# the cache


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("XRAYKIT_CACHE_DIR"):
        return Path(os.environ["XRAYKIT_CACHE_DIR"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("xraykit"))


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part) or "_"


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _Cache:
    """Summaries per settled query and complete traces per account and region, in Parquet."""

    def __init__(self, root: Path, account: str, region: str) -> None:
        self.folder = root / "xray" / _safe(account) / _safe(region or "default")
        self.traces_dir = self.folder / "traces"
        self.queries_dir = self.folder / "summaries"
        self._index_path = self.traces_dir / "index.parquet"

    def index(self) -> pd.DataFrame:
        if self._index_path.exists():
            return pd.read_parquet(self._index_path)
        return pd.DataFrame({"trace_id": pd.Series(dtype="str"), "part": pd.Series(dtype="str")})

    def traces(self, trace_ids: Iterable[str]) -> TraceSet | None:
        """The cached traces among ``trace_ids`` (None when there are none)."""
        from xraykit.traceset import concat, load_file

        index = self.index()
        hits = index[index["trace_id"].isin(pd.Index(list(trace_ids)))]
        if hits.empty:
            return None
        parts = []
        for part, rows in hits.groupby("part", sort=True):
            path = self.traces_dir / str(part)
            if path.exists():
                parts.append(load_file(path).select(rows["trace_id"]))
        if not parts:
            return None
        found = concat(parts)
        found.problems = found.problems.iloc[0:0]  # problems of old pulls are not this pull's
        return found

    def add_traces(self, ts: TraceSet) -> None:
        """Store the complete traces of ``ts`` (in-progress ones change, so are not kept)."""
        from xraykit.traceset import TraceSet

        complete = ts.traces.loc[~ts.traces["is_partial"], "trace_id"]
        if complete.empty:
            return
        self.traces_dir.mkdir(parents=True, exist_ok=True)
        part = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.traceset"
        chosen = ts.select(complete)
        bare = TraceSet(
            {**chosen.frames, "documents": chosen._documents, "problems": None},
        )
        _write_atomically(self.traces_dir / part, bare.save)
        index = pd.concat(
            [self.index(), pd.DataFrame({"trace_id": complete.astype("str"), "part": part})],
            ignore_index=True,
        ).drop_duplicates("trace_id", keep="last")
        _write_atomically(self._index_path, lambda p: index.to_parquet(p, index=False))

    def _query_paths(self, query: Query) -> tuple[Path, Path]:
        key = query.cache_key()
        return self.queries_dir / f"{key}.parquet", self.queries_dir / f"{key}.json"

    def summaries(self, query: Query) -> tuple[list[dict[str, Any]], int] | None:
        """The raw summaries and scanned count of a settled query, if cached."""
        data, meta = self._query_paths(query)
        if not (data.exists() and meta.exists()):
            return None
        info = json.loads(meta.read_text())
        frame = pd.read_parquet(data)
        records = [json.loads(text) for text in frame["summary"]]
        return records, int(info.get("traces_scanned", 0))

    def add_summaries(self, query: Query, summaries: list[dict[str, Any]], scanned: int) -> None:
        data, meta = self._query_paths(query)
        self.queries_dir.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(
            {
                "trace_id": pd.Series([s.get("Id") for s in summaries], dtype="str"),
                "summary": pd.Series([json.dumps(_plain(s)) for s in summaries], dtype="str"),
            }
        )
        _write_atomically(data, lambda p: frame.to_parquet(p, index=False))
        info = {
            "start": query.start.isoformat(),
            "end": query.end.isoformat(),
            "filter_expression": query.expression,
            "time_range_type": query.time_range_type,
            "max_traces": query.max_traces,
            "traces_scanned": scanned,
        }
        _write_atomically(meta, lambda p: p.write_text(json.dumps(info, indent=1)))


def _plain(value: Any) -> Any:
    """A summary with datetimes turned into epoch seconds, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.timestamp()
    return value


# --------------------------------------------------------------------------------------
# the pull of one account (shared with xraykit.aws.accounts) and the public API


# client -> does its account use Transaction Search; weak, so a dropped client is forgotten.
# Written from the destination-check threads of concurrent pulls: under a lock.
_DESTINATION_CACHE: MutableMapping[Any, bool] = weakref.WeakKeyDictionary()
_DESTINATION_LOCK = threading.Lock()


def _uses_transaction_search(conn: Connection, caller: _Caller) -> bool:
    """True when the account sends segments to CloudWatch Logs (Transaction Search).

    Asked once per client (two pulls racing on one client may both ask; the answers agree).
    """
    with _DESTINATION_LOCK:
        known = _DESTINATION_CACHE.get(conn.client)
    if known is not None:
        return known
    try:
        answer = caller.call("GetTraceSegmentDestination")
    except (LiveAccessError, _Exhausted):
        # older endpoints, local stand-ins and narrow policies lack the call: classic X-Ray
        result = False
    else:
        result = answer.get("Destination") == "CloudWatchLogs" and answer.get("Status") != "PENDING"
    with _DESTINATION_LOCK:
        _DESTINATION_CACHE[conn.client] = result
    return result


def build_query(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    filter_expression: str | None = None,
    group: str | None = None,
    time_range_type: str = "TraceId",
    max_traces: int | None = None,
) -> Query:
    """Check the query arguments of :func:`fetch` and return the :class:`Query` they make.

    Shared with :mod:`xraykit.aws.accounts`. Raises what :func:`fetch` documents for bad
    arguments (``ValueError``, :class:`LiveFilterExpressionError`), before any API call.
    """
    _check_common(time_range_type, max_traces)
    _validate_filter(filter_expression)
    window = _resolve_window(since, start, end)
    return Query(window[0], window[1], filter_expression, group, time_range_type, max_traces)


def _check_common(time_range_type: str, max_traces: int | None) -> None:
    if time_range_type not in _TIME_RANGE_TYPES:
        raise ValueError(
            f"`time_range_type` must be one of {list(_TIME_RANGE_TYPES)}, "
            f"but {time_range_type!r} was passed."
        )
    if max_traces is not None and (
        not isinstance(max_traces, int) or isinstance(max_traces, bool) or max_traces < 1
    ):
        raise ValueError(
            f"`max_traces` must be a positive int or None, but {max_traces!r} was passed."
        )


def _problems_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    from xraykit.schema import conform

    return conform(pd.DataFrame(rows, columns=["source", "location", "reason"]), "problems")


def pull(
    conn: Connection,
    query: Query,
    *,
    concurrency: int,
    cache: bool,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
    retry: RetryPolicy | None,
    account_id: str | None = None,
    fill_account: bool = False,
    cancel: threading.Event | None = None,
) -> TraceSet:
    """Pull one account: summaries, cached traces, fresh traces, merged into one TraceSet.

    Shared with :mod:`xraykit.aws.accounts` (see "Shared with xraykit.aws.accounts" above).
    ``account_id`` keys the cache (asked from STS when None and ``cache``);
    ``fill_account`` writes it into ``segments.account_id`` where a document has none;
    ``cancel`` stops the pull from another thread.
    """
    from xraykit.traceset import concat, from_responses

    policy = retry or RetryPolicy()
    caller = _Caller(conn.client, policy, cancel)
    store: _Cache | None = None
    if cache and account_id is None:
        account_id = _account_id(conn, policy)  # None (warned): no cache for this pull
    if cache and account_id is not None:
        store = _Cache(_cache_root(cache_dir), account_id, conn.region)
    settled = query.end <= pd.Timestamp.now(tz="UTC") - SETTLED_AFTER

    cached_summaries = store.summaries(query) if (store is not None and settled) else None
    if cached_summaries is not None:
        summary_records, scanned = cached_summaries[0], 0
        wanted = [str(s.get("Id")) for s in summary_records]
    else:
        summary_records, wanted, scanned = [], [], 0

    cached_ts = store.traces(wanted) if (store is not None and wanted) else None
    cached_ids: set[str] = set(cached_ts.traces["trace_id"]) if cached_ts is not None else set()
    transaction_search: bool | cf.Future[bool] = False
    if cached_summaries is None or set(wanted) - cached_ids:
        # ask for the trace segment destination while the summaries are being listed
        checker = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="xraykit-destination")
        transaction_search = checker.submit(_uses_transaction_search, conn, caller)
        checker.shutdown(wait=False)
    if store is not None and cached_summaries is None:
        # ids are not known before the summaries are read: skip every trace stored already
        cached_ids = set(store.index()["trace_id"])

    puller = _Puller(
        caller,
        concurrency=concurrency,
        progress=progress,
        transaction_search=transaction_search,
        skip_ids=cached_ids,
    )
    if cached_summaries is not None:
        outcome = puller.run(query, ids=[i for i in wanted if i not in cached_ids])
        outcome.summaries = summary_records
    else:
        outcome = puller.run(query)
        summary_records = outcome.summaries
        scanned = outcome.scanned
        if store is not None:
            cached_ts = store.traces(str(s.get("Id")) for s in summary_records)

    fresh = from_responses(outcome.responses, source="BatchGetTraces")
    if store is not None:
        try:
            store.add_traces(fresh)
            if settled and cached_summaries is None and outcome.complete_summaries:
                store.add_summaries(query, summary_records, scanned)
        except OSError as exc:
            warnings.warn(
                f"The cache under {str(store.folder)!r} could not be written ({exc}); the "
                "traces were fetched but will be fetched again next time. Pass cache=False "
                "or cache_dir= to silence this.",
                XrayKitWarning,
                stacklevel=3,
            )
    result = concat([cached_ts, fresh]) if cached_ts is not None else fresh
    if outcome.problems:
        result.problems = _problems_frame([*result.problems.to_dict("records"), *outcome.problems])
    if fill_account and account_id:
        segments = result.segments.copy()
        segments["account_id"] = segments["account_id"].fillna(account_id)
        result.segments = segments

    summaries = summaries_frame(summary_records)
    if fill_account and account_id:
        summaries.insert(1, "account_id", pd.Series(account_id, index=summaries.index, dtype="str"))
    result.summaries = summaries
    result.cost = CostEstimate(
        traces_scanned=scanned,
        traces_retrieved=sum(len(r["Traces"]) for r in outcome.responses),
        api_calls=dict(caller.calls),
        retries=caller.retries,
        throttles=caller.throttles,
        cached_traces=len(cached_ts) if cached_ts is not None else 0,
    )
    if outcome.interrupted:
        warnings.warn(
            f"Interrupted: returning the {len(result)} traces fetched so far (of "
            f"{len(summary_records)} listed). They are cached; call again to fetch the rest.",
            XrayKitWarning,
            stacklevel=3,
        )
    failed = [p for p in outcome.problems if p["source"] != "GetTraceSummaries"]
    if failed or len(outcome.problems) > len(failed):
        warnings.warn(
            f"{len(failed)} trace(s) and {len(outcome.problems) - len(failed)} summary "
            "window(s) could not be fetched after every retry; see `ts.problems`.",
            XrayKitWarning,
            stacklevel=3,
        )
    return result


def fetch(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    filter_expression: str | None = None,
    group: str | None = None,
    time_range_type: str = "TraceId",
    max_traces: int | None = None,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    concurrency: int = 8,
    cache: bool = True,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    retry: RetryPolicy | None = None,
    account_id: str | None = None,
) -> TraceSet:
    """Load the traces of an AWS account into a TraceSet.

    Lists the traces with ``GetTraceSummaries`` (windows of at most 6 h, every page), then
    retrieves them with ``BatchGetTraces`` (5 ids per call) on ``concurrency`` threads,
    retrying throttles and 5xx answers, each trace once. See the module docstring for the
    cache, retries and Transaction Search.

    Parameters
    ----------
    since : str, number or timedelta
        How far back from ``end`` (default now): ``"15m"``, ``"1h"``, ``"2d"``. Ignored when
        ``start`` is given.
    start, end : datetime, Timestamp or str, optional
        The window; naive times are UTC.
    filter_expression : str, optional
        An X-Ray filter expression, sent to AWS unchanged (checked offline first when
        ``xraykit.query`` is available).
    group : str, optional
        A group name or ARN: only traces matching the group's filter expression. The cached
        summaries of a settled window are keyed by the group's *name* (or ARN), not by its
        filter expression, which xraykit does not read: after changing a group's filter
        expression, pass ``cache=False`` once (or delete the account's ``summaries`` folder)
        so the window is listed again. Traces themselves never go stale.
    time_range_type : {"TraceId", "Event", "Service"}
        What the window applies to: the trace's start (from its id), its last event, or the
        segment end times.
    max_traces : int, optional
        Stop after this many traces, most recent first.
    session, profile, region, client
        How to reach AWS: a boto3 ``Session``, a profile name, a region, or a ready X-Ray
        client (tests pass one pointing at a local endpoint).
    concurrency : int
        Threads retrieving traces.
    cache : bool
        Reuse and extend the Parquet cache (``False`` bypasses it). The cache is kept per
        account: the account comes from ``account_id``, else from STS
        ``GetCallerIdentity`` with the session's credentials. When it cannot be known (a
        ``client=`` without ``account_id``, or STS refused), the pull goes on without the
        cache and says so with an :class:`~xraykit.exceptions.XrayKitWarning`.
    progress : bool
        Show a progress bar (tqdm; a notebook bar in Jupyter).
    cache_dir : path, optional
        Where the cache lives (default: ``XRAYKIT_CACHE_DIR`` or the user cache folder).
    retry : RetryPolicy, optional
        Attempts, backoff and the client-side rate cap.
    account_id : str, optional
        The 12-digit account the credentials belong to, for the cache (saves the STS call;
        needed with ``client=``).

    Returns
    -------
    TraceSet
        With ``summaries`` (see :func:`summaries_frame`) and ``cost`` (:class:`CostEstimate`).
        Traces that could not be retrieved are rows of ``problems``.

    Raises
    ------
    LiveAccessError
        No credentials, access denied (naming the ``xray:`` action), an expired token, no
        region, an endpoint that cannot be reached, an invalid filter expression
        (:class:`LiveFilterExpressionError`).
    MissingDependencyError
        When boto3 (the ``aws`` extra) is not installed.

    Examples
    --------
    These need AWS credentials and an account with traces, so they are not run as tests
    (tests/test_live.py runs ``fetch`` against moto on 127.0.0.1):

    >>> import xraykit
    >>> ts = xraykit.fetch(since="3h", filter_expression="responsetime > 2",
    ...                    profile="dev")  # doctest: +SKIP
    >>> ts.traces.sort_values("duration_s").tail()  # doctest: +SKIP
    >>> print(ts.cost)  # doctest: +SKIP
    """
    query = build_query(since=since, start=start, end=end, filter_expression=filter_expression,
                        group=group, time_range_type=time_range_type, max_traces=max_traces)  # fmt: skip
    if account_id is not None and not (
        isinstance(account_id, str) and re.fullmatch(r"\d{12}", account_id)
    ):
        raise ValueError(
            f"`account_id` must be a 12-digit AWS account id such as '123456789012', but "
            f"{account_id!r} was passed."
        )
    conn = connect(session=session, profile=profile, region=region, client=client,
                    concurrency=concurrency)  # fmt: skip
    return pull(
        conn,
        query,
        concurrency=concurrency,
        cache=cache,
        cache_dir=cache_dir,
        progress=progress,
        retry=retry,
        account_id=account_id,
    )


def fetch_summaries(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    filter_expression: str | None = None,
    group: str | None = None,
    time_range_type: str = "TraceId",
    max_traces: int | None = None,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
) -> pd.DataFrame:
    """List trace summaries only: a cheap look before pulling whole traces.

    Takes the same query arguments as :func:`fetch` and returns what would become
    ``ts.summaries`` (columns in :func:`summaries_frame`). ``frame.attrs["cost"]`` holds the
    :class:`CostEstimate` (traces scanned; nothing retrieved). Nothing is cached.

    Examples
    --------
    Needs AWS credentials, so not run as a test:

    >>> import xraykit
    >>> look = xraykit.fetch_summaries(since="6h", filter_expression="fault")  # doctest: +SKIP
    >>> look.groupby("fault_root_cause_service").size()  # doctest: +SKIP
    >>> look.attrs["cost"].traces_scanned  # doctest: +SKIP
    """
    query = build_query(since=since, start=start, end=end, filter_expression=filter_expression,
                        group=group, time_range_type=time_range_type, max_traces=max_traces)  # fmt: skip
    conn = connect(session=session, profile=profile, region=region, client=client)
    caller = _Caller(conn.client, retry or RetryPolicy())
    puller = _Puller(caller, concurrency=1, progress=False, transaction_search=False)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    scanned = 0
    for page, _last in puller.summary_pages(query):
        scanned += int(page.get("TracesProcessedCount") or 0)
        for summary in page.get("TraceSummaries") or []:
            if summary.get("Id") not in seen:
                seen.add(summary.get("Id"))
                records.append(summary)
        if max_traces is not None and len(records) >= max_traces:
            records = records[:max_traces]
            break
    if puller.problems:
        warnings.warn(
            f"{len(puller.problems)} summary window(s) could not be read after every retry: "
            + "; ".join(f"{p['location']}: {p['reason']}" for p in puller.problems),
            XrayKitWarning,
            stacklevel=2,
        )
    frame = summaries_frame(records)
    frame.attrs["cost"] = CostEstimate(
        traces_scanned=scanned, api_calls=dict(caller.calls), retries=caller.retries,
        throttles=caller.throttles,
    )  # fmt: skip
    return frame


def _paginate(caller: _Caller, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        try:
            page = caller.call(operation, **params)
        except _Exhausted as exc:
            raise LiveAccessError(
                f"{operation} kept failing ({exc.reason}). Fix: wait a minute and call again; "
                "X-Ray is throttling or unavailable."
            ) from exc
        items.extend(page.get(key) or [])
        token = page.get("NextToken")
        if not token:
            return items
        params["NextToken"] = token


def fetch_service_graph(
    *,
    since: str | float | timedelta | None = "1h",
    start: Any = None,
    end: Any = None,
    group: str | None = None,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
) -> ServiceGraph:
    """Fetch X-Ray's own service graph for a window (``GetServiceGraph``, every page).

    Returns the same ``ServiceGraph`` as ``xraykit.service_graph(traces)`` computes from
    documents, so AWS's graph and xraykit's draw and compare alike.

    Parameters
    ----------
    group : str, optional
        A group name, or a group ARN (starting with ``arn:``).

    Examples
    --------
    Needs AWS credentials, so not run as a test:

    >>> import xraykit
    >>> graph = xraykit.fetch_service_graph(since="1h")  # doctest: +SKIP
    >>> graph.nodes[["name", "type", "total_count", "fault_count"]]  # doctest: +SKIP
    """
    from xraykit.graph import service_graph_from_response

    start_ts, end_ts = _resolve_window(since, start, end)
    conn = connect(session=session, profile=profile, region=region, client=client)
    caller = _Caller(conn.client, retry or RetryPolicy())
    params: dict[str, Any] = {
        "StartTime": start_ts.to_pydatetime(),
        "EndTime": end_ts.to_pydatetime(),
    }
    if group is not None:
        params["GroupARN" if group.startswith("arn:") else "GroupName"] = group
    services = _paginate(caller, "GetServiceGraph", "Services", **params)
    response = {
        "StartTime": params["StartTime"],
        "EndTime": params["EndTime"],
        "Services": services,
    }
    return service_graph_from_response(response)


def sampling_rules_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per sampling rule from ``GetSamplingRules``' ``SamplingRuleRecords``.

    Columns: ``rule_name, priority, fixed_rate, reservoir_size, service_name, service_type,
    host, http_method, url_path, resource_arn, attributes`` (dict), ``version, rule_arn,
    created_at, modified_at``; sorted by (priority, rule_name), the order X-Ray applies.

    Examples
    --------
    >>> sampling_rules_frame([{"SamplingRule": {"RuleName": "Default", "Priority": 10000,
    ...     "FixedRate": 0.05, "ReservoirSize": 1, "ServiceName": "*", "ServiceType": "*",
    ...     "Host": "*", "HTTPMethod": "*", "URLPath": "*", "ResourceARN": "*", "Version": 1}}]
    ... )[["rule_name", "priority", "fixed_rate", "reservoir_size"]]
      rule_name  priority  fixed_rate  reservoir_size
    0   Default     10000        0.05               1
    """
    fields = {
        "rule_name": "RuleName", "priority": "Priority", "fixed_rate": "FixedRate",
        "reservoir_size": "ReservoirSize", "service_name": "ServiceName",
        "service_type": "ServiceType", "host": "Host", "http_method": "HTTPMethod",
        "url_path": "URLPath", "resource_arn": "ResourceARN", "attributes": "Attributes",
        "version": "Version", "rule_arn": "RuleARN",
    }  # fmt: skip
    records = list(records)
    rows = [{k: (r.get("SamplingRule") or {}).get(f) for k, f in fields.items()} for r in records]
    frame = pd.DataFrame(rows, columns=[*fields, "created_at", "modified_at"])
    frame["attributes"] = pd.Series(
        [dict(a or {}) for a in frame["attributes"]], index=frame.index, dtype=object
    )
    for column, field in (("created_at", "CreatedAt"), ("modified_at", "ModifiedAt")):
        epochs = pd.Series([_epoch(r.get(field)) for r in records], dtype="float64")
        micros = (epochs * 1e6).round()
        frame[column] = pd.to_datetime(micros, unit="us", utc=True).astype("datetime64[us, UTC]")
    frame = frame.astype(
        {"priority": "Int64", "reservoir_size": "Int64", "version": "Int64",
         "fixed_rate": "float64"}
        | {c: "str" for c in ("rule_name", "service_name", "service_type", "host",
                              "http_method", "url_path", "resource_arn", "rule_arn")}
    )  # fmt: skip
    return frame.sort_values(["priority", "rule_name"], kind="stable").reset_index(drop=True)


def groups_frame(groups: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per group from ``GetGroups``: ``group_name, group_arn, filter_expression,
    insights_enabled, notifications_enabled``.

    Examples
    --------
    >>> groups_frame([{"GroupName": "slow", "FilterExpression": "responsetime > 2",
    ...                "InsightsConfiguration": {"InsightsEnabled": True}}]).iloc[:, [0, 2, 3]]
      group_name filter_expression  insights_enabled
    0       slow  responsetime > 2              True
    """
    rows = [
        {
            "group_name": g.get("GroupName"),
            "group_arn": g.get("GroupARN"),
            "filter_expression": g.get("FilterExpression"),
            "insights_enabled": bool((g.get("InsightsConfiguration") or {}).get("InsightsEnabled")),
            "notifications_enabled": bool(
                (g.get("InsightsConfiguration") or {}).get("NotificationsEnabled")
            ),
        }
        for g in groups
    ]
    columns = ["group_name", "group_arn", "filter_expression", "insights_enabled",
               "notifications_enabled"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype(
        {"group_name": "str", "group_arn": "str", "filter_expression": "str",
         "insights_enabled": "bool", "notifications_enabled": "bool"}
    )  # fmt: skip


def fetch_sampling_rules(
    *,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
) -> pd.DataFrame:
    """Fetch the account's sampling rules (``GetSamplingRules``) as a DataFrame.

    Columns as in :func:`sampling_rules_frame`.

    Examples
    --------
    Offline, with a client whose answer is stubbed (``profile="dev"`` asks AWS instead):

    >>> import boto3
    >>> from botocore.stub import Stubber
    >>> client = boto3.client("xray", region_name="us-east-1", aws_access_key_id="example",
    ...                       aws_secret_access_key="example")
    >>> with Stubber(client) as stub:
    ...     stub.add_response("get_sampling_rules", {"SamplingRuleRecords": [{"SamplingRule": {
    ...         "RuleName": "Default", "Priority": 10000, "FixedRate": 0.05, "ReservoirSize": 1,
    ...         "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*",
    ...         "URLPath": "*", "ResourceARN": "*", "Version": 1}}]})
    ...     rules = fetch_sampling_rules(client=client)
    >>> rules[["rule_name", "priority", "fixed_rate"]]
      rule_name  priority  fixed_rate
    0   Default     10000        0.05
    """
    conn = connect(session=session, profile=profile, region=region, client=client)
    caller = _Caller(conn.client, retry or RetryPolicy())
    return sampling_rules_frame(_paginate(caller, "GetSamplingRules", "SamplingRuleRecords"))


def fetch_groups(
    *,
    session: Any = None,
    profile: str | None = None,
    region: str | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
) -> pd.DataFrame:
    """Fetch the account's X-Ray groups (``GetGroups``) as a DataFrame.

    Columns as in :func:`groups_frame`. Pass ``dict(zip(frame.group_name,
    frame.filter_expression))`` as ``groups=`` to ``TraceSet.query`` to evaluate
    ``group.name = "..."`` offline.

    Examples
    --------
    Offline, with a client whose answer is stubbed (``profile="dev"`` asks AWS instead):

    >>> import boto3
    >>> from botocore.stub import Stubber
    >>> client = boto3.client("xray", region_name="us-east-1", aws_access_key_id="example",
    ...                       aws_secret_access_key="example")
    >>> with Stubber(client) as stub:
    ...     stub.add_response("get_groups", {"Groups": [
    ...         {"GroupName": "slow", "FilterExpression": "responsetime > 2"}]})
    ...     groups = fetch_groups(client=client)
    >>> dict(zip(groups["group_name"], groups["filter_expression"]))
    {'slow': 'responsetime > 2'}
    """
    conn = connect(session=session, profile=profile, region=region, client=client)
    caller = _Caller(conn.client, retry or RetryPolicy())
    return groups_frame(_paginate(caller, "GetGroups", "Groups"))

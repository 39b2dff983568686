"""The local X-Ray API over HTTP: the server, its routes, X-Ray's error shape and throttling.

:class:`ApiServer` answers boto3's ``xray`` client (rest-json: every operation a POST with
a JSON body) from a :class:`~xraykit.local.store.Store`; the operations themselves are in
:mod:`~xraykit.local.operations`. Bodies from the network are bounded (``Content-Length``
required, at most :data:`MAX_BODY` bytes); a bad request is answered with X-Ray's
``InvalidRequestException`` and never with a traceback; ``rate_limit`` makes the API answer
``ThrottledException`` (HTTP 429) above that many requests per second. ``POST /v1/traces``
takes OpenTelemetry spans (OTLP/HTTP, protobuf or JSON) for
:mod:`~xraykit.local.otlp_receiver`, which stores them as segment documents.

>>> import json, urllib.request
>>> from xraykit.local.store import Store
>>> with ApiServer(Store(":memory:"), ("127.0.0.1", 0)) as api:
...     request = urllib.request.Request(api.endpoint_url + "/Groups", data=b"{}")
...     json.loads(urllib.request.urlopen(request).read())
{'Groups': []}
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any

from xraykit.arguments import is_loopback
from xraykit.exceptions import ArgumentError, XrayKitError
from xraykit.local import otlp_receiver
from xraykit.local.operations import ROUTES, Operations

if TYPE_CHECKING:
    from xraykit.local.sampling_service import SamplingService
    from xraykit.local.store import Store

__all__ = ["MAX_BODY", "ApiServer"]

#: The largest request body accepted, in bytes.
MAX_BODY = 1 << 20
_LOG = logging.getLogger(__name__)
_REGION = re.compile(r"Credential=[^/,\s]*/\d{8}/([a-z0-9-]{1,32})/")


class _TokenBucket:
    """``rate`` requests per second, in bursts of at most ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class _Reply(Exception):
    """An error answer: HTTP status, X-Ray error type and message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class _Handler(BaseHTTPRequestHandler):
    """One connection; every request goes to :meth:`ApiServer._answer`."""

    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may take to send its request
    server_version = "xraykit-local"

    def version_string(self) -> str:
        return self.server_version

    def do_POST(self) -> None:
        self.server.api._answer(self)

    def _not_found(self) -> None:
        self.server.api._answer(self, post=False)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_found

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed request lines and headers, answered in X-Ray's shape (not HTML)."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # a request line too broken to read a version
            self.request_version = "HTTP/1.0"
        kind = "InvalidRequestException" if code < 500 else "ServiceUnavailableException"
        self.server.api._send(self, code, {"message": message or "Bad request"}, error=kind)

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.debug(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64
    api: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Dropped connections and the like: debug log only, nothing on stderr."""
        _LOG.debug("error while serving %s", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class ApiServer:
    """X-Ray's API for boto3, on HTTP, over a store.

    Parameters
    ----------
    store : Store
        Traces, groups and sampling rules.
    address : (host, port)
        Where to listen; port 0 picks a free port (see :attr:`address`).
    sampling : SamplingService, optional
        Sampling rules and targets; default one over ``store``.
    rate_limit : float, optional
        Requests per second allowed (a token bucket, bursts of up to that many); more are
        answered with ``ThrottledException``. Default: no limit.
    allow_remote : bool
        Listen on an address other than loopback. The API has no authentication.

    Attributes
    ----------
    address : (str, int)
        The bound address.
    endpoint_url : str
        ``http://host:port``, for ``boto3.client("xray", endpoint_url=...)``.
    """

    def __init__(
        self,
        store: Store,
        address: tuple[str, int] = ("127.0.0.1", 2000),
        *,
        sampling: SamplingService | None = None,
        rate_limit: float | None = None,
        allow_remote: bool = False,
    ) -> None:
        host, port = address
        if not allow_remote and not is_loopback(host):
            raise ArgumentError(
                f"{host!r} is not a loopback address and the API has no authentication; "
                "pass allow_remote=True to listen there anyway."
            )
        if rate_limit is not None and not (
            isinstance(rate_limit, (int, float)) and math.isfinite(rate_limit) and rate_limit > 0
        ):
            raise ArgumentError(f"rate_limit must be a positive number, not {rate_limit!r}.")
        self.operations = Operations(store, sampling=sampling)
        self._bucket = None if rate_limit is None else _TokenBucket(float(rate_limit))
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), _Handler)
        self._server.api = self
        bound = self._server.server_address
        self.address: tuple[str, int] = (str(bound[0]), int(bound[1]))
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
        shown = f"[{shown}]" if ":" in shown else shown
        self.endpoint_url = f"http://{shown}:{self.address[1]}"
        self._thread: threading.Thread | None = None
        self._counts = {"requests": 0, "throttled": 0, "errors": 0}
        self._counts_lock = threading.Lock()

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"<ApiServer {state} at {self.endpoint_url}>"

    def start(self) -> None:
        """Serve in a background thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="xraykit-local-api",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; requests in flight may finish."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def stats(self) -> dict[str, int]:
        """Requests answered, of which throttled and of which errors (4xx/5xx)."""
        with self._counts_lock:
            return dict(self._counts)

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- one request --------------------------------------------------------------------

    def _count(self, key: str) -> None:
        with self._counts_lock:
            self._counts[key] += 1

    def _answer(self, handler: _Handler, *, post: bool = True) -> None:
        self._count("requests")
        try:
            if not post:
                handler.close_connection = True
                raise _Reply(404, "UnknownOperationException", "Only POST requests are served.")
            path = handler.path.split("?", 1)[0]
            otlp = path == otlp_receiver.PATH
            body = self._read_body(handler, otlp_receiver.MAX_BODY if otlp else MAX_BODY)
            if self._bucket is not None and not self._bucket.take():
                self._count("throttled")
                raise _Reply(429, "ThrottledException", "Rate exceeded")
            if otlp:
                self._answer_otlp(handler, body)
                return
            operation = ROUTES.get(path)
            if operation is None:
                raise _Reply(404, "UnknownOperationException", f"No operation at {path!r}.")
            result = self.operations.call(operation, self._parse(body), region=_region(handler))
        except _Reply as reply:
            self._count("errors")
            self._send(handler, reply.status, {"message": reply.message}, error=reply.kind)
            return
        except XrayKitError as error:  # what X-Ray would refuse: its own error type
            self._count("errors")
            message = {"message": str(error)}
            self._send(handler, 400, message, error="InvalidRequestException")
            return
        except Exception as error:  # a bug here must not kill the server nor leak a traceback
            self._count("errors")
            _LOG.debug("internal error", exc_info=True)
            message = {"message": f"Internal error in the local X-Ray ({type(error).__name__})."}
            self._send(handler, 500, message, error="ServiceUnavailableException")
            return
        self._send(handler, 200, result if result is not None else {})

    def _answer_otlp(self, handler: _Handler, body: bytes) -> None:
        """OpenTelemetry spans posted by an OTLP/HTTP exporter (see :mod:`otlp_receiver`)."""
        reply = otlp_receiver.receive(
            self.operations.store,
            body,
            handler.headers.get("Content-Type") or "",
            handler.headers.get("Content-Encoding") or "",
        )
        if reply.status >= 400:
            self._count("errors")
        self._send_bytes(handler, reply.status, reply.content_type, reply.body)

    @staticmethod
    def _read_body(handler: _Handler, limit: int = MAX_BODY) -> bytes:
        length_text = handler.headers.get("Content-Length")
        if handler.headers.get("Transfer-Encoding") or length_text is None:
            handler.close_connection = True
            raise _Reply(411, "InvalidRequestException", "Content-Length is required.")
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            handler.close_connection = True
            raise _Reply(400, "InvalidRequestException", "Content-Length is not valid.")
        if length > limit:
            handler.close_connection = True
            raise _Reply(413, "InvalidRequestException", f"Request body over {limit} bytes.")
        body = handler.rfile.read(length) if length else b""
        if len(body) < length:
            handler.close_connection = True
            raise _Reply(400, "InvalidRequestException", "Request body shorter than its length.")
        return body

    @staticmethod
    def _parse(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            raise _Reply(400, "InvalidRequestException", "Request body is not JSON.") from None
        if not isinstance(parsed, dict):
            raise _Reply(400, "InvalidRequestException", "Request body must be a JSON object.")
        return parsed

    @staticmethod
    def _send(handler: _Handler, status: int, body: Any, *, error: str | None = None) -> None:
        try:
            data = json.dumps(body, allow_nan=False).encode()
        except ValueError:  # NaN or infinity from a computation: null, as JSON has no NaN
            data = json.dumps(_finite(body)).encode()
        ApiServer._send_bytes(handler, status, "application/json", data, error=error)

    @staticmethod
    def _send_bytes(
        handler: _Handler, status: int, content_type: str, data: bytes, *, error: str | None = None
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            if error is not None:
                handler.send_header("x-amzn-ErrorType", error)
            if handler.close_connection:
                handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:  # the client went away
            handler.close_connection = True


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _region(handler: _Handler) -> str:
    """The region a SigV4-signed request was signed for (boto3's ``region_name``)."""
    found = _REGION.search(handler.headers.get("Authorization") or "")
    return found.group(1) if found else "us-east-1"

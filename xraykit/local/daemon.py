"""The local X-Ray's daemon: segment documents over UDP into a :class:`~xraykit.local.store.Store`.

A datagram is ``{"format":"json","version":1}`` + ``\\n`` + one segment document (or one
subsegment sent on its own), as the SDKs send it to X-Ray's daemon. A receiver thread only
reads datagrams and appends them to a bounded buffer (when full, the oldest is dropped and
counted, as X-Ray's daemon does); a writer thread checks headers and stores batches. Every
datagram ends up counted once: accepted, rejected by reason, or dropped — and the kernel's
own drops when the socket queue overflows are read back (Linux) as ``dropped_socket``.
:func:`parse_daemon_address` reads ``AWS_XRAY_DAEMON_ADDRESS`` values as the SDK does.

Examples
--------
>>> import socket
>>> from xraykit.local.store import Store
>>> daemon = Daemon(Store(), ("127.0.0.1", 0))
>>> daemon.start()
>>> doc = (b'{"name": "web", "id": "70de5b6f19ff9a0a", "start_time": 1478293361.271,'
...        b' "trace_id": "1-581cf771-a006649127e371903a2de979", "end_time": 1478293361.449}')
>>> with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
...     _ = s.sendto(b'{"format":"json","version":1}\\n' + doc, daemon.address)
...     _ = s.sendto(b"noise", daemon.address)
>>> daemon.stop()
>>> stats = daemon.stats()
>>> stats["received"], stats["accepted"], stats["rejected"]
(2, 1, {'no header': 1})
"""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import threading
import time
import warnings
from typing import Any

import orjson

from xraykit.arguments import is_loopback
from xraykit.exceptions import ArgumentError, ArgumentTypeError, XrayKitWarning
from xraykit.local.store import Store

__all__ = ["DEFAULT_ADDRESS", "MAX_DATAGRAM_BYTES", "Daemon", "parse_daemon_address"]

DEFAULT_ADDRESS = ("127.0.0.1", 2000)
MAX_DATAGRAM_BYTES = 64 * 1024
"""The largest datagram read, header included (X-Ray's daemon reads 64 KiB)."""

_HEADERS = frozenset({b'{"format":"json","version":1}', b'{"format": "json", "version": 1}'})
_BATCH = 1000  # datagrams the writer stores per Store.put
_IDLE_WAIT = 0.005  # seconds the writer waits when the buffer is empty
_POLL = 0.1  # seconds the receiver blocks before it looks for a stop request
_DRAIN = 1.0  # seconds stop() spends at most reading what is queued in the socket
_SOCKET_BUFFER = 4 * 2**20  # receive buffer asked of the kernel (it may give less)


def parse_daemon_address(text: str | None = None) -> tuple[tuple[str, int], tuple[str, int]]:
    """``((udp_host, udp_port), (tcp_host, tcp_port))`` from an ``AWS_XRAY_DAEMON_ADDRESS`` value.

    The SDK's two forms: ``"host:port"`` (UDP and TCP alike) and ``"tcp:host:port
    udp:host:port"`` (either order). None or ``""`` give the default ``127.0.0.1:2000``; pass
    ``os.environ.get("AWS_XRAY_DAEMON_ADDRESS")`` to follow the environment. Port 0 asks
    for a free port. IPv6 hosts go in brackets: ``"[::1]:2000"``.

    Raises
    ------
    ArgumentError
        For anything else, with the forms allowed.

    Examples
    --------
    >>> parse_daemon_address("127.0.0.1:3000")
    (('127.0.0.1', 3000), ('127.0.0.1', 3000))
    >>> parse_daemon_address("udp:127.0.0.1:2001 tcp:127.0.0.2:2000")
    (('127.0.0.1', 2001), ('127.0.0.2', 2000))
    >>> parse_daemon_address("127.0.0.1")
    Traceback (most recent call last):
    ...
    xraykit.exceptions.ArgumentError: Invalid daemon address '127.0.0.1': ...
    """
    if text is not None and not isinstance(text, str):
        raise ArgumentTypeError(
            f"A daemon address must be a string, but a {type(text).__name__} was passed."
        )
    if text is None or not text.strip():
        return DEFAULT_ADDRESS, DEFAULT_ADDRESS
    parts = text.split()
    if len(parts) == 1:
        single = _host_port(parts[0])
        if single is not None:
            return single, single
    elif len(parts) == 2:
        found: dict[str, tuple[str, int] | None] = {}
        for part in parts:
            kind, _, rest = part.partition(":")
            if kind.lower() in ("tcp", "udp"):
                found.setdefault(kind.lower(), _host_port(rest))
        udp, tcp = found.get("udp"), found.get("tcp")
        if udp is not None and tcp is not None:
            return udp, tcp
    raise ArgumentError(
        f"Invalid daemon address {text!r}: use 'host:port' (e.g. '127.0.0.1:2000') or "
        "'tcp:host:port udp:host:port', as AWS_XRAY_DAEMON_ADDRESS; ports 0-65535."
    )


def _host_port(text: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port`` for IPv6) as a pair; None when it is not one."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        return None  # an IPv6 host without brackets is ambiguous
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return None
    return host, int(port)


class Daemon:
    """Receive segment documents over UDP and store them.

    Parameters
    ----------
    store : Store
        Where documents go.
    address : (host, port)
        Where to listen; port 0 picks a free port (read it back from :attr:`address`).
    buffer_documents : int
        Datagrams held between the receiver and the writer; when full the oldest is dropped
        (``dropped_full``). Memory stays below ``buffer_documents`` × 64 KiB.
    allow_remote : bool
        Listen on an address other than loopback (anyone who reaches it can write traces;
        this warns).
    max_datagram_bytes : int
        Longer datagrams are rejected as ``"too large"``. On loopback the kernel already
        refuses to send UDP payloads over 65,507 bytes, below the default 64 KiB.

    Attributes
    ----------
    address : (host, port)
        The bound address once started (the real port when 0 was asked).
    """

    def __init__(
        self,
        store: Store,
        address: tuple[str, int] = DEFAULT_ADDRESS,
        *,
        buffer_documents: int = 10_000,
        allow_remote: bool = False,
        max_datagram_bytes: int = MAX_DATAGRAM_BYTES,
    ) -> None:
        if not callable(getattr(store, "put", None)):
            raise ArgumentTypeError(
                f"`store` must be a xraykit.local.store.Store, but a {type(store).__name__} "
                "was passed."
            )
        if (
            not isinstance(address, tuple | list)
            or len(address) != 2
            or not isinstance(address[0], str)
            or isinstance(address[1], bool)
            or not isinstance(address[1], int)
            or not 0 <= address[1] <= 65535
        ):
            raise ArgumentError(
                f"`address` must be (host, port) with a port 0-65535, but {address!r} was "
                "passed; parse_daemon_address reads the 'host:port' form."
            )
        for name, value in (
            ("buffer_documents", buffer_documents),
            ("max_datagram_bytes", max_datagram_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArgumentError(
                    f"`{name}` must be a positive integer, but {value!r} was passed."
                )
        host = address[0]
        if not is_loopback(host):
            if not allow_remote:
                raise ArgumentError(
                    f"{host!r} is not a loopback address: anyone who reaches the daemon could "
                    "write traces. Pass allow_remote=True to listen there anyway, else use "
                    "127.0.0.1."
                )
            warnings.warn(
                f"The local X-Ray daemon will listen on {host!r}, beyond this machine, with no "
                "authentication: anyone who reaches it can write traces.",
                XrayKitWarning,
                stacklevel=2,
            )
        self.store = store
        self.address: tuple[str, int] = (host, int(address[1]))
        self._requested = self.address
        self.buffer_documents = buffer_documents
        self.max_datagram_bytes = max_datagram_bytes
        self._buffer: collections.deque[bytes] = collections.deque()
        self._socket: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stop_requested = False
        self._receiver_done = threading.Event()
        self._lock = threading.Lock()  # start / stop
        # each counter is written by one thread only
        self._received = 0  # receiver
        self._dropped_full = 0  # receiver
        self._too_large = 0  # receiver
        self._receiver_errors = 0  # receiver
        self._accepted = 0  # writer
        self._rejected: collections.Counter[str] = collections.Counter()  # writer
        self._writer_errors = 0  # writer
        self._socket_drops = 0  # start / stop / stats
        self._socket_drops_base = 0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Daemon {state} on udp {self.address[0]}:{self.address[1]}>"

    def __enter__(self) -> Daemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the daemon is listening."""
        return self._socket is not None

    def start(self) -> None:
        """Bind the socket and start the receiver and writer threads (no-op if running)."""
        with self._lock:
            if self._socket is not None:
                return
            host, port = self._requested
            family, sockaddr = _resolve(host, port)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
                sock.bind(sockaddr)
                sock.settimeout(_POLL)
            except BaseException:
                sock.close()
                raise
            self.address = (host, sock.getsockname()[1])
            self._socket = sock
            self._socket_drops_base = self._socket_drops
            self._stop_requested = False
            self._receiver_done.clear()
            self._threads = [
                threading.Thread(target=self._receive, name="xraykit-daemon-receiver", daemon=True),
                threading.Thread(target=self._write, name="xraykit-daemon-writer", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """Stop listening; store what was received (datagrams queued in the socket included)."""
        with self._lock:
            if self._socket is None:
                return
            self._stop_requested = True
            receiver, writer = self._threads
            receiver.join()
            self._receiver_done.set()
            writer.join()
            self._socket_drops = self._socket_drops_base + _kernel_drops(self._socket)
            self._socket.close()
            self._socket = None
            self._threads = []

    def stats(self) -> dict[str, Any]:
        """Counts since creation.

        ``received`` (datagrams read), ``accepted`` (documents stored), ``rejected``
        (``{reason: count}``), ``dropped_full`` (oldest dropped from a full buffer),
        ``dropped_socket`` (dropped by the kernel before they could be read), ``buffered``
        (waiting to be stored) and ``errors`` (exceptions the threads survived). Once stopped,
        ``received == accepted + sum(rejected) + dropped_full``.
        """
        rejected = dict(self._rejected)
        if self._too_large:
            rejected["too large"] = rejected.get("too large", 0) + self._too_large
        sock = self._socket
        drops = self._socket_drops
        if sock is not None:
            drops = self._socket_drops_base + _kernel_drops(sock)
        return {
            "received": self._received,
            "accepted": self._accepted,
            "rejected": rejected,
            "dropped_full": self._dropped_full,
            "dropped_socket": drops,
            "buffered": len(self._buffer),
            "errors": self._receiver_errors + self._writer_errors,
        }

    # -- threads -------------------------------------------------------------------------

    def _receive(self) -> None:
        sock = self._socket
        assert sock is not None
        buffer = self._buffer
        limit = self.buffer_documents
        size = self.max_datagram_bytes + 1
        recv = sock.recv
        draining = False
        deadline = float("inf")
        while True:
            try:
                data = recv(size)
            except TimeoutError:
                if self._stop_requested:
                    sock.setblocking(False)  # read what is queued, then leave
                    draining, deadline = True, time.monotonic() + _DRAIN
                continue
            except BlockingIOError:
                if draining:
                    return
                continue
            except Exception:
                self._receiver_errors += 1
                if self._stop_requested:
                    return
                time.sleep(_POLL / 10)
                continue
            try:
                self._received += 1
                if len(data) > self.max_datagram_bytes:
                    self._too_large += 1
                    continue
                if len(buffer) >= limit:
                    try:
                        buffer.popleft()
                        self._dropped_full += 1
                    except IndexError:
                        pass
                buffer.append(data)
                if draining:
                    if time.monotonic() > deadline:
                        return
                elif self._stop_requested:
                    sock.setblocking(False)
                    draining, deadline = True, time.monotonic() + _DRAIN
            except Exception:
                self._receiver_errors += 1

    def _write(self) -> None:
        buffer = self._buffer
        popleft = buffer.popleft
        while True:
            batch: list[bytes] = []
            try:
                while len(batch) < _BATCH:
                    batch.append(popleft())
            except IndexError:
                pass
            if batch:
                try:
                    self._store(batch)
                except Exception:
                    self._writer_errors += 1
            elif self._receiver_done.is_set():
                if not buffer:
                    return
            else:
                self._receiver_done.wait(_IDLE_WAIT)

    def _store(self, batch: list[bytes]) -> None:
        """Check each datagram's header and store the documents; count every outcome."""
        documents: list[bytes] = []
        rejected = self._rejected
        for data in batch:
            newline = data.find(b"\n")
            if newline < 0:
                rejected["no header"] += 1
            elif data[:newline] in _HEADERS or _good_header(data[:newline]):
                documents.append(data[newline + 1 :])
            else:
                rejected["bad header"] += 1
        if not documents:
            return
        try:
            result = self.store.put(documents)
        except Exception:
            self._writer_errors += 1
            rejected["store error"] += len(documents)
            return
        self._accepted += result.accepted
        for _, reason in result.rejected:
            rejected[reason] += 1


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    """The family and socket address to bind; IPv4 first, as the SDK sends over IPv4."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except socket.gaierror:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _good_header(line: bytes) -> bool:
    """Whether a header other than the SDK's compact one says JSON, version 1."""
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(header, dict)
        and str(header.get("format", "")).lower() == "json"
        and header.get("version") == 1
    )


def _kernel_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped for this socket (Linux's /proc/net/udp); 0 elsewhere."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 12 and fields[9] == inode:
                        return int(fields[-1])
        except (OSError, ValueError):
            continue
    return 0

"""A local X-Ray on this machine: the daemon (UDP), the X-Ray API (HTTP) and a store.

The real ``aws-xray-sdk`` sends segments to the daemon as it would to AWS's; boto3 (and
:func:`xraykit.fetch`) read them back through the API — ``GetTraceSummaries`` with filter
expressions, ``BatchGetTraces``, ``GetServiceGraph``, groups, sampling rules and the
sampling targets the SDK's centralized sampler asks for — with no AWS account. Traces live in
SQLite (:mod:`~xraykit.local.store`) and survive a restart.

Modules, in the order a segment travels: :mod:`~xraykit.local.daemon` (UDP datagrams),
:mod:`~xraykit.local.store` (SQLite), :mod:`~xraykit.local.mirror` (the traces kept parsed
in memory by a background indexer), :mod:`~xraykit.local.api` (the HTTP API), which answers
with :mod:`~xraykit.local.summaries`, :mod:`~xraykit.local.graph_response` and
:mod:`~xraykit.local.sampling_service`.

Examples
--------
>>> import xraykit.local
>>> with xraykit.local.start("127.0.0.1:0", store=":memory:") as xr:
...     xr.endpoint_url.startswith("http://127.0.0.1:"), xr.stats()["traces"]
(True, 0)
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

from xraykit.arguments import is_loopback
from xraykit.exceptions import ArgumentError, XrayKitWarning, require
from xraykit.local.api import ApiServer
from xraykit.local.daemon import Daemon, parse_daemon_address
from xraykit.local.sampling_service import SamplingService
from xraykit.local.store import Store

__all__ = ["LocalXRay", "default_store_path", "start"]


def default_store_path() -> Path:
    """Where :func:`start` keeps traces unless told otherwise: the user data folder."""
    return Path(platformdirs.user_data_dir("xraykit")) / "local.sqlite3"


class LocalXRay:
    """A running local X-Ray; stop it with :meth:`stop` or by leaving its ``with`` block.

    Attributes
    ----------
    endpoint_url : str
        The X-Ray API, for ``boto3.client("xray", endpoint_url=...)`` or
        ``xraykit.fetch(endpoint_url=...)``.
    daemon_address : str
        The value for ``AWS_XRAY_DAEMON_ADDRESS`` (the SDK sends segments there).
    store : Store
        Where the traces are.
    """

    def __init__(self, store: Store, daemon: Daemon, api: ApiServer, *, owns_store: bool) -> None:
        self.store = store
        self._daemon = daemon
        self._api = api
        self._owns_store = owns_store
        self._stopped = False
        udp_host, udp_port = daemon.address
        tcp_host, tcp_port = api.address
        self.endpoint_url = api.endpoint_url
        if (udp_host, udp_port) == (tcp_host, tcp_port):
            self.daemon_address = f"{udp_host}:{udp_port}"
        else:
            self.daemon_address = f"tcp:{tcp_host}:{tcp_port} udp:{udp_host}:{udp_port}"

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<LocalXRay {state}: daemon {self.daemon_address}, API {self.endpoint_url}>"

    def client(self) -> Any:
        """A boto3 X-Ray client for this API (dummy credentials; boto3 must be installed)."""
        boto3 = require("boto3", "aws")
        return boto3.client(  # type: ignore[attr-defined]
            "xray",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def environment(self) -> dict[str, str]:
        """The environment variables that point an SDK at this daemon."""
        return {"AWS_XRAY_DAEMON_ADDRESS": self.daemon_address}

    def stats(self) -> dict[str, Any]:
        """What the daemon received, accepted, rejected (by reason) and dropped; traces stored."""
        return {**self._daemon.stats(), "traces": self.store.count()}

    def wait_until_stored(self, traces: int, *, timeout: float = 10.0) -> bool:
        """Wait until the store holds at least ``traces`` traces and the daemon's buffer is
        empty; False if ``timeout`` seconds pass first (UDP gives no receipt to wait on)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.store.count() >= traces and not self._daemon.stats().get("buffered", 0):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the daemon (after storing what it received) and the API; close the store."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._daemon.stop()
        finally:
            self._api.stop()
            self._api.operations.close()  # the background indexer
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> LocalXRay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _free_port_for_both(host: str) -> int:
    """A port free for UDP and TCP at once on ``host``, so that both sides share one address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    return 0


def start(
    address: str | None = None,
    *,
    store: str | os.PathLike[str] | Store | None = None,
    allow_remote: bool = False,
    rate_limit: float | None = None,
    buffer_documents: int = 10_000,
) -> LocalXRay:
    """Start a local X-Ray in background threads and return it.

    Parameters
    ----------
    address : str, optional
        Where to listen, in ``AWS_XRAY_DAEMON_ADDRESS`` syntax: ``"127.0.0.1:2000"`` (the
        default; UDP for the daemon, TCP for the API, as the real daemon) or
        ``"tcp:127.0.0.1:2000 udp:127.0.0.1:2001"``. Port 0 picks a free port.
    store : path, ``":memory:"`` or Store, optional
        The SQLite file (default: :func:`default_store_path`), ``":memory:"`` for traces
        that go with the process, or an open :class:`~xraykit.local.store.Store`.
    allow_remote : bool
        Listen on an address other than loopback. The API has no authentication: anyone who
        reaches the port can read and write traces, so this warns.
    rate_limit : float, optional
        API requests per second; beyond it the API answers ``ThrottledException``, as AWS
        does (for lessons on retries).
    buffer_documents : int
        Documents the daemon holds before it drops the oldest (counted in :meth:`LocalXRay.stats`).
    """
    udp, tcp = parse_daemon_address(address)
    for host, _ in (udp, tcp):
        if not allow_remote and not is_loopback(host):
            raise ArgumentError(
                f"{host!r} is not a loopback address. The local X-Ray's API has no "
                "authentication; to listen there anyway pass allow_remote=True (or "
                "--allow-remote), else use 127.0.0.1."
            )
    if allow_remote and not is_loopback(tcp[0]):  # the daemon says so for its own side
        warnings.warn(
            "The local X-Ray's API listens beyond this machine and has no authentication: "
            "anyone who reaches it can read and write traces.",
            XrayKitWarning,
            stacklevel=2,
        )
    if udp == tcp and udp[1] == 0:
        port = _free_port_for_both(udp[0])
        udp = tcp = (udp[0], port)
    owns = not isinstance(store, Store)
    if isinstance(store, Store):
        db = store
    else:
        path = default_store_path() if store is None else store
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = Store(path)
    daemon = Daemon(db, udp, buffer_documents=buffer_documents, allow_remote=allow_remote)
    api = ApiServer(
        db, tcp, sampling=SamplingService(db), rate_limit=rate_limit, allow_remote=allow_remote
    )
    try:
        daemon.start()
        api.start()
    except BaseException:
        daemon.stop()
        api.stop()
        if owns:
            db.close()
        raise
    return LocalXRay(db, daemon, api, owns_store=owns)

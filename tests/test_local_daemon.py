"""The local X-Ray's UDP daemon, on loopback: good and bad datagrams, floods, restarts."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from xraykit.exceptions import ArgumentError, ArgumentTypeError, XrayKitWarning
from xraykit.local.daemon import Daemon, parse_daemon_address
from xraykit.local.store import PutResult, Store

HEADER = b'{"format":"json","version":1}\n'
EPOCH = 1_700_000_000


def trace_id(i: int) -> str:
    return f"1-{EPOCH:08x}-{i:024x}"


def document(i: int, **extra: object) -> bytes:
    body = {
        "trace_id": trace_id(i),
        "id": f"{i:016x}",
        "name": "web",
        "start_time": EPOCH + i / 1000,
        "end_time": EPOCH + i / 1000 + 0.01,
        **extra,
    }
    return json.dumps(body).encode()


def send(address: tuple[str, int], *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for data in datagrams:
            s.sendto(data, address)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


@pytest.fixture
def daemon(store: Store) -> Iterator[Daemon]:
    d = Daemon(store, ("127.0.0.1", 0))
    d.start()
    yield d
    d.stop()


def test_good_documents_arrive_while_it_runs(daemon, store):
    assert daemon.address[1] != 0 and daemon.running
    send(daemon.address, *(HEADER + document(i) for i in range(5)))
    send(daemon.address, b'{"format": "json", "version": 1}\n' + document(5))  # spaced header
    wait_for(lambda: store.count() == 6)
    stats = daemon.stats()
    assert (stats["received"], stats["accepted"], stats["rejected"]) == (6, 6, {})
    assert stats["dropped_full"] == stats["dropped_socket"] == stats["errors"] == 0


BAD = [
    (document(900), "no header"),
    (b"", "no header"),
    (bytes(range(256)) * 4, "bad header"),
    (b"\x00\x01\x02binary noise without a newline", "no header"),
    (b'{"format":"json","version":2}\n' + document(900), "bad header"),
    (b'{"format":"xml","version":1}\n' + document(900), "bad header"),
    (b"not a header\n" + document(900), "bad header"),
    (HEADER + b"{not json", "not JSON"),
    (HEADER + b"[1, 2, 3]", "not a document"),
    (HEADER + document(900, trace_id="1-x"), "bad trace_id"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD)
def test_a_bad_datagram_is_counted_and_costs_no_good_one(daemon, store, bad, reason):
    send(daemon.address, HEADER + document(1), bad, HEADER + document(2))
    wait_for(lambda: daemon.stats()["received"] == 3)
    daemon.stop()
    stats = daemon.stats()
    assert stats["rejected"] == {reason: 1}
    assert stats["accepted"] == 2
    assert store.trace_ids(EPOCH, EPOCH) == [trace_id(1), trace_id(2)]


def test_a_datagram_over_the_limit_is_too_large(store):
    with Daemon(store, ("127.0.0.1", 0), max_datagram_bytes=2000) as daemon:
        big = HEADER + document(3, metadata={"x": "y" * 3000})
        send(daemon.address, HEADER + document(1), big, HEADER + document(2))
        wait_for(lambda: daemon.stats()["received"] == 3)
    stats = daemon.stats()
    assert stats["rejected"] == {"too large": 1}
    assert store.count() == 2


def test_a_document_near_64_kib_arrives_whole(daemon, store):
    big = HEADER + document(1, metadata={"x": "y" * 60_000})
    send(daemon.address, big)
    wait_for(lambda: store.count() == 1)
    (text,) = store.documents([trace_id(1)])[trace_id(1)]
    assert len(json.loads(text)["metadata"]["x"]) == 60_000


def test_a_flood_is_stored_or_counted(store):
    sent = 20_000
    with (
        Daemon(store, ("127.0.0.1", 0), buffer_documents=500) as daemon,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s,
    ):
        for i in range(sent):
            s.sendto(b"noise" if i % 1000 == 7 else HEADER + document(i), daemon.address)
    stats = daemon.stats()
    rejected = sum(stats["rejected"].values())
    assert set(stats["rejected"]) <= {"no header"}
    assert stats["accepted"] == store.count()
    assert stats["received"] == stats["accepted"] + rejected + stats["dropped_full"]
    assert stats["received"] + stats["dropped_socket"] == sent
    assert stats["buffered"] == 0 and stats["errors"] == 0
    assert stats["accepted"] > 0


def test_stop_stores_what_was_received(store):
    daemon = Daemon(store, ("127.0.0.1", 0))
    daemon.stop()  # before start: nothing to do
    daemon.start()
    daemon.start()  # running: nothing to do
    send(daemon.address, *(HEADER + document(i) for i in range(300)))
    daemon.stop()
    daemon.stop()
    assert not daemon.running
    assert store.count() + daemon.stats()["dropped_socket"] == 300


def test_traces_survive_a_restart(tmp_path):
    path = tmp_path / "local.sqlite3"
    store = Store(path)
    with Daemon(store, ("127.0.0.1", 0)) as daemon:
        send(daemon.address, *(HEADER + document(i) for i in range(10)))
        wait_for(lambda: store.count() == 10)
    store.close()
    store = Store(path)
    with Daemon(store, ("127.0.0.1", 0)) as daemon:
        send(daemon.address, HEADER + document(10))
        wait_for(lambda: store.count() == 11)
    assert store.trace_ids(EPOCH, EPOCH) == [trace_id(i) for i in range(11)]
    store.close()


def test_a_streamed_subsegment_is_stitched_under_its_parent(daemon, store):
    sub = document(1, id="00000000000000aa", name="db", type="subsegment", parent_id=f"{1:016x}")
    send(daemon.address, HEADER + sub)  # the SDK streams subsegments before their segment
    wait_for(lambda: daemon.stats()["accepted"] == 1)
    send(daemon.address, HEADER + document(1))
    wait_for(lambda: daemon.stats()["accepted"] == 2)
    ts = store.traceset()
    assert ts.traces["trace_id"].tolist() == [trace_id(1)]
    assert ts.traces["subsegment_count"].tolist() == [1]
    sub_row = ts.subsegments.iloc[0]
    assert (sub_row["subsegment_id"], sub_row["segment_id"]) == ("00000000000000aa", f"{1:016x}")
    assert bool(sub_row["streamed"])


class FailingOnce(Store):
    """A store whose first put fails, as a full disk would."""

    failed = False

    def put(self, documents, *, received=None) -> PutResult:
        if not self.failed:
            self.failed = True
            raise OSError("disk full")
        return super().put(documents, received=received)


def test_the_writer_survives_a_failing_store():
    store = FailingOnce(":memory:")
    with Daemon(store, ("127.0.0.1", 0)) as daemon:
        send(daemon.address, HEADER + document(1))
        wait_for(lambda: daemon.stats()["errors"] == 1)
        send(daemon.address, HEADER + document(2))
        wait_for(lambda: store.count() == 1)
    stats = daemon.stats()
    assert stats["rejected"] == {"store error": 1} and stats["accepted"] == 1
    store.close()


def test_only_loopback_unless_allowed(store):
    with pytest.raises(ArgumentError, match="allow_remote=True"):
        Daemon(store, ("0.0.0.0", 0))
    with pytest.warns(XrayKitWarning, match="no authentication"):
        daemon = Daemon(store, ("0.0.0.0", 0), allow_remote=True)
    assert not daemon.running  # constructed, never bound in a test
    for bad in (("127.0.0.1", 70000), ("127.0.0.1",), "127.0.0.1:2000", ("127.0.0.1", True)):
        with pytest.raises(ArgumentError):
            Daemon(store, bad)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="buffer_documents"):
        Daemon(store, ("127.0.0.1", 0), buffer_documents=0)


@pytest.mark.parametrize(
    ("text", "udp", "tcp"),
    [
        (None, ("127.0.0.1", 2000), ("127.0.0.1", 2000)),
        ("", ("127.0.0.1", 2000), ("127.0.0.1", 2000)),
        ("127.0.0.1:3000", ("127.0.0.1", 3000), ("127.0.0.1", 3000)),
        ("localhost:0", ("localhost", 0), ("localhost", 0)),
        ("xray-daemon:2000", ("xray-daemon", 2000), ("xray-daemon", 2000)),
        ("tcp:127.0.0.1:2000 udp:127.0.0.2:2001", ("127.0.0.2", 2001), ("127.0.0.1", 2000)),
        ("udp:127.0.0.2:2001 tcp:127.0.0.1:2000", ("127.0.0.2", 2001), ("127.0.0.1", 2000)),
        ("[::1]:2000", ("::1", 2000), ("::1", 2000)),
    ],
)
def test_parse_daemon_address_reads_the_sdk_forms(text, udp, tcp):
    assert parse_daemon_address(text) == (udp, tcp)


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",
        "127.0.0.1:",
        ":2000",
        "127.0.0.1:port",
        "127.0.0.1:70000",
        "127.0.0.1:-1",
        "tcp:127.0.0.1:2000",
        "tcp:127.0.0.1:2000 tcp:127.0.0.1:2001",
        "tcp:127.0.0.1:2000 udp:127.0.0.1",
        "a:1 b:2 c:3",
        "::1:2000",
    ],
)
def test_parse_daemon_address_refuses_other_forms(text):
    with pytest.raises(ArgumentError, match="Invalid daemon address"):
        parse_daemon_address(text)


def test_parse_daemon_address_wants_a_string():
    with pytest.raises(ArgumentTypeError):
        parse_daemon_address(2000)  # type: ignore[arg-type]

"""The reliability campaign's loopback proxy (benchmarks/chaos/proxy.py) against real sockets:
an echo server behind it, plain TCP clients in front."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from benchmarks.chaos.proxy import ChaosProxy


class Echo:
    """A loopback server answering every chunk with ``prefix + chunk``."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(self.prefix + data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo(b"a:")
    yield server
    server.close()


@pytest.fixture
def proxy(echo: Echo) -> Iterator[ChaosProxy]:
    with ChaosProxy(upstream=("127.0.0.1", echo.port)) as p:
        yield p


def roundtrip(port: int, payload: bytes, timeout_s: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as c:
        c.sendall(payload)
        return c.recv(65536)


def connection_is_closed(c: socket.socket) -> bool:
    """True when the peer closed or reset the connection (what a client sees on a drop)."""
    try:
        c.sendall(b"x")
        return c.recv(65536) == b""
    except OSError:
        return True


def is_refused(port: int) -> bool:
    """True when a new connection is reset during or right after its handshake."""
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:  # the reset can arrive before connect() returns
        return True
    with c:
        return connection_is_closed(c)


def test_pass_forwards_bytes_both_ways(proxy: ChaosProxy) -> None:
    assert roundtrip(proxy.port, b"hello") == b"a:hello"
    stats = proxy.stats()
    assert stats.bytes_up == 5
    assert stats.bytes_down == 7


def test_delay_holds_every_chunk_at_least_the_delay_each_way(proxy: ChaosProxy) -> None:
    proxy.delay(150)
    started = time.monotonic()
    assert roundtrip(proxy.port, b"slow") == b"a:slow"
    assert time.monotonic() - started >= 0.3  # 150 ms up + 150 ms down, never less


def test_drop_closes_open_connections_and_accepts_new_ones(proxy: ChaosProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
        c.sendall(b"one")
        assert c.recv(65536) == b"a:one"
        assert proxy.drop() == 1
        assert connection_is_closed(c)
    assert roundtrip(proxy.port, b"two") == b"a:two"
    assert proxy.stats().dropped == 1


def test_cut_closes_open_connections_and_refuses_new_ones(proxy: ChaosProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
        c.sendall(b"one")
        assert c.recv(65536) == b"a:one"
        proxy.cut(60)
        assert connection_is_closed(c)  # the open connection died with the cut
    assert is_refused(proxy.port)  # a new one is refused during it
    assert proxy.stats().refused == 1


def test_a_cut_ends_by_itself(proxy: ChaosProxy) -> None:
    proxy.cut(0.2)
    while proxy.mode == "cut":
        time.sleep(0.05)
    assert roundtrip(proxy.port, b"after") == b"a:after"


def test_passthrough_ends_a_cut_at_once(proxy: ChaosProxy) -> None:
    proxy.cut(60)
    proxy.passthrough()
    assert roundtrip(proxy.port, b"back") == b"a:back"


def test_a_callable_upstream_is_asked_at_every_connection(echo: Echo) -> None:
    other = Echo(b"b:")
    target = [echo.port]
    try:
        with ChaosProxy(upstream=lambda: ("127.0.0.1", target[0])) as p:
            assert roundtrip(p.port, b"x") == b"a:x"
            target[0] = other.port  # the broker behind the address was replaced
            assert roundtrip(p.port, b"x") == b"b:x"
    finally:
        other.close()


def test_an_unreachable_upstream_refuses_the_client() -> None:
    dead = socket.create_server(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    with ChaosProxy(upstream=("127.0.0.1", port)) as p:
        assert is_refused(p.port)
    assert p.stats().refused == 1


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_a_negative_or_nan_delay_is_refused(proxy: ChaosProxy, bad: float) -> None:
    with pytest.raises(ValueError, match="delay must be >= 0 ms"):
        proxy.delay(bad)


def test_a_cut_of_no_time_is_refused(proxy: ChaosProxy) -> None:
    with pytest.raises(ValueError, match="a cut lasts > 0 s"):
        proxy.cut(0)

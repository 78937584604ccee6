"""A loopback TCP proxy that injects network faults between a Kafka client and its broker.

Kafka clients connect to the *advertised* listener they learn from metadata, so a proxy only
stays in the path when the broker advertises the proxy's port (``EmbeddedBroker(
advertised_port=proxy.port)``); the proxy forwards to the broker's real port (``upstream``,
which may change while the proxy runs: a broker restart behind the same address).

Modes, switched at any time from any thread:

- ``pass``: bytes flow both ways untouched;
- ``delay(ms)``: every chunk is held ``ms`` milliseconds in each direction (pipelined: the
  link keeps its throughput, it only gets slower to answer);
- ``drop()``: every open connection is closed now (clients see a reset and reconnect);
- ``cut(seconds)``: everything is closed and every new connection refused (closed at once)
  for ``seconds``, then the proxy passes again — a network partition.

Example::

    with ChaosProxy(upstream=("127.0.0.1", broker_port)) as proxy:
        proxy.delay(50)                   # 50 ms each way
        proxy.cut(3.0)                    # a 3 s partition (returns at once)
        proxy.passthrough()
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Literal, Self, TypeAlias

__all__ = ["ChaosProxy", "ProxyStats"]

_HOST: Final = "127.0.0.1"
_CHUNK: Final = 65536
Mode = Literal["pass", "delay", "cut"]
Upstream: TypeAlias = "tuple[str, int] | Callable[[], tuple[str, int]]"


@dataclasses.dataclass(frozen=True)
class ProxyStats:
    """What the proxy has seen so far (counts, not timings).

    Example::

        ProxyStats(accepted=3, refused=1, dropped=2, open=1, bytes_up=512, bytes_down=2048)
    """

    accepted: int
    refused: int
    dropped: int
    open: int
    bytes_up: int  # client → upstream
    bytes_down: int  # upstream → client


def _hard_close(sock: socket.socket) -> None:
    # SO_LINGER 0: a RST instead of a FIN, what a client sees when a link dies under it
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and its upstream twin, pumped by threads."""

    def __init__(self, proxy: ChaosProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client, self.upstream = client, upstream
        self.closed = threading.Event()

    def start(self) -> None:
        for src, dst, up in (
            (self.client, self.upstream, True),
            (self.upstream, self.client, False),
        ):
            q: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
            threading.Thread(target=self._read, args=(src, q, up), daemon=True).start()
            threading.Thread(target=self._write, args=(dst, q), daemon=True).start()

    def _read(
        self, src: socket.socket, q: queue.Queue[tuple[float, bytes] | None], up: bool
    ) -> None:
        try:
            while not self.closed.is_set():
                data = src.recv(_CHUNK)
                if not data:
                    break
                self.proxy._count(up, len(data))
                q.put((time.monotonic() + self.proxy.delay_s, data))
        except OSError:
            pass
        finally:
            q.put(None)

    def _write(self, dst: socket.socket, q: queue.Queue[tuple[float, bytes] | None]) -> None:
        try:
            while True:
                item = q.get()
                if item is None or self.closed.is_set():
                    break
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if self.closed.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        _hard_close(self.client)
        _hard_close(self.upstream)
        self.proxy._forget(self)


class ChaosProxy:
    """A TCP proxy on a loopback port with switchable faults (see the module docstring).

    ``port=0`` picks a free port (read it from :attr:`port` after :meth:`start`). The
    upstream is an address or a function that returns one, asked at every new connection:
    a broker whose port is only known once it runs (and which may be replaced by another).

    Example::

        proxy = ChaosProxy().start()
        broker = EmbeddedBroker(advertised_port=proxy.port)
        proxy.upstream = lambda: ("127.0.0.1", broker.port)
        broker.start()
    """

    def __init__(self, upstream: Upstream | None = None, port: int = 0) -> None:
        if not (isinstance(port, int) and 0 <= port <= 65535):
            raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
        self.upstream = upstream
        self._requested_port = port
        self._listener: socket.socket | None = None
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._mode: Mode = "pass"
        self.delay_s = 0.0
        self._cut_until = 0.0
        self._stopped = threading.Event()
        self._accepted = self._refused = self._dropped = 0
        self._bytes = [0, 0]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and accept connections from a daemon thread; returns ``self``."""
        if self._listener is not None:
            raise RuntimeError(f"the proxy already listens on {_HOST}:{self.port}")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((_HOST, self._requested_port))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(
            target=self._accept_loop, name=f"chaos-proxy-{self.port}", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection; safe to call more than once."""
        self._stopped.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        self._close_all()

    def __enter__(self) -> Self:
        return self if self._listener is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the proxy is not listening; call start() first")
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, for a client's bootstrap servers."""
        return f"{_HOST}:{self.port}"

    # ------------------------------------------------------------------ faults

    @property
    def mode(self) -> Mode:
        if self._mode == "cut" and time.monotonic() >= self._cut_until:
            self._mode = "delay" if self.delay_s > 0 else "pass"
        return self._mode

    def passthrough(self) -> None:
        """Forward untouched (ends a delay or a cut)."""
        self.delay_s = 0.0
        self._cut_until = 0.0
        self._mode = "pass"

    def delay(self, ms: float) -> None:
        """Hold every chunk ``ms`` milliseconds in each direction (new and open connections)."""
        if not (ms >= 0):
            raise ValueError(f"delay must be >= 0 ms, got {ms!r}")
        self.delay_s = ms / 1000.0
        self._cut_until = 0.0
        self._mode = "delay" if ms > 0 else "pass"

    def drop(self) -> int:
        """Close every open connection now (new ones are accepted); returns how many."""
        n = self._close_all()
        with self._lock:
            self._dropped += n
        return n

    def cut(self, seconds: float) -> None:
        """Close everything and refuse new connections for ``seconds`` (returns at once)."""
        if not (seconds > 0):
            raise ValueError(f"a cut lasts > 0 s, got {seconds!r}")
        self._cut_until = time.monotonic() + seconds
        self._mode = "cut"
        n = self._close_all()
        with self._lock:
            self._dropped += n

    def stats(self) -> ProxyStats:
        with self._lock:
            return ProxyStats(
                accepted=self._accepted,
                refused=self._refused,
                dropped=self._dropped,
                open=len(self._links),
                bytes_up=self._bytes[0],
                bytes_down=self._bytes[1],
            )

    # ------------------------------------------------------------------ internals

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "cut" or self.upstream is None:
                with self._lock:
                    self._refused += 1
                _hard_close(client)
                continue
            try:
                target = self.upstream() if callable(self.upstream) else self.upstream
                upstream = socket.create_connection(target, timeout=5)
            except Exception:  # no upstream yet (a broker between restarts): refused
                with self._lock:
                    self._refused += 1
                _hard_close(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, upstream)
            with self._lock:
                self._accepted += 1
                self._links.add(link)
            link.start()

    def _close_all(self) -> int:
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
        return len(links)

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _count(self, up: bool, n: int) -> None:
        with self._lock:
            self._bytes[0 if up else 1] += n

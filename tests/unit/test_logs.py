"""The service's log lines: what a person reads and what a log pipeline parses."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from consumers.logs import setup_logging

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


class Secret:
    """Stands in for the config's secret type: masked repr, explicit reveal."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Secret('********')"

    def reveal(self) -> str:
        return self._value


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.fixture(autouse=True)
def restore_logger() -> Iterator[None]:
    """setup_logging changes the process-wide 'streamvae' logger: put it back after each test."""
    logger = logging.getLogger("streamvae")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture(autouse=True)
def fresh_streamvae_logger() -> Iterator[None]:
    """Each test starts from an unconfigured ``streamvae`` logger: a command run in-process
    by an earlier test (``main([...])``) leaves it non-propagating, and pytest then attaches
    its capture handlers to it, which these tests would count as ours."""
    logger = logging.getLogger("streamvae")
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers[:] = []
    logger.propagate = True
    yield
    logger.handlers[:], logger.propagate, logger.level = saved


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_parse_and_carry_the_extras(out: io.StringIO) -> None:
    setup_logging("json", stream=out)
    log = logging.getLogger("streamvae.service")
    log.info("committed %d records", 42, extra={"partition": 3, "topic": "readings"})
    log.warning("lagging", extra={"lag": 1.5})
    first, second = json_lines(out)
    assert first["level"] == "INFO"
    assert first["logger"] == "streamvae.service"
    assert first["msg"] == "committed 42 records"
    assert (first["partition"], first["topic"]) == (3, "readings")
    assert second["level"] == "WARNING"
    assert second["lag"] == 1.5


def test_json_timestamps_are_utc_with_milliseconds(out: io.StringIO) -> None:
    setup_logging("json", stream=out).info("tick")
    (line,) = json_lines(out)
    ts = line["ts"]
    assert isinstance(ts, str)
    assert re.fullmatch(TS, ts)
    datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_json_leaves_out_the_standard_record_attributes(out: io.StringIO) -> None:
    setup_logging("json", stream=out).info("plain")
    (line,) = json_lines(out)
    assert set(line) == {"ts", "level", "logger", "msg"}


def test_json_stringifies_what_json_cannot_encode(out: io.StringIO) -> None:
    setup_logging("json", stream=out).info(
        "odd extras",
        extra={"when": datetime(2026, 12, 1), "ratio": float("nan"), "ids": [1, 2], "obj": {1}},
    )
    (line,) = json_lines(out)
    assert line["when"] == "2026-12-01 00:00:00"
    assert line["ratio"] == "nan"
    assert line["ids"] == [1, 2]
    assert line["obj"] == "{1}"


def test_a_bad_extra_never_breaks_the_log_call(out: io.StringIO) -> None:
    log = setup_logging("json", stream=out)
    log.info("still logged", extra={"bad": Unprintable()})
    (line,) = json_lines(out)
    assert line["msg"] == "still logged"
    assert line["bad"] == "<unprintable Unprintable>"


def test_an_extra_cannot_forge_the_level(out: io.StringIO) -> None:
    setup_logging("json", stream=out).error("real", extra={"level": "DEBUG"})
    (line,) = json_lines(out)
    assert (line["level"], line["extra_level"]) == ("ERROR", "DEBUG")


def test_text_format_has_the_level_and_the_extras(out: io.StringIO) -> None:
    setup_logging("text", stream=out)
    logging.getLogger("streamvae.service").info(
        "committed", extra={"partition": 3, "note": "two words"}
    )
    line = out.getvalue().rstrip("\n")
    assert re.fullmatch(
        TS + r' INFO  streamvae\.service: committed partition=3 note="two words"', line
    )


def test_exceptions_are_included(out: io.StringIO) -> None:
    log = setup_logging("json", stream=out)
    try:
        raise ValueError("bad reading")
    except ValueError:
        log.exception("scoring failed", extra={"asset": "pump-1"})
    (line,) = json_lines(out)
    exc = line["exc"]
    assert isinstance(exc, str)
    assert exc.startswith("Traceback")
    assert "ValueError: bad reading" in exc
    assert line["asset"] == "pump-1"


def test_exceptions_are_included_in_text(out: io.StringIO) -> None:
    log = setup_logging("text", stream=out)
    try:
        raise ValueError("bad reading")
    except ValueError:
        log.exception("scoring failed")
    first, *rest = out.getvalue().splitlines()
    assert first.endswith("ERROR streamvae: scoring failed")
    assert rest[-1] == "ValueError: bad reading"


def test_setup_is_idempotent(out: io.StringIO) -> None:
    first = setup_logging("json", stream=out)
    second = setup_logging("json", stream=out)
    assert first is second is logging.getLogger("streamvae")
    assert len(second.handlers) == 1
    second.info("once")
    assert len(json_lines(out)) == 1


def test_setup_configures_streamvae_and_not_the_root_logger(out: io.StringIO) -> None:
    root_handlers = list(logging.getLogger().handlers)
    setup_logging("text", level="debug", stream=out)
    assert logging.getLogger().handlers == root_handlers
    logging.getLogger("streamvae.x").debug("shown")
    logging.getLogger("other").warning("not ours")
    assert "shown" in out.getvalue()
    assert "not ours" not in out.getvalue()


def test_the_level_filters(out: io.StringIO) -> None:
    log = setup_logging("text", level="WARNING", stream=out)
    log.info("hidden")
    log.warning("shown")
    assert "hidden" not in out.getvalue()
    assert "shown" in out.getvalue()


def test_an_unknown_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        setup_logging(level="LOUD")
    with pytest.raises(ValueError, match="log format"):
        setup_logging("xml")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_secret_like_value_is_masked(out: io.StringIO, fmt: str) -> None:
    secret = Secret("hunter2")
    log = setup_logging(fmt, stream=out)  # type: ignore[arg-type]
    log.info("connecting as %s", secret, extra={"password": secret, "dsn": "kafka://u:********@h"})
    text = out.getvalue()
    assert secret.reveal() not in text
    assert "Secret(" not in text
    if fmt == "json":
        (line,) = json_lines(out)
        assert line["password"] == line["dsn"] == "********"
        assert line["msg"] == "connecting as ********"
    else:
        assert "password=******** dsn=********" in text

"""``streamvae replay``: a user's CSV into a sensor topic, so they can try their own data.

A CSV has one row per time step and one column per channel (numeric columns become channels
unless named), optionally an asset column (several assets in one file) and a time column. Each
row becomes one JSON reading (``streamvae.encode_reading``: ``{"asset", "ts", "values"}``),
keyed by asset so an asset stays on one partition, exactly as the service reads them.

Times: a column named ``--ts-column`` (default: the first of ``timestamp``, ``datetime``,
``time``, ``ts``), as epoch seconds or milliseconds or ISO-8601 (a time without a zone is
taken as UTC — SKAB's ``2020-03-09 10:14:33`` is); without one, rows are ``--period-s``
apart from ``--start-ts`` (default: now, so the readings land in the service's sane range).
An empty or non-numeric cell leaves that channel out of the row's reading (the windower
treats it as missing); a row with no value at all is skipped and counted.

Pacing: ``--speed 0`` (default) sends as fast as the broker takes them; ``--speed X`` sends
in X × event time (``--speed 1`` is real time, ``60`` a minute per second).

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pump.csv"
    >>> _ = path.write_text("datetime;flow;temp\\n2020-03-09 10:00:00;1.5;20\\n"
    ...                     "2020-03-09 10:00:01;;21\\n")
    >>> [(r.asset, r.ts, r.values) for r in csv_readings(path).readings]
    [('pump', 1583748000.0, {'flow': 1.5, 'temp': 20.0}), ('pump', 1583748001.0, {'temp': 21.0})]
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamvae as sv

__all__ = ["CsvReadings", "ReplayError", "csv_readings", "csv_rows", "replay"]

TIME_COLUMNS = ("timestamp", "datetime", "time", "ts")


class ReplayError(ValueError):
    """The CSV cannot be replayed as asked (the message says what to change)."""


@dataclass(frozen=True, slots=True)
class CsvReadings:
    """The readings of a CSV, in file order, and what was left out.

    Example:
        >>> CsvReadings([], ("flow",), skipped_rows=2).skipped_rows
        2
    """

    readings: list[sv.Reading]
    channels: tuple[str, ...]
    skipped_rows: int = 0
    assets: tuple[str, ...] = ()


def csv_rows(path: Path) -> list[list[str]]:
    """Every row of a CSV whose separator (``,`` ``;`` or tab) is sniffed from its start."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(8192)
        fh.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        return list(csv.reader(fh, dialect))


def _parse_time(text: str, where: str) -> float:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ReplayError(f"{where}: time {text!r} is not finite")
        return value / 1000.0 if abs(value) >= 1e11 else value  # epoch ms or s
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"{where}: time {text!r} is neither epoch seconds/milliseconds nor ISO-8601; "
            "name another column with --ts-column, or drop it with --exclude"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def csv_readings(
    path: str | Path,
    *,
    asset: str | None = None,
    asset_column: str | None = None,
    ts_column: str | None = None,
    period_s: float = 60.0,
    start_ts: float | None = None,
    channels: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> CsvReadings:
    """Read a CSV into readings (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ReplayError(f"no such file: {path}")
    if not (period_s > 0 and math.isfinite(period_s)):
        raise ReplayError(f"--period-s must be a positive number of seconds, got {period_s}")
    rows = csv_rows(path)
    if len(rows) < 2:
        raise ReplayError(f"{path}: needs a header row and at least one data row")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if asset_column is not None and asset_column not in header:
        raise ReplayError(f"{path}: no asset column {asset_column!r} in header {header}")
    if ts_column is None:
        ts_column = next((h for h in header if h.lower() in TIME_COLUMNS), None)
    elif ts_column not in header:
        raise ReplayError(f"{path}: no time column {ts_column!r} in header {header}")
    special = {asset_column, ts_column} - {None}

    def numeric(col: int) -> bool:
        seen = 0
        for row in body[:200]:
            cell = row[col].strip() if col < len(row) else ""
            if not cell:
                continue
            try:
                float(cell)
            except ValueError:
                return False
            seen += 1
        return seen > 0

    if channels:
        missing = [c for c in channels if c not in header]
        if missing:
            raise ReplayError(f"{path}: column(s) {missing} not in header {header}")
        names = list(channels)
    else:
        names = [
            h for i, h in enumerate(header) if h not in exclude and h not in special and numeric(i)
        ]
    if not names:
        raise ReplayError(f"{path}: no numeric channel columns (header: {header})")
    index = [header.index(n) for n in names]
    a_col = header.index(asset_column) if asset_column else None
    t_col = header.index(ts_column) if ts_column else None
    default_asset = asset or path.stem
    first = time.time() if start_ts is None else start_ts  # the edge may read the clock
    out: list[sv.Reading] = []
    skipped = 0
    for r, row in enumerate(body, start=2):
        if not any(cell.strip() for cell in row):
            skipped += 1
            continue
        values: dict[str, float] = {}
        for name, col in zip(names, index, strict=True):
            try:
                v = float(row[col])
            except (ValueError, IndexError):
                continue
            if math.isfinite(v):
                values[name] = v
        if not values:
            skipped += 1
            continue
        who = row[a_col].strip() if a_col is not None and a_col < len(row) else default_asset
        if not who:
            raise ReplayError(f"{path}:{r}: empty asset in column {asset_column!r}")
        if t_col is not None:
            ts = _parse_time(row[t_col] if t_col < len(row) else "", f"{path}:{r}")
        else:
            ts = first + (r - 2) * period_s
        out.append(sv.Reading(who, ts, values))
    return CsvReadings(out, tuple(names), skipped, tuple(dict.fromkeys(x.asset for x in out)))


def replay(
    readings: Sequence[sv.Reading],
    send: Callable[[bytes, bytes], None],
    *,
    speed: float = 0.0,
    progress: Callable[[int, int, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Send every reading (``send(key, value)``), paced at ``speed`` × event time (0: as fast
    as possible); ``progress(sent, total, seconds)`` about every second. Returns seconds."""
    if speed < 0 or not math.isfinite(speed):
        raise ReplayError(f"--speed must be 0 (as fast as possible) or > 0, got {speed}")
    start = clock()
    t0 = readings[0].ts if readings else 0.0
    last_report = start
    total = len(readings)
    for i, reading in enumerate(readings):
        if speed > 0:
            due = start + (reading.ts - t0) / speed
            pause = due - clock()
            if pause > 0:
                sleep(pause)
        send(reading.asset.encode(), sv.encode_reading(reading))
        now = clock()
        if progress is not None and now - last_report >= 1.0:
            progress(i + 1, total, now - start)
            last_report = now
    seconds = clock() - start
    if progress is not None:
        progress(total, total, seconds)
    return seconds

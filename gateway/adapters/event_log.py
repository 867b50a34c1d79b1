"""The safety event log (SQLite, WAL): every raise, clear, latch, acknowledge, reset, admission and command.

It lives in the store's database file beside the estimator checkpoints, on its own connection (WAL lets
both write the one file). Each `append` is one transaction with synchronous=FULL: once it returns, the
batch survives kill -9 or a power cut, and a crash never leaves half a batch.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.adapters.sqlite_file import OPEN_FIX, open_part
from gateway.domain.alarms import Severity
from gateway.domain.events import BmsEvent, EventKind
from gateway.errors import AdapterError
from gateway.settings import EventLogSettings

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        pack_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        code TEXT NOT NULL,
        severity INTEGER NOT NULL,
        cell INTEGER,
        value REAL,
        threshold REAL,
        operator TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_time ON events (time)",
    "CREATE INDEX IF NOT EXISTS events_by_pack_time ON events (pack_id, time)",
)
_COLUMNS = "time, pack_id, kind, code, severity, cell, value, threshold, operator, detail"
_SECONDS_PER_DAY = 86_400.0

_Row = tuple[float, str, str, str, int, int | None, float | None, float | None, str, str]


@dataclass
class WriteCounts:
    written: int = 0  # events appended since start
    failures: int = 0  # appends that failed (their events are only in the console log)


class EventLog:
    """Appends and reads safety events. Thread-safe, so the engine may hand `append` to a worker thread."""

    def __init__(self, path: Path, retention: EventLogSettings | None = None, *, create: bool = True,
                 counts: WriteCounts | None = None) -> None:
        """`create`: make the file and table if missing (the gateway); False only reads what exists (the CLI).
        `counts`: where appends are counted (the metrics read it)."""
        self.path = path
        self.retention = retention or EventLogSettings()
        self._lock = threading.Lock()
        self._db = _connect(path, create)
        self.counts = counts or WriteCounts()

    def append(self, events: Sequence[BmsEvent]) -> None:
        if not events:
            return
        rows = [_row_of(event) for event in events]
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self.counts.written += len(rows)
        except sqlite3.Error as error:
            self.counts.failures += 1
            raise AdapterError(f"event log {self.path}: {len(rows)} event(s) not written ({error}); "
                               f"check the disk has space and {OPEN_FIX}") from error

    def query(self, pack_id: str | None = None, since: float | None = None, until: float | None = None,
              limit: int | None = None) -> list[BmsEvent]:
        """Events with `since <= time <= until`, oldest first; with `limit`, only the newest `limit` of them."""
        conditions: list[str] = []
        parameters: list[str | float | int] = []
        for condition, parameter in (("pack_id = ?", pack_id), ("time >= ?", since), ("time <= ?", until)):
            if parameter is not None:
                conditions.append(condition)
                parameters.append(parameter)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        select = f"SELECT id, {_COLUMNS} FROM events {where}"
        if limit is not None:
            select = f"SELECT * FROM ({select} ORDER BY time DESC, id DESC LIMIT ?)"
            parameters.append(max(limit, 0))
        try:
            with self._lock:
                if not self._has_events_table():
                    return []
                rows = self._db.execute(f"{select} ORDER BY time, id", parameters).fetchall()
        except sqlite3.Error as error:
            raise AdapterError(f"event log {self.path}: cannot be read ({error}); "
                               "fix: point it at the gateway's store database ([store] path)") from error
        return [self._event_of(row) for row in rows]

    def prune(self, now: float) -> int:
        """Delete events older than `retention_days`, then the oldest beyond `max_events`; return how many."""
        cutoff = now - self.retention.retention_days * _SECONDS_PER_DAY
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                aged = self._db.execute("DELETE FROM events WHERE time < ?", (cutoff,)).rowcount
                excess = self._db.execute(
                    "DELETE FROM events WHERE id IN "
                    "(SELECT id FROM events ORDER BY time DESC, id DESC LIMIT -1 OFFSET ?)",
                    (self.retention.max_events,)).rowcount
        except sqlite3.Error as error:
            raise AdapterError(f"event log {self.path}: pruning failed ({error}); {OPEN_FIX}") from error
        return aged + excess

    def close(self) -> None:
        self._db.close()

    def _has_events_table(self) -> bool:
        found = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()
        return found is not None

    def _event_of(self, row: tuple[Any, ...]) -> BmsEvent:
        row_id, time, pack_id, kind, code, severity, cell, value, threshold, operator, detail = row
        try:
            return BmsEvent(float(time), pack_id, EventKind(kind), code, Severity(severity), cell,
                            _nan_if_null(value), _nan_if_null(threshold), operator, detail)
        except ValueError as error:
            raise AdapterError(f"event log {self.path}: event {row_id} cannot be read ({error}); "
                               "fix: read it with the gateway version that wrote it") from error


def _connect(path: Path, create: bool) -> sqlite3.Connection:
    return open_part(path, "event log", _SCHEMA, create=create, synchronous="FULL")


def _row_of(event: BmsEvent) -> _Row:
    return (event.time, event.pack_id, event.kind.value, event.code, int(event.severity), event.cell,
            _null_if_nan(event.value), _null_if_nan(event.threshold), event.operator, event.detail)


def _null_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def _nan_if_null(value: float | None) -> float:
    return math.nan if value is None else float(value)

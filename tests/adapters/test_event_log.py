"""The safety event log against real SQLite files: filters, NaN, retention, atomic batches, kill -9."""

from __future__ import annotations

import math
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.event_log import EventLog
from gateway.adapters.state_store import PackCheckpoint, StateStore
from gateway.domain.alarms import Severity
from gateway.domain.events import BmsEvent, EventKind
from gateway.errors import AdapterError
from gateway.settings import EventLogSettings

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400.0
T0 = 1_795_000_000.0  # 2026-11-18, a wall-clock time like the gateway writes


def event(time: float, pack_id: str = "pack-01", kind: EventKind = EventKind.RAISED, code: str = "cell_overvoltage",
          **fields: Any) -> BmsEvent:
    return BmsEvent(time, pack_id, kind, code, **fields)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    with closing(EventLog(tmp_path / "gateway.sqlite")) as opened:
        yield opened


def raw_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def test_events_come_back_field_for_field_in_time_order(log: EventLog) -> None:
    late = event(T0 + 5, "pack-02", EventKind.LATCHED, severity=Severity.TRIP, cell=31, value=4.31, threshold=4.3,
                 detail="limits held at zero")
    early = event(T0, "pack-01", EventKind.ACKNOWLEDGED, code="cell_overtemperature", severity=Severity.ALARM,
                  operator="alice", detail="via OPC UA")
    same_time_later_id = event(T0, "pack-01", EventKind.RESET, code="cell_overtemperature", operator="bob")
    log.append([late, early])
    log.append([same_time_later_id])

    assert log.query() == [early, same_time_later_id, late]


def test_query_filters_by_pack_and_an_inclusive_time_window(log: EventLog) -> None:
    log.append([event(T0 + k, f"pack-0{1 + k % 2}") for k in range(10)])

    assert [e.time - T0 for e in log.query(pack_id="pack-02")] == [1, 3, 5, 7, 9]
    assert [e.time - T0 for e in log.query(since=T0 + 3, until=T0 + 6)] == [3, 4, 5, 6]
    assert [e.time - T0 for e in log.query(pack_id="pack-01", since=T0 + 3, until=T0 + 6)] == [4, 6]
    assert log.query(pack_id="pack-77") == []


def test_limit_keeps_the_newest_events_oldest_first(log: EventLog) -> None:
    log.append([event(T0 + k) for k in range(10)])

    assert [e.time - T0 for e in log.query(limit=3)] == [7, 8, 9]
    assert [e.time - T0 for e in log.query(until=T0 + 4, limit=2)] == [3, 4]


def test_an_unknown_value_is_stored_as_null_and_read_back_as_nan(log: EventLog) -> None:
    log.append([event(T0, "pack-01", EventKind.COMMAND, code="disconnect", operator="plc"),
                event(T0 + 1, value=4.25, threshold=math.inf)])

    stored = raw_rows(log.path, "SELECT cell, value, threshold FROM events ORDER BY id")
    assert stored == [(None, None, None), (None, 4.25, math.inf)]
    command, raised = log.query()
    assert command.cell is None
    assert math.isnan(command.value)
    assert math.isnan(command.threshold)
    assert (raised.value, raised.threshold) == (4.25, math.inf)


def test_the_database_is_in_wal_mode_with_indexes_on_time_and_pack(log: EventLog) -> None:
    assert raw_rows(log.path, "PRAGMA journal_mode") == [("wal",)]
    indexes = raw_rows(log.path, "SELECT name FROM pragma_index_list('events')")
    columns = {tuple(column for (column,) in raw_rows(log.path, f"SELECT name FROM pragma_index_info('{name}') "
                                                      "ORDER BY seqno")) for (name,) in indexes}
    assert columns == {("time",), ("pack_id", "time")}


def test_prune_deletes_events_older_than_the_retention(tmp_path: Path) -> None:
    with closing(EventLog(tmp_path / "gateway.sqlite", EventLogSettings(retention_days=30))) as log:
        log.append([event(T0 - 31 * DAY), event(T0 - 30.5 * DAY), event(T0 - 29 * DAY), event(T0)])

        assert log.prune(T0) == 2
        assert [e.time for e in log.query()] == [T0 - 29 * DAY, T0]
        assert log.prune(T0) == 0


def test_prune_keeps_only_the_newest_max_events(tmp_path: Path) -> None:
    with closing(EventLog(tmp_path / "gateway.sqlite", EventLogSettings(max_events=1000))) as log:
        log.append([event(T0 + k) for k in range(1005)])

        assert log.prune(T0 + 1005) == 5
        kept = log.query()
        assert len(kept) == 1000
        assert (kept[0].time, kept[-1].time) == (T0 + 5, T0 + 1004)


def test_a_batch_is_all_or_nothing(log: EventLog) -> None:
    log.append([event(T0)])
    broken = event(T0 + 2, pack_id=None)  # type: ignore[arg-type]  # violates NOT NULL inside the batch

    with pytest.raises(AdapterError, match=r"gateway\.sqlite: 2 event\(s\) not written"):
        log.append([event(T0 + 1), broken])

    assert [e.time for e in log.query()] == [T0]


def test_shares_the_database_file_with_the_estimator_store(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    store = StateStore(path)
    try:
        with closing(EventLog(path)) as log:
            store.save([PackCheckpoint("pack-01", "nmc-200ah", 32, {"soc": 0.5})])
            log.append([event(T0)])
            store.save([PackCheckpoint("pack-01", "nmc-200ah", 32, {"soc": 0.4})])
            assert len(log.query()) == 1
        assert store.load()["pack-01"].state == {"soc": 0.4}
    finally:
        store.close()


def test_reading_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"

    with pytest.raises(AdapterError, match=r"missing\.sqlite: cannot be opened"):
        EventLog(missing, create=False)
    assert not missing.exists()


def test_a_store_without_events_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    StateStore(path).close()

    with closing(EventLog(path, create=False)) as log:
        assert log.query() == []
    assert raw_rows(path, "SELECT name FROM sqlite_master WHERE name = 'events'") == []


def test_a_file_that_is_not_a_database_is_an_adapter_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("not a database, just some text that is long enough to have a header\n" * 10)

    with closing(EventLog(path, create=False)) as log, pytest.raises(AdapterError, match=r"notes\.sqlite: cannot be"):
        log.query()


# A gateway stand-in: appends batches of BATCH events as fast as it can, printing each batch once committed.
WRITER = """
import sys
from pathlib import Path
from gateway.adapters.event_log import EventLog
from gateway.domain.events import BmsEvent, EventKind

log, size, batch = EventLog(Path(sys.argv[1])), int(sys.argv[2]), 0
while True:
    log.append([BmsEvent(float(batch), "pack-01", EventKind.RAISED, "cell_overvoltage", detail=str(batch))
                for _ in range(size)])
    print(batch, flush=True)
    batch += 1
"""
BATCH = 200


def test_every_batch_reported_committed_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    reported: list[int] = []
    with subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(BATCH)], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as writer:
        assert writer.stdout is not None
        try:
            while len(reported) < 8:
                line = writer.stdout.readline()
                assert line, f"the writer stopped: {writer.stderr.read() if writer.stderr else ''}"
                reported.append(int(line))
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
        reported += [int(line) for line in writer.stdout.read().split()]
    assert writer.returncode == -signal.SIGKILL

    assert raw_rows(path, "PRAGMA integrity_check") == [("ok",)]
    with closing(EventLog(path)) as log:
        sizes: dict[str, int] = {}
        for stored in log.query():
            sizes[stored.detail] = sizes.get(stored.detail, 0) + 1
    assert {str(batch) for batch in reported} <= set(sizes)
    assert set(sizes.values()) == {BATCH}, "a batch was stored in part"
    assert len(sizes) - len(reported) <= 1, "at most the batch being reported when killed is extra"

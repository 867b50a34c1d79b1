"""`bms-gateway events` against a real event log, as a user runs it (in process, and `python3 -m gateway`)."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.adapters.event_log import EventLog
from gateway.adapters.state_store import StateStore
from gateway.cli import main
from gateway.domain.alarms import Severity
from gateway.domain.events import BmsEvent, EventKind
from gateway.event_command import parse_time

ROOT = Path(__file__).resolve().parents[1]
HEADER = "time_iso,time,pack_id,kind,code,severity,cell,value,threshold,operator,detail"
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()
EVENTS = (
    BmsEvent(T0, "pack-01", EventKind.RAISED, "cell_overvoltage", Severity.WARNING, 7, 4.231, 4.2),
    BmsEvent(T0 + 60.25, "pack-01", EventKind.ACKNOWLEDGED, "cell_overvoltage", Severity.WARNING, 7,
             operator="alice", detail="via OPC UA, from the control room"),
    BmsEvent(T0 + 3600, "pack-02", EventKind.LATCHED, "cell_overtemperature", Severity.TRIP, 3, 66.5, 65.0,
             detail="limits held at zero"),
    BmsEvent(T0 + 7200, "pack-02", EventKind.NOT_ADMITTED, "admission", detail="cell spread 180 mV > 50 mV"),
)


@pytest.fixture
def local_zone_far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "TEST+05:45")  # a POSIX zone: needs no tz database
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.sqlite"
    with closing(EventLog(path)) as log:
        log.append(EVENTS)
    return path


def events(capsys: pytest.CaptureFixture[str], *arguments: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["events", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def bms_gateway(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *map(str, arguments)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def test_csv_has_the_documented_columns_and_one_row_per_event(capsys: pytest.CaptureFixture[str],
                                                               database: Path) -> None:
    code, out, _ = events(capsys, "--store", database, "--format", "csv")

    assert code == 0
    assert out.splitlines()[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["kind"] for row in rows] == ["raised", "acknowledged", "latched", "not_admitted"]
    assert rows[0] == {"time_iso": "2026-11-21T10:00:00.000Z", "time": str(T0), "pack_id": "pack-01", "kind": "raised",
                       "code": "cell_overvoltage", "severity": "warning", "cell": "7", "value": "4.231",
                       "threshold": "4.2", "operator": "", "detail": ""}
    assert (rows[1]["time_iso"], rows[1]["value"], rows[1]["operator"]) == ("2026-11-21T10:01:00.250Z", "", "alice")
    assert rows[1]["detail"] == "via OPC UA, from the control room"
    assert [row["severity"] for row in rows] == ["warning", "warning", "trip", "none"]
    assert rows[3]["cell"] == ""


def test_json_is_an_array_of_objects_with_the_csv_keys(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    code, out, _ = events(capsys, "--store", database, "--format", "json")

    assert code == 0
    records = json.loads(out)
    assert [list(record) for record in records] == [HEADER.split(",")] * len(EVENTS)
    assert records[2] == {"time_iso": "2026-11-21T11:00:00.000Z", "time": T0 + 3600, "pack_id": "pack-02",
                          "kind": "latched", "code": "cell_overtemperature", "severity": "trip", "cell": 3,
                          "value": 66.5, "threshold": 65.0, "operator": "", "detail": "limits held at zero"}
    assert (records[3]["cell"], records[3]["value"], records[3]["threshold"]) == (None, None, None)


def test_table_lines_up_every_column_under_its_header(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    code, out, _ = events(capsys, "--store", database)

    assert code == 0
    header, *rows = out.splitlines()
    assert len(rows) == len(EVENTS)
    starts = [header.index(title) for title in ("PACK", "KIND", "CODE", "SEVERITY", "CELL", "VALUE", "DETAIL")]
    for row, event in zip(rows, EVENTS, strict=True):
        assert row.startswith(datetime.fromtimestamp(event.time, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        for start in starts:
            assert row[start - 2:start] == "  ", f"misaligned at column {start}: {row!r}"
            assert row[start] != " ", f"misaligned at column {start}: {row!r}"
        assert row.endswith(event.detail or "-")
    assert rows[2].split()[1:8] == ["pack-02", "latched", "cell_overtemperature", "trip", "3", "66.5", "65"]


def test_filters_by_pack_time_window_and_limit(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    def kinds(*arguments: str) -> list[str]:
        code, out, _ = events(capsys, "--store", database, "--format", "json", *arguments)
        assert code == 0
        return [record["kind"] for record in json.loads(out)]

    assert kinds("--pack", "pack-02") == ["latched", "not_admitted"]
    assert kinds("--since", "2026-11-21T10:01:00Z", "--until", "2026-11-21T11:00:00") == ["acknowledged", "latched"]
    assert kinds("--since", str(T0 + 3600)) == ["latched", "not_admitted"]
    assert kinds("--pack", "pack-01", "--limit", "1") == ["acknowledged"]


def test_a_duration_counts_back_from_now(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "recent.sqlite"
    now = time.time()
    with closing(EventLog(path)) as log:
        log.append([BmsEvent(now - 7200, "pack-01", EventKind.RAISED, "cell_overvoltage"),
                    BmsEvent(now - 600, "pack-01", EventKind.CLEARED, "cell_overvoltage")])

    code, out, _ = events(capsys, "--store", path, "--format", "json", "--since", "1h")

    assert code == 0
    assert [record["kind"] for record in json.loads(out)] == ["cleared"]


def test_an_empty_log_prints_only_the_header_or_an_empty_array(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    EventLog(path).close()

    assert events(capsys, "--store", path, "--format", "csv") == (0, HEADER + "\n", "")
    assert events(capsys, "--store", path, "--format", "json") == (0, "[]\n", "")


def test_a_store_that_never_logged_an_event_reads_as_empty(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    path = tmp_path / "estimator-only.sqlite"
    StateStore(path).close()

    assert events(capsys, "--store", path, "--format", "json") == (0, "[]\n", "")


def test_the_store_path_comes_from_the_configuration(capsys: pytest.CaptureFixture[str], database: Path,
                                                     tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(f"[store]\npath = {json.dumps(str(database))}\n")

    code, out, _ = events(capsys, "--config", config, "--format", "csv", "--pack", "pack-01")

    assert code == 0
    assert len(out.splitlines()) == 1 + 2


def test_a_missing_database_is_a_clear_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite"

    result = bms_gateway("events", "--store", missing)

    assert result.returncode == 2
    assert result.stdout == ""
    assert str(missing) in result.stderr
    assert "--store" in result.stderr
    assert "--config" in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing.exists()


def test_a_bad_since_is_a_clear_usage_error(database: Path) -> None:
    result = bms_gateway("events", "--store", database, "--since", "yesterday")

    assert result.returncode == 2
    assert "argument --since: 'yesterday' is not a time" in result.stderr
    assert "ISO-8601" in result.stderr
    assert "2h" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_installed_entry_point_prints_the_log(database: Path) -> None:
    result = bms_gateway("events", "--store", database, "--format", "csv", "--limit", "2")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == HEADER
    assert [line.split(",")[3] for line in result.stdout.splitlines()[1:]] == ["latched", "not_admitted"]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-21T10:00:00Z", T0),
    ("2026-11-21T10:00:00", T0),  # naive is UTC, not the machine's zone (set far from UTC by the fixture)
    ("2026-11-21T12:00:00+02:00", T0),
    ("2026-11-21T10:00:00.5Z", T0 + 0.5),
    (str(T0), T0),
    ("1795000000", 1_795_000_000.0),
    ("90s", T0 + 7200 - 90),
    ("30m", T0 + 7200 - 1800),
    ("2h", T0),
    ("7d", T0 + 7200 - 7 * 86_400),
    ("1.5h", T0 + 1800),
])
@pytest.mark.usefixtures("local_zone_far_from_utc")
def test_parse_time_accepts_iso_epoch_and_durations_back_from_now(text: str, expected: float) -> None:
    assert math.isclose(parse_time(text, now=T0 + 7200), expected, abs_tol=1e-6)


@pytest.mark.parametrize("text", ["yesterday", "2h ago", "-5m", "nan", "inf", "2026-13-01", ""])
def test_parse_time_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time"):
        parse_time(text, now=T0)

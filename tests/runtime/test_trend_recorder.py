"""The trend recorder samples the hub's latest snapshot into a real trend log: online packs only, cells less often,
and a failing store neither stops it nor loses what comes after."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.adapters.trend_log import PACK_COLUMNS, TrendLog
from gateway.domain.snapshot import GatewaySnapshot
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.trend_recorder import TrendRecorder, pack_row, sample
from gateway.settings import TrendSettings
from tests.factories import make_pack, make_snapshot


def test_a_pack_row_carries_the_snapshot_figures_in_column_order() -> None:
    pack = make_pack(2)
    row = dict(zip(PACK_COLUMNS, pack_row(pack, 5.0).values, strict=True))
    assert row["soc"] == pack.soc
    assert row["soh_resistance"] == pack.soh_resistance
    assert row["cell_voltage_max_v"] == max(pack.cell_voltage_v)
    assert row["temperature_min_c"] == min(pack.temperature_c)
    assert row["discharge_current_limit_a"] == pack.discharge_current_limit_a


def test_offline_packs_are_not_sampled_and_cells_only_when_asked() -> None:
    snapshot = make_snapshot(3, offline=(1,))
    packs, cells = sample(snapshot, with_cells=False)
    assert [row.pack_id for row in packs] == ["pack-01", "pack-03"]
    assert cells == []
    packs, cells = sample(snapshot, with_cells=True)
    assert [row.pack_id for row in cells] == ["pack-01", "pack-03"]
    assert all(row.time == snapshot.wall_time for row in [*packs, *cells])


def _now_snapshot(packs: int, sequence: int = 1) -> GatewaySnapshot:
    return replace(make_snapshot(packs, sequence), wall_time=time.time())  # inside the retention


async def _publish_every(hub: SnapshotHub, period_s: float, until_s: float) -> None:
    for sequence in range(1, round(until_s / period_s) + 1):
        await hub.publish(_now_snapshot(2, sequence))
        await asyncio.sleep(period_s)


async def test_the_recorder_writes_every_interval_and_cells_every_cell_interval(tmp_path: Path) -> None:
    hub = SnapshotHub()
    log = TrendLog(tmp_path / "store.sqlite", TrendSettings(interval_s=1.0, cell_interval_s=2.5))
    task = asyncio.create_task(TrendRecorder(hub, log).run())
    await _publish_every(hub, 0.1, 4.45)
    task.cancel()
    series = log.pack_series("pack-01")
    assert len(series.time) == 4
    assert len(set(series.time.tolist())) == 4  # each from a newer snapshot
    assert series.columns["soc"].tolist() == [0.56] * 4
    assert len(log.cell_series("pack-01").time) == 2  # at 1 s and 4 s (the next due at 3.5 s)


async def test_a_snapshot_already_sampled_is_not_sampled_again(tmp_path: Path) -> None:
    hub = SnapshotHub()
    await hub.publish(_now_snapshot(1))  # the engine stalls after this one
    log = TrendLog(tmp_path / "store.sqlite", TrendSettings(interval_s=1.0))
    task = asyncio.create_task(TrendRecorder(hub, log).run())
    await asyncio.sleep(2.5)
    task.cancel()
    assert len(log.pack_series("pack-01").time) == 1


async def test_a_failing_store_is_logged_once_and_sampling_resumes(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    hub = SnapshotHub()
    log = TrendLog(tmp_path / "store.sqlite", TrendSettings(interval_s=1.0))
    log._db.execute("DROP TABLE pack_trends")  # every write fails until the table is back
    task = asyncio.create_task(TrendRecorder(hub, log).run())
    with caplog.at_level(logging.INFO, logger="gateway.runtime.trend_recorder"):
        await _publish_every(hub, 0.1, 2.5)
        log._db.execute(f"CREATE TABLE pack_trends (time REAL, pack_id TEXT, {', '.join(PACK_COLUMNS)})")
        await _publish_every(hub, 0.1, 1.0)
    task.cancel()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "trend samples are lost" in errors[0].getMessage()
    assert any("writes succeed again" in r.getMessage() for r in caplog.records)
    assert len(log.pack_series("pack-01").time) == 1
    assert not math.isnan(log.pack_series("pack-01").columns["soc"][0])

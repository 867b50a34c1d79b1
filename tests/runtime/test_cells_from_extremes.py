"""A pack that reports only its extremes (the common battery CAN protocol): the cell and sensor arrays made up from
them, and its data age from the frames that carry them and its own limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway.bms.cell_model import load_cell_model
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.protocol import load_protocol
from gateway.codec.protocol_reporting import pack_reporting
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import BoundField, ScalarField
from gateway.domain.states import ContactorState
from gateway.runtime import cells_from_extremes
from gateway.runtime.ingest import BusIngest
from gateway.runtime.measurements import MeasurementTable
from gateway.settings import DEFAULT_MAPPINGS_DIR

F = ScalarField
CELLS, SENSORS = 24, 4


def test_made_up_cells_keep_the_extremes_and_the_sum() -> None:
    volts = cells_from_extremes.cell_voltages(np.array([3.30, 3.30]), np.array([3.40, 3.40]),
                                              np.array([24 * 3.35, 24 * 3.45]), np.array([24, 24]), 32)
    first = volts[0, :24]
    assert (first[0], first[-1]) == (3.30, 3.40)
    assert first.sum() == pytest.approx(24 * 3.35)  # the pack voltage, shared by the cells between
    assert np.isnan(volts[0, 24:]).all()  # beyond the pack's cells
    assert (volts[1, 1:23] == 3.40).all()  # a pack voltage beyond highest x cells: clipped to the highest


def test_made_up_temperatures_put_the_pack_temperature_between() -> None:
    temps = cells_from_extremes.temperatures(np.array([20.0, 20.0, 20.0]), np.array([30.0, 30.0, 30.0]),
                                             np.array([24.0, 40.0, np.nan]), np.array([4, 4, 2]), 4)
    assert temps[0].tolist() == [20.0, 24.0, 24.0, 30.0]
    assert temps[1].tolist() == [20.0, 30.0, 30.0, 30.0]  # clipped into [coldest, hottest]
    assert temps[2, :2].tolist() == [20.0, 30.0]
    middle = cells_from_extremes.temperatures(np.array([20.0]), np.array([30.0]), np.array([np.nan]),
                                              np.array([3]), 3)
    assert middle[0].tolist() == [20.0, 25.0, 30.0]  # the pack temperature unknown: the mid-point


def make_table() -> tuple[MeasurementTable, BusIngest, FrameEncoder]:
    """Pack 0 speaks bmsgw-ref-v1, pack 1 the common battery CAN protocol on a bus of its own."""
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    protocol = load_protocol(DEFAULT_MAPPINGS_DIR, "battery-can-pack-v1")
    parameters = PackParameters.build([PackLayout("ref", CELLS, SENSORS, model),
                                       PackLayout("pylon", CELLS, SENSORS, model, pack_reporting(protocol))])
    table = MeasurementTable(parameters)
    return table, BusIngest("pylon", FrameDecoder([protocol]), {0: 1}, table), FrameEncoder(protocol)


def send(ingest: BusIngest, encoder: FrameEncoder, values: dict[BoundField, float], now: float) -> None:
    for frame in encoder.encode_fields(0, {(field, -1): value for field, value in values.items()}):
        ingest.handle(CanFrame("pylon", frame.arbitration_id, frame.data, now, is_extended_id=False), now)


MEASUREMENTS: dict[BoundField, float] = {F.PACK_VOLTAGE_V: 24 * 3.35, F.PACK_CURRENT_A: -20.0,
                                         F.PACK_TEMPERATURE_C: 26.0}
EXTREMES: dict[BoundField, float] = {F.MIN_CELL_VOLTAGE_V: 3.30, F.MAX_CELL_VOLTAGE_V: 3.40,
                                     F.MIN_TEMPERATURE_C: 21.85, F.MAX_TEMPERATURE_C: 29.85}
OWN_LIMITS: dict[BoundField, float] = {F.PACK_CHARGE_VOLTAGE_LIMIT_V: 99.6, F.PACK_CHARGE_CURRENT_LIMIT_A: 50.0,
                                       F.PACK_DISCHARGE_CURRENT_LIMIT_A: 100.0, F.PACK_DISCHARGE_VOLTAGE_LIMIT_V: 72.0}
FLAGS: dict[BoundField, float] = {F.PACK_CHARGE_ENABLED: 1.0, F.PACK_DISCHARGE_ENABLED: 0.0,
                                  F.PACK_PROTECTION_FLAGS: 0.0, F.PACK_WARNING_FLAGS: 8.0}


def test_the_bms_sees_made_up_cells_stamped_with_the_extremes_arrival() -> None:
    table, ingest, encoder = make_table()
    send(ingest, encoder, MEASUREMENTS | OWN_LIMITS | FLAGS, now=10.0)
    send(ingest, encoder, EXTREMES, now=10.2)
    x = table.inputs(10.5)
    cells = x.cell_voltage_v[1, :CELLS]
    assert (cells.min(), cells.max()) == pytest.approx((3.30, 3.40))
    assert cells.sum() == pytest.approx(24 * 3.35)
    assert x.temperature_c[1].tolist() == pytest.approx([21.85, 26.0, 26.0, 29.85])
    assert x.data_age_s[1] == pytest.approx(0.5)  # the oldest: measurements, limits and flags at 10.0
    assert x.temperature_age_s[1] == pytest.approx(0.3)  # the extremes at 10.2
    assert x.cell_voltage_new is not None
    assert x.cell_voltage_new[1, :CELLS].all()
    assert x.contactor_state.tolist() == [int(ContactorState.UNKNOWN), int(ContactorState.CLOSED)]
    assert x.reports is not None
    assert x.reports.current_caps_a()[1].tolist() == [50.0, 0.0]  # discharge disabled
    assert np.isnan(x.reports.current_caps_a()[0]).all()  # the reference pack reports no limits
    assert x.reports.warning_flags[1] == 8.0
    assert math.isinf(x.data_age_s[0])


def test_a_silent_extremes_frame_or_own_limits_frame_makes_the_pack_old() -> None:
    table, ingest, encoder = make_table()
    send(ingest, encoder, MEASUREMENTS | OWN_LIMITS | FLAGS | EXTREMES, now=10.0)
    for second in (11.0, 12.0, 13.0):  # 0x351 (own limits) falls silent, everything else keeps coming
        send(ingest, encoder, MEASUREMENTS | FLAGS | EXTREMES, now=second)
    x = table.inputs(13.1)
    assert x.data_age_s[1] == pytest.approx(3.1)
    table, ingest, encoder = make_table()
    send(ingest, encoder, MEASUREMENTS | OWN_LIMITS | FLAGS | EXTREMES, now=10.0)
    table.inputs(10.1)
    for second in (11.0, 12.0):  # 0x373 (extremes) falls silent
        send(ingest, encoder, MEASUREMENTS | OWN_LIMITS | FLAGS, now=second)
    x = table.inputs(12.5)
    assert x.data_age_s[1] == pytest.approx(2.5)
    assert x.temperature_age_s[1] == pytest.approx(2.5)
    assert x.cell_voltage_new is not None
    assert not x.cell_voltage_new[1].any()


def test_no_extremes_yet_means_unknown_cells() -> None:
    table, ingest, encoder = make_table()
    send(ingest, encoder, MEASUREMENTS, now=1.0)
    x = table.inputs(1.1)
    assert np.isnan(x.cell_voltage_v[1]).all()
    assert math.isinf(x.data_age_s[1])
    assert math.isinf(x.temperature_age_s[1])

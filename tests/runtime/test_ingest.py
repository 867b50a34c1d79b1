from __future__ import annotations

import math

import numpy as np
import pytest

from gateway.bms.protection_rules import build_rules
from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.protocol import load_protocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import ArrayField, CommandField, CommandKind, IdentityField, ScalarField
from gateway.domain.states import Chemistry
from gateway.runtime.contactor_requests import ContactorRequester
from gateway.runtime.fast_trip import FastTrip
from gateway.runtime.ingest import BusIngest
from gateway.runtime.measurements import MeasurementTable
from gateway.runtime.pack_link import PackLink
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.bms.helpers import parameters


def make_ingest() -> tuple[BusIngest, MeasurementTable, FrameEncoder]:
    protocol = load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1")
    p = parameters(packs=2, cells=24, sensors=8)
    table = MeasurementTable(p)
    ingest = BusIngest("b", FrameDecoder([protocol]), {5: 0, 9: 1}, table)
    return ingest, table, FrameEncoder(protocol)


def send(ingest: BusIngest, encoder: FrameEncoder, node: int, values, now: float) -> None:  # type: ignore[no-untyped-def]
    for encoded in encoder.encode_fields(node, values):
        ingest.handle(CanFrame("b", encoded.arbitration_id, encoded.data, 0.0), now)


def full_measurement(cell_v: float) -> dict[tuple, float]:  # type: ignore[type-arg]
    values = {(ArrayField.CELL_VOLTAGE_V, i): cell_v for i in range(24)}
    values |= {(ArrayField.TEMPERATURE_C, i): 21.5 for i in range(8)}
    values |= {(ScalarField.PACK_VOLTAGE_V, -1): cell_v * 24, (ScalarField.PACK_CURRENT_A, -1): -10.0,
               (ScalarField.CONTACTOR_STATE, -1): 2}
    return values


def test_frames_are_routed_to_their_pack_with_signal_ages() -> None:
    ingest, table, encoder = make_ingest()
    send(ingest, encoder, 9, full_measurement(3.7), now=100.0)
    x = table.inputs(100.4)
    assert np.all(np.isnan(x.cell_voltage_v[0]))
    assert x.cell_voltage_v[1, :24] == pytest.approx(np.full(24, 3.7))
    assert x.temperature_c[1, 7] == pytest.approx(21.5)
    assert x.data_age_s[1] == pytest.approx(0.4)
    assert math.isinf(x.data_age_s[0])
    assert ingest.counters.decoded == ingest.counters.received > 0


def test_one_missing_signal_makes_the_whole_pack_old() -> None:
    ingest, table, encoder = make_ingest()
    send(ingest, encoder, 5, full_measurement(3.7), now=10.0)
    page_2 = {(ArrayField.TEMPERATURE_C, 6), (ArrayField.TEMPERATURE_C, 7)}  # sensors 7 and 8 stay silent
    fresh = {k: v for k, v in full_measurement(3.71).items() if k not in page_2}
    send(ingest, encoder, 5, fresh, now=12.0)
    assert table.inputs(12.0).temperature_age_s[0] == pytest.approx(2.0)
    assert table.inputs(12.0).data_age_s[0] == pytest.approx(0.0)
    del fresh[(ArrayField.CELL_VOLTAGE_V, 23)], fresh[(ArrayField.CELL_VOLTAGE_V, 22)]
    del fresh[(ArrayField.CELL_VOLTAGE_V, 21)]  # the whole page of cells 22..24
    send(ingest, encoder, 5, fresh, now=12.5)
    assert table.inputs(12.5).data_age_s[0] == pytest.approx(0.5)


def test_unknown_node_and_garbage_are_counted_not_applied() -> None:
    ingest, table, encoder = make_ingest()
    send(ingest, encoder, 6, full_measurement(3.7), now=1.0)  # node 6 is not configured
    ingest.handle(CanFrame("b", 0x7FF, b"\xff" * 3, 0.0), 1.0)
    ingest.handle(CanFrame("b", 0x18A10005, b"\x01" * 8, 0.0), 1.0)
    assert ingest.counters.rejected["unknown_node"] > 0
    assert ingest.counters.rejected["unknown_id"] == 1
    assert ingest.counters.rejected["bad_crc"] == 1
    assert ingest.counters.decoded == 0
    assert np.all(np.isnan(table.inputs(1.0).cell_voltage_v))


def test_identity_is_assembled_from_its_pages() -> None:
    ingest, table, encoder = make_ingest()
    f = IdentityField
    identity = {(f.SERIAL_NUMBER, -1): 24001003, (f.CHEMISTRY, -1): 2, (f.FIRMWARE_MAJOR, -1): 1,
                (f.FIRMWARE_MINOR, -1): 4, (f.FIRMWARE_PATCH, -1): 2, (f.CELL_COUNT, -1): 24,
                (f.SENSOR_COUNT, -1): 8}
    send(ingest, encoder, 5, identity, now=1.0)
    assert table.identity(0) is None  # page 2 (capacity) still missing
    send(ingest, encoder, 5, {(f.NOMINAL_CAPACITY_AH, -1): 230.0}, now=1.1)
    result = table.identity(0)
    assert result is not None
    assert result.serial_number == "0024001003"
    assert result.chemistry is Chemistry.LFP
    assert result.firmware_version == "1.4.2"
    assert result.nominal_capacity_ah == pytest.approx(230.0)


def test_the_largest_discharge_of_any_frame_since_the_last_tick_reaches_the_next_inputs_once() -> None:
    ingest, table, encoder = make_ingest()
    for current in (-10.0, -2000.0, -20.0):  # a one-frame burst between two ticks
        send(ingest, encoder, 5, {(ScalarField.PACK_CURRENT_A, -1): current}, now=1.0)
    first = table.inputs(1.1)
    assert first.peak_discharge_current_a is not None
    assert first.pack_current_a[0] == pytest.approx(-20.0)
    assert first.peak_discharge_current_a[0] == pytest.approx(2000.0)
    assert math.isnan(first.peak_discharge_current_a[1])  # no current frame from pack 1
    second = table.inputs(1.2)
    assert second.peak_discharge_current_a is not None
    assert np.isnan(second.peak_discharge_current_a).all()


def test_a_short_circuit_frame_requests_opening_from_the_receive_path() -> None:
    protocol = load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1")
    p = parameters(packs=2, cells=24, sensors=8)
    table = MeasurementTable(p)
    ingest = BusIngest("b", FrameDecoder([protocol]), {5: 0, 9: 1}, table)
    encoder = FrameEncoder(protocol)
    sent: list[tuple[int, bytes]] = []
    links = [PackLink(0, 5, encoder, lambda arbitration_id, data: sent.append((arbitration_id, data)) is None),
             PackLink(1, 9, encoder, lambda arbitration_id, data: sent.append((arbitration_id, data)) is None)]
    table.current_observer = FastTrip(build_rules(p, 1.0, 0.1), ContactorRequester(links, 2)).observe
    send(ingest, encoder, 9, {(ScalarField.PACK_CURRENT_A, -1): -500.0}, now=1.0)
    assert sent == []  # within the ratings
    send(ingest, encoder, 9, {(ScalarField.PACK_CURRENT_A, -1): -1900.0}, now=1.0)  # beyond 3 x 600 A
    expected = encoder.encode_command(CommandKind.CONTACTOR_OPEN, 9, {CommandField.OPEN_REQUEST: 1.0})
    assert [arbitration_id for arbitration_id, _ in sent] == [expected.arbitration_id]
    assert sent[0][1][0] & 1 == 1  # OpenRequest: bit 0 of byte 0 (the counter and CRC differ per frame)

"""Packs that speak the common battery CAN protocol: frames packed here with `struct` from the byte table of
docs/battery-can.md, independently of the DBC, decode through the battery-can-pack-v1 binding to the right fields."""

from __future__ import annotations

import struct

import pytest

from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.codec.protocol_reporting import pack_reporting
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import BoundField, ScalarField
from gateway.errors import FrameRejected
from gateway.settings import DEFAULT_MAPPINGS_DIR

F = ScalarField


@pytest.fixture(scope="module")
def protocol() -> PackProtocol:
    return load_protocol(DEFAULT_MAPPINGS_DIR, "battery-can-pack-v1")


def decoded(protocol: PackProtocol, arbitration_id: int, data: bytes) -> tuple[int, dict[BoundField, float]]:
    frame = CanFrame("pack", arbitration_id, data, 0.0, is_extended_id=False)
    result = FrameDecoder([protocol]).decode(frame)
    return result.node_address, {value.field: value.value for value in result.values}


# (identifier, the bytes by the table, what they mean)
TABLE = [
    (0x351, struct.pack("<HhhH", 1328, 1005, 2000, 864),
     {F.PACK_CHARGE_VOLTAGE_LIMIT_V: 132.8, F.PACK_CHARGE_CURRENT_LIMIT_A: 100.5,
      F.PACK_DISCHARGE_CURRENT_LIMIT_A: 200.0, F.PACK_DISCHARGE_VOLTAGE_LIMIT_V: 86.4}),
    (0x355, struct.pack("<HHH", 56, 97, 5634), {F.PACK_REPORTED_SOC: 0.56, F.PACK_REPORTED_SOH: 0.97}),
    (0x356, struct.pack("<hhh", 11837, -425, -52),  # 0.01 V, 0.1 A (negative: discharging), 0.1 degC
     {F.PACK_VOLTAGE_V: 118.37, F.PACK_CURRENT_A: -42.5, F.PACK_TEMPERATURE_C: -5.2}),
    (0x359, bytes([0b1000_1010, 0b0000_1001, 0b0001_0000, 0b0000_0001, 4, ord("P"), ord("N")]),
     {F.PACK_PROTECTION_FLAGS: 0b0000_1001_1000_1010, F.PACK_WARNING_FLAGS: 0b0000_0001_0001_0000}),
    (0x35C, bytes([0b1000_0000, 0]), {F.PACK_CHARGE_ENABLED: 1.0, F.PACK_DISCHARGE_ENABLED: 0.0}),
    (0x35C, bytes([0b0111_1000, 0]), {F.PACK_CHARGE_ENABLED: 0.0, F.PACK_DISCHARGE_ENABLED: 1.0}),
    (0x373, struct.pack("<HHHH", 3612, 3655, 271, 304),  # 1 mV, 1 K
     {F.MIN_CELL_VOLTAGE_V: 3.612, F.MAX_CELL_VOLTAGE_V: 3.655, F.MIN_TEMPERATURE_C: -2.15,
      F.MAX_TEMPERATURE_C: 30.85}),
]


@pytest.mark.parametrize(("arbitration_id", "data", "meaning"), TABLE, ids=[f"{row[0]:#x}" for row in TABLE])
def test_table_frames_decode_to_their_fields(protocol: PackProtocol, arbitration_id: int, data: bytes,
                                             meaning: dict[BoundField, float]) -> None:
    node, values = decoded(protocol, arbitration_id, data)
    assert node == 0  # no address in the identifier: the pack on the bus is node 0
    assert values == pytest.approx(meaning)


def test_the_frames_an_inverter_would_read_from_the_gateway_decode_too(protocol: PackProtocol) -> None:
    """A pack's 0x359 of seven bytes, a 0x355 of six, as the gateway itself sends them (docs/battery-can.md)."""
    assert {binding.base_frame_id: binding.length for binding in protocol.messages.values()
            if binding.direction == "from_pack"} == {0x351: 8, 0x355: 6, 0x356: 6, 0x359: 7, 0x35C: 2, 0x373: 8}


def test_the_gateway_sends_the_inverter_keep_alive_such_packs_wait_for(protocol: PackProtocol) -> None:
    keepalive = protocol.polls["keepalive"]
    assert keepalive.responses == ()
    assert keepalive.period_s == 1.0
    request = protocol.messages[keepalive.request]
    assert request.base_frame_id == 0x305
    assert request.direction == "to_pack"
    assert not request.message.is_extended_frame
    assert request.length == 8


def test_other_frames_of_the_protocol_are_counted_not_decoded(protocol: PackProtocol) -> None:
    for arbitration_id, data in ((0x35E, b"PYLON   "), (0x35A, bytes(8))):
        with pytest.raises(FrameRejected) as rejected:
            decoded(protocol, arbitration_id, data)
        assert rejected.value.reason == "unknown_id"
    with pytest.raises(FrameRejected) as rejected:
        decoded(protocol, 0x355, bytes(4))  # a 0x355 without the 0.01 % SoC
    assert rejected.value.reason == "bad_length"


def test_encoded_frames_are_11_bit(protocol: PackProtocol) -> None:
    frames = FrameEncoder(protocol).encode_fields(0, {(F.MIN_CELL_VOLTAGE_V, -1): 3.3, (F.PACK_VOLTAGE_V, -1): 100.0})
    assert {(frame.arbitration_id, frame.is_extended_id) for frame in frames} == {(0x373, False), (0x356, False)}
    reference = FrameEncoder(load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1"))
    assert all(frame.is_extended_id for frame in reference.encode_fields(1, {(F.PACK_VOLTAGE_V, -1): 100.0}))


def test_what_such_a_pack_reports(protocol: PackProtocol) -> None:
    reporting = pack_reporting(protocol)
    assert reporting.cells_from_extremes
    assert not reporting.contactor_reported
    assert not reporting.identity_reported
    assert F.PACK_CHARGE_CURRENT_LIMIT_A in reporting.watched
    assert F.PACK_REPORTED_SOC not in reporting.watched  # informative: its silence does not make the pack stale
    reference = pack_reporting(load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1"))
    assert (reference.cells_from_extremes, reference.contactor_reported, reference.identity_reported,
            reference.watched) == (False, True, True, frozenset())
    assert protocol.stale_timeout_s == 3.0

"""The J1939 pack mapping: a pack is its source address, commands to it carry its address as destination."""

from __future__ import annotations

from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.j1939.identifier import J1939Id
from gateway.codec.protocol import load_protocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import ArrayField, CommandField, CommandKind, ScalarField
from gateway.settings import DEFAULT_MAPPINGS_DIR

PROTOCOL = load_protocol(DEFAULT_MAPPINGS_DIR, "j1939-hvess-v1")


def test_hvessd1_from_any_source_and_priority_decodes_to_that_pack() -> None:
    frame = FrameEncoder(PROTOCOL).encode_message("HVESSD1", 0x21, {"HvessVoltageLevel": 120.0, "HvessCurrent": -42.5})
    identifier = J1939Id.parse(frame.arbitration_id)
    assert (identifier.pgn, identifier.source, identifier.priority) == (61584, 0x21, 3)
    assert frame.data[4:6] == (2400).to_bytes(2, "little")  # 0.05 V per bit
    reprioritised = (frame.arbitration_id & ~0x1C000000) | (6 << 26)
    decoded = FrameDecoder([PROTOCOL]).decode(CanFrame("b", reprioritised, frame.data, 0.0))
    assert decoded.node_address == 0x21
    values = {v.field: v.value for v in decoded.values}
    assert values == {ScalarField.PACK_VOLTAGE_V: 120.0, ScalarField.PACK_CURRENT_A: -42.5}


def test_a_command_is_pdu1_to_the_pack_from_the_gateway_address() -> None:
    frame = FrameEncoder(PROTOCOL).encode_command(CommandKind.CONTACTOR_OPEN, 0x42, {CommandField.OPEN_REQUEST: 1})
    identifier = J1939Id.parse(frame.arbitration_id)
    assert (identifier.pgn, identifier.destination, identifier.source) == (6912, 0x42, 249)
    decoded = FrameDecoder([PROTOCOL], direction="to_pack").decode(CanFrame("b", frame.arbitration_id, frame.data, 0))
    assert decoded.node_address == 0x42


def test_the_identity_request_is_a_request_pgn_for_the_identity_group() -> None:
    frame = FrameEncoder(PROTOCOL).encode_command(CommandKind.IDENTITY_REQUEST, 0x42, {})
    assert J1939Id.parse(frame.arbitration_id).pgn == 59904
    assert frame.data == (0xFF12).to_bytes(3, "little")


def test_per_cell_voltages_are_one_64_byte_message() -> None:
    binding = PROTOCOL.messages["CellVoltages"]
    assert binding.length == 64
    cells = sorted(b.index for b in binding.bindings.values() if b.field is ArrayField.CELL_VOLTAGE_V)
    assert cells == list(range(32))

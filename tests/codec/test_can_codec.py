from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.integrity import frame_crc
from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import ArrayField, CommandField, CommandKind, ScalarField
from gateway.errors import FrameRejected, MappingError
from gateway.settings import DEFAULT_MAPPINGS_DIR


@pytest.fixture(scope="module")
def protocol() -> PackProtocol:
    return load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1")


def frame(arbitration_id: int, data: bytes) -> CanFrame:
    return CanFrame("test", arbitration_id, data, 0.0)


def test_every_dbc_signal_is_bound_or_framing(protocol: PackProtocol) -> None:
    for binding in protocol.messages.values():
        names = {s.name for s in binding.message.signals}
        framing = {protocol.counter_signal, protocol.crc_signal, binding.multiplexer_signal}
        assert names - framing == set(binding.bindings), binding.name
    assert len([b for b in protocol.messages["CellVoltages"].bindings.values()]) == 48


def test_cell_voltages_round_trip_at_one_millivolt(protocol: PackProtocol) -> None:
    encoder, decoder = FrameEncoder(protocol), FrameDecoder([protocol])
    values = {(ArrayField.CELL_VOLTAGE_V, i): 3.5 + 0.0123 * i for i in range(32)}
    frames = encoder.encode_fields(7, values)
    assert len(frames) == 11  # three cells per frame
    decoded = {}
    for encoded in frames:
        result = decoder.decode(frame(encoded.arbitration_id, encoded.data))
        assert result.node_address == 7
        decoded.update({v.index: v.value for v in result.values if v.field is ArrayField.CELL_VOLTAGE_V})
    for i in range(32):
        assert decoded[i] == pytest.approx(3.5 + 0.0123 * i, abs=0.0006)


def test_signed_current_and_scalars(protocol: PackProtocol) -> None:
    encoder, decoder = FrameEncoder(protocol), FrameDecoder([protocol])
    [encoded] = encoder.encode_fields(1, {(ScalarField.PACK_CURRENT_A, -1): -123.4,
                                          (ScalarField.PACK_VOLTAGE_V, -1): 118.27,
                                          (ScalarField.PACK_FAULT_FLAGS, -1): 0b1001})
    values = {v.field: v.value for v in decoder.decode(frame(encoded.arbitration_id, encoded.data)).values}
    assert values[ScalarField.PACK_CURRENT_A] == pytest.approx(-123.4)
    assert values[ScalarField.PACK_VOLTAGE_V] == pytest.approx(118.27)
    assert values[ScalarField.PACK_FAULT_FLAGS] == 9


def test_bad_crc_is_rejected(protocol: PackProtocol) -> None:
    encoded = FrameEncoder(protocol).encode_fields(1, {(ScalarField.PACK_CURRENT_A, -1): 1.0})[0]
    corrupted = bytearray(encoded.data)
    corrupted[2] ^= 0x10
    with pytest.raises(FrameRejected) as rejected:
        FrameDecoder([protocol]).decode(frame(encoded.arbitration_id, bytes(corrupted)))
    assert rejected.value.reason == "bad_crc"


def test_crc_covers_the_identifier(protocol: PackProtocol) -> None:
    encoded = FrameEncoder(protocol).encode_fields(1, {(ScalarField.PACK_CURRENT_A, -1): 1.0})[0]
    with pytest.raises(FrameRejected) as rejected:  # same payload replayed under node 2's identifier
        FrameDecoder([protocol]).decode(frame(encoded.arbitration_id + 1, encoded.data))
    assert rejected.value.reason == "bad_crc"


def test_repeated_and_jumping_counters_are_rejected_then_resynchronised(protocol: PackProtocol) -> None:
    encoder, decoder = FrameEncoder(protocol), FrameDecoder([protocol])
    frames = [encoder.encode_fields(1, {(ScalarField.PACK_CURRENT_A, -1): 1.0})[0] for _ in range(9)]
    decoder.decode(frame(frames[0].arbitration_id, frames[0].data))
    with pytest.raises(FrameRejected, match="counter_repeated"):
        decoder.decode(frame(frames[0].arbitration_id, frames[0].data))
    with pytest.raises(FrameRejected, match="counter_jump"):
        decoder.decode(frame(frames[7].arbitration_id, frames[7].data))  # 6 frames lost
    # after a rejection the tracker follows the sender again
    assert decoder.decode(frame(frames[8].arbitration_id, frames[8].data)).message == "PackStatus"


def test_wrong_length_and_unknown_id(protocol: PackProtocol) -> None:
    decoder = FrameDecoder([protocol])
    with pytest.raises(FrameRejected, match="bad_length"):
        decoder.decode(frame(0x18A10001, b"\x00" * 5))
    with pytest.raises(FrameRejected, match="unknown_id"):
        decoder.decode(frame(0x123, b"\x00" * 8))


def test_commands_decode_in_the_pack_direction(protocol: PackProtocol) -> None:
    encoded = FrameEncoder(protocol).encode_command(
        CommandKind.BALANCING, 4, {CommandField.BALANCING_ENABLE: 1, CommandField.BALANCING_MASK: 0x80000001})
    decoded = FrameDecoder([protocol], direction="to_pack").decode(frame(encoded.arbitration_id, encoded.data))
    values = {v.field: v.value for v in decoded.values}
    assert decoded.node_address == 4
    assert values[CommandField.BALANCING_MASK] == 0x80000001
    with pytest.raises(FrameRejected, match="unknown_id"):  # the gateway does not ingest its own commands
        FrameDecoder([protocol]).decode(frame(encoded.arbitration_id, encoded.data))


@given(arbitration_id=st.integers(0, 0x1FFFFFFF), data=st.binary(max_size=8))
def test_garbage_never_escapes_as_anything_but_a_rejection(arbitration_id: int, data: bytes) -> None:
    decoder = FrameDecoder([load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1")])
    try:
        decoder.decode(frame(arbitration_id, data))
        outcome = "decoded"
    except FrameRejected as rejected:
        outcome = rejected.reason
    assert outcome in {"decoded", "unknown_id", "bad_length", "bad_crc", "counter_repeated", "counter_jump",
                       "decode_error"}


def test_valid_crc_random_payload_decodes_or_is_rejected(protocol: PackProtocol) -> None:
    decoder = FrameDecoder([protocol])
    payload = bytearray(b"\x5a" * 8)
    payload[7] = frame_crc(0x18A20003, bytes(payload), 7)
    decoded = decoder.decode(frame(0x18A20003, bytes(payload)))  # mux page 10: cells 31..33
    assert {v.index for v in decoded.values} == {30, 31, 32}


def test_binding_errors_name_file_key_and_fix(tmp_path: Path) -> None:
    (tmp_path / "can").mkdir()
    source = (DEFAULT_MAPPINGS_DIR / "can" / "bmsgw-ref-v1.yaml").read_text()
    (tmp_path / "can" / "bmsgw-ref-v1.dbc").write_text(
        (DEFAULT_MAPPINGS_DIR / "can" / "bmsgw-ref-v1.dbc").read_text())
    (tmp_path / "can" / "broken.yaml").write_text(source.replace("PackVoltage: pack_voltage_v",
                                                                 "PackVoltage: pack_voltage"))
    with pytest.raises(MappingError) as error:
        load_protocol(tmp_path, "broken")
    text = str(error.value)
    assert "broken.yaml" in text
    assert "messages.PackStatus.signals.PackVoltage" in text
    assert "pack_voltage_v" in text  # the fix lists the valid fields

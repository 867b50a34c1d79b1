"""Encoding measurements or commands into protected frames, the reverse of FrameDecoder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.codec.integrity import COUNTER_MODULO, frame_crc
from gateway.codec.protocol import MessageBinding, PackProtocol
from gateway.domain.measurement import BoundField, CommandKind


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    arbitration_id: int
    data: bytes
    is_extended_id: bool = True  # False: an 11-bit identifier, as its DBC message defines it


class FrameEncoder:
    """Encodes for one protocol; keeps one rolling counter per identifier."""

    def __init__(self, protocol: PackProtocol) -> None:
        self._protocol = protocol
        self._counters: dict[int, int] = {}
        # (field, index) -> (message, signal, multiplexer value)
        self._signal_of: dict[tuple[BoundField, int], tuple[MessageBinding, str, int | None]] = {}
        for binding in protocol.messages.values():
            for bound in binding.bindings.values():
                self._signal_of[(bound.field, bound.index)] = (binding, bound.signal, bound.multiplexer_value)

    @property
    def protocol(self) -> PackProtocol:
        return self._protocol

    def encode_message(self, message: str, node_address: int, signals: Mapping[str, float]) -> EncodedFrame:
        """Encode one frame (or, for J1939, one message up to 1785 bytes) from raw signal values; counter, CRC and
        the binding's constants are filled in here."""
        binding = self._protocol.messages[message]
        protocol = self._protocol
        arbitration_id = protocol.frame_id(message, node_address)
        values = dict(binding.constants) | dict(signals)
        if protocol.counter_signal is None or protocol.crc_signal is None:
            return EncodedFrame(arbitration_id, bytes(binding.message.encode(values, scaling=True, strict=False)),
                                bool(binding.message.is_extended_frame))
        counter = self._counters.get(arbitration_id, -1) + 1
        self._counters[arbitration_id] = counter % COUNTER_MODULO
        values[protocol.counter_signal] = counter % COUNTER_MODULO
        values[protocol.crc_signal] = 0
        data = bytearray(binding.message.encode(values, scaling=True, strict=False))
        data[protocol.crc_byte] = frame_crc(arbitration_id, bytes(data), protocol.crc_byte)
        return EncodedFrame(arbitration_id, bytes(data), bool(binding.message.is_extended_frame))

    def encode_fields(
        self, node_address: int, values: Mapping[tuple[BoundField, int], float]
    ) -> list[EncodedFrame]:
        """Encode measurement values (keyed by field and 0-based index, -1 for scalars) into frames.

        Values are grouped by message and multiplexer page; a page's unset signals are sent as 0.
        """
        pages: dict[tuple[str, int | None], dict[str, float]] = {}
        for key, value in values.items():
            binding, signal, mux = self._signal_of[key]
            page = pages.setdefault((binding.name, mux), {})
            if mux is not None and binding.multiplexer_signal is not None:
                page[binding.multiplexer_signal] = mux
            page[signal] = value
        frames = []
        for (message, mux), signals in pages.items():
            binding = self._protocol.messages[message]
            for signal in binding.message.signals:
                page_member = mux is None or (signal.multiplexer_ids and mux in signal.multiplexer_ids)
                if page_member and signal.name not in signals and not signal.is_multiplexer:
                    signals[signal.name] = 0
            frames.append(self.encode_message(message, node_address, signals))
        return frames

    def encode_command(
        self, kind: CommandKind, node_address: int, values: Mapping[BoundField, float]
    ) -> EncodedFrame:
        binding = self._protocol.command_message(kind)
        by_field = {bound.field: bound.signal for bound in binding.bindings.values()}
        signals = {by_field[field]: value for field, value in values.items()}
        return self.encode_message(binding.name, node_address, signals)

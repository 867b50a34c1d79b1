"""Compiled CAN decoding: a dict lookup by identifier, integrity checks, then cantools' unpack."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cantools

from gateway.codec.integrity import CounterTracker, frame_crc
from gateway.codec.protocol import Direction, MessageBinding, PackProtocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import BoundField
from gateway.errors import FrameRejected, MappingError, Problem


@dataclass(frozen=True, slots=True)
class FieldValue:
    field: BoundField
    index: int
    value: float


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    node_address: int
    message: str
    values: tuple[FieldValue, ...]


@dataclass(frozen=True, slots=True)
class _Route:
    protocol: PackProtocol
    binding: MessageBinding
    counters: CounterTracker


class FrameDecoder:
    """Decodes the frames of one bus, for every protocol spoken on it, in one direction."""

    def __init__(self, protocols: Iterable[PackProtocol], direction: Direction = "from_pack") -> None:
        self._direction = direction
        self._routes: dict[int, _Route] = {}
        self._keys: dict[tuple[str, int], Callable[[int], int]] = {}
        for protocol in protocols:
            counters = CounterTracker(protocol.max_counter_step)
            for binding in protocol.messages.values():
                if binding.direction != direction:
                    continue
                existing = self._routes.get(binding.base_frame_id)
                if existing is not None and existing.protocol.name != protocol.name:
                    raise MappingError([Problem(f"protocol {protocol.name}", binding.name,
                                                f"frame id {binding.base_frame_id:#x} is also used by "
                                                f"{existing.protocol.name}",
                                                "put packs of these protocols on different buses")])
                self._routes[binding.base_frame_id] = _Route(protocol, binding, counters)
            self._keys.setdefault(protocol.routing, protocol.route_key)

    def decode(self, frame: CanFrame) -> DecodedFrame:
        route = None
        for route_key in self._keys.values():
            route = self._routes.get(route_key(frame.arbitration_id))
            if route is not None:
                break
        if route is None:
            raise FrameRejected("unknown_id", f"{frame.arbitration_id:#x}")
        binding, protocol = route.binding, route.protocol
        data = frame.data
        if len(data) != binding.length:
            raise FrameRejected("bad_length", f"{binding.name}: {len(data)} bytes")
        protected = protocol.counter_signal is not None
        if protected and frame_crc(frame.arbitration_id, data, protocol.crc_byte) != data[protocol.crc_byte]:
            raise FrameRejected("bad_crc", binding.name)
        try:
            signals = binding.message.decode(data, decode_choices=False, scaling=True)
        except (cantools.database.DecodeError, ValueError, KeyError) as error:
            raise FrameRejected("decode_error", f"{binding.name}: {error}") from error
        if protocol.counter_signal is not None:
            route.counters.check(frame.arbitration_id, int(signals[protocol.counter_signal]))
        bindings = binding.bindings
        values = tuple(
            FieldValue(bound.field, bound.index, float(value))
            for name, value in signals.items()
            if (bound := bindings.get(name)) is not None
        )
        return DecodedFrame(protocol.node_of(frame.arbitration_id, self._direction), binding.name, values)

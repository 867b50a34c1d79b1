"""A pack protocol: a DBC (via cantools) plus a binding of its signals to the measurement model.

Parsed once at start into one neutral model; decoders and encoders are compiled from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cantools
from cantools.database.errors import UnsupportedDatabaseFormatError
from pydantic import BaseModel, ConfigDict, Field

from gateway.codec.yaml_source import load_validated_mapping
from gateway.domain.measurement import ArrayField, BoundField, CommandKind, parse_bound_field
from gateway.errors import MappingError, Problem

Direction = Literal["from_pack", "to_pack"]
# node_bits: the pack's node address in the identifier's low bits (bmsgw-ref-v1);
# j1939: SAE J1939 identifiers, a pack is its source address, priority ignored, PDU1 messages to it carry its address
# as destination and the gateway's as source (docs/j1939.md)
Addressing = Literal["node_bits", "j1939"]
J1939_PRIORITY_MASK = 0x1C000000
J1939_PDU_FORMAT_PDU2 = 240


class _IndexedSignals(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str
    field: str


class _MessageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    direction: Direction
    command: CommandKind | None = None
    signals: dict[str, str] = Field(default_factory=dict)
    indexed_signals: list[_IndexedSignals] = Field(default_factory=list)
    constants: dict[str, float] = Field(default_factory=dict)  # signals sent with a fixed value (a requested PGN)


class _IntegritySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    counter_signal: str
    crc_signal: str
    crc: Literal["crc8-sae-j1850"]
    max_counter_step: int = Field(default=3, ge=1, le=14)


class _PollSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request: str  # a to_pack message
    values: dict[str, float] = Field(default_factory=dict)  # its signals' values (over the message's constants)
    responses: list[str] = Field(default_factory=list)  # from_pack messages that answer it; none: a keep-alive
    period_s: float = Field(gt=0.0, le=3600.0)
    timeout_s: float = Field(default=0.1, gt=0.0, le=60.0)
    retries: int = Field(default=1, ge=0, le=10)


class _BindingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol: str
    dbc: str
    addressing: Addressing = "node_bits"
    node_address_bits: int = Field(default=8, ge=0, le=16)
    gateway_address: int = Field(default=0xF9, ge=0, le=253)  # j1939: the gateway's source address
    integrity: _IntegritySpec | None = None
    messages: dict[str, _MessageSpec]
    polls: dict[str, _PollSpec] = Field(default_factory=dict)  # request/response schedules (runtime/poller.py)
    stale_timeout_s: float = Field(default=0.0, ge=0.0, le=60.0)  # for packs that send only about once a second


@dataclass(frozen=True, slots=True)
class SignalBinding:
    signal: str
    field: BoundField
    index: int  # 0-based position for array fields, -1 for scalars
    multiplexer_value: int | None


@dataclass(frozen=True)
class MessageBinding:
    name: str
    base_frame_id: int
    length: int
    direction: Direction
    command: CommandKind | None
    multiplexer_signal: str | None
    bindings: dict[str, SignalBinding]
    message: Any  # cantools Message: typed Any because cantools ships no type information
    constants: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PollBinding:
    """A request the gateway sends every `period_s` to each pack of the protocol, and the messages that answer it
    (all of them, each at least once, within `timeout_s`; else it is sent again up to `retries` times)."""

    name: str
    request: str
    values: dict[str, float]
    responses: tuple[str, ...]
    period_s: float
    timeout_s: float
    retries: int


@dataclass(frozen=True)
class PackProtocol:
    name: str
    node_address_bits: int
    counter_signal: str | None  # None: the protocol has no rolling counter and CRC (J1939)
    crc_signal: str | None
    crc_byte: int
    max_counter_step: int
    messages: dict[str, MessageBinding]
    addressing: Addressing = "node_bits"
    gateway_address: int = 0xF9
    polls: dict[str, PollBinding] = field(default_factory=dict)
    stale_timeout_s: float = 0.0  # the shortest stale timeout its packs support (the engine's, if longer, applies)

    @property
    def node_mask(self) -> int:
        return (1 << self.node_address_bits) - 1

    @property
    def routing(self) -> tuple[Addressing, int]:
        """Protocols with equal routing find their messages by the same `route_key`."""
        return self.addressing, self.node_address_bits

    def route_key(self, arbitration_id: int) -> int:
        """What of an identifier selects the message: without the pack's address (source, or a PDU1 message's
        destination) and the J1939 priority."""
        if self.addressing == "j1939":
            key = arbitration_id & ~(J1939_PRIORITY_MASK | 0xFF) & 0x1FFFFFFF
            return key & ~0xFF00 if (key >> 16) & 0xFF < J1939_PDU_FORMAT_PDU2 else key
        return arbitration_id & ~self.node_mask & 0x1FFFFFFF

    def is_pdu1(self, base_frame_id: int) -> bool:
        return self.addressing == "j1939" and (base_frame_id >> 16) & 0xFF < J1939_PDU_FORMAT_PDU2

    def frame_id(self, message: str, node_address: int) -> int:
        binding = self.messages[message]
        base = binding.base_frame_id
        if self.addressing == "j1939":
            base |= int(binding.message.frame_id) & J1939_PRIORITY_MASK
            if self.is_pdu1(base):  # to the pack: its address as destination, ours as source
                return (base & ~0xFFFF) | ((node_address & 0xFF) << 8) | self.gateway_address
            return base | (node_address & 0xFF)
        return base | (node_address & self.node_mask)

    def node_of(self, arbitration_id: int, direction: Direction) -> int:
        """The pack an identifier belongs to: its source address, or for a PDU1 command its destination."""
        if self.addressing == "j1939":
            if direction == "to_pack" and self.is_pdu1(arbitration_id):
                return (arbitration_id >> 8) & 0xFF
            return arbitration_id & 0xFF
        return arbitration_id & self.node_mask

    def command_message(self, kind: CommandKind) -> MessageBinding:
        for binding in self.messages.values():
            if binding.command is kind:
                return binding
        raise KeyError(kind)


def load_protocol(mappings_dir: Path, name: str) -> PackProtocol:
    path = mappings_dir / "can" / f"{name}.yaml"
    spec = load_validated_mapping(path, _BindingSpec)
    dbc_path = path.parent / spec.dbc
    try:
        database = cantools.database.load_file(str(dbc_path))
    except (OSError, UnsupportedDatabaseFormatError) as error:
        raise MappingError([Problem(str(path), "dbc", f"{dbc_path} cannot be loaded ({error})",
                                    "name a DBC file next to the binding file")]) from error
    return _compile(spec, database, path)


def _compile(spec: _BindingSpec, database: Any, path: Path) -> PackProtocol:
    problems: list[Problem] = []
    messages: dict[str, MessageBinding] = {}
    j1939 = spec.addressing == "j1939"
    node_bits = 8 if j1939 else spec.node_address_bits
    node_mask = (1 << node_bits) - 1
    integrity = spec.integrity
    framing = {integrity.counter_signal, integrity.crc_signal} if integrity is not None else set()
    crc_byte = -1
    polled_signals: dict[str, set[str]] = {}  # per request message: the signals its polls give values
    for poll in spec.polls.values():
        polled_signals.setdefault(poll.request, set()).update(poll.values)
    for name, message_spec in spec.messages.items():
        key = f"messages.{name}"
        try:
            message = database.get_message_by_name(name)
        except KeyError:
            problems.append(Problem(str(path), key, "no such message in the DBC",
                                    "add it to the DBC or remove it from the binding"))
            continue
        base_frame_id = message.frame_id & ~J1939_PRIORITY_MASK if j1939 else message.frame_id
        if base_frame_id & node_mask or (j1939 and (base_frame_id >> 16) & 0xFF < J1939_PDU_FORMAT_PDU2
                                         and base_frame_id & 0xFF00):
            problems.append(Problem(str(path), key, "frame id has address bits set in the DBC",
                                    "define the message with source (and destination) address 0"))
        signals = {signal.name: signal for signal in message.signals}
        multiplexer = next((s.name for s in message.signals if s.is_multiplexer), None)
        missing_framing = framing - signals.keys()
        if missing_framing:
            problems.append(Problem(str(path), key, f"lacks integrity signals {sorted(missing_framing)}",
                                    "every frame needs the counter and CRC signals"))
            continue
        if integrity is not None:
            crc_signal = signals[integrity.crc_signal]
            if crc_signal.length != 8 or crc_signal.start % 8:
                problems.append(Problem(str(path), key, "CRC signal is not one whole byte",
                                        "place an 8-bit CRC signal on a byte boundary"))
                continue
            crc_byte = crc_signal.start // 8
        bindings: dict[str, SignalBinding] = {}
        for signal_name, field_name in message_spec.signals.items():
            signal = signals.get(signal_name)
            if signal is None:
                problems.append(Problem(str(path), f"{key}.signals.{signal_name}", "no such signal in the DBC",
                                        "correct the signal name"))
                continue
            try:
                bound_field = parse_bound_field(field_name)
            except ValueError as error:
                problems.append(Problem(str(path), f"{key}.signals.{signal_name}", str(error),
                                        "bind the signal to one of the valid fields"))
                continue
            bindings[signal_name] = SignalBinding(signal_name, bound_field, -1, _mux_value(signal))
        for group_index, group in enumerate(message_spec.indexed_signals):
            group_key = f"{key}.indexed_signals[{group_index}]"
            try:
                pattern = re.compile(group.pattern)
                array_field = ArrayField(group.field)
            except (re.error, ValueError) as error:
                problems.append(Problem(str(path), group_key, str(error),
                                        "use a regular expression with one (\\d+) group and an array field "
                                        f"({', '.join(f.value for f in ArrayField)})"))
                continue
            for signal_name, signal in signals.items():
                match = pattern.fullmatch(signal_name)
                if match:
                    bindings[signal_name] = SignalBinding(signal_name, array_field, int(match.group(1)) - 1,
                                                          _mux_value(signal))
        for constant in message_spec.constants:
            if constant not in signals:
                problems.append(Problem(str(path), f"{key}.constants.{constant}", "no such signal in the DBC",
                                        "correct the signal name"))
        unbound = (set(signals) - bindings.keys() - framing - {multiplexer} - message_spec.constants.keys()
                   - polled_signals.get(name, set()))
        if unbound:
            problems.append(Problem(str(path), key, f"DBC signals not bound: {sorted(unbound)}",
                                    "bind each signal to a field or remove it from the DBC"))
        messages[name] = MessageBinding(name, base_frame_id, message.length, message_spec.direction,
                                        message_spec.command, multiplexer, bindings, message,
                                        dict(message_spec.constants))
    polls = _compile_polls(spec, messages, path, problems)
    if problems:
        raise MappingError(problems)
    return PackProtocol(spec.protocol, node_bits, integrity.counter_signal if integrity else None,
                        integrity.crc_signal if integrity else None, crc_byte,
                        integrity.max_counter_step if integrity else 0, messages, spec.addressing,
                        spec.gateway_address, polls, spec.stale_timeout_s)


def _compile_polls(spec: _BindingSpec, messages: dict[str, MessageBinding], path: Path,
                   problems: list[Problem]) -> dict[str, PollBinding]:
    polls: dict[str, PollBinding] = {}
    for name, poll in spec.polls.items():
        key = f"polls.{name}"
        count = len(problems)
        request = messages.get(poll.request)
        if request is None or request.direction != "to_pack":
            problems.append(Problem(str(path), f"{key}.request", f"{poll.request!r} is not a to_pack message of "
                                    "the binding", "name a message under messages: with direction: to_pack"))
        else:
            signal_names = {signal.name for signal in request.message.signals}
            for signal in poll.values:
                if signal not in signal_names:
                    problems.append(Problem(str(path), f"{key}.values.{signal}",
                                            f"no such signal in message {poll.request}", "correct the signal name"))
        for response in poll.responses:
            binding = messages.get(response)
            if binding is None or binding.direction != "from_pack":
                problems.append(Problem(str(path), f"{key}.responses", f"{response!r} is not a from_pack message "
                                        "of the binding", "name messages under messages: with direction: from_pack"))
        if poll.timeout_s * (poll.retries + 1) > poll.period_s:
            problems.append(Problem(str(path), f"{key}.timeout_s",
                                    f"{poll.retries + 1} tries of {poll.timeout_s} s do not fit in the period of "
                                    f"{poll.period_s} s", "shorten timeout_s, lower retries or lengthen period_s"))
        if len(problems) == count:
            polls[name] = PollBinding(name, poll.request, dict(poll.values), tuple(poll.responses), poll.period_s,
                                      poll.timeout_s, poll.retries)
    return polls


def _mux_value(signal: Any) -> int | None:
    ids = signal.multiplexer_ids
    return int(ids[0]) if ids else None

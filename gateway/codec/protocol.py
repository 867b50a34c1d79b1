"""A pack protocol: a DBC (via cantools) plus a binding of its signals to the measurement model.

Parsed once at start into one neutral model; decoders and encoders are compiled from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cantools
from cantools.database.errors import UnsupportedDatabaseFormatError
from pydantic import BaseModel, ConfigDict, Field

from gateway.codec.yaml_source import load_validated_mapping
from gateway.domain.measurement import ArrayField, BoundField, CommandKind, parse_bound_field
from gateway.errors import MappingError, Problem

Direction = Literal["from_pack", "to_pack"]


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


class _IntegritySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    counter_signal: str
    crc_signal: str
    crc: Literal["crc8-sae-j1850"]
    max_counter_step: int = Field(default=3, ge=1, le=14)


class _BindingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol: str
    dbc: str
    node_address_bits: int = Field(ge=0, le=16)
    integrity: _IntegritySpec
    messages: dict[str, _MessageSpec]


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


@dataclass(frozen=True)
class PackProtocol:
    name: str
    node_address_bits: int
    counter_signal: str
    crc_signal: str
    crc_byte: int
    max_counter_step: int
    messages: dict[str, MessageBinding]

    @property
    def node_mask(self) -> int:
        return (1 << self.node_address_bits) - 1

    def frame_id(self, message: str, node_address: int) -> int:
        return self.messages[message].base_frame_id | (node_address & self.node_mask)

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
    node_mask = (1 << spec.node_address_bits) - 1
    framing = {spec.integrity.counter_signal, spec.integrity.crc_signal}
    crc_byte = -1
    for name, message_spec in spec.messages.items():
        key = f"messages.{name}"
        try:
            message = database.get_message_by_name(name)
        except KeyError:
            problems.append(Problem(str(path), key, "no such message in the DBC",
                                    "add it to the DBC or remove it from the binding"))
            continue
        if message.frame_id & node_mask:
            problems.append(Problem(str(path), key, "frame id has node-address bits set in the DBC",
                                    "define the message with node address 0"))
        signals = {signal.name: signal for signal in message.signals}
        multiplexer = next((s.name for s in message.signals if s.is_multiplexer), None)
        missing_framing = framing - signals.keys()
        if missing_framing:
            problems.append(Problem(str(path), key, f"lacks integrity signals {sorted(missing_framing)}",
                                    "every frame needs the counter and CRC signals"))
            continue
        crc_signal = signals[spec.integrity.crc_signal]
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
                field = parse_bound_field(field_name)
            except ValueError as error:
                problems.append(Problem(str(path), f"{key}.signals.{signal_name}", str(error),
                                        "bind the signal to one of the valid fields"))
                continue
            bindings[signal_name] = SignalBinding(signal_name, field, -1, _mux_value(signal))
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
        unbound = set(signals) - bindings.keys() - framing - {multiplexer}
        if unbound:
            problems.append(Problem(str(path), key, f"DBC signals not bound: {sorted(unbound)}",
                                    "bind each signal to a field or remove it from the DBC"))
        messages[name] = MessageBinding(name, message.frame_id, message.length, message_spec.direction,
                                        message_spec.command, multiplexer, bindings, message)
    if problems:
        raise MappingError(problems)
    return PackProtocol(spec.protocol, spec.node_address_bits, spec.integrity.counter_signal,
                        spec.integrity.crc_signal, crc_byte, spec.integrity.max_counter_step, messages)


def _mux_value(signal: Any) -> int | None:
    ids = signal.multiplexer_ids
    return int(ids[0]) if ids else None

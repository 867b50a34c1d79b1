"""The SunSpec device of the site unit: common model 1, battery base 802 (the bank of parallel packs), lithium-ion
bank 803 (one string per pack) and one lithium-ion string 804 per pack, then the end model (docs/modbus.md).

Each pack is one string of one module holding all its cells (the packs report cells, not modules); temperatures
are per sensor, so "cell" temperature positions in the module group are sensor positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gateway.codec.sunspec_events import event_bits, vendor_bits
from gateway.codec.sunspec_figures import Extremes, across
from gateway.codec.sunspec_layout import SUNSPEC_MARKER, ModelBlock, SunSpecLayout, lay_out_device
from gateway.codec.sunspec_ratings import BankRating, PackRating
from gateway.codec.sunspec_values import Image, not_implemented, put, put_string, scale_exponent
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.snapshot import GatewaySnapshot, PackSnapshot
from gateway.domain.states import ContactorState

SUNSPEC_BASE_ADDRESS = 40000
COMMON, BATTERY, LITHIUM_BANK, LITHIUM_STRING = 1, 802, 803, 804
CHARGING_THRESHOLD_C_RATE = 0.005  # |current| below this x the bank's capacity: holding


@dataclass(frozen=True, slots=True)
class SunSpecIdentity:
    """Model 1's strings and device address."""

    manufacturer: str
    model: str
    options: str
    version: str
    serial_number: str
    device_address: int


def lay_out(pack_count: int) -> SunSpecLayout:
    models: list[tuple[int, Mapping[str, int]]] = [(COMMON, {}), (BATTERY, {}), (LITHIUM_BANK, {"string": pack_count})]
    models += [(LITHIUM_STRING, {"lithium_ion_string_module": 1})] * pack_count
    return lay_out_device(SUNSPEC_BASE_ADDRESS, models)


class _Points:
    """Write points of one model block by name, scaled by the block's scale factors."""

    def __init__(self, image: Image, base: int, block: ModelBlock, exponents: Mapping[str, int]) -> None:
        self.image, self.base, self.block, self.exponents = image, base, block, exponents

    def set(self, name: str, value: float | None) -> None:
        slot = self.block.points[name]
        sf = slot.scale_factor
        put(self.image, self.base, slot, value, self.exponents[sf] if isinstance(sf, str) else (sf or 0))

    def symbol(self, point: str, symbol: str) -> int:
        return self.block.points[point].symbols[symbol]

    def bit(self, point: str, symbol: str, on: bool) -> int:
        return (1 << self.symbol(point, symbol)) if on else 0


class SunSpecDevice:
    """Encodes the whole SunSpec register block for a snapshot; static parts are encoded once."""

    def __init__(self, identity: SunSpecIdentity, packs: Sequence[PackRating], remote_control: bool = False) -> None:
        self.layout = lay_out(len(packs))
        self.bank = BankRating.of(packs)
        self.identity = identity
        self.remote_control = remote_control  # the command path is enabled: LocRemCtl reads REMOTE
        self._exponents = self._scale_exponents()
        self._static = self._static_image()

    @property
    def base_address(self) -> int:
        return self.layout.base_address

    def _scale_exponents(self) -> list[dict[str, int]]:
        bank = self.bank
        common = {"SoC_SF": -2, "SoH_SF": -2, "DoD_SF": -2, "CellV_SF": -3, "ModTmp_SF": -1}
        battery = common | {
            "AHRtg_SF": scale_exponent(bank.capacity_ah, "uint16", -1),
            "WHRtg_SF": scale_exponent(bank.energy_wh, "uint16", 0),
            "WChaDisChaMax_SF": scale_exponent(max(bank.charge_power_w, bank.discharge_power_w), "uint16", 0),
            "V_SF": scale_exponent(bank.max_voltage_v, "uint16", -2),
            "A_SF": scale_exponent(bank.pulse_a, "int16", -2),
            "AMax_SF": scale_exponent(bank.pulse_a, "uint16", -2),
            "W_SF": scale_exponent(bank.pulse_a * bank.max_voltage_v, "int16", 0),
        }
        strings = common | {"V_SF": scale_exponent(bank.max_voltage_v, "uint16", -2),
                            "A_SF": scale_exponent(bank.pack_pulse_a, "int16", -2)}
        packs = [common | {"V_SF": scale_exponent(p.max_voltage_v, "uint16", -2),
                           "A_SF": scale_exponent(p.pulse_a, "int16", -2)} for p in bank.packs]
        return [{}, battery, strings, *packs]

    def _static_image(self) -> Image:
        layout = self.layout
        image = np.zeros(layout.size, dtype=np.uint16)
        base = layout.base_address
        image[0:2] = SUNSPEC_MARKER
        for block, exponents in zip(layout.blocks, self._exponents, strict=True):
            for slot in block.points.values():
                not_implemented(image, base, slot)
            points = _Points(image, base, block, exponents)
            points.set("ID", block.model_id)
            points.set("L", block.length)
            for name, exponent in exponents.items():
                if name in block.points:
                    points.set(name, exponent)
        image[-2:] = (0xFFFF, 0)
        self._static_common(self._points(0, image))
        self._static_battery(self._points(1, image))
        for index, pack in enumerate(self.bank.packs):
            points = self._points(3 + index, image)
            points.set("Idx", index + 1)
            points.set("NMod", 1)
            points.set("lithium_ion_string_module[1].ModNCell", pack.series_cells)
        bank = self._points(2, image)
        bank.set("NStr", len(self.bank.packs))
        for index in range(len(self.bank.packs)):
            bank.set(f"string[{index + 1}].StrNMod", 1)
        return image

    def _points(self, block_index: int, image: Image) -> _Points:
        return _Points(image, self.layout.base_address, self.layout.blocks[block_index], self._exponents[block_index])

    def _static_common(self, points: _Points) -> None:
        identity, block, image, base = self.identity, points.block, points.image, points.base
        for name, text in (("Mn", identity.manufacturer), ("Md", identity.model), ("Opt", identity.options),
                           ("Vr", identity.version), ("SN", identity.serial_number)):
            put_string(image, base, block.points[name], text)
        points.set("DA", identity.device_address)

    def _static_battery(self, points: _Points) -> None:
        bank = self.bank
        points.set("AHRtg", bank.capacity_ah)
        points.set("WHRtg", bank.energy_wh)
        points.set("WChaRteMax", bank.charge_power_w)
        points.set("WDisChaRteMax", bank.discharge_power_w)
        points.set("Typ", points.symbol("Typ", "LITHIUM_ION"))
        points.set("LocRemCtl", points.symbol("LocRemCtl", "REMOTE" if self.remote_control else "LOCAL"))
        points.set("Evt2", 0)

    def encode(self, snapshot: GatewaySnapshot | None) -> Image:
        image = self._static.copy()
        if snapshot is None:
            return image
        packs = {p.pack_id: p for p in snapshot.packs}
        ordered = [packs.get(rating.pack_id) for rating in self.bank.packs]
        self._battery(self._points(1, image), snapshot, ordered)
        bank = self._points(2, image)
        self._bank(bank, ordered)
        for index, pack in enumerate(ordered):
            if pack is not None:
                self._string(bank, index + 1, pack)
                self._pack(self._points(3 + index, image), pack)
        return image

    def _battery(self, points: _Points, snapshot: GatewaySnapshot, packs: Sequence[PackSnapshot | None]) -> None:
        site = snapshot.site
        online = [(i, p) for i, p in enumerate(packs, start=1) if p is not None and p.online]
        points.set("SoC", 100.0 * site.soc)
        points.set("DoD", 100.0 * (1.0 - site.soc))
        points.set("SoH", 100.0 * site.soh)
        points.set("ChaSt", self._charge_status(points, site.current_a, site.soc, bool(online)))
        points.set("Hb", snapshot.sequence % 0xFFFF)
        points.set("AlmRst", 0)
        points.set("State", self._state(points, site.packs_online, site.packs_eligible,
                                        site.highest_severity == Severity.TRIP or site.latched_mask != 0))
        alarms = [p.alarms for _, p in online]
        points.set("Evt1", _or(event_bits(a, points.block.points["Evt1"].symbols) for a in alarms))
        points.set("EvtVnd1", _or(vendor_bits(a) for a in alarms))
        points.set("EvtVnd2", site.latched_mask)
        seen = [p for p in packs if p is not None]
        every_disconnected = bool(seen) and all(p.disconnect_requested for p in seen)
        points.set("SetOp", points.symbol("SetOp", "DISCONNECT" if every_disconnected else "CONNECT"))
        voltages = across([(p.pack_voltage_v, i) for i, p in online])
        points.set("V", site.voltage_v)
        points.set("VMax", voltages.highest)
        points.set("VMin", voltages.lowest)
        mean = [v for _, p in online for v in p.cell_voltage_v if v == v]
        _extremes_over_strings(points, "CellV", [(i, Extremes.of(p.cell_voltage_v)) for i, p in online],
                               sum(mean) / len(mean) if mean else None)
        points.set("A", site.current_a)
        points.set("AChaMax", site.charge_current_limit_a)
        points.set("ADisChaMax", site.discharge_current_limit_a)
        points.set("W", site.power_w)

    def _charge_status(self, points: _Points, current_a: float, soc: float, online: bool) -> int | None:
        if not online:
            return points.symbol("ChaSt", "OFF")
        threshold = CHARGING_THRESHOLD_C_RATE * self.bank.capacity_ah
        if current_a != current_a:
            return None
        if current_a > threshold:
            return points.symbol("ChaSt", "CHARGING")
        if current_a < -threshold:
            return points.symbol("ChaSt", "DISCHARGING")
        if soc >= 0.995:
            return points.symbol("ChaSt", "FULL")
        if soc <= 0.005:
            return points.symbol("ChaSt", "EMPTY")
        return points.symbol("ChaSt", "HOLDING")

    @staticmethod
    def _state(points: _Points, online: int, eligible: int, fault: bool) -> int:
        if fault:
            return points.symbol("State", "FAULT")
        if eligible:
            return points.symbol("State", "CONNECTED")
        return points.symbol("State", "STANDBY" if online else "DISCONNECTED")

    def _bank(self, points: _Points, packs: Sequence[PackSnapshot | None]) -> None:
        online = [(i, p) for i, p in enumerate(packs, start=1) if p is not None and p.online]
        points.set("NStrCon", sum(p.contactor_state == ContactorState.CLOSED for _, p in online))
        temperatures = [(i, Extremes.of(p.temperature_c)) for i, p in online]
        _extremes_over_strings(points, "ModTmp", temperatures, across([(e.mean, i) for i, e in temperatures]).mean)
        voltage = across([(p.pack_voltage_v, i) for i, p in online])
        current = across([(p.pack_current_a, i) for i, p in online])
        for prefix, figures in (("StrV", voltage), ("StrA", current)):
            points.set(f"{prefix}Max", figures.highest)
            points.set(f"{prefix}MaxStr", figures.highest_at)
            points.set(f"{prefix}Min", figures.lowest)
            points.set(f"{prefix}MinStr", figures.lowest_at)
            points.set(f"{prefix}Avg", figures.mean)
        points.set("NCellBal", sum(p.balancing_cells for _, p in online))

    def _string(self, points: _Points, index: int, pack: PackSnapshot) -> None:
        prefix = f"string[{index}]."
        cells, sensors = Extremes.of(pack.cell_voltage_v), Extremes.of(pack.temperature_c)
        closed = pack.contactor_state == ContactorState.CLOSED
        points.set(prefix + "StrSt", self._string_status(points, prefix + "StrSt", pack))
        points.set(prefix + "StrConFail", self._connection_failure(points, prefix + "StrConFail", pack))
        points.set(prefix + "StrSoC", 100.0 * pack.soc)
        points.set(prefix + "StrSoH", 100.0 * pack.soh)
        points.set(prefix + "StrA", pack.pack_current_a)
        points.set(prefix + "StrCellVMax", cells.highest)
        points.set(prefix + "StrCellVMaxMod", 1.0 if cells.highest_at == cells.highest_at else None)
        points.set(prefix + "StrCellVMin", cells.lowest)
        points.set(prefix + "StrCellVMinMod", 1.0 if cells.lowest_at == cells.lowest_at else None)
        points.set(prefix + "StrCellVAvg", cells.mean)
        points.set(prefix + "StrModTmpMax", sensors.highest)
        points.set(prefix + "StrModTmpMaxMod", 1.0 if sensors.highest_at == sensors.highest_at else None)
        points.set(prefix + "StrModTmpMin", sensors.lowest)
        points.set(prefix + "StrModTmpMinMod", 1.0 if sensors.lowest_at == sensors.lowest_at else None)
        points.set(prefix + "StrModTmpAvg", sensors.mean)
        reason = "NONE" if closed else "FAULT" if pack.latched_mask or _contactor_fault(pack) else "OTHER"
        points.set(prefix + "StrDisRsn", points.symbol(prefix + "StrDisRsn", reason))
        points.set(prefix + "StrConSt", points.bit(prefix + "StrConSt", "CONTACTOR_0", closed))
        points.set(prefix + "StrEvt1", event_bits(pack.alarms, points.block.points[prefix + "StrEvt1"].symbols))
        points.set(prefix + "StrEvt2", 0)
        points.set(prefix + "StrEvtVnd1", vendor_bits(pack.alarms))
        points.set(prefix + "StrEvtVnd2", pack.latched_mask)
        points.set(prefix + "StrSetCon", points.symbol(prefix + "StrSetCon", _connection_symbol(pack)))

    @staticmethod
    def _string_status(points: _Points, name: str, pack: PackSnapshot) -> int:
        return (points.bit(name, "STRING_ENABLED", pack.admitted)
                | points.bit(name, "CONTACTOR_STATUS", pack.contactor_state == ContactorState.CLOSED))

    @staticmethod
    def _connection_failure(points: _Points, name: str, pack: PackSnapshot) -> int:
        if _contactor_fault(pack):
            return points.symbol(name, "CONTACTOR_FAILURE")
        if pack.latched_mask:
            return points.symbol(name, "STRING_FAULT")
        if not pack.admitted:
            return points.symbol(name, "STRING_NOT_ENABLED")
        return points.symbol(name, "NO_FAILURE")

    def _pack(self, points: _Points, pack: PackSnapshot) -> None:
        cells, sensors = Extremes.of(pack.cell_voltage_v), Extremes.of(pack.temperature_c)
        points.set("St", self._string_status(points, "St", pack))
        points.set("ConFail", self._connection_failure(points, "ConFail", pack))
        points.set("NCellBal", pack.balancing_cells)
        points.set("SoC", 100.0 * pack.soc)
        points.set("DoD", 100.0 * (1.0 - pack.soc))
        points.set("NCyc", pack.equivalent_full_cycles)
        points.set("SoH", 100.0 * pack.soh)
        points.set("A", pack.pack_current_a)
        points.set("V", pack.pack_voltage_v)
        module = "lithium_ion_string_module[1]."
        for prefix, position, figures in (("CellV", "Mod", cells), ("ModTmp", "Mod", sensors),
                                          (module + "ModCellV", "Cell", cells),
                                          (module + "ModCellTmp", "Cell", sensors)):
            known = figures.highest_at == figures.highest_at
            points.set(prefix + "Max", figures.highest)
            points.set(prefix + "Min", figures.lowest)
            points.set(prefix + "Avg", figures.mean)
            in_module = position == "Mod"
            points.set(prefix + "Max" + position, (1.0 if in_module else figures.highest_at) if known else None)
            points.set(prefix + "Min" + position, (1.0 if in_module else figures.lowest_at) if known else None)
        points.set("ConSt", points.bit("ConSt", "CONTACTOR_0", pack.contactor_state == ContactorState.CLOSED))
        points.set("Evt1", event_bits(pack.alarms, points.block.points["Evt1"].symbols))
        points.set("Evt2", 0)
        points.set("EvtVnd1", vendor_bits(pack.alarms))
        points.set("EvtVnd2", pack.latched_mask)
        points.set("SetCon", points.symbol("SetCon", _connection_symbol(pack)))
        points.set(module + "ModSoC", 100.0 * pack.soc)
        points.set(module + "ModSoH", 100.0 * pack.soh)


def _extremes_over_strings(points: _Points, prefix: str, per_pack: Sequence[tuple[int, Extremes]],
                           mean: float | None) -> None:
    """`<prefix>Max`, `...MaxStr`, `...MaxMod`, the same for Min, and `<prefix>Avg` over the packs (strings)."""
    highest = across([(e.highest, i) for i, e in per_pack])
    lowest = across([(e.lowest, i) for i, e in per_pack])
    for end, figure, position in (("Max", highest.highest, highest.highest_at),
                                  ("Min", lowest.lowest, lowest.lowest_at)):
        points.set(prefix + end, figure)
        points.set(prefix + end + "Str", position)
        points.set(prefix + end + "Mod", 1 if per_pack else None)
    points.set(prefix + "Avg", mean)


def _connection_symbol(pack: PackSnapshot) -> str:
    return "DISCONNECT_STRING" if pack.disconnect_requested else "CONNECT_STRING"


def _contactor_fault(pack: PackSnapshot) -> bool:
    return pack.contactor_state == ContactorState.FAULT or AlarmCode.CONTACTOR_FAULT in pack.alarms


def _or(words: Iterable[int]) -> int:
    total = 0
    for word in words:
        total |= word
    return total

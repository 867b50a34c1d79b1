"""Start `bms-gateway run` as a real subprocess and read it through its three outputs."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Client
from prometheus_client.parser import text_string_to_metric_families
from pymodbus.client import AsyncModbusTcpClient

from gateway.codec.register_map import RegisterEntry, RegisterMap, load_register_map
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.ports import free_tcp_port

NOT_IMPLEMENTED = {"uint16": 0xFFFF, "int16": 0x8000, "uint32": 0xFFFFFFFF, "int32": 0x80000000}


SERVING_MARKS = ("gateway.app: serving", '"logger": "gateway.app", "message": "serving')  # text and json logs
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (name, sorted labels) -> value


@dataclass
class GatewayProcess:
    process: subprocess.Popen[str]
    modbus_port: int
    opcua_port: int
    prometheus_port: int
    truth_file: Path
    log_file: Path
    register_map: RegisterMap

    @classmethod
    def start(cls, tmp: Path, config: Path | None = None, extra_env: dict[str, str] | None = None,
              arguments: Sequence[str] = ()) -> GatewayProcess:
        ports = free_tcp_port(), free_tcp_port(), free_tcp_port()
        truth = tmp / "truth.jsonl"
        log = tmp / "gateway.log"
        env = dict(os.environ)
        env.update({
            "BMSGW_MODBUS__PORT": str(ports[0]), "BMSGW_OPCUA__PORT": str(ports[1]),
            "BMSGW_PROMETHEUS__PORT": str(ports[2]), "BMSGW_STORE__PATH": str(tmp / "state.sqlite"),
            "BMSGW_SIMULATION__TRUTH_FILE": str(truth),
            "BMSGW_OPCUA__SECURITY__ANONYMOUS": "true",  # read_opcua below connects anonymously
        })
        env.update(extra_env or {})
        command = [sys.executable, "-m", "gateway", "run", *(["--config", str(config)] if config else []), *arguments]
        with log.open("w") as log_handle:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                       stderr=log_handle, text=True, cwd=tmp)
        gateway = cls(process, *ports, truth, log, load_register_map(DEFAULT_MAPPINGS_DIR, "native"))
        gateway.wait_until_serving()
        return gateway

    def wait_until_serving(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited {self.process.returncode}:\n{self.log()}")
            log = self.log()
            serving = any(mark in log for mark in SERVING_MARKS)
            if serving and self.truth_file.exists():
                return
            time.sleep(0.2)
        raise AssertionError(f"gateway not serving after {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                return self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode

    def truth(self) -> dict[str, Any]:
        lines = self.truth_file.read_text().strip().splitlines()
        return dict(json.loads(lines[-1]))

    # Prometheus ---------------------------------------------------------------------------------
    def scrape(self) -> Samples:
        return scrape(self.prometheus_port)

    # Modbus -------------------------------------------------------------------------------------
    async def read_pack_registers(self, unit_id: int) -> dict[str, Any]:
        """Every entry of the pack layout, decoded with the published map (None = not implemented)."""
        return await self._read_unit(unit_id, self.register_map.pack.entries, self.register_map.pack.size)

    async def read_site_registers(self) -> dict[str, Any]:
        return await self._read_unit(1, self.register_map.site.entries, self.register_map.site.size)

    async def _read_unit(self, unit_id: int, entries: tuple[RegisterEntry, ...], size: int) -> dict[str, Any]:
        client = AsyncModbusTcpClient("127.0.0.1", port=self.modbus_port, timeout=3)
        await client.connect()
        try:
            words: list[int] = []
            for start in range(0, size, 120):
                response = await client.read_input_registers(start, count=min(120, size - start),
                                                             device_id=unit_id)
                assert not response.isError(), response
                words += response.registers
        finally:
            client.close()
        return {entry.name: _decode(entry, words, self.register_map.word_order) for entry in entries}

    # OPC UA -------------------------------------------------------------------------------------
    async def read_opcua(self, paths: list[str]) -> dict[str, Any]:
        async with Client(f"opc.tcp://127.0.0.1:{self.opcua_port}/bms-gateway/", timeout=5) as client:
            namespace = await client.get_namespace_index("urn:bms-gateway:site")
            values = {}
            for path in paths:
                node = client.get_node(f"ns={namespace};s={path}")
                data_value = await node.read_data_value(raise_on_bad_status=False)
                values[path] = data_value.Value.Value if data_value.StatusCode.is_good() else None
            return values


def _decode(entry: RegisterEntry, words: list[int], word_order: str) -> Any:
    values = []
    for i in range(entry.values):
        at = entry.address + i * entry.words_per_value
        if entry.words_per_value == 2:
            high, low = (words[at], words[at + 1]) if word_order == "big" else (words[at + 1], words[at])
            raw = (high << 16) | low
        else:
            raw = words[at]
        if raw == NOT_IMPLEMENTED[entry.type]:
            values.append(None)
            continue
        bits = 16 * entry.words_per_value
        if entry.type.startswith("int") and raw >= 1 << (bits - 1):
            raw -= 1 << bits
        values.append(raw * entry.scale)
    return values if entry.count is not None else values[0]


def close(a: float | None, b: float | None, tolerance: float) -> bool:
    return a is not None and b is not None and not math.isnan(a) and abs(a - b) <= tolerance



def scrape(port: int) -> Samples:
    """Every sample of the Prometheus endpoint on 127.0.0.1:`port`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def metric(samples: Samples, name: str, **labels: str) -> float:
    """One sample of a scrape, by metric name and labels."""
    return samples[(name, tuple(sorted(labels.items())))]


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll until `predicate` holds; how long it took. Fails naming `what` after `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")

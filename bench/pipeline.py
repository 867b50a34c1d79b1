"""Benchmark the foundation's hot paths, each beside a baseline measured in the same run.

    python -m bench.pipeline

1. CAN ingest: frames/s through BusIngest (CRC + counter + cantools decode + routing + aggregation)
   against bare cantools `Message.decode` of the same frames.
2. BMS tick: one engine tick (table -> bms_step -> snapshot) for 4, 64 and 256 packs of 32 cells,
   against the bare `bms_step` alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from gateway.bms.cell_model import load_cell_model
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.protection_rules import build_rules
from gateway.bms.step import BmsState, SafetySettings, bms_step
from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.protocol import load_protocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import ArrayField, BoundField, ScalarField
from gateway.runtime.ingest import BusIngest
from gateway.runtime.measurements import MeasurementTable
from gateway.runtime.snapshot_builder import build_snapshot
from gateway.settings import DEFAULT_MAPPINGS_DIR


def parameters(packs: int) -> PackParameters:
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    return PackParameters.build([PackLayout(f"pack-{i}", 32, 8, model) for i in range(packs)])


def frames_for(packs: int, cycles: int) -> list[CanFrame]:
    protocol = load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1")
    encoder = FrameEncoder(protocol)
    frames = []
    rng = np.random.default_rng(1)
    for _ in range(cycles):
        for node in range(packs):  # node addresses 0..255 on one bus
            values: dict[tuple[BoundField, int], float] = {
                (ArrayField.CELL_VOLTAGE_V, i): 3.6 + rng.random() * 0.1 for i in range(32)}
            values |= {(ArrayField.TEMPERATURE_C, i): 25.0 for i in range(8)}
            values |= {(ScalarField.PACK_VOLTAGE_V, -1): 118.0, (ScalarField.PACK_CURRENT_A, -1): -50.0}
            frames += [CanFrame("b", f.arbitration_id, f.data, 0.0) for f in encoder.encode_fields(node, values)]
    return frames


def best_rate(run: Callable[[], None], items: int, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return items / min(times)


def bench_ingest() -> None:
    packs = 16
    frames = frames_for(packs, 20)
    protocol = load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1")
    messages = {b.base_frame_id: b.message for b in protocol.messages.values()}

    def bare() -> None:
        for frame in frames:
            messages[frame.arbitration_id & ~0xFF].decode(frame.data, decode_choices=False)

    def pipeline() -> None:  # a fresh ingest per repeat: counters start over, so no frame is a repeat
        table = MeasurementTable(parameters(packs))
        ingest = BusIngest("b", FrameDecoder([protocol]), {n: n for n in range(packs)}, table)
        for frame in frames:
            ingest.handle(frame, 1.0)
        assert ingest.counters.decoded == len(frames)

    bare_rate, pipeline_rate = best_rate(bare, len(frames)), best_rate(pipeline, len(frames))
    print(f"| CAN ingest (decode+check+aggregate) | {pipeline_rate:,.0f} frames/s | bare cantools decode "
          f"{bare_rate:,.0f} frames/s | {pipeline_rate / bare_rate:.0%} |")


def bench_tick(packs: int) -> None:
    p = parameters(packs)
    rules = build_rules(p, 1.0, 0.1)
    table = MeasurementTable(p)
    protocol = load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1")
    ingest = BusIngest("b", FrameDecoder([protocol]), {n: n for n in range(packs)}, table)
    for frame in frames_for(packs, 1):
        ingest.handle(frame, 1.0)
    state = BmsState.empty(p, rules)
    safety = SafetySettings.of(rules)
    inputs = table.inputs(1.05)
    bare_times, tick_times = [], []
    for _ in range(50):
        started = time.perf_counter()
        bms_step(state, inputs, p, rules, 0.1, safety=safety)
        bare_times.append(time.perf_counter() - started)
    for n in range(50):
        started = time.perf_counter()
        x = table.inputs(1.05)
        state, outputs = bms_step(state, x, p, rules, 0.1, safety=safety)
        identities = [table.identity(i) for i in range(packs)]
        build_snapshot(n, "site", p, x, state, outputs, rules, identities, None, (), 0.0)
        tick_times.append(time.perf_counter() - started)

    def p99_ms(values: list[float]) -> float:
        return float(np.percentile(values, 99) * 1e3)

    print(f"| engine tick, {packs} packs x 32 cells | median {statistics.median(tick_times) * 1e3:.2f} ms, "
          f"p99 {p99_ms(tick_times):.2f} ms | bare bms_step median {statistics.median(bare_times) * 1e3:.2f} ms"
          f", p99 {p99_ms(bare_times):.2f} ms | {statistics.median(tick_times) / statistics.median(bare_times):.1f}x |")


def main() -> None:
    print("| what | bms-gateway | baseline (same run) | ratio |")
    print("|---|---|---|---|")
    bench_ingest()
    for packs in (4, 64, 256):
        bench_tick(packs)


if __name__ == "__main__":
    main()

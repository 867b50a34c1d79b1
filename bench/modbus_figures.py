"""The figures of the Modbus benchmark, computed from raw samples (pure; no I/O).

Server side, one `Sample` per engine tick (for the plain pymodbus server, per tick of a probe loop that sleeps
like the engine does): when the tick started, how long it ran, the process's CPU time and the CAN counters.
Tick jitter is the deviation of each interval between consecutive tick starts from the nominal period.
Beside the samples: garbage-collector pauses (end, generation, duration) and the CAN load's lateness per
sending cycle (time, how late its latest burst went out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Sample:
    start_s: float  # monotonic
    duration_s: float
    cpu_s: float  # process CPU time, all threads
    load_cpu_s: float  # CPU time of the CAN load thread (part of cpu_s)
    frames_sent: int  # by the CAN load
    frames_received: int  # by the gateway (counted in the snapshot of this tick)
    frames_dropped: int  # receive queue full
    frames_rejected: int  # CRC, counter, unknown id, ...


@dataclass(frozen=True)
class ServerFigures:
    ticks: int
    jitter_p50_ms: float
    jitter_p99_ms: float
    jitter_max_ms: float
    tick_p50_ms: float  # duration of the engine tick itself (the loop runs nothing else meanwhile)
    tick_p99_ms: float
    gc_full: int  # full (generation 2) collections
    gc_max_ms: float  # the longest collection pause of any generation
    cpu_share: float  # of one core, the whole server process
    load_cpu_share: float  # of one core, the CAN load thread inside it
    frames_sent: int
    frames_received: int
    frames_dropped: int
    frames_rejected: int
    backlog_max: int  # frames sent but not yet received, at a tick
    load_late_max_ms: float  # how late the CAN load sent a burst at worst (it waits for the GIL too)


@dataclass(frozen=True)
class ClientFigures:
    clients: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    errors: int
    cpu_share: float  # of one core, all client processes together


def percentile_ms(latencies_ns: NDArray[np.int64], q: float) -> float:
    return float(np.percentile(latencies_ns, q) / 1e6) if latencies_ns.size else float("nan")


def client_figures(clients: int, timings_ns: NDArray[np.int64], answers: int, errors: int, window_s: float,
                   cpu_s: float) -> ClientFigures:
    """`timings_ns`: (sent, latency) pairs of every answer in the window."""
    latencies_ns = timings_ns[1::2]
    return ClientFigures(clients, answers / window_s, percentile_ms(latencies_ns, 50), percentile_ms(latencies_ns, 99),
                         percentile_ms(latencies_ns, 99.9), errors, cpu_s / window_s)


def tick_jitter_s(starts_s: Sequence[float], period_s: float) -> NDArray[np.float64]:
    return np.abs(np.diff(np.asarray(starts_s, dtype=np.float64)) - period_s)


def server_figures(samples: Sequence[Sample], start_s: float, end_s: float, period_s: float,
                   gc_pauses: Sequence[tuple[float, int, float]] = (),
                   load_late: Sequence[tuple[float, float]] = ()) -> ServerFigures:
    window = [s for s in samples if start_s <= s.start_s <= end_s]
    pauses = [(generation, duration) for end, generation, duration in gc_pauses if start_s <= end <= end_s]
    late = [late_s for time_s, late_s in load_late if start_s <= time_s <= end_s]
    if len(window) < 2:
        raise ValueError(f"{len(window)} tick(s) between {start_s:.3f} and {end_s:.3f}: the server is not ticking")
    first, last = window[0], window[-1]
    jitter_ms = tick_jitter_s([s.start_s for s in window], period_s) * 1e3
    elapsed = last.start_s - first.start_s
    durations_ms = np.array([s.duration_s for s in window]) * 1e3
    return ServerFigures(
        ticks=len(window),
        jitter_p50_ms=float(np.percentile(jitter_ms, 50)),
        jitter_p99_ms=float(np.percentile(jitter_ms, 99)),
        jitter_max_ms=float(jitter_ms.max()),
        tick_p50_ms=float(np.percentile(durations_ms, 50)),
        tick_p99_ms=float(np.percentile(durations_ms, 99)),
        gc_full=sum(1 for generation, _ in pauses if generation == 2),
        gc_max_ms=max((duration for _, duration in pauses), default=0.0) * 1e3,
        cpu_share=(last.cpu_s - first.cpu_s) / elapsed,
        load_cpu_share=(last.load_cpu_s - first.load_cpu_s) / elapsed,
        frames_sent=last.frames_sent - first.frames_sent,
        frames_received=last.frames_received - first.frames_received,
        frames_dropped=last.frames_dropped - first.frames_dropped,
        frames_rejected=last.frames_rejected - first.frames_rejected,
        backlog_max=max(s.frames_sent - s.frames_received - s.frames_dropped for s in window),
        load_late_max_ms=max(late, default=0.0) * 1e3,
    )


Interval = tuple[float, float]  # monotonic seconds
MIN_GC_STALL_S = 0.001


def stalls(samples: Sequence[Sample], gc_pauses: Sequence[tuple[float, int, float]], start_s: float,
           end_s: float) -> dict[str, list[Interval]]:
    """When the server's event loop ran something else than requests: engine ticks, GC pauses (>= 1 ms)."""
    return {
        "engine tick": [(s.start_s, s.start_s + s.duration_s) for s in samples
                        if start_s <= s.start_s <= end_s and s.duration_s > 0],
        "GC pause": [(end - duration, end) for end, _, duration in gc_pauses
                     if start_s <= end <= end_s and duration >= MIN_GC_STALL_S],
    }


def _overlapping(starts_s: NDArray[np.float64], ends_s: NDArray[np.float64],
                 intervals: Sequence[Interval]) -> NDArray[np.bool_]:
    """Which requests [start, end) overlap one of the (sorted, disjoint) intervals."""
    if not intervals:
        return np.zeros(starts_s.shape, dtype=bool)
    begins = np.array([i[0] for i in intervals])
    finishes = np.array([i[1] for i in intervals])
    last = np.searchsorted(begins, ends_s, side="left") - 1  # the last interval beginning before the request ends
    return (last >= 0) & (finishes[np.maximum(last, 0)] > starts_s)


def tail_causes(timings_ns: NDArray[np.int64], quantile: float,
                stall_intervals: dict[str, list[Interval]]) -> dict[str, float]:
    """Of the requests at or above the `quantile` latency: the share that overlapped each kind of stall, and
    the share that overlapped none. `timings_ns` holds (sent, latency) pairs."""
    if not timings_ns.size:
        return {}
    sent_ns, latency_ns = timings_ns[0::2], timings_ns[1::2]
    slow = latency_ns >= np.percentile(latency_ns, quantile)
    starts_s = sent_ns[slow] / 1e9
    ends_s = starts_s + latency_ns[slow] / 1e9
    shares: dict[str, float] = {}
    covered = np.zeros(starts_s.shape, dtype=bool)
    for name, intervals in stall_intervals.items():
        hit = _overlapping(starts_s, ends_s, intervals)
        shares[name] = float(hit.mean())
        covered |= hit
    shares["neither"] = float((~covered).mean())
    return shares

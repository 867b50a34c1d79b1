"""The figures of the OPC UA benchmark, from raw measurements (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


def percentiles_ms(values_s: Sequence[float] | NDArray[np.float64]) -> dict[str, float]:
    """p50 / p99 / max in milliseconds of durations in seconds, and how many (NaN when there are none)."""
    values = np.asarray(values_s, dtype=np.float64)
    if not values.size:
        return {"count": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    p50, p99 = np.percentile(values, [50, 99]) * 1e3
    return {"count": int(values.size), "p50": float(p50), "p99": float(p99), "max": float(values.max() * 1e3)}


@dataclass(frozen=True)
class ClientResult:
    """One client process's window: its counts (bench.opcua_client's JSON) and its latencies in seconds."""

    counts: dict[str, float]
    latencies_s: NDArray[np.float64]


@dataclass(frozen=True)
class NotificationFigures:
    clients: int
    monitored_items: int  # per client (the smallest)
    notifications: int  # in the window, all clients
    per_s: float  # all clients
    per_client_per_s: tuple[float, ...]
    latency_ms: dict[str, float]  # all clients together
    worst_client_p99_ms: float
    clients_cpu_share: float  # of one core, all client processes together
    slow_path: int  # notifications asyncua decoded (the lean decoder declined)
    without_timestamp: int


def notification_figures(results: Iterable[ClientResult], window_s: float) -> NotificationFigures:
    results = list(results)
    if not results:
        raise ValueError("no client results")
    latencies = np.concatenate([r.latencies_s for r in results])
    per_client = tuple(r.latencies_s.size / window_s for r in results)
    worst = max(percentiles_ms(r.latencies_s)["p99"] for r in results)
    return NotificationFigures(
        clients=len(results),
        monitored_items=int(min(r.counts["monitored_items"] for r in results)),
        notifications=int(latencies.size),
        per_s=latencies.size / window_s,
        per_client_per_s=per_client,
        latency_ms=percentiles_ms(latencies),
        worst_client_p99_ms=worst,
        clients_cpu_share=sum(r.counts["cpu_s"] for r in results) / window_s,
        slow_path=int(sum(r.counts["slow_path"] for r in results)),
        without_timestamp=int(sum(r.counts["without_timestamp"] for r in results)),
    )

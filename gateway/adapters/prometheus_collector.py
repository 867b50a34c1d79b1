"""The Prometheus collector: every metric family is built from `hub.latest` at scrape time.

Nothing is updated per tick except `DurationHistogram`, which the engine feeds with `observe()`. Before
the first snapshot only `bmsgw_build_info` (and the tick histogram, if any) is exported.
The metric list, units and label semantics are in docs/metrics.md.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.adapters.client_traffic import ClientTraffic
from gateway.adapters.event_log import WriteCounts
from gateway.adapters.prometheus_inverter import inverter_families
from gateway.adapters.prometheus_packs import pack_families
from gateway.adapters.prometheus_polls import poll_families
from gateway.adapters.prometheus_site import bus_families, site_families, snapshot_families
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.inverter_output import InverterLinkCounters

TICK_BUCKETS_S: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
LOOP_LAG_BUCKETS_S: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class DurationHistogram:
    """A cumulative histogram of engine tick durations (seconds), owned by the engine.

    Plain counters, no locks: the engine calls `observe()` on the event loop, the collector reads
    on the same loop.
    """

    def __init__(self, buckets: Sequence[float] = TICK_BUCKETS_S) -> None:
        bounds = tuple(float(b) for b in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or not all(math.isfinite(b) for b in bounds):
            raise ValueError(f"histogram buckets must be finite, unique and increasing: {buckets!r}")
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # per bucket (not cumulative); the last one is +Inf
        self._sum = 0.0

    @property
    def count(self) -> int:
        return sum(self._counts)

    @property
    def sum(self) -> float:
        return self._sum

    def observe(self, seconds: float) -> None:
        if math.isnan(seconds):
            return
        self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for bound, count in zip((*self._bounds, math.inf), self._counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self._sum)


@dataclass(frozen=True)
class SelfMetricSources:
    """What the gateway measures about itself, each exported when present."""

    ticks: DurationHistogram | None = None  # the engine's tick durations
    loop_lag: DurationHistogram | None = None  # how late the event loop ran a timer (runtime.loop_lag)
    modbus: ClientTraffic | None = None
    event_log: WriteCounts | None = None
    opcua: Callable[[], ClientTraffic] | None = None  # the OPC UA output's latest counts (from its child process)
    inverter: InverterLinkCounters | None = None  # the inverter output on CAN, when enabled


class PrometheusCollector(Collector):
    """Custom collector exporting the latest gateway snapshot; register it in a CollectorRegistry."""

    def __init__(self, hub: SnapshotHub, sources: SelfMetricSources | None = None, *, cell_series: bool = True) -> None:
        """`cell_series`: export the per-cell and per-sensor series (off for large sites)."""
        self._hub = hub
        self._sources = sources or SelfMetricSources()
        self._cell_series = cell_series

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily("bmsgw_build", "Gateway build information, value 1.", value={
            "version": __version__,
        })
        yield from self_families(self._sources)
        snapshot = self._hub.latest
        if snapshot is None:
            return
        yield from snapshot_families(snapshot)
        yield from site_families(snapshot.site)
        yield from pack_families(snapshot.packs, cells=self._cell_series)
        yield from bus_families(snapshot.buses)
        yield from poll_families(snapshot.buses)


def self_families(sources: SelfMetricSources) -> Iterator[Metric]:
    if sources.ticks is not None:
        yield sources.ticks.family("bmsgw_tick_duration_seconds", "Duration of engine ticks.")
    if sources.loop_lag is not None:
        yield sources.loop_lag.family("bmsgw_event_loop_lag_seconds", "How late the event loop ran a 100 ms timer "
                                      "(CAN frames and requests wait as long).")
    modbus = sources.modbus
    if modbus is not None:
        yield GaugeMetricFamily("bmsgw_modbus_clients_connected", "Modbus TCP connections open now.",
                                value=modbus.connected)
        yield CounterMetricFamily("bmsgw_modbus_connections_accepted", "Modbus TCP connections accepted.",
                                  value=modbus.connections)
        requests = CounterMetricFamily("bmsgw_modbus_requests", "Modbus requests answered, by outcome: data, or "
                                       "an exception response (illegal function/address, refused, failed).",
                                       labels=["outcome"])
        requests.add_metric(["data"], modbus.requests - modbus.exceptions)
        requests.add_metric(["exception"], modbus.exceptions)
        yield requests
        yield CounterMetricFamily("bmsgw_modbus_protocol_errors", "Modbus TCP connections closed because their "
                                  "bytes were not Modbus TCP.", value=modbus.protocol_errors)
    if sources.opcua is not None:
        yield from _opcua_families(sources.opcua())
    events = sources.event_log
    if events is not None:
        yield CounterMetricFamily("bmsgw_event_log_events_written", "Events written to the event log.",
                                  value=events.written)
        yield CounterMetricFamily("bmsgw_event_log_write_failures", "Event-log writes that failed (those events "
                                  "are in the console log only).", value=events.failures)
    if sources.inverter is not None:
        yield from inverter_families(sources.inverter)


def _opcua_families(opcua: ClientTraffic) -> Iterator[Metric]:
    yield GaugeMetricFamily("bmsgw_opcua_clients_connected", "OPC UA connections open now.", value=opcua.connected)
    yield GaugeMetricFamily("bmsgw_opcua_sessions", "OPC UA sessions activated and open now.", value=opcua.sessions)
    yield CounterMetricFamily("bmsgw_opcua_connections_accepted", "OPC UA connections accepted.",
                              value=opcua.connections)
    responses = CounterMetricFamily("bmsgw_opcua_requests", "OPC UA requests answered, by outcome: good, or fault "
                                    "(a ServiceFault or a Bad service result).", labels=["outcome"])
    responses.add_metric(["good"], opcua.requests - opcua.exceptions)
    responses.add_metric(["fault"], opcua.exceptions)
    yield responses

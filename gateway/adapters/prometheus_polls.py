"""Communication quality of polled packs (gateway/runtime/poller.py) as metric families, per bus, pack and poll."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily

from gateway.domain.snapshot import BusStatistics, PollStatistics

_LABELS = ["bus", "pack", "poll"]
_POLL_COUNTERS: tuple[tuple[str, str, Callable[[PollStatistics], int]], ...] = (
    ("bmsgw_pack_poll_requests", "Poll requests sent to the pack, retries included.", lambda p: p.requests),
    ("bmsgw_pack_poll_responses", "Polls the pack answered in full within the timeout.", lambda p: p.responses),
    ("bmsgw_pack_poll_timeouts", "Poll tries that timed out.", lambda p: p.timeouts),
    ("bmsgw_pack_poll_retries", "Poll requests sent again after a timeout.", lambda p: p.retries),
    ("bmsgw_pack_poll_failures", "Polls left unanswered after every retry.", lambda p: p.failures),
)
_POLL_GAUGES: tuple[tuple[str, str, Callable[[PollStatistics], float]], ...] = (
    ("bmsgw_pack_poll_success_ratio", "Share of the last 20 finished polls that were answered (NaN before one).",
     lambda p: p.recent_success_ratio),
    ("bmsgw_pack_poll_last_response_time_seconds", "Time from the answered request to its last response.",
     lambda p: p.last_response_time_s),
    ("bmsgw_pack_poll_period_seconds", "Poll period in force (the mapping's, the pack's own, or stretched to fit "
     "the bus-load budget).", lambda p: p.period_s),
)


def poll_families(buses: Sequence[BusStatistics]) -> Iterator[Metric]:
    polled = [(bus.bus, poll) for bus in buses for poll in bus.polls]
    if not polled:
        return
    for name, documentation, getter in _POLL_COUNTERS:
        counter = CounterMetricFamily(name, documentation, labels=_LABELS)
        for bus, poll in polled:
            counter.add_metric([bus, poll.pack_id, poll.poll], getter(poll))
        yield counter
    for name, documentation, gauge_getter in _POLL_GAUGES:
        gauge = GaugeMetricFamily(name, documentation, labels=_LABELS)
        for bus, poll in polled:
            gauge.add_metric([bus, poll.pack_id, poll.poll], gauge_getter(poll))
        yield gauge
    response_time = SummaryMetricFamily("bmsgw_pack_poll_response_time_seconds",
                                        "Response time of the answered polls.", labels=_LABELS)
    for bus, poll in polled:
        response_time.add_metric([bus, poll.pack_id, poll.poll], count_value=poll.responses,
                                 sum_value=poll.response_time_sum_s)
    yield response_time
    polled_buses = [bus for bus in buses if bus.polls]
    load = GaugeMetricFamily("bmsgw_can_poll_load_ratio", "Planned poll traffic (requests and answers) over the "
                             "bus's bit rate.", labels=["bus"])
    deferred = CounterMetricFamily("bmsgw_can_polls_deferred", "Poll requests held back because the bus-load "
                                   "budget was spent.", labels=["bus"])
    for bus_statistics in polled_buses:
        load.add_metric([bus_statistics.bus], bus_statistics.poll_load_ratio)
        deferred.add_metric([bus_statistics.bus], bus_statistics.polls_deferred)
    yield load
    yield deferred

"""Counters of a server output's clients, kept by the output and exported by Prometheus (plain integers: the
output and the collector share the event loop)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ClientTraffic:
    connected: int = 0  # open connections now
    connections: int = 0  # accepted since start
    requests: int = 0  # answered, with data or with an exception response
    exceptions: int = 0  # answered with an exception response (illegal function or address, refused, failed)
    protocol_errors: int = 0  # connections closed because their bytes were not the protocol
    sessions: int = 0  # OPC UA: activated sessions open now

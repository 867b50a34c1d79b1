"""Loopback ports for tests that start real servers."""

from __future__ import annotations

import socket


def free_tcp_port() -> int:
    """A port nothing listens on right now (pymodbus cannot report the port of a bind to 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port

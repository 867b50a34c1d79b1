"""The Prometheus output: a minimal asyncio HTTP server on the gateway's event loop (no threads).

    GET /metrics   the text exposition of a private registry holding PrometheusCollector
    GET /healthz   the gateway's health as JSON (gateway.runtime.health): 200 when ok or degraded, 503 when failing
    anything else  404; a known path with another method 405; a malformed request 400

Each connection reads one request head (size-limited, and closed if it is not complete within
`request_timeout_s`), gets one response and is closed: a stalled client holds only its own task.
"""

from __future__ import annotations

import asyncio
import logging
import math
from http import HTTPStatus

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from gateway.adapters.http_minimal import HttpRequestError, Request, read_request, render_response
from gateway.adapters.prometheus_collector import PrometheusCollector, SelfMetricSources
from gateway.errors import AdapterError
from gateway.runtime.health import GatewayHealth, HealthStatus
from gateway.runtime.hub import SnapshotHub
from gateway.settings import PrometheusSettings

log = logging.getLogger(__name__)

_PATHS = ("/metrics", "/healthz")
_CLOSE_GRACE_S = 1.0


class PrometheusOutput:
    name = "prometheus"

    def __init__(
        self,
        settings: PrometheusSettings,
        hub: SnapshotHub,
        sources: SelfMetricSources | None = None,
        health: GatewayHealth | None = None,
        *,
        request_timeout_s: float = 10.0,
        max_request_head_bytes: int = 8192,
    ) -> None:
        self.ready = asyncio.Event()
        self._settings = settings
        self._hub = hub
        self._health = health or GatewayHealth(hub, math.inf)
        self._request_timeout_s = request_timeout_s
        self._max_head = max_request_head_bytes
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(PrometheusCollector(hub, sources, cell_series=settings.cell_series))
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    async def run(self) -> None:
        host, port = self._settings.host, self._settings.port
        try:
            server = await asyncio.start_server(self._serve, host, port, limit=self._max_head)
        except OSError as err:
            raise AdapterError(
                f"Prometheus output cannot listen on {host}:{port}: {err.strerror or err}. Fix: choose a "
                "free port with [prometheus] port in the settings file or BMSGW_PROMETHEUS__PORT (host: "
                "[prometheus] host / BMSGW_PROMETHEUS__HOST), or disable it with [prometheus] enabled = false"
            ) from err
        log.info("Prometheus metrics on http://%s:%d/metrics", host, port)
        try:
            self.ready.set()
            await asyncio.Future()  # serve until cancelled
        finally:
            self.ready.clear()
            server.close()
            await self._close_connections()
            await server.wait_closed()

    async def _close_connections(self) -> None:
        tasks = list(self._connections.values())
        for writer in list(self._connections):
            writer.transport.abort()  # wakes the handler's read or drain; it then finishes normally
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_GRACE_S)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            async with asyncio.timeout(self._request_timeout_s):
                response = await self._respond(reader)
                if response is not None:
                    writer.write(response)
                    await writer.drain()
        except TimeoutError:
            log.debug("Prometheus client %s too slow, closed", writer.get_extra_info("peername"))
        except OSError as err:  # reset by the peer, or aborted at shutdown
            log.debug("Prometheus client %s: %s", writer.get_extra_info("peername"), err)
        finally:
            del self._connections[writer]
            await _close(writer)

    async def _respond(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            request = await read_request(reader, self._max_head)
        except HttpRequestError as err:
            return render_response(err.status, f"{err.status.phrase}: {err}\n".encode())
        if request is None:
            return None
        return self._route(request)

    def _route(self, request: Request) -> bytes:
        if request.path not in _PATHS:
            return render_response(HTTPStatus.NOT_FOUND, b"not found; try /metrics or /healthz\n")
        if request.method != "GET":
            return render_response(
                HTTPStatus.METHOD_NOT_ALLOWED, b"only GET is allowed\n", extra_headers={"Allow": "GET"}
            )
        if request.path == "/metrics":
            return render_response(HTTPStatus.OK, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        report = self._health.report()
        status = HTTPStatus.SERVICE_UNAVAILABLE if report.status is HealthStatus.FAIL else HTTPStatus.OK
        return render_response(status, report.to_json(), "application/json")


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close after the response is flushed; abort if the peer does not let it flush in time."""
    writer.close()
    try:
        async with asyncio.timeout(_CLOSE_GRACE_S):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except OSError as err:
        log.debug("Prometheus client closed uncleanly: %s", err)

"""`bms-gateway health`: ask the running gateway's /healthz, print its checks, exit 0 (ok or degraded) or 1.

For probes: the Docker HEALTHCHECK, a Kubernetes exec probe, a monitoring script. Exit 1 also when the gateway
cannot be reached or answers nonsense (Docker reserves exit 2), and with --min-packs-online when fewer packs
than that are online.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gateway.config_loader import load_settings
from gateway.demo import demo_settings_overrides

HEALTH_COMMAND = "health"
_UNSPECIFIED_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def add_health_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    health = commands.add_parser(HEALTH_COMMAND, help="check the running gateway (exit 0 healthy or degraded, "
                                 "1 failing or unreachable): for probes")
    source = health.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, metavar="FILE",
                        help="site configuration whose [prometheus] host and port to ask (default: the demo's)")
    source.add_argument("--url", metavar="URL", help="the health endpoint, e.g. http://10.0.0.5:9108/healthz")
    health.add_argument("--min-packs-online", type=int, default=0, metavar="N",
                        help="also fail when fewer than N packs are online")
    health.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to wait (default 5)")
    health.add_argument("--json", action="store_true", help="print the gateway's JSON answer as it is")


def run_health_command(arguments: argparse.Namespace) -> int:
    url = arguments.url or _configured_url(arguments.config)
    if url is None:
        print("unhealthy: [prometheus] is disabled, and /healthz is served beside /metrics; fix: enable it, or "
              "give --url", file=sys.stderr)
        return 1
    try:
        answer = _fetch(url, arguments.timeout)
    except (OSError, ValueError) as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    if arguments.json:
        print(json.dumps(answer, indent=2))
    else:
        for check in answer["checks"]:
            print(f"{check['status']:8} {check['name']}: {check['detail']}")
    failing = answer["status"] == "fail"
    too_few = answer["packs_online"] < arguments.min_packs_online
    if too_few:
        print(f"fail     packs: {answer['packs_online']} online, fewer than --min-packs-online "
              f"{arguments.min_packs_online}")
    print(f"{'unhealthy' if failing or too_few else answer['status']}: {url}", file=sys.stderr)
    return 1 if failing or too_few else 0


def _configured_url(config: Path | None) -> str | None:
    settings = load_settings(config) if config is not None else load_settings(None, demo_settings_overrides())
    prometheus = settings.prometheus
    if not prometheus.enabled:
        return None
    host = _UNSPECIFIED_HOSTS.get(prometheus.host, prometheus.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{prometheus.port}/healthz"


def _fetch(url: str, timeout_s: float) -> dict[str, Any]:
    """The JSON the gateway answers, for 200 and 503 alike; ValueError when it is not a health answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        if error.code != 503:
            raise ValueError(f"HTTP {error.code} {error.reason}") from None
        body = error.read()
    try:
        answer = json.loads(body)
        if not isinstance(answer, dict) or {"status", "checks", "packs_online"} - answer.keys():
            raise ValueError
    except ValueError:
        raise ValueError(f"not a bms-gateway health answer: {body[:200]!r}") from None
    return answer

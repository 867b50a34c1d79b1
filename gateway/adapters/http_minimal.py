"""Just enough HTTP/1.1 for a scrape endpoint: read one request head, render one response.

No keep-alive, no request bodies, no chunked encoding: every response closes the connection.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType

_METHOD = re.compile(r"[A-Z]{1,16}")
_VERSION = re.compile(r"HTTP/1\.[01]")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
MAX_HEADER_LINES = 100


class HttpRequestError(Exception):
    """The request cannot be served; `status` is the response to send before closing."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        self.status = status
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # without the query string
    version: str
    headers: Mapping[str, str]  # names lower-cased


async def read_request(reader: asyncio.StreamReader, max_bytes: int) -> Request | None:
    """Read a request head of at most `max_bytes`; None if the client closed before sending anything.

    The caller bounds the time this takes. The reader's own line limit should not exceed `max_bytes`.
    """
    lines: list[bytes] = []
    total = 0
    while True:
        try:
            line = await reader.readline()
        except ValueError as err:  # a single line longer than the reader's limit
            raise HttpRequestError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "line too long") from err
        total += len(line)
        if total > max_bytes or len(lines) > MAX_HEADER_LINES:
            raise HttpRequestError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
        if not line.endswith(b"\n"):  # end of stream before the end of the head
            if total == 0:
                return None
            raise HttpRequestError(HTTPStatus.BAD_REQUEST, "incomplete request head")
        if line in (b"\r\n", b"\n"):
            if not lines:  # RFC 9112 2.2: ignore empty lines before the request line
                continue
            break
        lines.append(line)
    method, path, version = _request_line(lines[0])
    return Request(method, path, version, MappingProxyType(_headers(lines[1:])))


def _request_line(raw: bytes) -> tuple[str, str, str]:
    try:
        text = raw.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise HttpRequestError(HTTPStatus.BAD_REQUEST, "request line is not ASCII") from err
    parts = text.split(" ")
    if len(parts) != 3:
        raise HttpRequestError(HTTPStatus.BAD_REQUEST, f"malformed request line {text[:80]!r}")
    method, target, version = parts
    if not _METHOD.fullmatch(method) or not _VERSION.fullmatch(version) or not target.startswith("/"):
        raise HttpRequestError(HTTPStatus.BAD_REQUEST, f"malformed request line {text[:80]!r}")
    return method, target.partition("?")[0], version


def _headers(raw_lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in raw_lines:
        name, colon, value = raw.decode("latin-1").rstrip("\r\n").partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise HttpRequestError(HTTPStatus.BAD_REQUEST, f"malformed header line {raw[:80]!r}")
        headers[name.lower()] = value.strip(" \t")
    return headers


def render_response(
    status: HTTPStatus,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra_headers: Mapping[str, str] = MappingProxyType({}),
) -> bytes:
    lines = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in extra_headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

"""uvicorn's httptools protocol with the limits it lacks: a deadline for a request's
line and headers (from the connection's first byte, or the next request's), a cap on
their size and count, and the keep-alive and connection caps from the settings.

uvicorn holds a connection that never sends a byte, or sends its headers a byte at a
time, for as long as the client likes (slowloris), and accepts any header size; these
are closed here, before the application sees anything. Limits: docs/security.md.
`uvicorn --http entrypoints.api.protocol:GuardedHttpToolsProtocol` (api/command.py).
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from entrypoints.settings import Settings

_LINGER_S = 2.0


@dataclass(frozen=True)
class HttpLimits:
    header_timeout_s: float
    keep_alive_s: float
    max_header_bytes: int
    max_headers: int
    max_connections: int


@cache
def http_limits() -> HttpLimits:
    """Read once per API process from the same settings as the application."""
    settings = Settings()
    return HttpLimits(
        header_timeout_s=settings.http_header_timeout_s,
        keep_alive_s=settings.http_keep_alive_s,
        max_header_bytes=settings.http_max_header_bytes,
        max_headers=settings.http_max_headers,
        max_connections=settings.http_max_connections,
    )


def raise_open_files_limit(connections: int) -> None:
    """Let the process hold `connections` sockets (plus room for its own files): the
    soft limit is raised toward the hard one, which only root could raise."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = http_limits()
        self.timeout_keep_alive = int(self.limits.keep_alive_s)
        self.limit_concurrency = self.limits.max_connections  # then uvicorn answers 503
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = True
        self._header_bytes = 0  # bytes received while a request's head was incomplete
        self._head_bytes = 0  # the request line and headers as parsed
        self._header_count = 0
        self._refused = False

    # -- the head's deadline ----------------------------------------------------------

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.limits.header_timeout_s, self._head_too_slow
            )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _head_too_slow(self) -> None:
        self._header_timer = None
        self._refuse(HTTPStatus.REQUEST_TIMEOUT, "the request's headers did not arrive in time")

    def _refuse(self, status: HTTPStatus, reason: str) -> None:
        self._refused = True
        self._disarm()
        if self.transport is None or self.transport.is_closing():
            return
        body = reason.encode("ascii")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status.value, status.phrase.encode("ascii"), len(body), body)
        )
        # a lingering close (RFC 9112 9.6): stop sending, drop what still arrives for a
        # moment, then close; closing at once with unread input would reset the
        # connection and the client could lose the answer
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER_S, self.transport.close)
        else:
            self.transport.close()

    # -- protocol and parser callbacks -----------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > self.limits.max_header_bytes:
            self._refuse(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                f"the request line and headers exceed {self.limits.max_header_bytes} bytes",
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._head_bytes = 0
        self._header_count = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        self._header_count += 1
        if self._header_count <= self.limits.max_headers:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._disarm()
        if self._header_count > self.limits.max_headers:
            self._refuse(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                f"more than {self.limits.max_headers} header fields",
            )
        elif self._head_bytes > self.limits.max_header_bytes:
            self._refuse(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                f"the request line and headers exceed {self.limits.max_header_bytes} bytes",
            )
        else:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            self._in_headers = True  # what follows is the next request's head
            super().on_message_complete()

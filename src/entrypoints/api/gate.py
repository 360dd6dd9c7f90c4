"""The request gate (pure ASGI): what every request passes before the application reads
a byte of its body.

In order: the declared size against the route's limit (413, unread); the caller's key
and rate limit (401 / 429, unread); for uploads, room in this process's upload buffer
(503 + Retry-After after `upload_wait_s`, unread); then the body, counted as it streams
(413 past the limit, whether or not a Content-Length was sent) with a bound on every
pause (408). Bodies other than multipart uploads are small and read here in full, so
FastAPI's parser only ever sees a bounded, complete body. A response given before the
body was read to its end closes the connection. Limits and their defaults:
docs/security.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.api.deps import MULTIPART_OVERHEAD, guard_of, presented_key
from entrypoints.api.problems import (
    RETRY_AFTER_S,
    UNAVAILABLE,
    ApiProblem,
    problem,
    unavailable_detail,
)
from entrypoints.container import Container

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# multipart uploads the route parses as they stream (the API's, and the console's)
STREAMED_UPLOADS = frozenset({"/v1/documents", "/console/enviar"})
_NUL = b"%00"  # PostgreSQL text cannot hold it, and no parameter here means anything by it


class UploadBudget:
    """Bytes of upload bodies held at once by this process. A request reserves its
    declared size (the route's limit when undeclared, capped at the capacity so that
    one upload at the limit can always pass) and waits for room at most `wait_s`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._room = asyncio.Condition()

    async def reserve(self, size: int, wait_s: float) -> int | None:
        size = min(size, self.capacity)
        async with self._room:
            if self.used + size > self.capacity:  # else no wait, and no timer to arm
                try:
                    # asyncio.timeout, not wait_for: no task made per wait
                    async with asyncio.timeout(wait_s):
                        await self._room.wait_for(lambda: self.used + size <= self.capacity)
                except TimeoutError:
                    return None
            self.used += size
        return size

    async def release(self, size: int) -> None:
        async with self._room:
            self.used -= size
            self._room.notify_all()


@dataclass
class _Body:
    limit: int
    timeout_s: float
    complete: bool
    received: int = 0


class _CountedReceive:
    """The body as it streams in: counted against the limit, each pause bounded."""

    def __init__(self, receive: Receive, body: _Body) -> None:
        self.receive = receive
        self.body = body

    async def __call__(self) -> Message:
        if self.body.complete:
            return await self.receive()  # nothing left to pace: wait for a disconnect
        try:
            # asyncio.timeout, not wait_for: wait_for made a task for every part of
            # every body (2.7% of an upload's API CPU, profiled)
            async with asyncio.timeout(self.body.timeout_s):
                message = await self.receive()
        except TimeoutError:
            raise ApiProblem(
                408,
                "request_timeout",
                f"the request body stalled for {self.body.timeout_s:g} s; send it at once",
            ) from None
        if message["type"] == "http.request":
            self.body.received += len(message.get("body", b""))
            if self.body.received > self.body.limit:
                raise ApiProblem(
                    413,
                    "request_too_large",
                    f"the request body exceeds the limit of {self.body.limit} bytes",
                )
            if not message.get("more_body", False):
                self.body.complete = True
        else:  # http.disconnect
            self.body.complete = True
        return message


async def _read_all(receive: _CountedReceive, json: bool) -> Receive:
    """Read a small body here; hand the application a receive that replays it."""
    parts: list[bytes] = []
    while not receive.body.complete:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiProblem(400, "client_disconnected", "the client went away mid-body")
        parts.append(message.get("body", b""))
    body = b"".join(parts)
    if json:  # JSON is UTF-8 (RFC 8259); anything else is refused, not guessed at
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiProblem(422, "invalid_input", "the request body is not valid UTF-8") from None
    replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return replay.pop() if replay else await receive.receive()

    return replayed


class RequestGate:
    def __init__(self, app: ASGIApp, container: Container) -> None:
        self.app = app
        self.container = container
        self._budget: UploadBudget | None = None

    def budget(self) -> UploadBudget:
        if self._budget is None:
            self._budget = UploadBudget(self.container.settings().upload_buffer_mb * 1024 * 1024)
        return self._budget

    def _limit(self, method: str, path: str) -> tuple[int, bool]:
        """The route's body limit, and whether it is an upload (buffered, reserved)."""
        settings = self.container.settings()
        if method == "POST" and path in STREAMED_UPLOADS:
            return settings.max_upload_bytes + MULTIPART_OVERHEAD, True
        if method == "POST" and path == "/v1/documents/text":
            # UTF-8 takes at most 4 bytes a character; escapes in JSON are refused past it
            text = settings.max_text_chars * 4 + settings.max_metadata_bytes + 64 * 1024
            return min(text, settings.max_upload_bytes + MULTIPART_OVERHEAD), True
        return settings.max_json_body_bytes, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        limit, upload = self._limit(method, path)
        headers = dict(scope.get("headers", []))
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        declared_raw = headers.get(b"content-length")
        body = _Body(limit, self.container.settings().http_body_timeout_s, complete=True)

        async def send_closing(message: Message) -> None:
            # answered before the body was read to its end: the rest is not wanted
            if message["type"] == "http.response.start" and not body.complete:
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"connection", b"close")]
            await send(message)

        reserved: int | None = None
        try:
            if _NUL in scope.get("query_string", b"").lower():
                raise ApiProblem(
                    422, "validation_error", "query parameters must not contain NUL characters"
                )
            declared = _content_length(declared_raw)
            body.complete = not chunked and not declared
            if declared is not None and declared > limit:
                raise ApiProblem(
                    413,
                    "request_too_large",
                    f"the request body has {declared} bytes; the limit here is {limit} bytes",
                )
            if path.startswith("/v1/"):
                principal = await guard_of(self.container).identify(presented_key(headers))
                scope.setdefault("state", {})["principal"] = principal
            counted = _CountedReceive(receive, body)
            inner: Receive = counted
            if upload and not body.complete:
                settings = self.container.settings()
                reserved = await self.budget().reserve(declared or limit, settings.upload_wait_s)
                if reserved is None:
                    raise ApiProblem(
                        503,
                        "busy",
                        "too many uploads in progress on this server; retry shortly",
                        {"Retry-After": str(RETRY_AFTER_S)},
                    )
            if method in _BODY_METHODS and not body.complete and path not in STREAMED_UPLOADS:
                is_json = b"json" in headers.get(b"content-type", b"").lower()
                inner = await _read_all(counted, is_json)
        except ApiProblem as exc:
            await _answer(exc, scope, receive, send_closing)
            await self._release(reserved)
            return
        except UNAVAILABLE as exc:
            await _answer(unavailable(exc), scope, receive, send_closing)
            await self._release(reserved)
            return
        try:
            await self.app(scope, inner, send_closing)
        finally:
            await self._release(reserved)

    async def _release(self, reserved: int | None) -> None:
        if reserved is not None:
            await self.budget().release(reserved)


def _content_length(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ApiProblem(400, "bad_request", "Content-Length must be a non-negative integer")
    return int(raw)


def unavailable(exc: BaseException) -> ApiProblem:
    return ApiProblem(
        503, "unavailable", unavailable_detail(exc), {"Retry-After": str(RETRY_AFTER_S)}
    )


async def _answer(exc: ApiProblem, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem(exc.status, exc.code, exc.detail, Request(scope), headers=exc.headers)
    with contextlib.suppress(OSError):
        await response(scope, receive, send)

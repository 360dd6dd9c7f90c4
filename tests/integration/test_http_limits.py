"""Bounded HTTP against the real API under uvicorn (issue 13): what a hostile client
does to the connection itself, spoken over raw sockets so nothing in between helps.
The limits are set small here so each case takes about a second; docs/security.md
gives the defaults."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.clock import SystemClock
from adapters.postgres.database import session_factory
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from application.use_cases.api_keys import ApiKeys
from entrypoints.api.app import create_app
from entrypoints.settings import Settings
from tests.integration.conftest import auth, make_settings, shared_model_container
from tests.integration.live import running_api
from tests.integration.services import Services

LIMITS = {
    "COGEP_HTTP_HEADER_TIMEOUT_S": "1",
    "COGEP_HTTP_BODY_TIMEOUT_S": "1",
    "COGEP_HTTP_MAX_HEADER_BYTES": "8192",
    "COGEP_HTTP_MAX_HEADERS": "40",
    "COGEP_MAX_JSON_BODY_BYTES": "4096",
    "COGEP_MAX_UPLOAD_BYTES": "600000",
    "COGEP_UPLOAD_BUFFER_MB": "1",
    "COGEP_UPLOAD_WAIT_S": "0.1",
    "COGEP_AUTH_CACHE_S": "60",
}


@pytest.fixture(scope="module")
def api(database_url: str, services: Services) -> Iterator[str]:
    with running_api(database_url, services.redis_url, extra_env=LIMITS) as url:
        yield url


async def new_key(engine: AsyncEngine, scopes: list[str]) -> str:
    sessions = session_factory(engine)
    keys = ApiKeys(lambda: SqlAlchemyUnitOfWork(sessions), SystemClock())
    return (await keys.create(f"limits-{uuid.uuid4().hex[:8]}", scopes, 10**6)).plaintext


@dataclass
class Answer:
    status: int
    head: str
    body: bytes
    seconds: float
    closed: bool  # the server closed the connection after answering


async def exchange(url: str, *parts: bytes, pause_s: float = 0.0, wait_s: float = 5) -> Answer:
    """Send `parts` (pausing between them), then read one response and whether the
    server closed the connection after it."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    start = time.monotonic()

    async def send_all() -> None:  # alongside the reading, as a real client would
        for i, part in enumerate(parts):
            if i and pause_s:
                await asyncio.sleep(pause_s)
            try:
                writer.write(part)
                await writer.drain()
            except ConnectionError:
                return

    sending = asyncio.create_task(send_all())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait_s)
        seconds = time.monotonic() - start
        text = head.decode("latin-1")
        length = next(
            (
                int(line.split(":")[1])
                for line in text.split("\r\n")
                if line.lower().startswith("content-length:")
            ),
            0,
        )
        body = await asyncio.wait_for(reader.readexactly(length), wait_s)
        try:
            closed = await asyncio.wait_for(reader.read(1), 2) == b""
        except TimeoutError:
            closed = False
        except ConnectionError:
            closed = True
        return Answer(int(text.split(" ")[1]), text, body, seconds, closed)
    finally:
        sending.cancel()
        writer.close()


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(api: str) -> None:
    answer = await exchange(api)
    assert answer.status == 408 and answer.closed
    assert 0.8 < answer.seconds < 3


async def test_headers_sent_a_byte_at_a_time_are_cut_off_at_the_deadline(api: str) -> None:
    slow = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 40
    parts = [slow[i : i + 2] for i in range(0, len(slow), 2)]  # 2 bytes every 0.1 s: ~4 s
    answer = await exchange(api, *parts, pause_s=0.1)
    assert answer.status == 408 and answer.closed
    assert answer.seconds < 2.5


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ([f"X-Big: {'a' * 20_000}"], b"exceed 8192 bytes"),
        ([f"X-Many-{i}: v" for i in range(60)], b"more than 40 header fields"),
        ([f"X-Split-{i}: {'b' * 300}" for i in range(35)], b"exceed 8192 bytes"),
    ],
    ids=["one-large", "too-many", "large-in-sum"],
)
async def test_oversized_heads_get_431_and_the_connection_closes(
    api: str, headers: list[str], said: bytes
) -> None:
    answer = await exchange(api, request_head("GET", "/healthz", *headers))
    assert answer.status == 431 and answer.closed
    assert said in answer.body


async def test_an_8_mb_header_is_refused_without_being_buffered(api: str) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Huge: "
    answer = await exchange(api, head, *[b"c" * 65536] * 128)  # never finishes the header
    assert answer.status == 431 and answer.closed


async def test_the_body_is_not_read_before_the_caller_is_known(api: str) -> None:
    # a declared 200 MB body without a key: refused at once for its size, unread
    answer = await exchange(
        api,
        request_head(
            "POST",
            "/v1/documents/text",
            "Content-Type: application/json",
            "Content-Length: 200000000",
        ),
    )
    assert answer.status == 413 and answer.closed and answer.seconds < 1
    # a chunked body of unknown size without a key: 401 before a byte of it is sent
    answer = await exchange(
        api,
        request_head(
            "POST", "/v1/search", "Content-Type: application/json", "Transfer-Encoding: chunked"
        ),
    )
    assert answer.status == 401 and answer.closed and answer.seconds < 1
    assert json.loads(answer.body)["code"] == "unauthenticated"


async def test_a_chunked_body_past_the_limit_is_cut_off(api: str, engine: AsyncEngine) -> None:
    key = await new_key(engine, ["read"])
    chunk = b"a" * 1000
    parts = [
        request_head(
            "POST",
            "/v1/search",
            f"Authorization: Bearer {key}",
            "Content-Type: application/json",
            "Transfer-Encoding: chunked",
        ),
        *[b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 10,  # 10 KB, the limit is 4 KB
    ]
    answer = await exchange(api, *parts)
    assert answer.status == 413 and answer.closed
    assert json.loads(answer.body)["code"] == "request_too_large"


async def test_a_body_shorter_than_its_content_length_times_out(
    api: str, engine: AsyncEngine
) -> None:
    key = await new_key(engine, ["read"])
    head = request_head(
        "POST",
        "/v1/search",
        f"Authorization: Bearer {key}",
        "Content-Type: application/json",
        "Content-Length: 1000",
    )
    answer = await exchange(api, head + b'{"query": "f')
    assert answer.status == 408 and answer.closed
    assert 0.8 < answer.seconds < 3
    assert json.loads(answer.body)["code"] == "request_timeout"


def multipart(content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def test_uploads_past_the_buffer_wait_then_get_503_unread(
    api: str, engine: AsyncEngine
) -> None:
    key = await new_key(engine, ["ingest"])
    body, content_type = multipart(b"Art. 1 " + b"x" * 580_000)
    head = request_head(
        "POST",
        "/v1/documents",
        f"Authorization: Bearer {key}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    )
    where = urlsplit(api)
    # a slow upload holds 580 KB of the 1 MB buffer while it dribbles in
    _, holder = await asyncio.open_connection(where.hostname, where.port)
    holder.write(head + body[:1000])
    await holder.drain()
    await asyncio.sleep(0.2)
    try:
        second = await exchange(api, head)  # a second one does not fit: 503 after 0.1 s
        assert second.status == 503 and second.closed
        assert "retry-after: 2" in second.head.lower()
        assert json.loads(second.body)["code"] == "busy"
        assert 0.1 <= second.seconds < 2
    finally:
        holder.close()
    # the holder's room comes back when it goes (here: its connection closes)
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient(base_url=api) as client:
        r = await client.post(
            "/v1/documents",
            files={
                "file": ("b.txt", b"Art. 1 " + uuid.uuid4().hex.encode() * 10_000, "text/plain")
            },
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 201, r.text


async def test_a_burst_of_uploads_gets_only_created_or_busy_and_loses_nothing(
    api: str, engine: AsyncEngine
) -> None:
    key = await new_key(engine, ["ingest", "read"])
    # 528 KB each against a 1 MB buffer: one at a time, the others wait (0.1 s at most)
    contents = [f"Art. {i:02}. {uuid.uuid4().hex} ".encode() * 12_000 for i in range(30)]
    created: set[str] = set()
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:

        async def upload(content: bytes) -> None:
            for _ in range(50):
                r = await client.post(
                    "/v1/documents",
                    files={"file": ("lei.txt", content, "text/plain")},
                    headers={"Authorization": f"Bearer {key}"},
                )
                statuses.append(r.status_code)
                if r.status_code == 503:
                    assert r.headers["retry-after"] == "2"
                    await asyncio.sleep(0.2)
                    continue
                assert r.status_code == 201, r.text
                created.add(r.json()["id"])
                return

        await asyncio.gather(*(upload(c) for c in contents))
        assert set(statuses) <= {201, 503}
        assert 503 in statuses  # some waited past the bound: 503, unread
        assert len(created) == len(contents)  # each exactly once
        listed = await client.get(
            "/v1/documents",
            params={"ids": sorted(created), "limit": 200},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert {d["id"] for d in listed.json()["items"]} == created


async def test_an_exhausted_database_pool_answers_503_with_retry_after(
    database_url: str, services: Services, clean_db: AsyncEngine
) -> None:
    settings = make_settings(
        database_url,
        services.redis_url,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_s=0.2,
        auth_cache_s=60.0,
    )
    container = shared_model_container(settings)
    app = create_app(container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        cached = (await container.api_keys().create("cached", ["read"])).plaintext
        fresh = (await container.api_keys().create("fresh", ["read"])).plaintext
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/v1/documents", headers=auth(cached))).status_code == 200
            async with container.engine().connect() as held:  # the pool's only connection
                await held.execute(text("SELECT 1"))
                # known key (cached): the route itself waits for a connection
                busy = await client.get("/v1/documents", headers=auth(cached))
                # unknown key: the gate's authentication waits for one
                gate = await client.get("/v1/documents", headers=auth(fresh))
            for r in (busy, gate):
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "2"
                assert r.json()["code"] == "unavailable"
            # the connection is back: both keys work again
            assert (await client.get("/v1/documents", headers=auth(fresh))).status_code == 200
    finally:
        await container.engine().dispose()
        container.unwire()


async def test_a_revoked_key_is_refused_by_every_api_process_within_the_bound(
    database_url: str, services: Services, engine: AsyncEngine
) -> None:
    """Two API processes (as on two hosts) with the real cache at its default bound
    (COGEP_AUTH_CACHE_S, 5 s): each answers from its cache until the entry expires,
    then asks the database and refuses."""
    bound = Settings.model_fields["auth_cache_s"].default
    sessions = session_factory(engine)
    keys = ApiKeys(lambda: SqlAlchemyUnitOfWork(sessions), SystemClock())
    created = await keys.create("to-revoke", ["read"], 10**6)
    headers = auth(created.plaintext)
    with (
        running_api(database_url, services.redis_url) as one,
        running_api(database_url, services.redis_url) as two,
    ):

        async def status(url: str) -> int:
            async with httpx.AsyncClient(base_url=url) as client:
                return (await client.get("/v1/documents", headers=headers)).status_code

        assert [await status(one), await status(two)] == [200, 200]  # both cache the key
        await keys.revoke(created.key.id)
        revoked_at = time.monotonic()
        assert [await status(one), await status(two)] == [200, 200]  # the cache, as stated
        refused: dict[str, float] = {}
        while len(refused) < 2 and time.monotonic() - revoked_at < bound + 5:
            for url in (one, two):
                if url not in refused and await status(url) == 401:
                    refused[url] = time.monotonic() - revoked_at
            await asyncio.sleep(0.1)
        assert set(refused) == {one, two}
        assert max(refused.values()) <= bound + 0.5, refused  # within the stated bound
        assert [await status(one), await status(two)] == [401, 401]  # and it stays refused

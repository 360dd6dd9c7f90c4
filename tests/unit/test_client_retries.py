"""cogep_client's retry rules, over httpx's mock transport (the HTTP layer below the
client stands in; the client itself is real): 429 and 503 are retried as Retry-After
asks, at most `retries` times; connection failures are retried only for calls that are
safe to repeat; other errors are ApiError with the problem's code and reason."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from cogep_client import ApiError, AsyncClient, Client, Retry

DOCUMENT = {
    "id": "6f1c3c4e-8a1b-4c2d-9e0f-1a2b3c4d5e6f",
    "collection": "default",
    "filename": "a.txt",
    "content_type": "text/plain",
    "size_bytes": 6,
    "sha256": "0",
    "created_at": "2026-12-01T00:00:00Z",
    "source_key": "sha256:0",
    "version": 1,
    "current": False,
}
SEARCH = {"query": "férias", "mode": "hybrid", "model": "m", "took_ms": 1.0, "results": []}


def scripted(
    answers: list[httpx.Response | Exception],
) -> tuple[list[httpx.Request], Callable[[httpx.Request], httpx.Response]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return seen, handler


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr("cogep_client.client.time.sleep", waited.append)

    async def asleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr("cogep_client.client.asyncio.sleep", asleep)
    return waited


def busy(status: int, retry_after: str | None = "3") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    body = {"status": status, "code": "busy", "detail": "retry shortly"}
    return httpx.Response(status, json=body, headers=headers)


def test_429_and_503_are_retried_as_retry_after_asks(sleeps: list[float]) -> None:
    seen, handler = scripted([busy(503), busy(429, "1"), httpx.Response(200, json=SEARCH)])
    with Client("http://api", "k", transport=httpx.MockTransport(handler)) as api:
        assert api.search("férias").query == "férias"
    assert len(seen) == 3 and sleeps == [3.0, 1.0]
    assert seen[0].headers["authorization"] == "Bearer k"
    assert json.loads(seen[2].content)["query"] == "férias"  # the same body each time


async def test_the_async_client_retries_alike(sleeps: list[float]) -> None:
    seen, handler = scripted([busy(503, None), httpx.Response(200, json=SEARCH)])
    async with AsyncClient("http://api", "k", transport=httpx.MockTransport(handler)) as api:
        assert (await api.search("férias")).results == []
    assert len(seen) == 2 and len(sleeps) == 1 and 0.5 <= sleeps[0] <= 0.75  # backoff


def test_retries_stop_after_the_limit_and_waits_are_capped(sleeps: list[float]) -> None:
    seen, handler = scripted([busy(503, "600")])
    retry = Retry(retries=2, max_wait_s=5)
    api = Client("http://api", "k", retry=retry, transport=httpx.MockTransport(handler))
    with api, pytest.raises(ApiError) as caught:
        api.stats()
    assert caught.value.status == 503 and caught.value.code == "busy"
    assert len(seen) == 3 and sleeps == [5.0, 5.0]


def test_connection_failures_are_retried_only_when_repeating_is_safe(sleeps: list[float]) -> None:
    down = httpx.ConnectError("refused")
    seen, handler = scripted([down, httpx.Response(200, json=SEARCH)])
    with Client("http://api", "k", transport=httpx.MockTransport(handler)) as api:
        api.search("férias")  # a search repeats harmlessly
    assert len(seen) == 2

    seen, handler = scripted([down, httpx.Response(201, json=DOCUMENT)])
    api = Client("http://api", "k", transport=httpx.MockTransport(handler))
    with api, pytest.raises(httpx.ConnectError):  # an upload without an Idempotency-Key
        api.upload(b"Art. 1", "a.txt")
    assert len(seen) == 1

    seen, handler = scripted([down, httpx.Response(201, json=DOCUMENT)])
    with Client("http://api", "k", transport=httpx.MockTransport(handler)) as api:
        assert api.upload(b"Art. 1", "a.txt", idempotency_key="lote-1/a.txt").filename == "a.txt"
    assert len(seen) == 2 and seen[1].headers["idempotency-key"] == "lote-1/a.txt"


def test_other_errors_are_api_errors_with_the_problem_s_reason(sleeps: list[float]) -> None:
    problem: dict[str, object] = {
        "status": 403,
        "code": "collection_forbidden",
        "detail": "limited to rh",
    }
    _, handler = scripted([httpx.Response(403, json=problem)])
    api = Client("http://api", "k", transport=httpx.MockTransport(handler))
    with api, pytest.raises(ApiError) as caught:
        api.search("x", collection="juridico")
    assert (caught.value.status, caught.value.code, caught.value.detail) == (
        403,
        "collection_forbidden",
        "limited to rh",
    )
    assert sleeps == []  # never retried

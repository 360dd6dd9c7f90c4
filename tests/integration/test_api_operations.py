"""Health, readiness, metrics; uploads keep working while Redis is down."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.services.embedded import free_port
from entrypoints.api.app import create_app
from entrypoints.container import build_container
from entrypoints.settings import Settings
from tests.integration.conftest import auth, make_settings


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


async def test_metrics_expose_requests_and_queue_depth(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    await client.post(
        "/v1/documents",
        files={"file": ("a.txt", b"metrica", "text/plain")},
        headers=auth(keys["ingest"]),
    )
    body = (await client.get("/metrics")).text
    assert 'cogep_http_requests_total{method="POST",route="/v1/documents",status="201"}' in body
    assert 'cogep_queue_jobs{status="PENDING"} 1.0' in body
    assert "cogep_http_request_duration_seconds_bucket" in body


async def test_new_collections_add_no_metric_series(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    def series(body: str) -> int:
        return sum(1 for line in body.splitlines() if line and not line.startswith("#"))

    await client.post(  # a first upload: every series the route has exists from here on
        "/v1/documents", files={"file": ("a.txt", b"primeiro")}, headers=auth(keys["ingest"])
    )
    before = series((await client.get("/metrics")).text)
    for n in range(20):
        r = await client.post(
            "/v1/documents",
            files={"file": (f"{n}.txt", f"conteudo {n}".encode())},
            data={"collection": f"colecao-{n}"},
            headers=auth(keys["ingest"]),
        )
        assert r.status_code == 201
    assert series((await client.get("/metrics")).text) == before  # bounded cardinality


async def test_metrics_can_require_a_read_key(
    client: httpx.AsyncClient, keys: dict[str, str], settings: Settings
) -> None:
    settings.metrics_require_key = True
    r = await client.get("/metrics")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem")
    assert (await client.get("/metrics", headers=auth(keys["read"]))).status_code == 200
    assert (await client.get("/healthz")).status_code == 200  # liveness stays open


async def test_an_internal_error_is_a_500_problem_without_a_stack_trace(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    async with clean_db.begin() as conn:  # break the schema under the API's feet
        await conn.execute(text("ALTER TABLE ai.documents RENAME TO documents_gone"))
    try:
        r = await client.get("/v1/documents", headers=auth(keys["read"]))
    finally:
        async with clean_db.begin() as conn:
            await conn.execute(text("ALTER TABLE ai.documents_gone RENAME TO documents"))
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "an unexpected error occurred"
    assert "Traceback" not in r.text and "documents" not in r.json()["detail"]


async def test_uploads_succeed_while_redis_is_down_and_readiness_says_so(
    database_url: str, settings: Settings, clean_db: AsyncEngine
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    container = build_container(make_settings(database_url, dead_redis))
    key = (await container.api_keys().create("k", ["ingest", "read"])).plaintext
    app = create_app(container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post(
                "/v1/documents",
                files={"file": ("a.txt", b"sem redis", "text/plain")},
                headers=auth(key),
            )
            assert r.status_code == 201, r.text
            await container.api_doorbell().flush()
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["redis"] == "unreachable"
        async with clean_db.connect() as conn:
            status = (
                await conn.execute(text("SELECT status FROM ai.ingestion_queue"))
            ).scalar_one()
        assert status == "PENDING"  # the row is the truth; the sweeper will ring
    finally:
        await container.api_doorbell().close()
        await container.engine().dispose()
        container.unwire()

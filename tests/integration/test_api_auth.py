"""API keys (hashed at rest, scopes), 401/403/429."""

from __future__ import annotations

import httpx
import pytest
from dependency_injector import providers
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.use_cases.api_keys import Authenticator
from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.integration.conftest import auth

UPLOAD = {"file": ("a.txt", b"texto", "text/plain")}


async def test_keys_are_stored_hashed_never_in_plaintext(
    container: Container, clean_db: AsyncEngine
) -> None:
    created = await container.api_keys().create("rh-sistema", ["ingest"])
    async with clean_db.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM ai.api_keys"))).mappings().all()
    assert len(rows) == 1
    row = dict(rows[0])
    assert created.plaintext not in str(row)
    assert row["secret_hash"] != created.plaintext and len(row["secret_hash"]) == 64
    assert row["scopes"] == ["ingest"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "unauthenticated"),
        ({"Authorization": "Bearer cgp_00000000_notarealsecret"}, "invalid_api_key"),
        ({"X-API-Key": "garbage"}, "invalid_api_key"),
    ],
)
async def test_missing_or_unknown_keys_get_401(
    client: httpx.AsyncClient, keys: dict[str, str], headers: dict[str, str], code: str
) -> None:
    r = await client.post("/v1/documents", files=UPLOAD, headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == code
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_the_x_api_key_header_works_too(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.post("/v1/documents", files=UPLOAD, headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("key", "method", "path"),
    [
        ("read", "POST", "/v1/documents/text"),
        ("ingest", "GET", "/v1/documents"),
        ("ingest", "GET", "/v1/jobs"),
        ("read", "DELETE", "/v1/documents/00000000-0000-0000-0000-000000000000"),
        ("ingest_read", "POST", "/v1/jobs/00000000-0000-0000-0000-000000000000/retry"),
    ],
)
async def test_a_key_without_the_scope_gets_403(
    client: httpx.AsyncClient, keys: dict[str, str], key: str, method: str, path: str
) -> None:
    r = await client.request(method, path, json={"text": "x"}, headers=auth(keys[key]))
    assert r.status_code == 403
    assert r.json()["code"] == "insufficient_scope"


async def test_admin_implies_every_scope(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    assert (await client.get("/v1/documents", headers=auth(keys["admin"]))).status_code == 200
    r = await client.post("/v1/documents", files=UPLOAD, headers=auth(keys["admin"]))
    assert r.status_code == 201


async def test_a_revoked_key_stops_working(client: httpx.AsyncClient, container: Container) -> None:
    created = await container.api_keys().create("temp", ["read"])
    assert (await client.get("/v1/documents", headers=auth(created.plaintext))).status_code == 200
    await container.api_keys().revoke(created.key.id)
    r = await client.get("/v1/documents", headers=auth(created.plaintext))
    assert r.status_code == 401


async def test_with_the_production_cache_a_revocation_holds_within_its_5_s_bound(
    client: httpx.AsyncClient, container: Container
) -> None:
    # the real Authenticator with the default bound; only its clock is ours to move
    now = [1000.0]
    bound = Settings.model_fields["auth_cache_s"].default
    assert bound == 5.0  # the bound docs/security.md states
    container.authenticator.override(
        providers.Singleton(
            Authenticator, container.uow_factory, container.clock, bound, lambda: now[0]
        )
    )
    created = await container.api_keys().create("temp", ["read"])
    assert (await client.get("/v1/documents", headers=auth(created.plaintext))).status_code == 200
    await container.api_keys().revoke(created.key.id)
    now[0] += 4.0  # within the bound the cached answer still stands: the stated behaviour
    assert (await client.get("/v1/documents", headers=auth(created.plaintext))).status_code == 200
    now[0] += 1.5  # past it, every API process asks the database again
    assert (await client.get("/v1/documents", headers=auth(created.plaintext))).status_code == 401
    # and a refused key is not cached as good: it stays refused
    assert (await client.get("/v1/documents", headers=auth(created.plaintext))).status_code == 401


async def test_past_its_rate_limit_a_key_gets_429_with_retry_after(
    client: httpx.AsyncClient, container: Container
) -> None:
    limited = await container.api_keys().create("limited", ["read"], rate_limit_per_minute=3)
    statuses = [
        (await client.get("/v1/documents", headers=auth(limited.plaintext))).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    r = await client.get("/v1/documents", headers=auth(limited.plaintext))
    assert r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60


async def test_rate_limits_are_per_key(client: httpx.AsyncClient, container: Container) -> None:
    a = await container.api_keys().create("a", ["read"], rate_limit_per_minute=1)
    b = await container.api_keys().create("b", ["read"], rate_limit_per_minute=1)
    assert (await client.get("/v1/documents", headers=auth(a.plaintext))).status_code == 200
    assert (await client.get("/v1/documents", headers=auth(a.plaintext))).status_code == 429
    assert (await client.get("/v1/documents", headers=auth(b.plaintext))).status_code == 200

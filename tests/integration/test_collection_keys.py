"""Collections as a boundary (issue 13): an API key limited to collections sees,
searches, deduplicates against and deletes only inside them; a document outside is not
found (404), a collection named outside is refused (403); keys without a limit (every
existing key) reach everything. Job internals (worker ids, exception text) are for
admin keys only."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.rows import documents
from application.ports import UnitOfWorkFactory
from application.processing.outcomes import BatchReport
from domain.model import RetryPolicy
from entrypoints.container import Container
from tests.integration.conftest import auth
from tests.integration.live import service_env
from tests.integration.services import Services

RH_TEXT = "Art. 1º O servidor público tem direito a férias anuais de trinta dias."
JUR_TEXT = "Art. 1º O parecer jurídico sobre licitação é obrigatório nos contratos."


@pytest.fixture
async def two_collections(
    client: httpx.AsyncClient,
    container: Container,
    keys: dict[str, str],
    process: Callable[[], Awaitable[BatchReport]],
) -> dict[str, Any]:
    ids = {}
    for collection, text in (("rh", RH_TEXT), ("juridico", JUR_TEXT)):
        r = await client.post(
            "/v1/documents/text",
            json={"text": text, "collection": collection, "batch": "lote-1"},
            headers=auth(keys["admin"]),
        )
        assert r.status_code == 201, r.text
        ids[collection] = r.json()["id"]
    assert (await process()).completed == 2
    api_keys = container.api_keys()
    rh = (await api_keys.create("rh", ["ingest", "read"], collections=["rh"])).plaintext
    rh_admin = (await api_keys.create("rh-admin", ["admin"], collections=["rh"])).plaintext
    return {"ids": ids, "rh": rh, "rh_admin": rh_admin}


async def test_a_limited_key_lists_searches_and_watches_only_its_collections(
    client: httpx.AsyncClient, keys: dict[str, str], two_collections: dict[str, Any]
) -> None:
    rh, ids = auth(two_collections["rh"]), two_collections["ids"]
    listed = (await client.get("/v1/documents", headers=rh)).json()["items"]
    assert [d["id"] for d in listed] == [ids["rh"]]
    everything = (await client.get("/v1/documents", headers=auth(keys["read"]))).json()["items"]
    assert {d["id"] for d in everything} == set(ids.values())  # unlimited keys: all

    for mode in ("vector", "keyword", "hybrid"):
        r = await client.post(
            "/v1/search", json={"query": "parecer jurídico licitação", "mode": mode}, headers=rh
        )
        assert r.status_code == 200, r.text
        assert {h["collection"] for h in r.json()["results"]} <= {"rh"}
        # naming the other collection's document finds nothing either
        r = await client.post(
            "/v1/search",
            json={"query": "parecer", "mode": mode, "document_ids": [ids["juridico"]]},
            headers=rh,
        )
        assert r.json()["results"] == []
    unlimited = await client.post(
        "/v1/search", json={"query": "parecer jurídico licitação"}, headers=auth(keys["read"])
    )
    assert "juridico" in {h["collection"] for h in unlimited.json()["results"]}

    mine = (await client.get("/v1/collections", headers=rh)).json()["items"]
    assert [(c["name"], c["documents"]) for c in mine] == [("rh", 1)]
    assert mine[0]["chunks"] >= 1
    every = (await client.get("/v1/collections", headers=auth(keys["read"]))).json()["items"]
    assert [c["name"] for c in every] == ["juridico", "rh"]
    jobs = (await client.get("/v1/jobs", headers=rh)).json()["items"]
    assert [j["document_id"] for j in jobs] == [ids["rh"]]
    feed = (
        await client.get("/v1/changes", params={"batch": "lote-1", "wait": 10}, headers=rh)
    ).json()
    assert [c["id"] for c in feed["items"]] == [ids["rh"]]
    assert feed["summary"]["total"] == 1  # the batch's counts: its own collection only


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/documents?collection=juridico", None),
        ("POST", "/v1/search", {"query": "parecer", "collection": "juridico"}),
        ("GET", "/v1/changes?collection=juridico", None),
        ("POST", "/v1/documents/text", {"text": "Art. 1 Outro.", "collection": "juridico"}),
        ("GET", "/v1/stats", None),  # counts over every collection
    ],
)
async def test_naming_a_collection_outside_the_key_is_403(
    client: httpx.AsyncClient,
    clean_db: AsyncEngine,
    two_collections: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = await _count(clean_db)
    r = await client.request(method, path, json=body, headers=auth(two_collections["rh"]))
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "collection_forbidden"
    assert "rh" in r.json()["detail"]
    assert await _count(clean_db) == before


async def test_documents_and_jobs_outside_the_key_are_not_found(
    client: httpx.AsyncClient, clean_db: AsyncEngine, two_collections: dict[str, Any]
) -> None:
    other = two_collections["ids"]["juridico"]
    rh, rh_admin = auth(two_collections["rh"]), auth(two_collections["rh_admin"])
    attempts = [
        ("GET", f"/v1/documents/{other}", rh, None),
        ("GET", f"/v1/documents/{other}/versions", rh, None),
        ("GET", f"/v1/documents/{other}/chunks", rh, None),
        ("PATCH", f"/v1/documents/{other}", rh, {"metadata": {"x": 1}}),
        ("POST", f"/v1/documents/{other}/cancel", rh, None),
        ("POST", f"/v1/documents/{other}/reprocess", rh_admin, None),
        ("DELETE", f"/v1/documents/{other}", rh_admin, None),
        ("DELETE", f"/v1/documents/{other}?all_versions=true", rh_admin, None),
    ]
    for method, path, headers, body in attempts:
        r = await client.request(method, path, json=body, headers=headers)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["detail"] == f"no document {other}"  # as if it never existed
    async with clean_db.connect() as conn:
        jur_job = (
            await conn.exec_driver_sql(
                "SELECT id FROM ai.ingestion_queue WHERE document_id = $1", (other,)
            )
        ).scalar_one()
    for method, path in (("GET", f"/v1/jobs/{jur_job}"), ("POST", f"/v1/jobs/{jur_job}/retry")):
        r = await client.request(method, path, headers=rh_admin)
        assert r.status_code == 404, r.text
    # untouched: still there, still COMPLETED, metadata unchanged
    r = await client.get(f"/v1/documents/{other}", headers=auth(two_collections["rh_admin"]))
    assert r.status_code == 404
    async with clean_db.connect() as conn:
        row = (
            await conn.execute(select(documents.c.metadata).where(documents.c.id == other))
        ).one()
    assert row.metadata == {}
    # inside its collection the same admin key deletes
    mine = two_collections["ids"]["rh"]
    assert (await client.delete(f"/v1/documents/{mine}", headers=rh_admin)).status_code == 204


async def test_uploads_land_in_the_key_s_collection_and_deduplicate_only_there(
    client: httpx.AsyncClient, two_collections: dict[str, Any]
) -> None:
    rh = auth(two_collections["rh"])
    # the juridico document's very text: in rh it is new, not a duplicate of juridico's
    r = await client.post("/v1/documents/text", json={"text": JUR_TEXT}, headers=rh)
    assert r.status_code == 201, r.text
    assert r.json()["collection"] == "rh"  # the key's only collection is its default
    assert r.json()["id"] != two_collections["ids"]["juridico"]
    again = await client.post("/v1/documents/text", json={"text": JUR_TEXT}, headers=rh)
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]


async def test_job_internals_are_for_admin_keys_only(
    client: httpx.AsyncClient, keys: dict[str, str], uow_factory: UnitOfWorkFactory
) -> None:
    r = await client.post(
        "/v1/documents/text", json={"text": RH_TEXT}, headers=auth(keys["ingest"])
    )
    document_id = r.json()["id"]

    async def shown(key: str) -> list[dict[str, Any]]:
        doc = (await client.get(f"/v1/documents/{document_id}", headers=auth(keys[key]))).json()
        listed = (await client.get("/v1/jobs", headers=auth(keys[key]))).json()["items"]
        return [doc["job"], listed[0]]

    now = datetime.now(UTC)
    async with uow_factory() as uow:  # a worker on host-a:4242 holds it
        job = await uow.jobs.lock_for_document(uuid.UUID(document_id))
        assert job is not None
        job.claim("host-a:4242", now, lease=timedelta(seconds=60))
        await uow.jobs.save(job)
        await uow.commit()
    assert [j["locked_by"] for j in await shown("read")] == [None, None]
    assert [j["locked_by"] for j in await shown("admin")] == ["host-a:4242"] * 2

    async with uow_factory() as uow:  # ... and meets an unexpected error
        job = await uow.jobs.lock_for_document(uuid.UUID(document_id))
        assert job is not None
        job.fail(
            "an unexpected error in the worker",
            transient=True,
            now=now,
            policy=RetryPolicy(base_delay_s=60),
            detail="KeyError: 'segredo interno'",
        )
        await uow.jobs.save(job)
        await uow.commit()
    for key, sees in (("read", False), ("admin", True)):
        for job_out in await shown(key):
            assert job_out["last_error"].endswith("an unexpected error in the worker")
            assert (job_out["error_detail"] == "KeyError: 'segredo interno'") is sees


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(documents))).scalar_one())


def test_the_cli_creates_and_lists_a_key_limited_to_collections(
    database_url: str, services: Services, clean_db: AsyncEngine
) -> None:
    env = service_env(database_url, services.redis_url, COLUMNS="250")
    cli = [sys.executable, "-m", "entrypoints.cli.main", "keys"]
    created = subprocess.run(
        [*cli, "create", "rh-leitura", "-s", "read", "-c", "rh", "-c", "rh.normas"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "on rh, rh.normas" in created.stderr + created.stdout
    assert created.stdout.strip().startswith("cgp_")  # the key itself, once, on stdout
    listed = subprocess.run(
        [*cli, "list"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    row = next(line for line in listed.stdout.splitlines() if "rh-leitura" in line)
    assert "rh,rh.normas" in row
    refused = subprocess.run(
        [*cli, "create", "x", "-c", "Nao Valida"], env=env, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "not a valid name" in refused.stderr + refused.stdout

"""The change feed (GET /v1/changes) and listings by ids and batch, over real
PostgreSQL: a long-poll answers when something in the batch changes, not before, with
the batch's counts; a change is listed once surely committed and never skipped; a lease
renewal is not a change."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.conftest import auth


async def send(client: httpx.AsyncClient, key: str, body: str, batch: str | None) -> str:
    payload: dict[str, Any] = {"text": body, "collection": "rh"}
    if batch:
        payload["batch"] = batch
    r = await client.post("/v1/documents/text", json=payload, headers=auth(key))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def feed(client: httpx.AsyncClient, key: str, **params: Any) -> dict[str, Any]:
    r = await client.get("/v1/changes", params=params, headers=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_long_poll_answers_when_the_batch_changes_with_its_counts(
    client: httpx.AsyncClient, keys: dict[str, str], process: Any
) -> None:
    key = keys["ingest_read"]
    ours = {
        await send(client, key, f"Art. {i}º O ponto é eletrônico.", "lote-1") for i in (1, 2, 3)
    }
    other = await send(client, key, "Art. 9º Outro lote.", "lote-2")
    await asyncio.sleep(1.2)  # changes are listed once surely committed
    first = await feed(client, key, batch="lote-1")
    assert {d["id"] for d in first["items"]} == ours and other not in ours
    assert all(d["batch"] == "lote-1" and d["status"] == "PENDING" for d in first["items"])
    assert first["summary"] == {"total": 3, "finished": 0, "by_status": {"PENDING": 3}, "chunks": 0}

    # nothing new: the long-poll waits its full time and hands the cursor back
    t0 = time.monotonic()
    idle = await feed(client, key, batch="lote-1", after=first["cursor"], wait=2)
    assert idle["items"] == [] and idle["cursor"] == first["cursor"]
    assert time.monotonic() - t0 >= 2.0

    # something changes: the waiting request answers then, long before its wait is over
    waiting = asyncio.create_task(
        client.get(
            "/v1/changes",
            params={"batch": "lote-1", "after": first["cursor"], "wait": 25},
            headers=auth(key),
        )
    )
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    report = await process()
    assert report.completed == 4
    answer = (await asyncio.wait_for(waiting, 20)).json()
    assert time.monotonic() - t0 < 10
    assert answer["items"] and {d["id"] for d in answer["items"]} <= ours
    # follow the cursor to the end: every document of the batch is named COMPLETED
    seen = {d["id"]: d["status"] for d in answer["items"]}
    cursor, summary = answer["cursor"], answer["summary"]
    while len([s for s in seen.values() if s == "COMPLETED"]) < 3:
        page = await feed(client, key, batch="lote-1", after=cursor, wait=5)
        seen.update({d["id"]: d["status"] for d in page["items"]})
        cursor = page["cursor"]
        summary = page["summary"]
    assert set(seen) == ours and set(seen.values()) == {"COMPLETED"}
    assert summary["finished"] == summary["total"] == 3 and summary["chunks"] >= 3


async def test_a_fresh_change_waits_until_surely_committed_and_renewals_are_not_changes(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    key = keys["ingest_read"]
    doc = await send(client, key, "Art. 1º Texto.", "lote-3")
    assert (await feed(client, key, batch="lote-3"))["items"] == []  # too fresh
    await asyncio.sleep(1.2)
    page = await feed(client, key, batch="lote-3")
    assert [d["id"] for d in page["items"]] == [doc]
    async with clean_db.begin() as conn:  # a lease renewal touches only locked_until
        await conn.execute(text("UPDATE ai.ingestion_queue SET locked_until = now()"))
    await asyncio.sleep(1.2)
    assert (await feed(client, key, batch="lote-3", after=page["cursor"]))["items"] == []
    async with clean_db.begin() as conn:  # a stage change is one
        await conn.execute(text("UPDATE ai.ingestion_queue SET stage = 'claimed'"))
    await asyncio.sleep(1.2)
    moved = await feed(client, key, batch="lote-3", after=page["cursor"])
    assert [d["id"] for d in moved["items"]] == [doc] and moved["items"][0]["stage"] == "claimed"


async def test_listings_by_ids_and_by_batch_and_bad_parameters(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    key = keys["ingest_read"]
    a = await send(client, key, "Art. 1º A.", "lote-4")
    b = await send(client, key, "Art. 1º B.", "lote-4")
    c = await send(client, key, "Art. 1º C.", None)
    r = await client.get("/v1/documents", params={"ids": [a, c]}, headers=auth(key))
    assert {d["id"] for d in r.json()["items"]} == {a, c}
    r = await client.get("/v1/documents", params={"batch": "lote-4"}, headers=auth(key))
    assert {d["id"] for d in r.json()["items"]} == {a, b}
    for params in ({"batch": "não vale"}, {"wait": 31}, {"limit": 0}, {"after": "lixo"}):
        r = await client.get("/v1/changes", params=params, headers=auth(key))
        assert r.status_code == 422, (params, r.text)
    r = await client.get("/v1/changes", headers=auth(keys["ingest"]))
    assert r.status_code == 403

"""The CLI's document commands against a real platform: the API under uvicorn, a real
Celery worker, `cogep-ingest sync/list/show/search/delete/cancel` as subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.live import ROOT
from tests.integration.test_version_races import long_text

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("redis_client")]


def cli(url: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"COGEP_API_URL": url, "COGEP_API_KEY": key, "COLUMNS": "250", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def versions_by_key(engine: AsyncEngine) -> dict[str, list[tuple[int, bool]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT source_key, version, is_current FROM ai.documents "
                "WHERE collection = 'pasta' ORDER BY source_key, version"
            )
        )
        out: dict[str, list[tuple[int, bool]]] = {}
        for r in rows:
            out.setdefault(r.source_key, []).append((r.version, r.is_current))
    return out


def write(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")


async def test_sync_mirrors_a_folder_and_a_second_run_uploads_nothing(
    live_platform: str, keys: dict[str, str], clean_db: AsyncEngine, tmp_path: Path
) -> None:
    key = keys["admin"]
    folder = tmp_path / "normas"
    write(folder, "ferias.txt", "Art. 1º As férias podem ser parceladas em até três etapas.")
    write(folder, "sub/teletrabalho.md", "# Teletrabalho\n\nExige 12 meses de exercício.")
    write(folder, "ponto.txt", "Art. 1º O ponto é eletrônico em todas as unidades.")
    write(folder, ".oculto.txt", "arquivos ocultos não entram")

    first = cli(live_platform, key, "sync", str(folder), "-c", "pasta")
    assert first.returncode == 0, first.stderr
    assert "3 added, 0 updated, 0 unchanged, 0 deleted, 0 failed" in first.stderr
    assert await versions_by_key(clean_db) == {
        "ferias.txt": [(1, True)],
        "ponto.txt": [(1, True)],
        "sub/teletrabalho.md": [(1, True)],
    }

    second = cli(live_platform, key, "sync", str(folder), "-c", "pasta")
    assert second.returncode == 0, second.stderr
    assert "0 added, 0 updated, 3 unchanged, 0 deleted, 0 failed" in second.stderr
    async with clean_db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM ai.documents"))).scalar_one() == 3

    write(folder, "sub/teletrabalho.md", "# Teletrabalho\n\nExige 18 meses de exercício.")
    write(folder, "novo.txt", "Art. 1º O adicional noturno vai das 22h às 5h.")
    (folder / "ponto.txt").unlink()
    plan = cli(live_platform, key, "sync", str(folder), "-c", "pasta", "--delete", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "1 to add, 1 to update, 1 unchanged, 1 to delete" in plan.stderr
    assert "ponto.txt" in plan.stdout and "sub/teletrabalho.md" in plan.stdout
    assert len(await versions_by_key(clean_db)) == 3  # a dry run changes nothing

    without_delete = cli(live_platform, key, "sync", str(folder), "-c", "pasta")
    assert "1 added, 1 updated, 1 unchanged, 0 deleted, 0 failed" in without_delete.stderr
    assert "ponto.txt" in await versions_by_key(clean_db)  # kept: --delete was not given
    with_delete = cli(live_platform, key, "sync", str(folder), "-c", "pasta", "--delete")
    assert with_delete.returncode == 0, with_delete.stderr
    assert "0 added, 0 updated, 3 unchanged, 1 deleted, 0 failed" in with_delete.stderr
    assert await versions_by_key(clean_db) == {
        "ferias.txt": [(1, True)],
        "novo.txt": [(1, True)],
        "sub/teletrabalho.md": [(1, False), (2, True)],
    }

    write(folder, "vazio.txt", "")
    failing = cli(live_platform, key, "sync", str(folder), "-c", "pasta")
    assert failing.returncode == 1
    assert "0 added, 0 updated, 3 unchanged, 0 deleted, 1 failed" in failing.stderr
    assert "vazio.txt" in failing.stdout


async def test_list_show_search_filters_cancel_and_delete(
    live_platform: str, keys: dict[str, str], clean_db: AsyncEngine, tmp_path: Path
) -> None:
    key = keys["admin"]
    folder = tmp_path / "docs"
    write(folder, "licenca.txt", "Art. 1º A licença para capacitação dura até três meses.")
    write(folder, "ponto.txt", "Art. 1º O ponto eletrônico registra a jornada do servidor.")
    assert (
        cli(
            live_platform, key, "sync", str(folder), "-c", "pasta", "-m", '{"orgao": "SGP"}'
        ).returncode
        == 0
    )

    listed = cli(live_platform, key, "list", "-c", "pasta", "--json")
    assert listed.returncode == 0, listed.stderr
    docs = {d["source_key"]: d for d in json.loads(listed.stdout)}
    assert set(docs) == {"licenca.txt", "ponto.txt"}
    assert all(
        d["status"] == "COMPLETED" and d["metadata"] == {"orgao": "SGP"} for d in docs.values()
    )

    shown = cli(live_platform, key, "show", docs["licenca.txt"]["id"])
    assert shown.returncode == 0, shown.stderr
    assert "licenca.txt" in shown.stdout and "versions" in shown.stdout
    assert "capacitação" in shown.stdout  # the chunk preview

    only_ponto = cli(
        live_platform, key, "search", "licença capacitação", "--json", "-d", docs["ponto.txt"]["id"]
    )
    hits = json.loads(only_ponto.stdout)["results"]
    assert hits and {h["document_id"] for h in hits} == {docs["ponto.txt"]["id"]}
    by_metadata = cli(live_platform, key, "search", "licença", "--json", "-m", '{"orgao": "COGEP"}')
    assert json.loads(by_metadata.stdout)["results"] == []

    finished = cli(live_platform, key, "cancel", docs["ponto.txt"]["id"])
    assert finished.returncode == 1 and "409" in finished.stderr  # nothing to cancel

    gone = cli(live_platform, key, "delete", docs["ponto.txt"]["id"])
    assert gone.returncode == 0, gone.stderr
    again = cli(live_platform, key, "show", docs["ponto.txt"]["id"])
    assert again.returncode == 1 and "404" in again.stderr


async def test_retry_failed_names_permanent_failures_and_retries_none_of_them(
    live_platform: str, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    key = keys["admin"]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live_platform, headers=headers, timeout=30) as http:
        empty = await http.post("/v1/documents/text", json={"text": "   \n\n   "})
        big = await http.post("/v1/documents/text", json={"text": long_text("r", 600)})
        assert empty.status_code == big.status_code == 201
        cancelled = await http.post(f"/v1/documents/{big.json()['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        for _ in range(300):
            doc = (await http.get(f"/v1/documents/{empty.json()['id']}")).json()
            if doc["status"] == "FAILED":
                break
            await asyncio.sleep(0.1)
    assert doc["status"] == "FAILED" and doc["job"]["failure_kind"] == "document"
    retried = cli(live_platform, key, "retry", "--failed")
    assert retried.returncode == 0, retried.stderr
    # the empty text is the document's own fault, the cancel a decision: neither retried
    assert "queued again: 0; permanent, not retried: 2" in retried.stderr
    assert "document" in retried.stdout and "cancelled" in retried.stdout
    async with clean_db.connect() as conn:
        statuses = (
            (await conn.execute(text("SELECT DISTINCT status FROM ai.ingestion_queue")))
            .scalars()
            .all()
        )
    assert statuses == ["FAILED"]


async def test_reembed_moves_the_chunks_of_another_model_through_the_real_worker(
    live_platform: str, keys: dict[str, str], clean_db: AsyncEngine, tmp_path: Path
) -> None:
    """`cogep-ingest reembed --wait` against the API and a Celery worker: the chunks of
    a document that an earlier model embedded are embedded again by the configured
    model, and the command follows the counts until the queue is done."""
    folder = tmp_path / "normas"
    write(folder, "ferias.txt", "Art. 1º As férias podem ser parceladas em até três etapas.")
    write(folder, "ponto.txt", "Art. 1º O ponto é eletrônico em todas as unidades.")
    assert cli(live_platform, keys["admin"], "sync", str(folder), "-c", "pasta").returncode == 0
    async with clean_db.begin() as conn:  # as if an earlier model had embedded one of them
        await conn.execute(
            text(
                "UPDATE ai.chunks SET model_name = 'modelo-anterior' WHERE document_id = "
                "(SELECT id FROM ai.documents WHERE source_key = 'ferias.txt')"
            )
        )
    refused = cli(live_platform, keys["read"], "reembed")
    assert refused.returncode == 1 and "403" in refused.stdout + refused.stderr
    moved = cli(live_platform, keys["admin"], "reembed", "-c", "pasta", "--wait")
    said = " ".join((moved.stdout + moved.stderr).split())
    assert moved.returncode == 0, said
    assert "1 document(s) queued to re-embed into multilingual-e5-small-q4" in said
    async with clean_db.connect() as conn:
        models = (await conn.execute(text("SELECT DISTINCT model_name FROM ai.chunks"))).all()
    assert models == [("multilingual-e5-small-q4",)]
    assert "2 of 2 chunks in multilingual-e5-small-q4" in said

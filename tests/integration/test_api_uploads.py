"""POST /v1/documents and /v1/documents/text against real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.container import Container
from entrypoints.worker.celery_app import QUEUE
from tests.documents import guia_markdown, lei_ferias_pdf, manual_html, portaria_docx
from tests.integration.conftest import auth

PROBLEM = "application/problem+json"


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM ai.{table}"))).scalar_one())


async def test_an_uploaded_pdf_is_stored_with_a_pending_job_and_rings_the_doorbell(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    clean_db: AsyncEngine,
    container: Container,
    redis_client: aioredis.Redis,
) -> None:
    pdf = lei_ferias_pdf()
    r = await client.post(
        "/v1/documents",
        files={"file": ("lei-8112.pdf", pdf, "application/pdf")},
        data={"collection": "legislacao", "metadata": '{"ano": 1990, "tipo": "lei"}'},
        headers=auth(keys["ingest"]),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "PENDING"
    assert body["content_type"] == "application/pdf"
    assert body["collection"] == "legislacao"
    assert body["metadata"] == {"ano": 1990, "tipo": "lei"}
    assert body["size_bytes"] == len(pdf)
    assert r.headers["location"].endswith(f"/v1/documents/{body['id']}")
    async with clean_db.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT data FROM ai.document_contents WHERE document_id = :i"),
                {"i": body["id"]},
            )
        ).scalar_one()
    assert bytes(stored) == pdf
    assert await count(clean_db, "ingestion_queue") == 1
    await container.api_doorbell().flush()
    assert await redis_client.llen(QUEUE) >= 1


@pytest.mark.parametrize(
    ("name", "make", "declared", "expected"),
    [
        (
            "portaria.docx",
            portaria_docx,
            "application/octet-stream",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("manual.html", manual_html, "text/html", "text/html"),
        ("guia.md", guia_markdown, "text/markdown", "text/markdown"),
        ("nota.txt", lambda: "Nota técnica sobre férias.".encode(), "text/plain", "text/plain"),
    ],
)
async def test_each_supported_format_is_recognised_by_content(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    name: str,
    make: object,
    declared: str,
    expected: str,
) -> None:
    data = make()  # type: ignore[operator]
    r = await client.post(
        "/v1/documents", files={"file": (name, data, declared)}, headers=auth(keys["ingest"])
    )
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == expected


async def test_the_same_content_twice_returns_the_existing_document_and_no_second_job(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    files = {"file": ("a.txt", b"Instrucao normativa 1", "text/plain")}
    first = await client.post("/v1/documents", files=files, headers=auth(keys["ingest"]))
    second = await client.post(
        "/v1/documents",
        files={"file": ("renamed.txt", b"Instrucao normativa 1", "text/plain")},
        headers=auth(keys["ingest"]),
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert await count(clean_db, "ingestion_queue") == 1


class TestRefusals:
    """Bad input gets a clear problem+json and nothing is stored."""

    @pytest.mark.parametrize(
        ("files", "status", "code", "reason"),
        [
            (
                {"file": ("fake.pdf", b"texto comum", "application/pdf")},
                415,
                "unsupported_media_type",
                "the content is text",
            ),
            (
                {"file": ("x.pdf.exe", lei_ferias_pdf(), "application/pdf")},
                415,
                "unsupported_media_type",
                ".exe is not accepted",
            ),
            (
                {"file": ("lei.pdf", lei_ferias_pdf(), "text/html")},
                415,
                "unsupported_media_type",
                "Content-Type text/html",
            ),
            (
                {"file": ("img.gif", b"GIF89a....", "image/gif")},
                415,
                "unsupported_media_type",
                "a GIF image, which is not accepted; accepted: PDF",
            ),
            ({"file": ("vazio.txt", b"", "text/plain")}, 422, "empty_document", "empty"),
            ({"other": ("a.txt", b"x", "text/plain")}, 422, "invalid_input", "'file' part"),
        ],
    )
    async def test_refused_uploads(
        self,
        client: httpx.AsyncClient,
        keys: dict[str, str],
        clean_db: AsyncEngine,
        files: dict[str, tuple[str, bytes, str]],
        status: int,
        code: str,
        reason: str,
    ) -> None:
        r = await client.post("/v1/documents", files=files, headers=auth(keys["ingest"]))
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert problem["code"] == code
        assert problem["status"] == status
        assert reason in problem["detail"]
        assert "Traceback" not in r.text
        assert await count(clean_db, "documents") == 0

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            ({"metadata": "{not json"}, "not valid JSON"),
            ({"metadata": "[1, 2]"}, "JSON object"),
            ({"collection": "Coleção Inválida"}, "not a valid name"),
            ({"collection": "x'; DROP TABLE ai.documents; --"}, "not a valid name"),
        ],
    )
    async def test_bad_fields_are_refused_with_a_reason(
        self,
        client: httpx.AsyncClient,
        keys: dict[str, str],
        clean_db: AsyncEngine,
        data: dict[str, str],
        reason: str,
    ) -> None:
        r = await client.post(
            "/v1/documents",
            files={"file": ("a.txt", b"texto", "text/plain")},
            data=data,
            headers=auth(keys["ingest"]),
        )
        assert r.status_code == 422
        assert reason in r.json()["detail"]
        assert await count(clean_db, "documents") == 0

    async def test_json_sent_to_the_multipart_endpoint_is_refused(
        self, client: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        r = await client.post("/v1/documents", json={"text": "x"}, headers=auth(keys["ingest"]))
        assert r.status_code == 415
        assert "multipart/form-data" in r.json()["detail"]

    async def test_a_multipart_with_thousands_of_parts_is_refused(
        self, client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
    ) -> None:
        data = {f"f{i}": "x" for i in range(3000)}
        r = await client.post(
            "/v1/documents",
            files={"file": ("a.txt", b"texto", "text/plain")},
            data=data,
            headers=auth(keys["ingest"]),
        )
        assert r.status_code == 400
        assert r.headers["content-type"] == PROBLEM
        assert "fields" in r.json()["detail"].lower()
        assert await count(clean_db, "documents") == 0


class TestSizeLimit:
    LIMIT = 200_000  # make_settings

    async def test_a_file_exactly_at_the_limit_is_accepted(
        self, client: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        data = b"a" * (self.LIMIT - 1) + b"\n"
        r = await client.post(
            "/v1/documents",
            files={"file": ("big.txt", data, "text/plain")},
            headers=auth(keys["ingest"]),
        )
        assert r.status_code == 201, r.text

    async def test_one_byte_over_the_limit_is_413(
        self, client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
    ) -> None:
        data = b"a" * (self.LIMIT + 1)
        r = await client.post(
            "/v1/documents",
            files={"file": ("big.txt", data, "text/plain")},
            headers=auth(keys["ingest"]),
        )
        assert r.status_code == 413
        assert r.json()["code"] == "document_too_large"
        assert await count(clean_db, "documents") == 0

    async def test_a_huge_body_without_content_length_is_cut_off_while_streaming(
        self, client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
    ) -> None:
        boundary = "cogepboundary"
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                'filename="huge.txt"\r\nContent-Type: text/plain\r\n\r\n'
            ).encode()
            for _ in range(200):  # up to 13 MB if nobody stops us
                sent += 65536
                yield b"a" * 65536
            yield f"\r\n--{boundary}--\r\n".encode()

        r = await client.post(
            "/v1/documents",
            content=body(),
            headers={
                **auth(keys["ingest"]),
                "content-type": f"multipart/form-data; boundary={boundary}",
            },
        )
        assert "content-length" not in r.request.headers
        assert r.status_code == 413
        assert sent < 1_000_000  # stopped early, not after reading everything
        assert await count(clean_db, "documents") == 0


class TestIdempotencyKey:
    async def test_a_replay_returns_the_same_document(
        self, client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
    ) -> None:
        headers = {**auth(keys["ingest"]), "Idempotency-Key": "upload-42"}
        files = {"file": ("a.txt", b"Decreto 1", "text/plain")}
        first = await client.post("/v1/documents", files=files, headers=headers)
        again = await client.post("/v1/documents", files=files, headers=headers)
        assert first.status_code == 201
        assert again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert await count(clean_db, "documents") == 1

    async def test_the_same_key_with_another_request_is_refused(
        self, client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
    ) -> None:
        headers = {**auth(keys["ingest"]), "Idempotency-Key": "upload-43"}
        await client.post(
            "/v1/documents", files={"file": ("a.txt", b"um", "text/plain")}, headers=headers
        )
        r = await client.post(
            "/v1/documents", files={"file": ("b.txt", b"outro", "text/plain")}, headers=headers
        )
        assert r.status_code == 422
        assert r.json()["code"] == "idempotency_key_reused"
        assert await count(clean_db, "documents") == 1

    async def test_keys_are_per_client(
        self, client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
    ) -> None:
        for who, body in (("ingest", b"um"), ("ingest_read", b"dois")):
            r = await client.post(
                "/v1/documents",
                files={"file": ("a.txt", body, "text/plain")},
                headers={**auth(keys[who]), "Idempotency-Key": "same-key"},
            )
            assert r.status_code == 201
        assert await count(clean_db, "documents") == 2


class TestText:
    async def test_raw_text_becomes_a_document(
        self, client: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        r = await client.post(
            "/v1/documents/text",
            json={
                "text": "# Norma\n\nArt. 1º Esta norma trata do ponto eletrônico.",
                "format": "markdown",
                "filename": "norma",
                "collection": "normas",
                "metadata": {"numero": 7},
            },
            headers=auth(keys["ingest"]),
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["filename"] == "norma.md"
        assert body["content_type"] == "text/markdown"
        assert body["collection"] == "normas"

    @pytest.mark.parametrize(
        "payload",
        [
            {"text": ""},
            {"text": "ok", "format": "pdf"},
            {"text": "ok", "unexpected": 1},
            {"text": "ok", "metadata": "not an object"},
        ],
    )
    async def test_invalid_bodies_are_422_problems(
        self, client: httpx.AsyncClient, keys: dict[str, str], payload: dict[str, object]
    ) -> None:
        r = await client.post("/v1/documents/text", json=payload, headers=auth(keys["ingest"]))
        assert r.status_code == 422
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["errors"]


async def test_hostile_filenames_are_reduced_to_a_display_name(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    # raw multipart: clients percent-encode NUL, an attacker does not
    boundary = "xYz"
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="../../etc/pass\x00wd.txt"\r\n'
        + b"Content-Type: text/plain\r\n\r\nconteudo\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    r = await client.post(
        "/v1/documents",
        content=body,
        headers={
            **auth(keys["ingest"]),
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "passwd.txt"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("relat\u202efdp.txt", "relatfdp.txt"),  # a right-to-left override spoofs the type
        ("ata\u200b\u200d.txt", "ata.txt"),  # zero-width characters
        ("Resoluc\u0327a\u0303o.txt", "Resolução.txt"),  # NFD (macOS) stored as NFC
    ],
)
async def test_unicode_filenames_are_stored_nfc_without_invisible_characters(
    client: httpx.AsyncClient, keys: dict[str, str], raw: str, shown: str
) -> None:
    r = await client.post(
        "/v1/documents",
        files={"file": (raw, f"conteúdo de {shown}".encode(), "text/plain")},
        headers=auth(keys["ingest"]),
    )
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == shown
    listed = await client.get("/v1/documents", headers=auth(keys["ingest_read"]))
    assert shown in {d["filename"] for d in listed.json()["items"]}

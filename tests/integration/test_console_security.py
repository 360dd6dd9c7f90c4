"""The console's security over HTTP (the app in-process, real PostgreSQL and Redis):
the session cookie's flags, CSRF on every state-changing request, nothing secret in a
page, sessions that end with the key, the scopes and collections a key has."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from entrypoints.container import Container

pytestmark = pytest.mark.usefixtures("redis_client")


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/console/entrar")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    return await client.post(
        "/console/entrar", data={"api_key": key, "csrf": token.group(1)}, follow_redirects=False
    )


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def a_document(client: httpx.AsyncClient, key: str, collection: str = "rh") -> str:
    r = await client.post(
        "/v1/documents/text",
        json={"text": "Art. 1º Texto de teste.", "filename": "t.txt", "collection": collection},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_the_session_cookie_is_httponly_strict_and_holds_no_key(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await sign_in(client, keys["admin"])
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = next(
        v for k, v in r.headers.multi_items() if k == "set-cookie" and "cogep_console=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert keys["admin"] not in cookie and keys["admin"].split("_")[1] not in cookie
    overview = await client.get("/console/")
    assert overview.status_code == 200 and "Visão geral" in overview.text
    session_id = client.cookies.get("cogep_console")
    assert session_id and session_id not in overview.text and keys["admin"] not in overview.text
    csp = overview.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


async def test_bad_keys_and_keys_without_read_are_refused(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    assert (await sign_in(client, "cgp_nada_disso")).status_code == 401
    assert (await sign_in(client, keys["ingest"])).status_code == 403
    page = await client.get("/console/documentos", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/console/entrar"


async def test_sign_in_itself_needs_the_form_s_token(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.post("/console/entrar", data={"api_key": keys["admin"], "csrf": "forjado"})
    assert r.status_code == 403
    assert "cogep_console=" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("excluir", {}),
        ("reprocessar", {}),
        ("cancelar", {}),
        ("tentar-de-novo", {}),
        ("metadados", {"metadados": '{"a": 1}'}),
    ],
)
async def test_every_action_needs_the_session_s_csrf_token(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    container: Container,
    action: str,
    data: dict[str, Any],
) -> None:
    doc = await a_document(client, keys["ingest"])
    await sign_in(client, keys["admin"])
    for token in (None, "forjado"):
        body = {**data, **({"csrf": token} if token else {})}
        r = await client.post(f"/console/documentos/{doc}/{action}", data=body)
        assert r.status_code == 403, (action, token, r.status_code)
    view = await container.documents().get(uuid.UUID(doc), container.uow_factory()())
    assert view.document.metadata == {} and view.job is not None
    assert view.job.status.value == "PENDING"  # nothing was cancelled, deleted or changed


async def test_uploads_need_the_token_in_their_header(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    await sign_in(client, keys["admin"])
    token = csrf_of((await client.get("/console/documentos")).text)
    files = {"file": ("a.txt", b"Art. 1\xc2\xba Um texto.", "text/plain")}
    refused = await client.post("/console/enviar", files=files, data={"collection": "rh"})
    assert refused.status_code == 403
    sent = await client.post(
        "/console/enviar",
        files=files,
        data={"collection": "rh", "metadata": '{"orgao": "COGEP"}'},
        headers={"X-CSRF-Token": token},
    )
    assert sent.status_code == 201 and "a.txt: enviado" in sent.text
    listed = await client.get("/console/documentos", params={"metadados": '{"orgao": "COGEP"}'})
    assert "a.txt" in listed.text
    other = await client.get("/console/documentos", params={"metadados": '{"orgao": "outro"}'})
    assert "a.txt" not in other.text and "Nenhum documento" in other.text
    bad = await client.post(
        "/console/enviar",
        files=files,
        data={"collection": "rh", "metadata": "[1, 2]"},
        headers={"X-CSRF-Token": token},
    )
    assert bad.status_code == 422 and "objeto JSON" in bad.text


async def test_metadata_edits_replace_the_object_and_sign_out_ends_the_session(
    client: httpx.AsyncClient, keys: dict[str, str], container: Container
) -> None:
    r = await client.post(
        "/v1/documents/text",
        json={"text": "Art. 1º Texto.", "filename": "m.txt", "metadata": {"a": 1, "b": {"x": 1}}},
        headers={"Authorization": f"Bearer {keys['ingest']}"},
    )
    doc = r.json()["id"]
    await sign_in(client, keys["admin"])
    token = csrf_of((await client.get(f"/console/documentos/{doc}")).text)
    saved = await client.post(
        f"/console/documentos/{doc}/metadados",
        data={"csrf": token, "metadados": '{"b": {"y": 2}, "c": "novo"}'},
        follow_redirects=True,
    )
    assert saved.status_code == 200 and "Metadados salvos" in saved.text
    view = await container.documents().get(uuid.UUID(doc), container.uow_factory()())
    assert view.document.metadata == {"b": {"y": 2}, "c": "novo"}
    out = await client.post("/console/sair", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    assert (await client.get("/console/", follow_redirects=False)).status_code == 303


async def test_a_revoked_key_ends_its_session(
    client: httpx.AsyncClient, container: Container
) -> None:
    created = await container.api_keys().create("efemera", ["read"])
    await sign_in(client, created.plaintext)
    assert (await client.get("/console/", follow_redirects=False)).status_code == 200
    await container.api_keys().revoke(created.key.id)
    assert (await client.get("/console/", follow_redirects=False)).status_code == 303


async def test_a_key_limited_to_a_collection_sees_only_it(
    client: httpx.AsyncClient, keys: dict[str, str], container: Container
) -> None:
    inside = await a_document(client, keys["ingest"], "rh")
    outside = await a_document(client, keys["ingest"], "financas")
    limited = await container.api_keys().create("so-rh", ["read", "ingest"], collections=["rh"])
    await sign_in(client, limited.plaintext)
    listed = (await client.get("/console/documentos")).text
    assert inside in listed and outside not in listed
    assert (await client.get(f"/console/documentos/{outside}")).status_code == 404
    overview = (await client.get("/console/")).text
    assert "Fila" not in overview  # the queue's counts cover every collection


async def test_the_documents_list_pages_with_a_cursor(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    for i in range(52):
        await client.post(
            "/v1/documents/text",
            json={"text": f"Art. 1º Texto número {i}.", "filename": f"d{i:02}.txt"},
            headers={"Authorization": f"Bearer {keys['ingest']}"},
        )
    await sign_in(client, keys["read"])
    first = (await client.get("/console/documentos")).text
    assert first.count("<tr data-document=") == 50 and "d51.txt" in first
    older = re.search(r'href="(/console/documentos\?[^"]*depois=[^"]+)">Mais antigos', first)
    assert older is not None
    second = (await client.get(older.group(1).replace("&amp;", "&"))).text
    assert second.count("<tr data-document=") == 2 and "d00.txt" in second
    assert "Mais antigos" not in second and "Mais recentes" in second

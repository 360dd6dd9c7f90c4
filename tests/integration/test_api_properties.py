"""No input yields a 500 (issue 13): hypothesis drives random strings, numbers and JSON
(NaN, infinities, huge integers, control characters, NUL, deep nesting) through every
field of every route, in the body, the query string, the path and the headers, against
the real application over PostgreSQL and Redis. Whatever comes in, the answer is a 2xx
or a problem+json 4xx (or a 503 that says to retry), never a 5xx server error."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoints.api.app import create_app
from tests.integration.conftest import auth, make_settings, shared_model_container
from tests.integration.services import Services

EXAMPLES = 300

# text a client can send: any code point but lone surrogates (not encodable as UTF-8)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
NASTY = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "'; DROP TABLE ai.documents; --",
        "🙂" * 5,
        "\u202e",
        "%00",
        "../../etc/passwd",
        "9" * 40,
        "-1",
        "NaN",
        "1e400",
        "2026-13-45",
        "null",
        "[]",
        "{}",
    ]
)
NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=2**53, max_value=2**200), st.floats()
)  # floats include NaN and the infinities
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, NASTY)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
ANY_FIELD = st.one_of(JSON, NASTY)
# a query-string value; NUL and control characters often (PostgreSQL text cannot hold NUL)
PARAM = st.one_of(
    TEXT,
    NASTY,
    st.integers().map(str),
    st.tuples(TEXT, st.sampled_from("\x00\x01\x1f")).map("".join),
)
# header values as bytes: HTTP carries octets, and any of them may come (but CR/LF/NUL,
# which no HTTP/1.1 parser lets through to the application)
HEADER = st.binary(max_size=60).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00"))


def objects(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with any subset of `fields`, each from its strategy or anything."""
    return st.fixed_dictionaries(
        {}, optional={name: st.one_of(good, ANY_FIELD) for name, good in fields.items()}
    )


class Api:
    """The application in-process, on its own event loop (hypothesis calls it sync)."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.container = shared_model_container(
            make_settings(database_url, redis_url, max_upload_bytes=20_000)
        )
        transport = httpx.ASGITransport(app=create_app(self.container), raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60)
        self.key = self.run(self.container.api_keys().create("props", ["admin"], 10**7)).plaintext
        self.document_id = self.run(self._one_document())

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)

    async def _one_document(self) -> str:
        r = await self.client.post(
            "/v1/documents/text", json={"text": "Art. 1º Texto."}, headers=auth(self.key)
        )
        assert r.status_code in (200, 201), r.text
        return str(r.json()["id"])

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**auth(self.key), **kwargs.pop("headers", {})}
        response: httpx.Response = self.run(
            self.client.request(method, path, headers=headers, **kwargs)
        )
        return response

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.container.api_doorbell().close())
        self.run(self.container.engine().dispose())
        self.container.unwire()
        self.loop.close()


@pytest.fixture(scope="module")
def api(database_url: str, services: Services) -> Iterator[Api]:
    running = Api(database_url, services.redis_url)
    yield running
    running.close()


def no_server_error(r: httpx.Response) -> None:
    where = f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:500]}"
    assert r.status_code < 500 or r.status_code == 503, where
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), where
        assert r.json()["detail"], where
    if r.status_code == 503:
        assert "retry-after" in r.headers, where


PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@PROPERTY
@given(
    body=objects(
        {
            "text": TEXT.filter(str.strip),
            "filename": TEXT,
            "format": st.sampled_from(["text", "markdown", "html"]),
            "collection": st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True),
            "metadata": st.dictionaries(TEXT, JSON, max_size=4),
            "source_key": TEXT,
            "batch": TEXT,
        }
    ),
    idempotency=st.one_of(st.none(), HEADER),
)
def test_text_uploads(api: Api, body: dict[str, Any], idempotency: bytes | None) -> None:
    headers = {"Idempotency-Key": idempotency} if idempotency is not None else {}
    raw = json.dumps(body, allow_nan=True)  # NaN and Infinity as a careless client writes
    no_server_error(
        api.request(
            "POST",
            "/v1/documents/text",
            content=raw.encode(),
            headers={"content-type": "application/json", **headers},
        )
    )


@PROPERTY
@given(
    content=st.binary(max_size=3000),
    filename=TEXT,
    fields=st.dictionaries(
        st.sampled_from(["collection", "metadata", "source_key", "batch", "other"]),
        st.one_of(TEXT, NASTY, JSON.map(lambda v: json.dumps(v, allow_nan=True))),
        max_size=5,
    ),
    content_type=st.one_of(st.none(), HEADER),
)
def test_file_uploads(
    api: Api, content: bytes, filename: str, fields: dict[str, str], content_type: bytes | None
) -> None:
    kind = None if content_type is None else content_type.decode("latin-1")
    file = (filename, content) if kind is None else (filename, content, kind)
    no_server_error(api.request("POST", "/v1/documents", files={"file": file}, data=fields))


@PROPERTY
@given(
    body=objects(
        {
            "query": TEXT,
            "top_k": st.integers(),
            "mode": st.sampled_from(["vector", "keyword", "hybrid"]),
            "collection": TEXT,
            "document_ids": st.lists(st.uuids().map(str) | TEXT, max_size=3),
            "metadata": st.dictionaries(TEXT, JSON, max_size=3),
            "expand": st.sampled_from(["none", "article"]),
            "include_superseded": st.booleans(),
        }
    )
)
def test_search(api: Api, body: dict[str, Any]) -> None:
    raw = json.dumps(body, allow_nan=True)
    no_server_error(
        api.request(
            "POST", "/v1/search", content=raw.encode(), headers={"content-type": "application/json"}
        )
    )


LISTINGS: dict[str, list[str]] = {
    "/v1/documents": [
        "collection",
        "status",
        "source_key",
        "batch",
        "limit",
        "cursor",
        "ids",
        "include_superseded",
    ],
    "/v1/jobs": ["status", "limit", "cursor"],
    "/v1/changes": ["after", "batch", "collection", "limit"],
    "/v1/documents/{id}/chunks": ["after", "limit"],
    "/v1/documents/{id}/versions": [],
    "/v1/documents/{id}": [],
    "/v1/jobs/{id}": [],
    "/v1/stats": [],
}


@PROPERTY
@given(data=st.data())
def test_listings_and_reads(api: Api, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(LISTINGS)))
    names = LISTINGS[path]
    params = data.draw(st.dictionaries(st.sampled_from(names), PARAM, max_size=4)) if names else {}
    identity = data.draw(st.one_of(st.just(api.document_id), st.uuids().map(str), PARAM))
    url = path.replace("{id}", _path_segment(identity))
    no_server_error(api.request("GET", url, params=params))


@PROPERTY
@given(
    identity=st.one_of(st.just("known"), st.uuids().map(str), PARAM),
    body=st.one_of(objects({"metadata": st.dictionaries(TEXT, JSON, max_size=4)}), JSON),
    action=st.sampled_from(["PATCH", "cancel", "reprocess", "retry"]),
)
def test_changes_to_documents_and_jobs(api: Api, identity: str, body: Any, action: str) -> None:
    target = api.document_id if identity == "known" else _path_segment(identity)
    if action == "PATCH":
        raw = json.dumps(body, allow_nan=True).encode()
        r = api.request(
            "PATCH",
            f"/v1/documents/{target}",
            content=raw,
            headers={"content-type": "application/json"},
        )
    elif action == "retry":
        r = api.request("POST", f"/v1/jobs/{target}/retry")
    else:
        r = api.request("POST", f"/v1/documents/{target}/{action}")
    no_server_error(r)


@PROPERTY
@given(key=HEADER, scheme=st.sampled_from([b"Bearer ", b"bearer ", b"Basic ", b"", b"Bearer  "]))
def test_any_credentials(api: Api, key: bytes, scheme: bytes) -> None:
    r: httpx.Response = api.run(
        api.client.get("/v1/documents", headers={b"Authorization": scheme + key})
    )
    no_server_error(r)
    assert r.status_code == 401, r.text  # none of them is a key


def _path_segment(value: str) -> str:
    """A path segment as a client would send it (percent-encoded)."""
    return quote(value, safe="") or str(uuid.uuid4())


class ConsoleBrowser:
    """The console in-process, signed in with an admin key, cookies kept."""

    def __init__(self, api: Api) -> None:
        self.api = api
        api.run(self._sign_in())

    async def _sign_in(self) -> None:
        form = await self.api.client.get("/console/entrar")
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        r = await self.api.client.post(
            "/console/entrar", data={"api_key": self.api.key, "csrf": token}
        )
        assert r.status_code == 303, r.text
        page = await self.api.client.get("/console/")
        self.csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]

    def get(self, path: str, params: dict[str, str]) -> httpx.Response:
        response: httpx.Response = self.api.run(self.api.client.get(path, params=params))
        return response

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        response: httpx.Response = self.api.run(
            self.api.client.post(path, data={"csrf": self.csrf, **data})
        )
        return response


@pytest.fixture(scope="module")
def console(api: Api) -> ConsoleBrowser:
    return ConsoleBrowser(api)


def no_console_error(r: httpx.Response) -> None:
    """A page, a redirect, or a refusal with its reason: never a server error."""
    where = f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:300]}"
    assert r.status_code < 500, where
    assert "Traceback" not in r.text, where


@PROPERTY
@given(
    path=st.sampled_from(
        ["/console/", "/console/documentos", "/console/documentos/linhas", "/console/busca"]
    ),
    params=st.fixed_dictionaries(
        {},
        optional=dict.fromkeys(("q", "modo", "colecao", "status", "metadados", "aviso"), PARAM),
    ),
)
def test_console_pages_answer_any_query_string(
    console: ConsoleBrowser, path: str, params: dict[str, str]
) -> None:
    no_console_error(console.get(path, params))


@PROPERTY
@given(
    action=st.sampled_from(["metadados", "cancelar", "nada", "excluir%00"]),
    document=st.one_of(st.just("doc"), TEXT.map(lambda t: quote(t, safe=""))),
    metadata=st.one_of(JSON.map(json.dumps), PARAM),
)
def test_console_actions_answer_any_form(
    console: ConsoleBrowser, action: str, document: str, metadata: str
) -> None:
    target = console.api.document_id if document == "doc" else document or "x"
    no_console_error(
        console.post(f"/console/documentos/{target}/{action}", {"metadados": metadata})
    )

"""The MCP server with the official SDK's own client, against a real running platform
(uvicorn API over PostgreSQL and Redis; the law indexed by the worker's ProcessBatch):
over stdio (`cogep-ingest mcp` as a subprocess, the key from COGEP_API_KEY) and over
streamable HTTP (each request with its own key). Answers carry citations; a bad key and
bad arguments come back as MCP errors, never as a crash."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from adapters.services.embedded import free_port
from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.integration.conftest import auth, make_settings
from tests.integration.live import ROOT, running_api, service_env, wait_until_answering
from tests.integration.services import Services
from tests.legal_documents import planalto_html

TOOLS = {"search", "get_document", "get_passage", "list_collections"}


@pytest.fixture
def settings(database_url: str, services: Services) -> Settings:
    return make_settings(database_url, services.redis_url, max_upload_bytes=5_000_000)


@pytest.fixture(scope="module")
def api(database_url: str, services: Services) -> Iterator[str]:
    with running_api(database_url, services.redis_url) as url:
        yield url


@pytest.fixture
async def indexed(
    client: httpx.AsyncClient, container: Container, keys: dict[str, str], process: Any
) -> dict[str, str]:
    """Lei 8.112 (a planalto page) in 'leis', indexed; a read key for everything and
    one limited to another collection."""
    r = await client.post(
        "/v1/documents",
        files={"file": ("L8112.htm", planalto_html())},
        data={"collection": "leis"},
        headers=auth(keys["ingest"]),
    )
    assert r.status_code == 201, r.text
    assert (await process()).completed == 1
    other = await container.api_keys().create("outra", ["read"], collections=["manuais"])
    return {"document_id": r.json()["id"], "read": keys["read"], "other": other.plaintext}


def payload(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


@contextlib.asynccontextmanager
async def stdio_session(api: str, key: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "entrypoints.cli.main", "mcp"],
        env=service_env("", "", COGEP_API_URL=api, COGEP_API_KEY=key),
        cwd=str(ROOT),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def test_an_assistant_over_stdio_searches_reads_and_cites(
    api: str, indexed: dict[str, str]
) -> None:
    doc_id = indexed["document_id"]
    async with stdio_session(api, indexed["read"]) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        assert "query" in tools["search"].input_schema["required"]

        found = payload(
            await session.call_tool(
                "search", {"query": "em quantas etapas posso parcelar minhas férias?"}
            )
        )
        top = found["results"][0]
        assert top["citation"] == "Lei nº 8.112/1990, art. 77"
        assert top["norm"] == "Lei nº 8.112/1990" and top["article"] == "77"
        assert top["document_id"] == doc_id and top["collection"] == "leis"
        assert "parceladas em até três etapas" in top["text"]

        article = payload(
            await session.call_tool(
                "get_passage",
                {"document_id": doc_id, "position": top["position"], "whole_article": True},
            )
        )
        assert article["citation"].startswith("Lei nº 8.112/1990, art. 77")
        assert "parceladas em até três etapas" in article["article_text"]

        document = payload(await session.call_tool("get_document", {"document_id": doc_id}))
        assert document["metadata"]["norm"] == "Lei nº 8.112/1990"
        assert [v["current"] for v in document["versions"]] == [True]

        collections = payload(await session.call_tool("list_collections", {}))
        assert [c["name"] for c in collections["collections"]] == ["leis"]

        # bad arguments: an MCP error naming the field, and the session goes on
        bad = await session.call_tool("search", {"query": "férias", "top_k": "muitos"})
        assert "top_k" in error_text(bad)
        missing = await session.call_tool("get_passage", {"document_id": doc_id})
        assert "position" in error_text(missing)
        unknown = await session.call_tool(
            "get_document", {"document_id": "00000000-0000-0000-0000-000000000000"}
        )
        assert "404" in error_text(unknown)
        assert payload(await session.call_tool("list_collections", {}))["collections"]


async def test_a_bad_key_over_stdio_is_an_mcp_error_on_every_call(
    api: str, indexed: dict[str, str]
) -> None:
    async with stdio_session(api, "cgp_00000000_not-a-key") as session:
        result = await session.call_tool("search", {"query": "férias"})
        assert "401" in error_text(result) and "unknown or revoked" in error_text(result)


@contextlib.contextmanager
def http_server(api: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entrypoints.cli.main",
            "mcp",
            "--transport",
            "http",
            "--port",
            str(port),
        ],
        env=service_env("", "", COGEP_API_URL=api),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:  # any HTTP answer (a 401 without a key) means it listens
        wait_until_answering(lambda: httpx.get(url, timeout=1) is not None, "mcp", proc, 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


async def test_over_streamable_http_each_assistant_brings_its_own_key(
    api: str, indexed: dict[str, str]
) -> None:
    import httpx2

    with http_server(api) as url:
        async with httpx.AsyncClient() as plain:
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            no_key = await plain.post(url, json=ping)
            assert no_key.status_code == 401
            assert "invalid_token" in no_key.headers["www-authenticate"]
            bad = await plain.post(url, json=ping, headers=auth("cgp_00000000_not-a-key"))
            assert bad.status_code == 401 and "unknown or revoked" in bad.text

        async def hits(key: str) -> dict[str, Any]:
            async with (
                httpx2.AsyncClient(headers=auth(key), timeout=60) as http,
                streamable_http_client(url, http_client=http) as (read, write, *_),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return payload(await session.call_tool("search", {"query": "férias parceladas"}))

        everything = await hits(indexed["read"])
        assert everything["results"][0]["citation"] == "Lei nº 8.112/1990, art. 77"
        # a key limited to another collection finds nothing of 'leis' through MCP either
        assert (await hits(indexed["other"]))["results"] == []

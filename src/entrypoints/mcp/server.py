"""The platform for assistants, over the Model Context Protocol (the official `mcp` SDK).

A thin entrypoint: every tool is one or two calls of the REST API through the
platform's own client (`cogep_client`), with the caller's API key, so scopes and
collection limits hold exactly as over HTTP. Every passage an answer carries has the
citation fields of search hits (`citation`, `norm`, `article`, ...), so an assistant can
quote "Lei nº 8.112/1990, art. 77" and say where the text comes from.

Transports: stdio (one assistant, the key from COGEP_API_KEY) and streamable HTTP (many
assistants; each sends its own key as `Authorization: Bearer <key>`, checked against
the API before any MCP message is handled).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cogep_client import ApiError, AsyncClient, SearchHit

INSTRUCTIONS = (
    "Base de conhecimento da COGEP (gestão de pessoas no serviço público federal): leis, "
    "decretos, normas internas e manuais. Use `search` com a pergunta em português; cada "
    "trecho traz `citation` (por exemplo 'Lei nº 8.112/1990, art. 77'), que deve ser "
    "citada na resposta. `get_passage` com `whole_article=true` devolve o artigo inteiro; "
    "`get_document` mostra os metadados e as versões de um documento; `list_collections` "
    "lista as coleções que a chave alcança."
)

_CITATION_FIELDS = (
    "citation",
    "norm",
    "article",
    "article_end",
    "paragraph",
    "inciso",
    "alinea",
    "amended_by",
)


def passage(hit: SearchHit) -> dict[str, Any]:
    """A passage as the tools return it: text, where it comes from, how to cite it."""
    out: dict[str, Any] = {
        "text": hit.text,
        "document_id": str(hit.document_id),
        "filename": hit.filename,
        "collection": hit.collection,
        "position": hit.position,
        "heading": hit.heading,
        "pages": [hit.page_start, hit.page_end] if hit.page_start is not None else None,
        "source_key": hit.source_key,
        "version": hit.version,
        "current": hit.current,
        "score": round(hit.score, 4),
    }
    out.update({name: getattr(hit, name) for name in _CITATION_FIELDS})
    if hit.context:
        out["context"] = hit.context
    if hit.expanded:
        out["article_text"] = hit.expanded
    return out


KeyOf = Callable[[Context], str]


def build_server(
    api_url: str, key_of: KeyOf, transport: httpx.AsyncBaseTransport | None = None
) -> MCPServer:
    """The MCP server; `key_of` finds the caller's API key for a request."""
    server = MCPServer("cogep-ingest", instructions=INSTRUCTIONS, version="0.1.0")

    async def call(ctx: Context, work: Callable[[AsyncClient], Awaitable[Any]]) -> Any:
        async with AsyncClient(api_url, key_of(ctx), transport=transport) as api:
            try:
                return await work(api)
            except ApiError as exc:  # the API's reason, as the tool's error
                raise ToolError(f"{exc.status} {exc.code or 'error'}: {exc.detail}") from None
            except httpx.HTTPError as exc:
                raise ToolError(
                    f"the platform's API does not answer: {type(exc).__name__}"
                ) from None

    @server.tool(
        description="Busca trechos nas coleções (pergunta em português). Cada resultado traz "
        "o texto, a citação (`citation`) e a origem (documento, coleção, versão)."
    )
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=1000, description="a pergunta")],
        ctx: Context,
        collection: Annotated[str | None, Field(description="só esta coleção")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="filtro de metadados (contém estes valores)")
        ] = None,
        top_k: Annotated[int, Field(ge=1, le=50)] = 8,
        mode: Literal["hybrid", "vector", "keyword"] = "hybrid",
        whole_articles: Annotated[
            bool, Field(description="acrescenta o artigo inteiro de cada trecho")
        ] = False,
    ) -> dict[str, Any]:
        result = await call(
            ctx,
            lambda api: api.search(
                query,
                top_k=top_k,
                mode=mode,
                collection=collection,
                metadata=metadata,
                expand="article" if whole_articles else "none",
            ),
        )
        return {"query": result.query, "results": [passage(h) for h in result.results]}

    @server.tool(
        description="Um documento: metadados, estado do processamento e todas as versões "
        "(qual é a vigente)."
    )
    async def get_document(
        document_id: Annotated[str, Field(description="o id do documento (UUID)")],
        ctx: Context,
    ) -> dict[str, Any]:
        async def fetch(api: AsyncClient) -> dict[str, Any]:
            doc = await api.document(document_id)
            versions = await api.versions(document_id)
            return {
                "id": str(doc.id),
                "filename": doc.filename,
                "collection": doc.collection,
                "metadata": doc.metadata,
                "status": doc.status,
                "chunks": doc.chunk_count,
                "source_key": doc.source_key,
                "version": doc.version,
                "current": doc.current,
                "created_at": doc.created_at.isoformat(),
                "versions": [
                    {
                        "id": str(v.id),
                        "version": v.version,
                        "current": v.current,
                        "status": v.status,
                        "created_at": v.created_at.isoformat(),
                    }
                    for v in versions.versions
                ],
            }

        result: dict[str, Any] = await call(ctx, fetch)
        return result

    @server.tool(
        description="Um trecho de um documento pela posição (a de um resultado de `search`), "
        "com a citação; `whole_article=true` traz o artigo inteiro a que pertence."
    )
    async def get_passage(
        document_id: Annotated[str, Field(description="o id do documento (UUID)")],
        position: Annotated[int, Field(ge=0, description="a posição do trecho no documento")],
        ctx: Context,
        whole_article: bool = False,
    ) -> dict[str, Any]:
        page = await call(
            ctx,
            lambda api: api.chunks(
                document_id,
                after=position - 1,
                limit=1,
                expand="article" if whole_article else "none",
            ),
        )
        if not page.items or page.items[0].position != position:
            raise ToolError(f"the document has no passage at position {position}")
        return passage(page.items[0])

    @server.tool(description="As coleções que a chave alcança, com documentos e trechos.")
    async def list_collections(ctx: Context) -> dict[str, Any]:
        found = await call(ctx, lambda api: api.collections())
        return {"collections": [c.model_dump() for c in found]}

    return server


# -- keys ------------------------------------------------------------------------------


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, key = value.partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return key.strip()
    return headers.get("x-api-key") or None


def stdio_key(api_key: str | None) -> KeyOf:
    def key_of(ctx: Context) -> str:
        if not api_key:
            raise ToolError("no API key: set COGEP_API_KEY for `cogep-ingest mcp`")
        return api_key

    return key_of


def http_key(ctx: Context) -> str:
    key = bearer({k.lower(): v for k, v in (ctx.headers or {}).items()})
    if key is None:  # the gate below refuses such requests before they get here
        raise ToolError("an API key is required (Authorization: Bearer <key>)")
    return key


class KeyGate:
    """Streamable HTTP: a request whose API key the platform does not accept is
    refused with 401 before the MCP session sees it (the key is checked by asking the
    API, so revocation and limits are the API's)."""

    def __init__(
        self, app: ASGIApp, api_url: str, transport: httpx.AsyncBaseTransport | None
    ) -> None:
        self.app = app
        self.api_url = api_url
        self.transport = transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        key = bearer({k.lower(): v for k, v in request.headers.items()})
        refusal = await self._refusal(key)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _refusal(self, key: str | None) -> Response | None:
        if key is None:
            return _unauthorized("an API key is required (Authorization: Bearer <key>)")
        async with AsyncClient(self.api_url, key, transport=self.transport) as api:
            try:
                await api.collections()
            except ApiError as exc:
                if exc.status in (401, 403):
                    return _unauthorized(exc.detail)
                return JSONResponse({"error": exc.detail}, status_code=503)
            except httpx.HTTPError:
                return JSONResponse({"error": "the platform's API does not answer"}, 503)
        return None


def _unauthorized(detail: str) -> Response:
    return JSONResponse(
        {"error": "invalid_token", "error_description": detail},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def http_app(api_url: str, transport: httpx.AsyncBaseTransport | None = None) -> ASGIApp:
    """The streamable-HTTP MCP app (at /mcp), behind the key gate."""
    server = build_server(api_url, http_key, transport)
    return KeyGate(server.streamable_http_app(streamable_http_path="/mcp"), api_url, transport)

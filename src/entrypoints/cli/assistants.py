"""The assistant's side: `cogep-ingest mcp` (the platform over the Model Context
Protocol) and `cogep-ingest reembed` (the stored chunks into the configured model)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

import typer

from entrypoints.cli.common import (
    ApiKeyOpt,
    ApiUrl,
    api_client,
    call_api,
    console,
    out,
    read_platform,
)
from entrypoints.settings import Settings


def mcp(
    transport: Annotated[
        Literal["stdio", "http"],
        typer.Option(help="stdio (one assistant, the key from COGEP_API_KEY) or streamable HTTP"),
    ] = "stdio",
    host: Annotated[str, typer.Option(help="http: where to listen")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="http: the port (the endpoint is /mcp)")] = 8765,
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Serve search, documents, passages and collections to MCP assistants. Over HTTP
    each assistant sends its own API key (Authorization: Bearer <key>)."""
    state = read_platform(Settings()) or {}
    url = api_url or state.get("api_url")
    if not url:
        console.print(
            "[red]no platform found:[/] run `make run` here, or set COGEP_API_URL (and "
            "COGEP_API_KEY for stdio)"
        )
        raise typer.Exit(2)
    # imported here: the other commands start without the MCP SDK
    from entrypoints.mcp.server import build_server, http_app, stdio_key

    if transport == "stdio":  # stdout carries the protocol; messages go to stderr
        build_server(url, stdio_key(api_key or state.get("api_key"))).run("stdio")
        return
    import uvicorn

    console.print(f"MCP over streamable HTTP at http://{host}:{port}/mcp (API {url})")
    uvicorn.run(http_app(url), host=host, port=port, log_level="warning")


def reembed(
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="only this collection")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="follow the chunk counts until the queue is done")
    ] = False,
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Re-embed every current chunk set into the configured model, in the background
    (admin key): no extraction again; each document answers with its old vectors until
    its new ones are swapped in. Run it again to pick up documents busy at the time."""
    client = api_client(api_url, api_key)
    done = call_api(client.reembed(collection))
    console.print(
        f"{done['queued']} document(s) queued to re-embed into {done['model']} "
        f"({done['dim']} dimensions)"
    )
    if not wait or not done["queued"]:
        return

    async def follow() -> None:
        last = ""
        while True:
            stats: dict[str, Any] = await client.stats()
            counts = {m["model"]: m["chunks"] for m in stats["chunks_by_model"]}
            total = sum(counts.values())
            line = f"{counts.get(done['model'], 0):,} of {total:,} chunks in {done['model']}"
            if line != last:
                out.print(f"{time.strftime('%H:%M:%S')} {line}")
                last = line
            busy = stats["jobs"].get("PENDING", 0) + stats["jobs"].get("PROCESSING", 0)
            if not busy:
                return
            await asyncio.sleep(2)

    call_api(follow())


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
    app.command("reembed")(reembed)

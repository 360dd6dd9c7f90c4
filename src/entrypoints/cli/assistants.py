"""`cogep-ingest mcp`: the platform for assistants over the Model Context Protocol."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from entrypoints.cli.common import ApiKeyOpt, ApiUrl, console, read_platform
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


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)

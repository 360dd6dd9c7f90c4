"""What the CLI's commands share: consoles, the platform `up` runs here, the API client
with its errors turned into exit codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from entrypoints.cli.client import ApiClient, ApiError
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from entrypoints.container import Container

console = Console(stderr=True)
out = Console()

T = TypeVar("T")
PLATFORM_FILE = "platform.json"


# -- settings of a running local platform -----------------------------------------------


def platform_file(settings: Settings) -> Path:
    return settings.data_dir / PLATFORM_FILE


def resolve_settings() -> Settings:
    """Settings from the environment; where URLs are unset, those of a platform that
    `cogep-ingest up` is running from this folder."""
    settings = Settings()
    state = read_platform(settings)
    if state and not settings.database_url:
        settings = settings.model_copy(
            update={"database_url": state["database_url"], "redis_url": state["redis_url"]}
        )
    return settings


def read_platform(settings: Settings) -> dict[str, str] | None:
    path = platform_file(settings)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


ApiUrl = Annotated[
    str | None,
    typer.Option("--api-url", envvar="COGEP_API_URL", help="default: the platform `up` runs here"),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="COGEP_API_KEY", help="default: the key `up` printed"),
]


def api_client(url: str | None, key: str | None) -> ApiClient:
    state = read_platform(Settings()) or {}
    url = url or state.get("api_url")
    key = key or state.get("api_key")
    if not url or not key:
        console.print(
            "[red]no platform found:[/] run `make run` (or `cogep-ingest up`) in this folder, "
            "or pass --api-url and --api-key (COGEP_API_URL, COGEP_API_KEY)"
        )
        raise typer.Exit(2)
    return ApiClient(url, key)


def call_api(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except ApiError as exc:
        console.print(f"[red]the API refused:[/] {exc}")
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        console.print(f"[red]the API did not answer:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


def run_with_container(settings: Settings, fn: Callable[[Container], Awaitable[T]]) -> T:
    from entrypoints.container import build_container

    async def main() -> T:
        container = build_container(settings)
        try:
            return await fn(container)
        finally:
            await container.engine().dispose()

    return asyncio.run(main())

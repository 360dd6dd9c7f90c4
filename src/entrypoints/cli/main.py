"""`cogep-ingest`: run the platform locally and operate it (typer + rich)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapters.postgres.migrations import upgrade_head
from adapters.services.local import local_services
from entrypoints.settings import Settings

app = typer.Typer(
    name="cogep-ingest",
    help="Document ingestion for COGEP Assist: API, worker fleet, search.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


@app.command()
def up(
    data_dir: Annotated[
        str | None, typer.Option(help="where embedded servers keep their data")
    ] = None,
) -> None:
    """Start the platform locally: embedded PostgreSQL+pgvector and Redis unless
    DATABASE_URL / REDIS_URL are set, then migrations. Ctrl-C stops everything."""
    settings = Settings()
    if data_dir:
        settings = settings.model_copy(update={"data_dir": Path(data_dir)})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with local_services(
        settings.database_url, settings.effective_redis_url, settings.data_dir
    ) as services:
        console.print(f"[bold]PostgreSQL[/] {services.database_url}")
        console.print(f"[bold]Redis[/]      {services.redis_url}")
        upgrade_head(services.database_url)
        console.print("[green]migrations at head[/]; Ctrl-C to stop")
        stop.wait()
    console.print("stopped")


@app.command()
def migrate() -> None:
    """alembic upgrade head against DATABASE_URL."""
    upgrade_head(Settings().require_database_url())
    console.print("[green]database at head[/]")


if __name__ == "__main__":
    app()

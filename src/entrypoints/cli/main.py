"""`cogep-ingest`: run the platform locally and operate it (typer + rich)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from adapters.postgres.migrations import upgrade_head
from adapters.services.local import local_services
from entrypoints.cli.supervisor import Supervisor
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings

app = typer.Typer(
    name="cogep-ingest",
    help="Document ingestion for COGEP Assist: API, worker fleet, search.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(
    help="API keys (stored hashed; the key is shown once).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
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


def run_with_container(settings: Settings, fn: Callable[[Container], Awaitable[T]]) -> T:
    async def main() -> T:
        container = build_container(settings)
        try:
            return await fn(container)
        finally:
            await container.engine().dispose()

    return asyncio.run(main())


# -- the local platform -------------------------------------------------------------------


@app.command()
def up(
    data_dir: Annotated[
        Path | None, typer.Option(help="where embedded servers keep their data")
    ] = None,
    port: Annotated[int | None, typer.Option(help="API port")] = None,
    worker: Annotated[bool, typer.Option(help="also run a worker and the beat scheduler")] = True,
) -> None:
    """Start the whole platform locally: embedded PostgreSQL+pgvector and Redis unless
    DATABASE_URL / REDIS_URL are set, migrations, the API, a worker and beat, supervised.
    Prints the URL and a fresh API key. Ctrl-C stops everything cleanly."""
    settings = Settings()
    updates: dict[str, object] = {}
    if data_dir:
        updates["data_dir"] = data_dir
    if port:
        updates["api_port"] = port
    if updates:
        settings = settings.model_copy(update=updates)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    with local_services(
        settings.database_url, settings.effective_redis_url, settings.data_dir
    ) as services:
        console.print(f"[bold]PostgreSQL[/] {services.database_url}")
        console.print(f"[bold]Redis[/]      {services.redis_url}")
        upgrade_head(services.database_url)
        console.print("[green]migrations at head[/]")
        settings = settings.model_copy(
            update={"database_url": services.database_url, "redis_url": services.redis_url}
        )
        created = run_with_container(
            settings,
            lambda c: c.api_keys().create(
                f"local-{uuid.uuid4().hex[:6]}", ["admin"], rate_limit_per_minute=None
            ),
        )
        env = {
            **os.environ,
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url,
            "COGEP_DATA_DIR": str(settings.data_dir),
        }
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        supervisor = Supervisor(env=env, log=console)
        supervisor.add("api", api_command(settings))
        if worker:
            supervisor.add("worker", [sys.executable, "-m", "entrypoints.cli.main", "worker"])
            supervisor.add("beat", [sys.executable, "-m", "entrypoints.cli.main", "beat"])
        state = {
            "api_url": api_url,
            "api_key": created.plaintext,
            "database_url": services.database_url,
            "redis_url": services.redis_url,
            "pid": str(os.getpid()),
        }
        path = platform_file(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)
        try:
            supervisor.start()
            supervisor.wait_ready(f"{api_url}/healthz", timeout=60)
            console.print(f"\n[bold green]cogep-ingest is up[/]  {api_url}  (docs: {api_url}/docs)")
            console.print(f"[bold]API key[/] (admin, shown once): {created.plaintext}")
            console.print("Ctrl-C stops everything.\n")
            supervisor.watch(stop)
        finally:
            supervisor.stop()
            path.unlink(missing_ok=True)
    console.print("stopped")


def api_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "entrypoints.api.app:create_app_from_env",
        "--host",
        settings.api_host,
        "--port",
        str(settings.api_port),
        "--workers",
        str(settings.api_workers),
        "--no-access-log",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]


@app.command()
def api() -> None:
    """Serve the HTTP API (uvicorn) with the current settings."""
    settings = resolve_settings()
    os.execv(sys.executable, api_command(settings))  # noqa: S606 - replace this process


@app.command()
def worker() -> None:
    """Run a Celery worker (pool solo in development, prefork in production)."""
    from entrypoints.logging import configure_logging
    from entrypoints.worker.main import run_worker

    settings = resolve_settings()
    configure_logging(settings.log_level, settings.log_json, process="worker")
    run_worker(settings, settings.log_level)


@app.command()
def beat() -> None:
    """Run the Celery beat scheduler (the queue sweeper). One is enough; a second
    one is harmless (sweeping is idempotent)."""
    from entrypoints.logging import configure_logging
    from entrypoints.worker.main import run_beat

    settings = resolve_settings()
    configure_logging(settings.log_level, settings.log_json, process="beat")
    run_beat(settings, settings.log_level)


@app.command()
def migrate() -> None:
    """alembic upgrade head against DATABASE_URL."""
    upgrade_head(resolve_settings().require_database_url())
    console.print("[green]database at head[/]")


# -- API keys ------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="who uses the key, e.g. 'sigepe-integracao'")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", "-s", help="ingest, read or admin; repeatable")
    ] = None,
    rate_limit: Annotated[
        int | None, typer.Option(help="requests per minute (default: COGEP_RATE_LIMIT_PER_MINUTE)")
    ] = None,
) -> None:
    """Create an API key; the key itself is printed once and never stored."""
    settings = resolve_settings()
    created = run_with_container(
        settings, lambda c: c.api_keys().create(name, scope or ["ingest", "read"], rate_limit)
    )
    console.print(
        f"created key [bold]{created.key.name}[/] ({created.key.id}) with scopes "
        f"{', '.join(sorted(s.value for s in created.key.scopes))}; store it now:"
    )
    out.print(created.plaintext)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    keys = run_with_container(resolve_settings(), lambda c: c.api_keys().list())
    table = Table("id", "name", "prefix", "scopes", "rate/min", "created", "last used", "revoked")
    for k in keys:
        table.add_row(
            str(k.id),
            k.name,
            k.prefix,
            ",".join(sorted(s.value for s in k.scopes)),
            str(k.rate_limit_per_minute or "-"),
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: uuid.UUID) -> None:
    """Revoke a key (API processes notice within 30 seconds)."""
    run_with_container(resolve_settings(), lambda c: c.api_keys().revoke(key_id))
    console.print(f"revoked {key_id}")


if __name__ == "__main__":
    app()

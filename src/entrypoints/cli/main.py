"""`cogep-ingest`: run the platform locally and operate it (typer + rich)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.table import Table

from entrypoints.api.command import uvicorn_command
from entrypoints.cli import assistants, keys
from entrypoints.cli import documents as document_commands
from entrypoints.cli.client import collect_files
from entrypoints.cli.common import (
    ApiKeyOpt,
    ApiUrl,
    api_client,
    call_api,
    console,
    out,
    platform_file,
    progress_bar,
    resolve_settings,
    run_with_container,
)
from entrypoints.cli.documents import parse_metadata
from entrypoints.cli.watch import BatchProgress
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from entrypoints.container import Container

# The commands that talk to the API over HTTP (ingest, search, status, retry) start in
# well under a second; the database, broker and model stacks are imported only by the
# commands that use them.

app = typer.Typer(
    name="cogep-ingest",
    help="Document ingestion for COGEP Assist: API, worker fleet, search.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(keys.keys_app, name="keys")
document_commands.register(app)
assistants.register(app)
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
    from entrypoints.cli.instance import InstanceError, check_port_free, instance_lock

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
    try:
        with instance_lock(settings.data_dir, platform_file(settings)):
            check_port_free(settings.api_host, settings.api_port)
            _run_platform(settings, worker, stop)
    except InstanceError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print("stopped")


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _run_platform(settings: Settings, worker: bool, stop: threading.Event) -> None:
    from adapters.postgres.migrations import upgrade_head
    from adapters.services.local import local_services
    from adapters.services.secrets import write_private
    from entrypoints.cli.supervisor import Supervisor

    with local_services(
        settings.database_url,
        settings.effective_redis_url,
        settings.data_dir,
        settings.pg_shared_buffers_mb,
    ) as services:
        # passwords stay in platform.json (0600), not on a terminal or in a log
        console.print(f"[bold]PostgreSQL[/] {without_password(services.database_url)}")
        console.print(f"[bold]Redis[/]      {without_password(services.redis_url)}")
        upgrade_head(services.database_url)
        console.print("[green]migrations at head[/]")
        settings = settings.model_copy(
            update={"database_url": services.database_url, "redis_url": services.redis_url}
        )
        api_key, minted = run_with_container(settings, ensure_admin_key)
        env = {
            **os.environ,
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url,
            "COGEP_DATA_DIR": str(settings.data_dir),
        }
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        supervisor = Supervisor(env=env, log=console, raw=settings.log_json)
        supervisor.add("api", api_command(settings))
        if worker:
            supervisor.add("worker", [sys.executable, "-m", "entrypoints.cli.main", "worker"])
            supervisor.add("beat", [sys.executable, "-m", "entrypoints.cli.main", "beat"])
        state = {
            "api_url": api_url,
            "api_key": api_key,
            "database_url": services.database_url,
            "redis_url": services.redis_url,
            "pid": str(os.getpid()),
        }
        path = platform_file(settings)
        write_private(path, json.dumps(state, indent=2))
        try:
            supervisor.start()
            supervisor.wait_ready(f"{api_url}/healthz", timeout=60)
            console.print(
                f"\n[bold green]cogep-ingest is up[/]  {api_url}  (docs: {api_url}/docs, "
                f"console: {api_url}/console)"
            )
            key_file = settings.data_dir / "admin.key"
            if minted:
                console.print(
                    f"[bold]API key[/] (admin, shown once; kept in {key_file}): {api_key}"
                )
            else:
                console.print(f"[bold]API key[/]: the admin key in {key_file}")
            console.print("Ctrl-C stops everything.\n")
            supervisor.watch(stop)
        finally:
            supervisor.stop()
            path.unlink(missing_ok=True)


async def ensure_admin_key(c: Container) -> tuple[str, bool]:
    """The folder's admin key: the one minted at the first start while it still
    authenticates, else a new one (stored 0600). (key, minted now)"""
    from entrypoints.cli.instance import read_admin_key, store_admin_key

    data_dir = c.settings().data_dir
    known = read_admin_key(data_dir)
    if known is not None and await c.authenticator().authenticate(known) is not None:
        return known, False
    created = await c.api_keys().create(
        f"local-{uuid.uuid4().hex[:6]}", ["admin"], rate_limit_per_minute=None
    )
    store_admin_key(data_dir, created.plaintext)
    return created.plaintext, True


def api_command(settings: Settings) -> list[str]:
    return uvicorn_command(settings.api_host, settings.api_port, settings.api_workers)


@app.command()
def api() -> None:
    """Serve the HTTP API (uvicorn) with the current settings."""
    settings = resolve_settings()
    os.execv(sys.executable, api_command(settings))  # noqa: S606 - replace this process


@app.command()
def worker() -> None:
    """Run a Celery worker (pool solo in development, prefork in production)."""
    settings = resolve_settings()
    if settings.effective_pool != "solo" and settings.worker_metrics_port:
        from entrypoints.worker.metrics import prepare_multiprocess

        prepare_multiprocess()  # before anything imports prometheus_client
    from domain.errors import EmbeddingModelMismatch
    from entrypoints.logging import configure_logging
    from entrypoints.worker.main import run_worker

    configure_logging(settings.log_level, settings.log_json, process="worker")
    try:
        run_worker(settings, settings.log_level)
    except EmbeddingModelMismatch as exc:  # refused at start: nothing was stored
        console.print(f"[red]the worker will not start:[/] {exc.reason}")
        raise typer.Exit(1) from None


@app.command()
def beat() -> None:
    """Run the scheduler: Celery beat and the periodic tasks (the queue sweeper) on their
    own queue, so they run on time however busy the workers are. One per fleet; a second
    one is harmless (sweeping is idempotent)."""
    from entrypoints.logging import configure_logging
    from entrypoints.worker.main import run_beat

    settings = resolve_settings()
    configure_logging(settings.log_level, settings.log_json, process="beat")
    run_beat(settings, settings.log_level)


@app.command()
def migrate() -> None:
    """alembic upgrade head against DATABASE_URL."""
    from adapters.postgres.migrations import upgrade_head

    upgrade_head(resolve_settings().require_database_url())
    console.print("[green]database at head[/]")


# -- working with a running platform (over its HTTP API) -----------------------------------

_OUTCOME_STYLE = {
    "completed": "green",
    "failed": "red",
    "rejected": "red",
    "timeout": "yellow",
    "queued": "cyan",
    "existing": "cyan",
}


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (walked recursively)")],
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    metadata: Annotated[
        str | None,
        typer.Option("--metadata", "-m", help='a JSON object, e.g. \'{"orgao": "COGEP"}\''),
    ] = None,
    wait: Annotated[bool, typer.Option(help="wait until each document is processed")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait for processing")] = 900.0,
    concurrency: Annotated[int, typer.Option(min=1, max=32)] = 4,
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Upload documents and wait for them: a progress bar, then one line per file.
    Files that fail do not stop the others; the exit code is 1 when any did not complete."""
    try:
        files = collect_files(paths)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    meta = parse_metadata(metadata)
    if not files:
        console.print("no files to ingest")
        raise typer.Exit(0)
    client = api_client(api_url, api_key)
    with progress_bar() as progress:
        task = progress.add_task("uploading and processing", total=len(files))

        def batch_progress(p: BatchProgress) -> None:
            # the batch's own counts (documents that were already there are not in it)
            progress.update(task, description=p.describe())

        results = call_api(
            client.ingest(
                files,
                collection,
                meta,
                wait,
                timeout,
                concurrency,
                on_done=lambda _: progress.advance(task),
                on_progress=batch_progress,
            )
        )
    table = Table("file", "result", "chunks", "document", "detail")
    for r in results:
        style = _OUTCOME_STYLE.get(r.outcome, "white")
        table.add_row(
            str(r.path),
            f"[{style}]{r.outcome}[/]",
            str(r.chunks or ""),
            r.document_id or "",
            r.detail,
        )
    out.print(table)
    counts = {o: sum(r.outcome == o for r in results) for o in _OUTCOME_STYLE}
    console.print(", ".join(f"{n} {o}" for o, n in counts.items() if n))
    if wait and not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def status(api_url: ApiUrl = None, api_key: ApiKeyOpt = None) -> None:
    """The queue and the index: jobs by status, readiness, oldest pending, recent failures."""
    client = api_client(api_url, api_key)

    async def gather() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        stats = await client.stats()
        failed: list[dict[str, Any]] = []
        async for job in client.jobs("FAILED", limit=10):
            failed.append(job)
            if len(failed) == 10:
                break
        return stats, failed

    stats, failed = call_api(gather())
    table = Table("status", "jobs", title="queue")
    for name, count in stats["jobs"].items():
        table.add_row(name, str(count))
    out.print(table)
    oldest = stats.get("oldest_pending_age_s")
    out.print(
        f"ready now: {stats['ready']}; oldest pending: "
        + (f"{oldest:.0f}s" if oldest is not None else "none")
    )
    models = Table("model", "dimension", "chunks", title="index")
    for m in stats["chunks_by_model"]:
        models.add_row(m["model"], str(m["dim"]), str(m["chunks"]))
    out.print(models)
    for warning in stats.get("warnings") or []:
        console.print(f"[yellow]warning:[/] {warning}")
    if failed:
        errors = Table("job", "document", "attempts", "last error", title="recent failures")
        for job in failed:
            errors.add_row(
                job["id"], job["document_id"], str(job["attempts"]), job["last_error"] or ""
            )
        out.print(errors)


@app.command()
def search(
    query: Annotated[
        str, typer.Argument(help='a question in Portuguese, e.g. "quantos dias de férias?"')
    ],
    mode: Annotated[str, typer.Option(help="hybrid, vector or keyword")] = "hybrid",
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=100)] = 5,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    metadata: Annotated[
        str | None,
        typer.Option("--metadata", "-m", help="only documents whose metadata contains this JSON"),
    ] = None,
    document: Annotated[
        list[str] | None, typer.Option("--document", "-d", help="only this document; repeatable")
    ] = None,
    include_superseded: Annotated[
        bool, typer.Option("--include-superseded", help="also versions a newer one replaced")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the raw answer")] = False,
    expand: Annotated[
        bool, typer.Option("--expand", help="with --json: each hit's whole article")
    ] = False,
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Search the indexed documents; each hit shows what to cite."""
    body: dict[str, Any] = {"query": query, "mode": mode, "top_k": top_k}
    if collection:
        body["collection"] = collection
    meta = parse_metadata(metadata)
    if meta:
        body["metadata"] = meta
    if document:
        body["document_ids"] = document
    if include_superseded:
        body["include_superseded"] = True
    if expand:
        body["expand"] = "article"
    answer = call_api(api_client(api_url, api_key).search(body))
    if as_json:
        out.print_json(data=answer)
        return
    table = Table("#", "score", "document", "section", "text", title=f"{answer['mode']}: {query}")
    for i, hit in enumerate(answer["results"], start=1):
        pages = f" p.{hit['page_start']}" if hit.get("page_start") else ""
        snippet = " ".join(hit["text"].split())
        citation = f"\n{hit['citation']}" if hit.get("citation") else ""
        table.add_row(
            str(i),
            f"{hit['score']:.3f}",
            hit["filename"] + pages + citation,
            hit.get("heading") or "",
            snippet[:220] + ("…" if len(snippet) > 220 else ""),
        )
    out.print(table)
    console.print(f"{len(answer['results'])} results in {answer['took_ms']:.0f} ms")


@app.command()
def retry(
    failed: Annotated[bool, typer.Option("--failed", help="queue every FAILED job again")] = False,
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Queue FAILED jobs again where a retry can help (needs an admin key); failures of
    the document itself and cancelled jobs are listed as permanent, not retried."""
    if not failed:
        console.print("nothing to do: pass --failed to retry every FAILED job")
        raise typer.Exit(2)
    retried, errors, permanent = call_api(api_client(api_url, api_key).retry_failed())
    if permanent:
        table = Table("job", "document", "why", "failure", title="not retried: permanent")
        for job in permanent:
            table.add_row(
                job["id"],
                job["document_id"],
                job.get("failure_kind") or "",
                job["last_error"] or "",
            )
        out.print(table)
    for error in errors:
        console.print(f"[red]{error}[/]")
    console.print(f"queued again: {retried}; permanent, not retried: {len(permanent)}")
    if errors:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()

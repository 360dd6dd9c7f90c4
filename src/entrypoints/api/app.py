"""ingestion_service: the FastAPI application. It validates, stores and enqueues;
all heavy work is the worker's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from entrypoints.api import problems
from entrypoints.api.collector import settle_after_start_up
from entrypoints.api.gate import RequestGate
from entrypoints.api.middleware import MetricsMiddleware
from entrypoints.api.protocol import raise_open_files_limit
from entrypoints.api.routes import changes, collections, documents, jobs, models, ops, search
from entrypoints.console import app as console
from entrypoints.container import Container, build_container
from entrypoints.logging import configure_logging

_WIRED = [
    "entrypoints.api.routes.changes",
    "entrypoints.api.routes.collections",
    "entrypoints.api.routes.documents",
    "entrypoints.api.routes.jobs",
    "entrypoints.api.routes.models",
    "entrypoints.api.routes.ops",
    "entrypoints.api.routes.search",
]


def create_app(container: Container | None = None) -> FastAPI:
    """Build the app; the container is made here (inside the serving process) when
    none is given. Tests pass their own, with providers overridden as needed."""
    container = container or build_container()
    settings = container.settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # load the query embedder now (in a thread), not on the first search
        await asyncio.to_thread(container.search)
        settle_after_start_up()  # start-up's objects frozen, young passes less often
        yield
        await container.api_doorbell().close()
        reranker = container.reranker()
        if reranker is not None:
            await reranker.aclose()
        await container.console_sessions().aclose()
        await container.engine().dispose()

    # Swagger UI and ReDoc from files the installed fastapi-offline package ships: the
    # docs work on a network with no way out (no CDN)
    app = FastAPIOffline(
        static_url="/static/docs",
        title="cogep-ingest",
        version="0.1.0",
        summary="Document ingestion for COGEP Assist",
        description=(
            "Upload HR documents (PDF, DOCX, HTML, Markdown, text). The API stores them "
            "and queues an ingestion job; the worker fleet extracts, chunks and embeds. "
            "Errors are RFC 9457 problem+json."
        ),
        lifespan=lifespan,
    )
    app.state.container = container
    container.wire(modules=[*_WIRED, *console.WIRED])
    problems.install(app)
    app.add_middleware(RequestGate, container=container)  # inner: metrics see its answers
    app.add_middleware(MetricsMiddleware)
    app.include_router(documents.router)
    app.include_router(changes.router)
    app.include_router(collections.router)
    app.include_router(jobs.router)
    app.include_router(models.router)
    app.include_router(search.router)
    app.include_router(ops.router)
    console.install(app)
    if settings.auth_disabled and settings.environment == "production":  # pragma: no cover
        raise RuntimeError("authentication cannot be disabled in production")
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory: `uvicorn --factory entrypoints.api.app:create_app_from_env`."""
    container = build_container()
    settings = container.settings()
    configure_logging(settings.log_level, settings.log_json, process="api")
    raise_open_files_limit(settings.http_max_connections)
    return create_app(container)

"""The console's pages (GET): overview, documents, one document, search; and signing
in and out."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from adapters.sessions import RedisSessions
from application.ports import DocumentFilter, UnitOfWorkFactory
from application.use_cases.api_keys import Authenticator
from application.use_cases.documents import Documents
from application.use_cases.search import SearchChunks, SearchChunksHandler
from application.use_cases.stats import GetStats
from domain.api_keys import Scope
from domain.errors import DomainError
from domain.model import IngestionStatus
from domain.search import SearchFilter, SearchMode
from entrypoints.api.injection import Provide, inject
from entrypoints.api.schemas import decode_cursor, encode_cursor
from entrypoints.console.web import (
    BASE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Viewer,
    check_csrf,
    metadata_object,
    new_login_token,
    page,
    redirect,
    set_cookie,
    viewer_of,
)
from entrypoints.container import Container

router = APIRouter(include_in_schema=False)


@inject
async def _sessions(
    sessions: RedisSessions = Depends(Provide[Container.console_sessions]),
) -> RedisSessions:
    return sessions


@inject
async def _uow_factory(
    factory: UnitOfWorkFactory = Depends(Provide[Container.uow_factory]),
) -> UnitOfWorkFactory:
    return factory


Sessions = Annotated[RedisSessions, Depends(_sessions)]
UowFactory = Annotated[UnitOfWorkFactory, Depends(_uow_factory)]
IN_FLIGHT = (IngestionStatus.PENDING, IngestionStatus.PROCESSING)
PAGE_SIZE = 50


async def current_viewer(request: Request, sessions: Sessions, uow_factory: UowFactory) -> Viewer:
    return await viewer_of(request, sessions, uow_factory)


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


@router.get("/")
async def root() -> Response:
    return redirect(f"{BASE}/")


# -- signing in and out -----------------------------------------------------------------


@router.get(f"{BASE}/entrar")
async def sign_in_form(request: Request, erro: str | None = None) -> Response:
    token = new_login_token()
    response = page(request, "signin.html", {"viewer": None, "csrf": token, "error": erro})
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, 1800)
    return response


@router.post(f"{BASE}/entrar")
@inject
async def sign_in(
    request: Request,
    sessions: Sessions,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    authenticator: Authenticator = Depends(Provide[Container.authenticator]),
) -> Response:
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf)

    def refused(error: str, status: int) -> Response:
        return page(
            request, "signin.html", {"viewer": None, "csrf": csrf, "error": error}, status=status
        )

    key = await authenticator.authenticate(api_key.strip()) if api_key.strip() else None
    if key is None:
        return refused("Chave desconhecida ou revogada.", 401)
    if not key.allows(Scope.READ):
        return refused("Esta chave não tem o escopo de leitura (read) que o console exige.", 403)
    session_id, _ = await sessions.create(str(key.id), key.prefix)
    response = redirect(f"{BASE}/")
    set_cookie(response, request, SESSION_COOKIE, session_id, sessions.ttl_s)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=BASE)
    return response


@router.post(f"{BASE}/sair")
async def sign_out(
    viewer: ViewerDep, sessions: Sessions, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    check_csrf(viewer.session.csrf, csrf)
    await sessions.delete(viewer.session_id)
    response = redirect(f"{BASE}/entrar")
    response.delete_cookie(SESSION_COOKIE, path=BASE)
    return response


# -- overview ---------------------------------------------------------------------------


@router.get(f"{BASE}/")
@inject
async def overview(
    request: Request,
    viewer: ViewerDep,
    uow_factory: UowFactory,
    documents: Documents = Depends(Provide[Container.documents]),
    get_stats: GetStats = Depends(Provide[Container.get_stats]),
) -> Response:
    stats = None
    if viewer.access.everything:
        stats = await get_stats(uow_factory())
    collections = await documents.collections(uow_factory(), viewer.access)
    failures = await documents.listing(
        DocumentFilter(status=IngestionStatus.FAILED, limit=10), uow_factory(), viewer.access
    )
    async with uow_factory() as uow:
        now = get_stats.clock.now()
        ended = await uow.jobs.finished_since(now - timedelta(hours=1), viewer.access.within())
    finished = {status.value: n for status, n in ended.items()}
    return page(
        request,
        "overview.html",
        {
            "viewer": viewer,
            "stats": stats,
            "collections": collections,
            "failures": failures,
            "finished": finished,
        },
    )


# -- documents --------------------------------------------------------------------------


@dataclass(frozen=True)
class ListingQuery:
    """The documents table's query string: the filters as typed, and the page."""

    colecao: Annotated[str | None, Query(max_length=100)] = None
    status: Annotated[str | None, Query(max_length=20)] = None
    metadados: Annotated[str | None, Query(max_length=2000)] = None
    depois: Annotated[str | None, Query(max_length=200)] = None


async def _listing(
    documents: Documents, uow_factory: UnitOfWorkFactory, viewer: Viewer, query: ListingQuery
) -> dict[str, Any]:
    """The documents table's context: a page of rows (newest first, `after` a cursor),
    the filters as typed, whether to poll, and the cursor of the next page."""
    views: list[Any] = []
    error = None
    try:
        views = await documents.listing(
            DocumentFilter(
                collection=query.colecao or None,
                status=IngestionStatus(query.status) if query.status else None,
                metadata=metadata_object(query.metadados),
                limit=PAGE_SIZE,
                after=decode_cursor(query.depois),
            ),
            uow_factory(),
            viewer.access,
        )
    except (DomainError, ValueError) as exc:
        error = getattr(exc, "reason", None) or "filtro inválido"
    last = views[-1].document if len(views) == PAGE_SIZE else None
    return {
        "viewer": viewer,
        "views": views,
        "error": error,
        "next_cursor": encode_cursor(last.created_at, last.id) if last else None,
        "filters": {
            "colecao": query.colecao or "",
            "status": query.status or "",
            "metadados": query.metadados or "",
            "depois": query.depois or "",
        },
        "in_flight": any(v.job and v.job.status in IN_FLIGHT for v in views),
    }


@router.get(f"{BASE}/documentos")
@inject
async def documents_page(
    request: Request,
    viewer: ViewerDep,
    uow_factory: UowFactory,
    query: Annotated[ListingQuery, Depends()],
    aviso: Annotated[str | None, Query(max_length=300)] = None,
    documents: Documents = Depends(Provide[Container.documents]),
) -> Response:
    context = await _listing(documents, uow_factory, viewer, query)
    context["notice"] = aviso
    context["collections"] = await documents.collections(uow_factory(), viewer.access)
    context["statuses"] = [s.value for s in IngestionStatus]
    return page(request, "documents.html", context)


@router.get(f"{BASE}/documentos/linhas")
@inject
async def document_rows(
    request: Request,
    viewer: ViewerDep,
    uow_factory: UowFactory,
    query: Annotated[ListingQuery, Depends()],
    documents: Documents = Depends(Provide[Container.documents]),
) -> Response:
    """The table's rows alone: the page polls them while a document is in flight."""
    context = await _listing(documents, uow_factory, viewer, query)
    return page(request, "_rows.html", context)


@router.get(f"{BASE}/documentos/{{document_id}}")
@inject
async def document_page(
    request: Request,
    document_id: uuid.UUID,
    viewer: ViewerDep,
    uow_factory: UowFactory,
    aviso: Annotated[str | None, Query(max_length=300)] = None,
    documents: Documents = Depends(Provide[Container.documents]),
) -> Response:
    try:
        view = await documents.get(document_id, uow_factory(), viewer.access)
        versions = await documents.versions(document_id, uow_factory(), viewer.access)
        chunks = await documents.chunks(document_id, -1, 50, uow_factory(), viewer.access)
    except DomainError:
        return page(
            request, "error.html", {"viewer": viewer, "message": "Documento não encontrado."}, 404
        )
    return page(
        request,
        "document.html",
        {
            "viewer": viewer,
            "view": view,
            "doc": view.document,
            "job": view.job,
            "versions": versions,
            "chunks": chunks,
            "notice": aviso,
            "metadata_json": json.dumps(view.document.metadata, ensure_ascii=False, indent=2),
            "in_flight": bool(view.job and view.job.status in IN_FLIGHT),
        },
    )


# -- search -----------------------------------------------------------------------------


@router.get(f"{BASE}/busca")
@inject
async def search_page(
    request: Request,
    viewer: ViewerDep,
    uow_factory: UowFactory,
    q: Annotated[str | None, Query(max_length=2000)] = None,
    modo: Annotated[str, Query(max_length=10)] = "hybrid",
    colecao: Annotated[str | None, Query(max_length=100)] = None,
    metadados: Annotated[str | None, Query(max_length=2000)] = None,
    search: SearchChunksHandler = Depends(Provide[Container.search]),
    documents: Documents = Depends(Provide[Container.documents]),
) -> Response:
    result, error = None, None
    if q and q.strip():
        try:
            mode = SearchMode(modo)
            flt = SearchFilter(
                collection=colecao or None, metadata=metadata_object(metadados) or {}
            )
            result = await search(
                SearchChunks(q, top_k=10, mode=mode, filter=flt, access=viewer.access),
                uow_factory(),
            )
        except ValueError:
            error = "modo de busca inválido"
        except DomainError as exc:
            error = exc.reason
    collections = await documents.collections(uow_factory(), viewer.access)
    return page(
        request,
        "search.html",
        {
            "viewer": viewer,
            "result": result,
            "error": error,
            "collections": collections,
            "form": {
                "q": q or "",
                "modo": modo,
                "colecao": colecao or "",
                "metadados": metadados or "",
            },
            "modes": [
                ("hybrid", "híbrida"),
                ("vector", "semântica"),
                ("keyword", "palavras-chave"),
            ],
        },
    )

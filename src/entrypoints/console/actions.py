"""The console's actions (POST, each with the session's CSRF token): upload, delete,
reprocess, cancel, retry, edit metadata. Each runs the same use case the REST route
runs, with the signed-in key's scopes and collections; a refusal comes back as a
notice on the page it came from, never as a half-done change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import PlainTextResponse, Response

from application.ports import UnitOfWorkFactory
from application.use_cases.document_lifecycle import DocumentLifecycle
from application.use_cases.documents import Documents
from application.use_cases.enqueue_document import EnqueueDocument, EnqueueDocumentHandler
from application.use_cases.jobs import Jobs
from domain.api_keys import Scope
from domain.errors import DomainError, InvalidInput
from entrypoints.api.deps import read_upload_form
from entrypoints.api.injection import Provide, inject
from entrypoints.api.problems import ApiProblem
from entrypoints.console.pages import UowFactory, ViewerDep
from entrypoints.console.web import (
    BASE,
    SECURITY_HEADERS,
    Viewer,
    check_csrf,
    metadata_object,
    redirect,
)
from entrypoints.container import Container
from entrypoints.settings import Settings

router = APIRouter(include_in_schema=False)
Csrf = Annotated[str, Form(max_length=200)]


def diff_patch(old: dict[str, object], new: dict[str, object]) -> dict[str, object]:
    """The JSON merge patch (RFC 7396) that turns `old` into `new`."""
    patch: dict[str, object] = {k: None for k in old if k not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = diff_patch(before, value)
        else:
            patch[key] = value
    return patch


def _back(document_id: uuid.UUID | None, notice: str) -> Response:
    where = f"{BASE}/documentos/{document_id}" if document_id else f"{BASE}/documentos"
    return redirect(f"{where}?aviso={quote(notice)}")


def _refused(status: int, message: str) -> PlainTextResponse:
    # plain text: the message may quote a file name, never markup
    return PlainTextResponse(message, status_code=status, headers=SECURITY_HEADERS)


@router.post(f"{BASE}/enviar")
@inject
async def upload(
    request: Request,
    viewer: ViewerDep,
    uow_factory: UowFactory,
    handler: EnqueueDocumentHandler = Depends(Provide[Container.enqueue_document]),
    settings: Settings = Depends(Provide[Container.settings]),
) -> Response:
    """One file per request (the page's script sends each dropped file on its own); the
    CSRF token in the X-CSRF-Token header. Answers a line of text for the page."""
    check_csrf(viewer.session.csrf, request.headers.get("x-csrf-token"))
    if not viewer.can_ingest:
        return _refused(403, "esta chave não pode enviar documentos (escopo ingest)")
    try:
        form = await read_upload_form(
            request, settings.max_upload_bytes, settings.max_metadata_bytes
        )
        result = await handler(
            EnqueueDocument(
                data=form.data,
                filename=form.filename,
                declared_type=form.content_type,
                collection=form.collection or None,
                metadata=metadata_object(form.metadata_json) or {},
                client_id=viewer.client_id,
                access=viewer.access,
            ),
            uow_factory(),
        )
    except DomainError as exc:
        return _refused(422, exc.reason)
    except ApiProblem as exc:
        return _refused(exc.status, exc.detail)
    verb = "enviado" if result.created else "já existia (mesmo conteúdo)"
    return PlainTextResponse(
        f"{result.document.filename}: {verb}", status_code=201, headers=SECURITY_HEADERS
    )


@dataclass(frozen=True)
class _Action:
    scope: Scope
    refused: str  # what the page says to a key without the scope
    done: str  # what it says after


_ACTIONS = {
    "excluir": _Action(
        Scope.ADMIN, "Excluir exige uma chave de administração.", "Documento excluído."
    ),
    "reprocessar": _Action(
        Scope.ADMIN,
        "Reprocessar exige uma chave de administração.",
        "Documento na fila de novo; os trechos atuais respondem até lá.",
    ),
    "cancelar": _Action(
        Scope.INGEST, "Cancelar exige o escopo ingest.", "Processamento cancelado."
    ),
    "tentar-de-novo": _Action(
        Scope.ADMIN,
        "Tentar de novo exige uma chave de administração.",
        "Documento na fila de novo.",
    ),
}


@router.post(f"{BASE}/documentos/{{document_id}}/{{action}}")
@inject
async def act(
    document_id: uuid.UUID,
    action: str,
    viewer: ViewerDep,
    uow_factory: UowFactory,
    csrf: Csrf = "",
    metadados: Annotated[str, Form(max_length=20_000)] = "{}",
    lifecycle: DocumentLifecycle = Depends(Provide[Container.document_lifecycle]),
    documents: Documents = Depends(Provide[Container.documents]),
    jobs: Jobs = Depends(Provide[Container.jobs]),
) -> Response:
    """A button on a document's page: delete, reprocess, cancel, retry, or save the
    metadata; the same use cases as the REST routes, with the key's scopes."""
    check_csrf(viewer.session.csrf, csrf)
    if action == "metadados":
        return await _edit_metadata(document_id, viewer, uow_factory, metadados, documents)
    spec = _ACTIONS.get(action)
    if spec is None:
        return _refused(404, "ação desconhecida")
    if not viewer.key.allows(spec.scope):
        return _back(document_id, spec.refused)
    try:
        if action == "excluir":
            await lifecycle.delete(document_id, uow_factory(), access=viewer.access)
            return _back(None, spec.done)
        if action == "reprocessar":
            await lifecycle.reprocess(document_id, uow_factory(), viewer.access)
        elif action == "cancelar":
            await lifecycle.cancel(document_id, uow_factory(), viewer.access)
        else:
            view = await documents.get(document_id, uow_factory(), viewer.access)
            if view.job is None:
                raise InvalidInput("o documento não tem tarefa")
            await jobs.retry(view.job.id, uow_factory(), viewer.access)
    except DomainError as exc:
        return _back(document_id, exc.reason)
    return _back(document_id, spec.done)


async def _edit_metadata(
    document_id: uuid.UUID,
    viewer: Viewer,
    uow_factory: UnitOfWorkFactory,
    metadados: str,
    documents: Documents,
) -> Response:
    """The metadata as edited (the whole object): keys removed in the form are removed."""
    if not viewer.can_ingest:
        return _back(document_id, "Editar metadados exige o escopo ingest.")
    try:
        wanted = metadata_object(metadados) or {}
        view = await documents.get(document_id, uow_factory(), viewer.access)
        patch = diff_patch(view.document.metadata, wanted)
        await documents.update_metadata(document_id, patch, uow_factory(), viewer.access)
    except DomainError as exc:
        return _back(document_id, f"{exc.reason}; nada mudou.")
    return _back(document_id, "Metadados salvos.")

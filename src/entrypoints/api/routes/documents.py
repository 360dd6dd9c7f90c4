"""/v1/documents: upload (multipart or text), status, listing, deletion, reprocessing."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from adapters.metrics import DOCUMENTS_ACCEPTED
from application.ports import DocumentFilter, DocumentView
from application.use_cases.documents import Documents
from application.use_cases.enqueue_document import (
    EnqueueDocument,
    EnqueueDocumentHandler,
    EnqueueResult,
)
from domain.api_keys import Scope
from domain.errors import InvalidInput
from domain.model import IngestionStatus
from entrypoints.api.deps import Principal, UnitOfWorkDep, read_upload_form, require
from entrypoints.api.injection import Provide, inject
from entrypoints.api.schemas import (
    DocumentOut,
    DocumentPage,
    JobOut,
    Problem,
    TextDocumentIn,
    decode_cursor,
    encode_cursor,
)
from entrypoints.container import Container
from entrypoints.settings import Settings

router = APIRouter(prefix="/v1/documents", tags=["documents"])

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 413, 415, 422, 429)
}
_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 422, 429)
}

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "PDF, DOCX, HTML, Markdown or plain text",
                        },
                        "collection": {
                            "type": "string",
                            "pattern": "^[a-z0-9][a-z0-9_.-]{0,99}$",
                            "description": "defaults to 'default'",
                        },
                        "metadata": {"type": "string", "description": "a JSON object"},
                    },
                }
            }
        },
    }
}


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidInput(
            "Idempotency-Key must be 1-200 visible ASCII characters", field="Idempotency-Key"
        )
    return value


def _parse_metadata(raw: str | None) -> dict[str, Any]:
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc}", field="metadata") from exc
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object", field="metadata")
    return value


def _answer(result: EnqueueResult, response: Response, request: Request) -> DocumentOut:
    if result.created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = str(
            request.url_for("get_document", document_id=result.document.id)
        )
    else:
        response.status_code = status.HTTP_200_OK
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    DOCUMENTS_ACCEPTED.labels(
        result.document.collection, "created" if result.created else "existing"
    ).inc()
    return DocumentOut.of(DocumentView(result.document, result.job))


@router.post(
    "",
    response_model=DocumentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a document (multipart/form-data)",
    description=(
        "Stores the document, its bytes and a PENDING ingestion job in one transaction. "
        "201 for a new document; 200 with the existing document when the same content "
        "is already in the collection (no second job)."
    ),
    responses={200: {"model": DocumentOut}, **_ERRORS},
    openapi_extra=_UPLOAD_BODY,
)
@inject
async def upload_document(
    request: Request,
    response: Response,
    uow: UnitOfWorkDep,
    principal: Annotated[Principal, Depends(require(Scope.INGEST))],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    handler: EnqueueDocumentHandler = Depends(Provide[Container.enqueue_document]),
    settings: Settings = Depends(Provide[Container.settings]),
) -> DocumentOut:
    key = _idempotency_key(idempotency_key)
    form = await read_upload_form(request, settings.max_upload_bytes, settings.max_metadata_bytes)
    result = await handler(
        EnqueueDocument(
            data=form.data,
            filename=form.filename,
            declared_type=form.content_type,
            collection=form.collection,
            metadata=_parse_metadata(form.metadata_json),
            client_id=principal.client_id,
            idempotency_key=key,
        ),
        uow,
    )
    return _answer(result, response, request)


_FORMAT_TYPES = {"text": "text/plain", "markdown": "text/markdown", "html": "text/html"}
_FORMAT_NAMES = {"text": "texto.txt", "markdown": "texto.md", "html": "texto.html"}


@router.post(
    "/text",
    response_model=DocumentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Submit a document as raw text (JSON)",
    responses={200: {"model": DocumentOut}, **_ERRORS},
)
@inject
async def submit_text(
    body: TextDocumentIn,
    request: Request,
    response: Response,
    uow: UnitOfWorkDep,
    principal: Annotated[Principal, Depends(require(Scope.INGEST))],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    handler: EnqueueDocumentHandler = Depends(Provide[Container.enqueue_document]),
    settings: Settings = Depends(Provide[Container.settings]),
) -> DocumentOut:
    key = _idempotency_key(idempotency_key)
    if len(body.text) > settings.max_text_chars:
        raise InvalidInput(
            f"the text has {len(body.text)} characters; the limit is {settings.max_text_chars}",
            field="text",
        )
    try:
        data = body.text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates from JSON escapes
        raise InvalidInput("the text is not valid Unicode", field="text") from exc
    filename = body.filename or _FORMAT_NAMES[body.format]
    if "." not in filename.rsplit("/", 1)[-1]:
        filename += "." + _FORMAT_NAMES[body.format].rsplit(".", 1)[1]
    result = await handler(
        EnqueueDocument(
            data=data,
            filename=filename,
            declared_type=_FORMAT_TYPES[body.format],
            collection=body.collection,
            metadata=body.metadata,
            client_id=principal.client_id,
            idempotency_key=key,
        ),
        uow,
    )
    return _answer(result, response, request)


@router.get(
    "/{document_id}",
    response_model=DocumentOut,
    summary="A document and its ingestion status",
    responses=_READ_ERRORS,
)
@inject
async def get_document(
    document_id: uuid.UUID,
    uow: UnitOfWorkDep,
    _: Annotated[Principal, Depends(require(Scope.READ))],
    documents: Documents = Depends(Provide[Container.documents]),
) -> DocumentOut:
    return DocumentOut.of(await documents.get(document_id, uow))


@router.get("", response_model=DocumentPage, summary="List documents", responses=_READ_ERRORS)
@inject
async def list_documents(
    uow: UnitOfWorkDep,
    _: Annotated[Principal, Depends(require(Scope.READ))],
    collection: Annotated[
        str | None, Query(max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    ] = None,
    status_: Annotated[IngestionStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    documents: Documents = Depends(Provide[Container.documents]),
) -> DocumentPage:
    views = await documents.list(
        DocumentFilter(
            collection=collection, status=status_, limit=limit, after=decode_cursor(cursor)
        ),
        uow,
    )
    last = views[-1].document if len(views) == limit else None
    return DocumentPage(
        items=[DocumentOut.of(v) for v in views],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.delete(
    "/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a document with its bytes, chunks and vectors",
    responses=_READ_ERRORS,
)
@inject
async def delete_document(
    document_id: uuid.UUID,
    uow: UnitOfWorkDep,
    _: Annotated[Principal, Depends(require(Scope.ADMIN))],
    documents: Documents = Depends(Provide[Container.documents]),
) -> Response:
    await documents.delete(document_id, uow)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{document_id}/reprocess",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a COMPLETED or FAILED document again",
    responses={**_READ_ERRORS, 409: {"model": Problem}},
)
@inject
async def reprocess_document(
    document_id: uuid.UUID,
    uow: UnitOfWorkDep,
    _: Annotated[Principal, Depends(require(Scope.ADMIN))],
    documents: Documents = Depends(Provide[Container.documents]),
) -> JobOut:
    return JobOut.of(await documents.reprocess(document_id, uow))

"""/v1/documents: upload (multipart or text), status, listing, versions, chunks,
metadata changes, deletion, cancelling and reprocessing."""

from __future__ import annotations

import json
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from adapters.metrics import DOCUMENTS_ACCEPTED
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import DocumentFilter, DocumentView
from application.use_cases.document_lifecycle import DocumentLifecycle
from application.use_cases.documents import Documents
from application.use_cases.enqueue_document import (
    EnqueueDocument,
    EnqueueDocumentHandler,
    EnqueueResult,
)
from application.use_cases.search import Expand
from domain.api_keys import Scope
from domain.errors import InvalidInput
from domain.model import IngestionStatus
from entrypoints.api.deps import (
    SECURITY,
    DbSession,
    Principal,
    UnitOfWorkDep,
    caller,
    read_upload_form,
    require,
)
from entrypoints.api.injection import Provide, inject
from entrypoints.api.schemas import (
    ChunkPage,
    DocumentOut,
    DocumentPage,
    DocumentPatchIn,
    JobOut,
    Problem,
    SearchHitOut,
    TextDocumentIn,
    VersionsOut,
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
                        "batch": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$",
                            "description": "an ingest batch label, to watch the uploads "
                            "as one (GET /v1/changes?batch=...)",
                        },
                        "source_key": {
                            "type": "string",
                            "maxLength": 1000,
                            "description": "the document's identity in its collection "
                            "(a path, a code): new content under the same key is a new "
                            "version of it. Default: the norm's identity for legal acts, "
                            "else the content's hash",
                        },
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
        # the stdlib parser, as for JSON bodies: integers stay exact (orjson would turn
        # a 30-digit one into a float) and NaN / Infinity reach the same check
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc}", field="metadata") from exc
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object", field="metadata")
    return value


def _answer(
    result: EnqueueResult, request: Request, principal: Principal
) -> tuple[int, dict[str, str], DocumentOut]:
    """An accepted upload's status, headers and body."""
    headers: dict[str, str] = {}
    if result.created:
        code = status.HTTP_201_CREATED
        # a relative reference (RFC 9110 allows it): url_for walked every route per upload
        root = request.scope.get("root_path", "")
        headers["Location"] = f"{root}{router.prefix}/{result.document.id}"
    else:
        code = status.HTTP_200_OK
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    DOCUMENTS_ACCEPTED.labels("created" if result.created else "existing").inc()
    out = DocumentOut.of(DocumentView(result.document, result.job), principal.internals)
    out.metadata_updated = result.metadata_updated
    return code, headers, out


# what the upload's one dependency leaves out of its signature, for the API's description
_UPLOAD_DOCS: dict[str, Any] = {
    **_UPLOAD_BODY,
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": _IDEMPOTENCY_KEY.pattern},
            "description": "the same key with the same upload within 24 hours answers "
            "the first response again (Idempotent-Replayed: true); with another upload, "
            "an error",
        }
    ],
    "security": SECURITY,
}


@router.post(
    "",
    response_model=DocumentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a document (multipart/form-data)",
    description=(
        "Stores the document, its bytes and a PENDING ingestion job in one transaction. "
        "201 for a new document or a new version of its `source_key`; 200 with the "
        "existing version when the key already holds the same content (no second job; "
        "metadata sent is merged into it and `metadata_updated` says so)."
    ),
    responses={200: {"model": DocumentOut}, **_ERRORS},
    openapi_extra=_UPLOAD_DOCS,
)
async def upload_document(request: Request, db: DbSession) -> Response:
    # the busiest route has one dependency, the seed's session (`Depends(get_db)`): the
    # caller, the Idempotency-Key and the handler are read here, not resolved by
    # FastAPI, and the answer is written here (profiled: dependency resolution and
    # the response model's pass were a fifth of an upload's API CPU)
    principal = await caller(request, Scope.INGEST)
    key = _idempotency_key(request.headers.get("idempotency-key"))
    container: Container = request.app.state.container
    handler = container.enqueue_document()
    limits = handler.limits  # the settings' upload limits, without another dependency
    form = await read_upload_form(request, limits.max_bytes, limits.max_metadata_bytes)
    result = await handler(
        EnqueueDocument(
            data=form.data,
            filename=form.filename,
            declared_type=form.content_type,
            collection=form.collection,
            metadata=_parse_metadata(form.metadata_json),
            client_id=principal.client_id,
            idempotency_key=key,
            source_key=form.source_key,
            batch=form.batch,
            access=principal.access,
        ),
        SqlAlchemyUnitOfWork(session=db),
    )
    code, headers, out = _answer(result, request, principal)
    return Response(
        out.model_dump_json(by_alias=True), code, headers, media_type="application/json"
    )


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
            source_key=body.source_key,
            batch=body.batch,
            access=principal.access,
        ),
        uow,
    )
    response.status_code, headers, out = _answer(result, request, principal)
    response.headers.update(headers)
    return out


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
    who: Annotated[Principal, Depends(require(Scope.READ))],
    documents: Documents = Depends(Provide[Container.documents]),
) -> DocumentOut:
    return DocumentOut.of(await documents.get(document_id, uow, who.access), who.internals)


@router.get("", response_model=DocumentPage, summary="List documents", responses=_READ_ERRORS)
@inject
async def list_documents(
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.READ))],
    collection: Annotated[
        str | None, Query(max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    ] = None,
    status_: Annotated[IngestionStatus | None, Query(alias="status")] = None,
    source_key: Annotated[str | None, Query(max_length=1000)] = None,
    include_superseded: Annotated[
        bool, Query(description="also list versions a newer one replaced")
    ] = False,
    ids: Annotated[
        list[uuid.UUID] | None, Query(max_length=200, description="only these documents")
    ] = None,
    batch: Annotated[
        str | None,
        Query(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"),
    ] = None,
    metadata: Annotated[
        str | None,
        Query(
            max_length=4096,
            description='a JSON object the metadata must hold, e.g. {"orgao": "COGEP"}',
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    documents: Documents = Depends(Provide[Container.documents]),
) -> DocumentPage:
    views = await documents.listing(
        DocumentFilter(
            collection=collection,
            status=status_,
            source_key=source_key,
            include_superseded=include_superseded,
            ids=tuple(ids or ()),
            batch=batch,
            metadata=_parse_metadata(metadata) or None,
            limit=limit,
            after=decode_cursor(cursor),
        ),
        uow,
        who.access,
    )
    last = views[-1].document if len(views) == limit else None
    return DocumentPage(
        items=[DocumentOut.of(v, who.internals) for v in views],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.get(
    "/{document_id}/versions",
    response_model=VersionsOut,
    summary="Every version of the document's source key, newest first",
    responses=_READ_ERRORS,
)
@inject
async def document_versions(
    document_id: uuid.UUID,
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.READ))],
    documents: Documents = Depends(Provide[Container.documents]),
) -> VersionsOut:
    views = await documents.versions(document_id, uow, who.access)
    first = next(v.document for v in views if v.document.id == document_id)
    return VersionsOut(
        collection=first.collection,
        source_key=first.source_key,
        current=next((v.document.id for v in views if v.document.is_current), None),
        versions=[DocumentOut.of(v, who.internals) for v in views],
    )


@router.get(
    "/{document_id}/chunks",
    response_model=ChunkPage,
    summary="The document's chunks in order, with what to cite (a preview of its text)",
    responses=_READ_ERRORS,
)
@inject
async def document_chunks(
    document_id: uuid.UUID,
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.READ))],
    after: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    expand: Annotated[
        Expand, Query(description="`article`: each chunk also carries its whole article")
    ] = Expand.NONE,
    documents: Documents = Depends(Provide[Container.documents]),
) -> ChunkPage:
    hits = await documents.chunks(
        document_id, after, limit, uow, who.access, whole_articles=expand is Expand.ARTICLE
    )
    return ChunkPage(
        items=[SearchHitOut.of(h) for h in hits],
        next_after=hits[-1].position if len(hits) == limit else None,
    )


@router.patch(
    "/{document_id}",
    response_model=DocumentOut,
    summary="Change a document's metadata without reprocessing it",
    description="A JSON merge patch of the metadata (RFC 7396). Search filters see the "
    "new values at once; nothing is extracted or embedded again.",
    responses=_READ_ERRORS,
)
@inject
async def patch_document(
    document_id: uuid.UUID,
    body: DocumentPatchIn,
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.INGEST))],
    documents: Documents = Depends(Provide[Container.documents]),
) -> DocumentOut:
    view = await documents.update_metadata(document_id, body.metadata, uow, who.access)
    return DocumentOut.of(view, who.internals)


@router.post(
    "/{document_id}/cancel",
    response_model=DocumentOut,
    summary="Stop a PENDING or PROCESSING document",
    description="The job becomes FAILED (cancelled) at once; a worker holding it stops "
    "within an embedding slice and writes nothing. A chunk set stored earlier stays "
    "current. 409 when the job already finished.",
    responses={**_READ_ERRORS, 409: {"model": Problem}},
)
@inject
async def cancel_document(
    document_id: uuid.UUID,
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.INGEST))],
    lifecycle: DocumentLifecycle = Depends(Provide[Container.document_lifecycle]),
) -> DocumentOut:
    return DocumentOut.of(await lifecycle.cancel(document_id, uow, who.access), who.internals)


@router.delete(
    "/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a version (or all versions) with its bytes, chunks and vectors",
    description="Deleting the current version makes the newest earlier version with a "
    "chunk set current again. `all_versions=true` removes every version of the key. A "
    "worker processing a deleted version stops within an embedding slice.",
    responses=_READ_ERRORS,
)
@inject
async def delete_document(
    document_id: uuid.UUID,
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.ADMIN))],
    all_versions: Annotated[bool, Query(description="every version of the key")] = False,
    lifecycle: DocumentLifecycle = Depends(Provide[Container.document_lifecycle]),
) -> Response:
    await lifecycle.delete(document_id, uow, all_versions=all_versions, access=who.access)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{document_id}/reprocess",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a COMPLETED or FAILED document again",
    description="Its current chunk set keeps answering until the new one is stored; if "
    "the reprocess fails, the old chunk set stays and the job shows the failure.",
    responses={**_READ_ERRORS, 409: {"model": Problem}},
)
@inject
async def reprocess_document(
    document_id: uuid.UUID,
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.ADMIN))],
    lifecycle: DocumentLifecycle = Depends(Provide[Container.document_lifecycle]),
) -> JobOut:
    return JobOut.of(await lifecycle.reprocess(document_id, uow, who.access), who.internals)

"""/v1/changes: what changed among many documents, by long-poll (WatchDocuments)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from application.use_cases.watch_documents import WatchDocuments, WatchDocumentsHandler
from domain.api_keys import Scope
from entrypoints.api.deps import Principal, require
from entrypoints.api.injection import Provide, inject
from entrypoints.api.schemas import (
    BatchSummaryOut,
    ChangesOut,
    DocumentChangeOut,
    Problem,
    decode_cursor,
    encode_cursor,
)
from entrypoints.container import Container

router = APIRouter(prefix="/v1/changes", tags=["documents"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 422, 429)
}


@router.get(
    "",
    response_model=ChangesOut,
    summary="Documents whose status changed after a cursor (long-poll)",
    description="Answers as soon as a document's job changed (status, stage, attempts, "
    "error) after `after`, or when `wait` seconds pass with nothing new. Pass the "
    "returned `cursor` back as `after`. With `batch`, only that ingest batch, and "
    "`summary` holds its counts, computed afresh on every answer. Changes are listed "
    "about a second after they happen (once surely committed), never skipped.",
    responses=_ERRORS,
)
@inject
async def changes(
    who: Annotated[Principal, Depends(require(Scope.READ))],
    after: Annotated[str | None, Query(max_length=200)] = None,
    batch: Annotated[
        str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    ] = None,
    collection: Annotated[
        str | None, Query(max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    ] = None,
    wait: Annotated[float, Query(ge=0, le=30)] = 0.0,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    watch: WatchDocumentsHandler = Depends(Provide[Container.watch_documents]),
) -> ChangesOut:
    result = await watch(
        WatchDocuments(
            after=decode_cursor(after),
            batch=batch,
            collection=collection,
            wait_s=wait,
            limit=limit,
            access=who.access,
        )
    )
    summary = None
    if result.summary is not None:
        s = result.summary
        summary = BatchSummaryOut(
            total=s.total,
            finished=s.finished,
            by_status={k.value: v for k, v in s.by_status.items()},
            chunks=s.chunks,
        )
    return ChangesOut(
        items=[DocumentChangeOut.of(c.view) for c in result.changes],
        cursor=encode_cursor(*result.cursor) if result.cursor else None,
        summary=summary,
    )

"""/v1/search: Portuguese questions over the indexed chunks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from application.use_cases.enqueue_document import validate_metadata
from application.use_cases.search import SearchChunks, SearchChunksHandler
from domain.api_keys import Scope
from domain.search import SearchFilter
from entrypoints.api.deps import Principal, UnitOfWorkDep, require
from entrypoints.api.injection import Provide, inject
from entrypoints.api.schemas import Problem, SearchHitOut, SearchIn, SearchOut
from entrypoints.container import Container
from entrypoints.settings import Settings

router = APIRouter(prefix="/v1", tags=["search"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 422, 429, 503)
}


@router.post(
    "/search",
    response_model=SearchOut,
    summary="Search the indexed chunks (vector, keyword or hybrid)",
    description=(
        "`vector`: the query embedded with the model's query prefix, cosine distance over "
        "HNSW. `keyword`: PostgreSQL full-text search with the Portuguese configuration, "
        "accents ignored, any of the words. `hybrid` (default): reciprocal rank fusion of "
        "both. Filters (collection, documents, metadata containment) never reduce the "
        "number of results below `top_k` when that many chunks match."
    ),
    responses=_ERRORS,
)
@inject
async def search(
    body: SearchIn,
    uow: UnitOfWorkDep,
    principal: Annotated[Principal, Depends(require(Scope.READ))],
    handler: SearchChunksHandler = Depends(Provide[Container.search]),
    settings: Settings = Depends(Provide[Container.settings]),
) -> SearchOut:
    metadata = validate_metadata(body.metadata, settings.max_metadata_bytes)
    result = await handler(
        SearchChunks(
            query=body.query,
            top_k=body.top_k,
            mode=body.mode,
            filter=SearchFilter(
                body.collection,
                tuple(body.document_ids),
                metadata,
                include_superseded=body.include_superseded,
            ),
            expand=body.expand,
            access=principal.access,
        ),
        uow,
    )
    return SearchOut(
        query=result.query,
        mode=result.mode,
        model=result.model_name,
        took_ms=round(result.took_ms, 2),
        results=[SearchHitOut.of(h) for h in result.hits],
    )

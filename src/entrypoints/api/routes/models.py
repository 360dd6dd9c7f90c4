"""/v1/reembed: move the stored chunks to the configured embedding model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, status

from application.use_cases.reembed import ReembedChunks, ReembedChunksHandler
from domain.api_keys import Scope
from entrypoints.api.deps import Principal, UnitOfWorkDep, require
from entrypoints.api.injection import Provide, inject
from entrypoints.api.schemas import Problem, ReembedIn, ReembedOut
from entrypoints.container import Container

router = APIRouter(tags=["embedding models"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 422, 429)
}


@router.post(
    "/v1/reembed",
    response_model=ReembedOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Re-embed every current chunk set into the configured model, in the background",
    responses=_ERRORS,
)
@inject
async def reembed(
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.ADMIN))],
    body: Annotated[ReembedIn, Body()] = ReembedIn(),
    handler: ReembedChunksHandler = Depends(Provide[Container.reembed]),
) -> ReembedOut:
    done = await handler(ReembedChunks(body.collection, who.access), uow)
    return ReembedOut(model=done.model, dim=done.dimension, queued=done.queued)

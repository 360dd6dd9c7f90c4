"""/v1/collections: the collections the caller's key reaches, with their counts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from application.use_cases.documents import Documents
from domain.api_keys import Scope
from entrypoints.api.deps import Principal, UnitOfWorkDep, require
from entrypoints.api.injection import Provide, inject
from entrypoints.api.schemas import CollectionOut, CollectionPage, Problem
from entrypoints.container import Container

router = APIRouter(prefix="/v1/collections", tags=["documents"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 429)
}


@router.get(
    "",
    response_model=CollectionPage,
    summary="The collections this key reaches, with their documents and chunks",
    responses=_ERRORS,
)
@inject
async def list_collections(
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.READ))],
    documents: Documents = Depends(Provide[Container.documents]),
) -> CollectionPage:
    found = await documents.collections(uow, who.access)
    return CollectionPage(
        items=[CollectionOut(name=c.name, documents=c.documents, chunks=c.chunks) for c in found]
    )

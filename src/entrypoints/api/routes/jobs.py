"""/v1/jobs: the queue, and manual retries of FAILED jobs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from application.use_cases.jobs import Jobs
from domain.api_keys import Scope
from domain.model import IngestionStatus
from entrypoints.api.deps import Principal, UnitOfWorkDep, require
from entrypoints.api.injection import Provide, inject
from entrypoints.api.schemas import JobOut, JobPage, Problem, decode_cursor, encode_cursor
from entrypoints.container import Container

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 422, 429)
}


@router.get("", response_model=JobPage, summary="List ingestion jobs", responses=_ERRORS)
@inject
async def list_jobs(
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.READ))],
    status_: Annotated[IngestionStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    jobs: Jobs = Depends(Provide[Container.jobs]),
) -> JobPage:
    items = await jobs.list(status_, limit, decode_cursor(cursor), uow, who.access)
    last = items[-1] if len(items) == limit else None
    return JobPage(
        items=[JobOut.of(j, who.internals) for j in items],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.get("/{job_id}", response_model=JobOut, summary="One job", responses=_ERRORS)
@inject
async def get_job(
    job_id: uuid.UUID,
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.READ))],
    jobs: Jobs = Depends(Provide[Container.jobs]),
) -> JobOut:
    return JobOut.of(await jobs.get(job_id, uow, who.access), who.internals)


@router.post(
    "/{job_id}/retry",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a FAILED job again (attempts start over)",
    responses={**_ERRORS, 409: {"model": Problem}},
)
@inject
async def retry_job(
    job_id: uuid.UUID,
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.ADMIN))],
    jobs: Jobs = Depends(Provide[Container.jobs]),
) -> JobOut:
    return JobOut.of(await jobs.retry(job_id, uow, who.access), who.internals)

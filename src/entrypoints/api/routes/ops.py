"""Operations: liveness, readiness, Prometheus metrics and queue statistics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters import metrics
from adapters.postgres.database import ping
from adapters.postgres.migrations import current_revisions, head_revisions
from adapters.queue.celery_doorbell import CoalescingDoorbell
from application.use_cases.search import SearchChunksHandler
from application.use_cases.stats import GetStats, Stats
from domain.api_keys import Scope
from entrypoints.api.deps import (
    Principal,
    UnitOfWorkDep,
    metrics_caller,
    require,
    require_every_collection,
)
from entrypoints.api.injection import Provide, inject
from entrypoints.api.schemas import HealthOut, ModelCount, StatsOut
from entrypoints.container import Container

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

_HEADS: set[str] | None = None


def _heads() -> set[str]:
    global _HEADS
    if _HEADS is None:
        _HEADS = head_revisions()
    return _HEADS


@router.get("/healthz", response_model=HealthOut, summary="Liveness: the process answers")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=HealthOut,
    summary="Readiness: database reachable and migrated to head, Redis reachable",
    responses={503: {"model": HealthOut}},
)
@inject
async def readyz(
    response: Response,
    engine: AsyncEngine = Depends(Provide[Container.engine]),
    doorbell: CoalescingDoorbell = Depends(Provide[Container.api_doorbell]),
) -> HealthOut:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(ping(engine), 3)
        current = await current_revisions(engine)
        heads = _heads()
        checks["database"] = "ok"
        checks["migrations"] = (
            "ok" if current == heads else f"at {sorted(current) or 'none'}, head is {sorted(heads)}"
        )
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    backlog = await doorbell.backlog()
    checks["redis"] = "ok" if backlog is not None else "unreachable"
    ok = all(v == "ok" for v in checks.values())
    if not ok:
        response.status_code = 503
    return HealthOut(status="ok" if ok else "unavailable", checks=checks)


async def _stats(
    request: Request, get_stats: GetStats, uow: UnitOfWorkDep, max_age_s: float = 0.0
) -> Stats:
    """The statistics, at most ``max_age_s`` old; cached per app (a process may serve
    several, as the tests do, each over its own database)."""
    now = time.monotonic()
    cached: tuple[float, Stats] | None = getattr(request.app.state, "stats_cache", None)
    if cached is not None and now - cached[0] < max_age_s:
        return cached[1]
    stats = await get_stats(uow)
    request.app.state.stats_cache = (now, stats)
    return stats


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
@inject
async def prometheus_metrics(
    request: Request,
    uow: UnitOfWorkDep,
    _: Annotated[None, Depends(metrics_caller)],
    get_stats: GetStats = Depends(Provide[Container.get_stats]),
) -> Response:
    try:  # queue depth comes from the database; cached so many scrapers stay cheap
        stats = await _stats(request, get_stats, uow, max_age_s=5.0)
        for status, count in stats.jobs_by_status.items():
            metrics.QUEUE_JOBS.labels(status.value).set(count)
        metrics.QUEUE_READY.set(stats.ready)
        metrics.QUEUE_OLDEST_PENDING.set(stats.oldest_pending_age_s or 0)
        metrics.QUEUE_STALLED.set(stats.stalled)
        for (model, dim), n in stats.chunks_by_model.items():
            metrics.CHUNKS_BY_MODEL.labels(model, str(dim)).set(n)
    except Exception as exc:  # metrics of the process itself are still worth serving
        log.warning("queue metrics unavailable: %s", exc)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def model_warnings(
    chunks_by_model: Mapping[tuple[str, int], int],
    model: str,
    dim: int,
    previous: frozenset[str] = frozenset(),
) -> list[str]:
    """Chunks of another model: answering through the previous model's query embedder
    while `reembed` runs, or invisible to vector searches (a query vector is only
    comparable with vectors of its own model)."""
    warnings = []
    for (other, other_dim), n in sorted(chunks_by_model.items()):
        if (other, other_dim) == (model, dim) or n <= 0:
            continue
        head = (
            f"{n:,} chunks belong to the model {other} ({other_dim} dimensions), not the "
            f"configured {model} ({dim}): "
        )
        if other in previous:
            warnings.append(
                head + "they answer through the previous model until re-embedded "
                "(`cogep-ingest reembed`)."
            )
        else:
            warnings.append(
                head + "vector and hybrid searches do not see them. Run `cogep-ingest "
                f"reembed`, or set COGEP_PREVIOUS_EMBEDDING to {other} meanwhile."
            )
    return warnings


@router.get("/v1/stats", response_model=StatsOut, summary="Queue and index statistics")
@inject
async def stats(
    request: Request,
    uow: UnitOfWorkDep,
    who: Annotated[Principal, Depends(require(Scope.READ))],
    get_stats: GetStats = Depends(Provide[Container.get_stats]),
    search: SearchChunksHandler = Depends(Provide[Container.search]),
) -> StatsOut:
    require_every_collection(who, "the queue statistics")
    s = await _stats(request, get_stats, uow)
    model, dim = search.embedder.model_name, search.embedder.dimension
    return StatsOut(
        embedding_model=ModelCount(
            model=model, dim=dim, chunks=s.chunks_by_model.get((model, dim), 0)
        ),
        warnings=model_warnings(s.chunks_by_model, model, dim, frozenset(search.previous)),
        jobs={k.value: v for k, v in s.jobs_by_status.items()},
        ready=s.ready,
        oldest_pending_age_s=s.oldest_pending_age_s,
        stalled_leases=s.stalled,
        chunks_by_model=[
            ModelCount(model=m, dim=d, chunks=n) for (m, d), n in sorted(s.chunks_by_model.items())
        ],
    )

"""worker_service: the Celery tasks. Thin: they build nothing at import, wire the use
cases from the process's container, and follow the seed's rule for the database:

    engine = create_async_engine(DATABASE_URL)
    try:
        ...
    finally:
        await engine.dispose()

Each task runs its own event loop (``asyncio.run``), so it must not reuse pooled
connections of another loop: every task makes its engine and disposes it.

``process_batch`` drains: it claims batch after batch until the queue has nothing
ready or ``drain_seconds`` have passed (then it rings the doorbell and returns, so
other tasks get their turn). Whenever it claims a full batch and no doorbell is
waiting in the broker, it rings once, so idle workers of the fleet join in: a
single message is enough to wake the whole fleet for a large backlog.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from celery import Celery

from application.processing.outcomes import BatchReport
from application.use_cases.process_batch import ProcessBatch
from entrypoints.container import Container, build_container, task_uow_factory
from entrypoints.settings import Settings
from entrypoints.worker.celery_app import PROCESS_BATCH, SWEEP

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_TTL = timedelta(hours=24)

_process: tuple[int, Container] | None = None
SHUTTING_DOWN = threading.Event()  # set on warm shutdown: stop draining after this batch


def process_container(settings: Settings) -> Container:
    """This process's container, built on first use: after a prefork child is forked,
    it builds its own model, parser sandbox and broker connections."""
    global _process
    pid = os.getpid()
    if _process is None or _process[0] != pid:
        _process = (pid, build_container(settings))
    return _process[1]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def drain_queue(container: Container, batch_size: int) -> BatchReport:
    settings = container.settings()
    doorbell = container.doorbell()
    engine = container.task_engine()
    total = BatchReport()
    try:
        handler = container.process_batch(uow_factory=task_uow_factory(engine))
        deadline = time.monotonic() + settings.drain_seconds
        while True:
            report = await handler(ProcessBatch(batch_size=batch_size, worker_id=worker_id()))
            total.merge(report)
            if report.claimed == 0 or SHUTTING_DOWN.is_set():
                break
            if time.monotonic() > deadline:
                await doorbell.ring()  # hand the rest over; another task continues
                break
            if report.claimed >= batch_size and not await doorbell.backlog():
                await doorbell.ring()  # more work than one batch: wake an idle worker
    finally:
        await doorbell.close()
        await engine.dispose()
    if total.claimed:
        log.info(
            "batch done: %d claimed, %d completed, %d retried, %d failed, %d lost, %d chunks; %s",
            total.claimed,
            total.completed,
            total.retried,
            total.failed,
            total.lost,
            total.chunks,
            {k: round(v, 3) for k, v in total.timings.items()},
        )
    return total


async def sweep_queue(container: Container) -> dict[str, Any]:
    doorbell = container.doorbell()
    engine = container.task_engine()
    try:
        uow_factory = task_uow_factory(engine)
        report = await container.sweep_queue(uow_factory=uow_factory)()
        async with uow_factory() as uow:
            purged = await uow.idempotency.purge_older_than(
                container.clock().now() - IDEMPOTENCY_KEY_TTL
            )
            await uow.commit()
    finally:
        await doorbell.close()
        await engine.dispose()
    if purged:
        log.info("sweeper: %d idempotency keys older than %s purged", purged, IDEMPOTENCY_KEY_TTL)
    return {**asdict(report), "idempotency_keys_purged": purged}


def register_tasks(app: Celery, settings: Settings) -> None:
    """Attach the tasks to `app`. Messages carry a batch size only: the database is
    the queue, a message is a doorbell."""

    @app.task(name=PROCESS_BATCH, ignore_result=True)  # type: ignore[untyped-decorator]
    def process_batch(batch_size: int | None = None) -> dict[str, Any]:
        size = max(1, min(int(batch_size or settings.batch_size), 1000))
        report = asyncio.run(drain_queue(process_container(settings), size))
        return asdict(report)

    @app.task(name=SWEEP, ignore_result=True)  # type: ignore[untyped-decorator]
    def sweep() -> dict[str, Any]:
        return asyncio.run(sweep_queue(process_container(settings)))

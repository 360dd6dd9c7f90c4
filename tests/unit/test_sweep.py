"""The sweeper re-opens abandoned jobs and rings the doorbell when work waits."""

from __future__ import annotations

import uuid
from datetime import timedelta

from application.use_cases.sweep import SweepQueueHandler
from domain.model import IngestionJob, IngestionStatus, Stage
from tests.unit.fakes import FakeClock, FakeQueue, FakeUnitOfWork, Store


def add_job(store: Store, clock: FakeClock, max_attempts: int = 3) -> IngestionJob:
    job = IngestionJob.new(uuid.uuid4(), clock.now(), max_attempts)
    store.jobs[job.id] = job
    return job


async def test_jobs_of_a_dead_worker_go_back_to_pending_after_the_lease() -> None:
    store, clock, queue = Store(), FakeClock(), FakeQueue(backlog=0)
    job = add_job(store, clock)
    job.claim("dead-worker", clock.now(), timedelta(seconds=60))
    sweep = SweepQueueHandler(lambda: FakeUnitOfWork(store), queue, clock)

    early = await sweep()
    assert (early.requeued, early.ready, early.rang) == (0, 0, False)
    clock.advance(61)
    report = await sweep()
    assert report.requeued == 1
    assert store.jobs[job.id].status is IngestionStatus.PENDING
    assert report.rang and queue.rings == 1


async def test_a_job_out_of_attempts_is_failed_not_requeued() -> None:
    store, clock = Store(), FakeClock()
    job = add_job(store, clock, max_attempts=1)
    job.claim("dead-worker", clock.now(), timedelta(seconds=10))
    job.advance(Stage.EXTRACTING, clock.now())  # the worker died on this document
    clock.advance(11)
    report = await SweepQueueHandler(lambda: FakeUnitOfWork(store), FakeQueue(), clock)()
    assert report.failed == 1
    assert store.jobs[job.id].status is IngestionStatus.FAILED
    assert "lease expired" in (store.jobs[job.id].last_error or "")


async def test_waiting_jobs_with_messages_already_queued_do_not_ring_again() -> None:
    store, clock, queue = Store(), FakeClock(), FakeQueue(backlog=3)
    add_job(store, clock)
    report = await SweepQueueHandler(lambda: FakeUnitOfWork(store), queue, clock)()
    assert report.ready == 1 and not report.rang and queue.rings == 0


async def test_an_unknown_broker_backlog_rings_to_be_safe() -> None:
    store, clock, queue = Store(), FakeClock(), FakeQueue(backlog=None)
    add_job(store, clock)
    report = await SweepQueueHandler(lambda: FakeUnitOfWork(store), queue, clock)()
    assert report.rang and queue.rings == 1

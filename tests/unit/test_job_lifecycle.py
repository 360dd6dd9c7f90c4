"""The ingestion job owns its state machine."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest

from domain.errors import InvalidTransition
from domain.model import IngestionJob, IngestionStatus, RetryPolicy, Stage
from tests.unit.fakes import FakeClock

LEASE = timedelta(seconds=60)
POLICY = RetryPolicy(base_delay_s=10, max_delay_s=100, jitter=0.0)


def new_job(clock: FakeClock, max_attempts: int = 3) -> IngestionJob:
    return IngestionJob.new(uuid.uuid4(), clock.now(), max_attempts)


class TestClaiming:
    def test_a_new_job_is_pending_and_claimable_at_once(self) -> None:
        clock = FakeClock()
        job = new_job(clock)
        assert job.status is IngestionStatus.PENDING
        assert job.is_claimable(clock.now())

    def test_claiming_marks_processing_with_a_lease_and_counts_the_attempt(self) -> None:
        clock = FakeClock()
        job = new_job(clock)
        job.claim("w1:abc", clock.now(), LEASE)
        assert job.status is IngestionStatus.PROCESSING
        assert job.attempts == 1
        assert job.locked_by == "w1:abc"
        assert job.locked_until == clock.now() + LEASE
        assert job.stage is Stage.CLAIMED
        assert job.holds_lease("w1:abc")
        assert not job.holds_lease("w2:def")

    def test_a_processing_job_cannot_be_claimed_twice(self) -> None:
        clock = FakeClock()
        job = new_job(clock)
        job.claim("w1", clock.now(), LEASE)
        with pytest.raises(InvalidTransition):
            job.claim("w2", clock.now(), LEASE)

    def test_a_job_waiting_for_its_retry_time_is_not_claimable_before_it(self) -> None:
        clock = FakeClock()
        job = new_job(clock)
        job.claim("w1", clock.now(), LEASE)
        job.fail("timeout", transient=True, now=clock.now(), policy=POLICY)
        assert not job.is_claimable(clock.now())
        clock.advance(10)
        assert job.is_claimable(clock.now())


class TestCompletion:
    def test_completing_releases_the_lease_and_clears_the_error(self) -> None:
        clock = FakeClock()
        job = new_job(clock)
        job.claim("w1", clock.now(), LEASE)
        job.last_error = "old"
        job.complete(clock.now())
        assert job.status is IngestionStatus.COMPLETED
        assert job.stage is Stage.DONE
        assert job.locked_by is None and job.locked_until is None
        assert job.last_error is None
        assert job.finished_at == clock.now()

    @pytest.mark.parametrize("status", [IngestionStatus.PENDING, IngestionStatus.FAILED])
    def test_only_a_processing_job_can_complete(self, status: IngestionStatus) -> None:
        clock = FakeClock()
        job = new_job(clock)
        job.status = status
        with pytest.raises(InvalidTransition):
            job.complete(clock.now())


class TestFailures:
    def test_a_transient_failure_schedules_a_retry_with_exponential_backoff(self) -> None:
        clock = FakeClock()
        job = new_job(clock, max_attempts=4)
        delays = []
        for _ in range(3):
            clock.current = job.next_attempt_at or clock.now()
            job.claim("w", clock.now(), LEASE)
            outcome = job.fail(
                "embedding server 503", transient=True, now=clock.now(), policy=POLICY
            )
            assert outcome.will_retry
            assert job.status is IngestionStatus.PENDING
            assert job.locked_by is None
            delays.append((job.next_attempt_at - clock.now()).total_seconds())  # type: ignore[operator]
        assert delays == [10, 20, 40]
        assert "embedding server 503" in (job.last_error or "")

    def test_after_max_attempts_a_transient_failure_is_final(self) -> None:
        clock = FakeClock()
        job = new_job(clock, max_attempts=2)
        job.claim("w", clock.now(), LEASE)
        job.fail("boom", transient=True, now=clock.now(), policy=POLICY)
        clock.advance(100)
        job.claim("w", clock.now(), LEASE)
        outcome = job.fail("boom", transient=True, now=clock.now(), policy=POLICY)
        assert not outcome.will_retry
        assert job.status is IngestionStatus.FAILED
        assert job.last_error is not None
        assert "gave up after 2 attempts" in job.last_error

    def test_a_permanent_failure_fails_at_once_with_stage_and_reason(self) -> None:
        clock = FakeClock()
        job = new_job(clock, max_attempts=5)
        job.claim("w", clock.now(), LEASE)
        job.advance(Stage.EXTRACTING, clock.now())
        outcome = job.fail("PDF bomb", transient=False, now=clock.now(), policy=POLICY)
        assert not outcome.will_retry
        assert job.status is IngestionStatus.FAILED
        assert job.last_error == "extracting: PDF bomb"
        assert job.attempts == 1

    def test_an_empty_reason_still_records_something(self) -> None:
        clock = FakeClock()
        job = new_job(clock)
        job.claim("w", clock.now(), LEASE)
        job.fail("   ", transient=False, now=clock.now(), policy=POLICY)
        assert job.last_error and "unknown error" in job.last_error

    def test_backoff_is_capped_and_jitter_stays_within_bounds(self) -> None:
        policy = RetryPolicy(base_delay_s=10, max_delay_s=60, jitter=0.5)
        rng = random.Random(7)
        for attempt in range(1, 12):
            delay = policy.delay_for(attempt, rng)
            raw = min(60, 10 * 2 ** (attempt - 1))
            assert raw * 0.5 <= delay <= raw * 1.5


class TestLeases:
    def test_an_expired_lease_hands_the_job_back(self) -> None:
        clock = FakeClock()
        job = new_job(clock)
        job.claim("w-dead", clock.now(), LEASE)
        clock.advance(61)
        job.expire_lease(clock.now())
        assert job.status is IngestionStatus.PENDING
        assert job.is_claimable(clock.now())
        # the reason is for every reader; which worker died is for the operator
        assert "w-dead" not in (job.last_error or "")
        assert "its worker was lost" in (job.last_error or "")
        assert job.error_detail == "worker w-dead lost its lease"

    @pytest.mark.parametrize("stage", [Stage.EXTRACTING, Stage.CHUNKING, Stage.EMBEDDING])
    def test_an_expired_lease_on_the_last_attempt_fails_a_started_job(self, stage: Stage) -> None:
        clock = FakeClock()
        job = new_job(clock, max_attempts=1)
        job.claim("w-dead", clock.now(), LEASE)
        job.advance(stage, clock.now())
        clock.advance(61)
        job.expire_lease(clock.now())
        assert job.status is IngestionStatus.FAILED
        assert job.attempts == 1
        assert "gave up after 1 attempts" in (job.last_error or "")
        assert f"during {stage}" in (job.last_error or "")

    def test_a_worker_death_is_not_charged_to_a_job_it_had_not_started(self) -> None:
        # batch neighbours wait in CLAIMED: three deaths must not use up their attempts
        clock = FakeClock()
        job = new_job(clock, max_attempts=3)
        for _ in range(5):
            job.claim("w-dead", clock.now(), LEASE)
            clock.advance(61)
            job.expire_lease(clock.now())
            assert job.status is IngestionStatus.PENDING
            assert job.attempts == 0
        assert "not counted" in (job.last_error or "")
        job.claim("w", clock.now(), LEASE)
        assert job.attempts == 1

    def test_a_live_lease_cannot_be_expired(self) -> None:
        clock = FakeClock()
        job = new_job(clock)
        job.claim("w", clock.now(), LEASE)
        clock.advance(30)
        with pytest.raises(InvalidTransition):
            job.expire_lease(clock.now())


class TestRequeue:
    @pytest.mark.parametrize("final", ["complete", "fail"])
    def test_finished_jobs_can_be_requeued_with_fresh_attempts(self, final: str) -> None:
        clock = FakeClock()
        job = new_job(clock)
        job.claim("w", clock.now(), LEASE)
        if final == "complete":
            job.complete(clock.now())
        else:
            job.fail("bad", transient=False, now=clock.now(), policy=POLICY)
        job.requeue(clock.now())
        assert job.status is IngestionStatus.PENDING
        assert job.attempts == 0
        assert job.is_claimable(clock.now())

    def test_a_pending_job_cannot_be_requeued(self) -> None:
        clock = FakeClock()
        job = new_job(clock)
        with pytest.raises(InvalidTransition):
            job.requeue(clock.now())

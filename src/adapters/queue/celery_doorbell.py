"""The doorbell: a Celery `process_batch` message that tells workers to look at the queue.

The database is the queue; a message carries no job ids, only a batch size. Losing
one costs at most a sweep interval, so publishing is fire-and-forget: it never
raises into the caller and never blocks the event loop (it runs in a thread, with
short broker timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis

from adapters.metrics import DOORBELL_FAILURES, DOORBELL_RINGS

log = logging.getLogger(__name__)


class CeleryDoorbell:
    def __init__(
        self, celery_app: Any, task_name: str, queue: str, batch_size: int, redis_url: str
    ) -> None:
        self.celery_app = celery_app
        self.task_name = task_name
        self.queue = queue
        self.batch_size = batch_size
        self.redis_url = redis_url
        # one client per event loop: every Celery task runs its own loop
        self._redis: dict[int, aioredis.Redis] = {}

    def ring_blocking(self) -> None:
        self.celery_app.send_task(
            self.task_name,
            kwargs={"batch_size": self.batch_size},
            queue=self.queue,
            retry=False,
            ignore_result=True,
        )

    async def ring(self) -> None:
        try:
            await asyncio.to_thread(self.ring_blocking)
            DOORBELL_RINGS.inc()
        except Exception as exc:  # the row is the truth; the sweeper rings later
            DOORBELL_FAILURES.inc()
            log.warning("doorbell not rung (%s: %s); the sweeper will", type(exc).__name__, exc)

    async def backlog(self) -> int | None:
        loop_id = id(asyncio.get_running_loop())
        try:
            client = self._redis.get(loop_id)
            if client is None:
                # clients of loops that have ended cannot be closed from here; drop them
                self._redis = {
                    loop_id: aioredis.Redis.from_url(
                        self.redis_url, socket_connect_timeout=1, socket_timeout=2
                    )
                }
                client = self._redis[loop_id]
            return int(await client.llen(self.queue))
        except Exception:
            return None

    async def close(self) -> None:
        """Close the client of the running loop (call it before that loop ends)."""
        client = self._redis.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


class CoalescingDoorbell:
    """Many rings, few messages: at most one publish in flight per process, at most one
    every ``min_interval_s`` (a ring after a quiet spell publishes at once), and every
    ring() is followed by a publish that starts after it. Used by the API, where
    thousands of uploads a second need only a handful of doorbells: a publish through
    Celery costs milliseconds of CPU, and at 0.05 s it showed in profiles of the API
    under load (decision 0008); busy workers drain the queue without one."""

    def __init__(self, inner: CeleryDoorbell, min_interval_s: float = 0.25) -> None:
        self.inner = inner
        self.min_interval_s = min_interval_s
        self._pending = False
        self._task: asyncio.Task[None] | None = None

    async def ring(self) -> None:
        self._pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._pending:
            self._pending = False
            await self.inner.ring()
            await asyncio.sleep(self.min_interval_s)

    async def backlog(self) -> int | None:
        return await self.inner.backlog()

    async def flush(self, within_s: float = 5.0) -> None:
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), within_s)

    async def close(self) -> None:
        await self.flush()
        await self.inner.close()

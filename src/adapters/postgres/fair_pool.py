"""A connection pool that hands connections out in the order they were asked for.

SQLAlchemy's asyncio pool keeps idle connections in an ``asyncio.Queue`` and takes one
without waiting whenever the queue is not empty. A returned connection wakes the
longest waiter, but the wake-up only runs on the loop's next turn: a request that asks
in between finds the connection in the queue and takes it, and the woken waiter, finding
the queue empty again, goes back to the end of the line. Under load (more requests in
flight than connections) some requests are passed over again and again: at 50
concurrent uploads on a pool of 20, p50 ~90 ms but p99 250-350 ms with no worker on the
host (docs/decisions/0008-enqueue-latency.md).

Here a returned connection goes straight to the longest waiter (its future gets the
connection, so nobody can take it first), and a caller waits whenever anyone is already
waiting. Waits stay bounded by the pool's timeout (``Empty``, which the pool turns into
its ``TimeoutError``). The hook is the pool's ``_queue_class``, the same one
SQLAlchemy's own ``AsyncAdaptedQueuePool`` uses to swap in its asyncio queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty, QueueCommon

_T = TypeVar("_T")


class FairAsyncQueue(AsyncAdaptedQueue[_T]):
    """``AsyncAdaptedQueue`` with first-come, first-served waits (a direct hand-off)."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[_T]] = deque()

    def put_nowait(self, item: _T) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # else it timed out or was cancelled: the next one
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def get_nowait(self) -> _T:
        if self._has_waiters():  # the ones already waiting come first
            raise Empty()
        return super().get_nowait()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        try:
            return self.get_nowait()
        except Empty:
            if not block:
                raise
        return await_(self._wait(timeout))

    def _has_waiters(self) -> bool:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        return bool(self._waiters)

    async def _wait(self, wait_s: float | None) -> _T:
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(wait_s):
                return await waiter
        except BaseException as exc:
            # given a connection in the same turn as the timeout or a cancellation:
            # hand it on rather than lose it
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise Empty() from None
            raise


class FairAsyncQueuePool(AsyncAdaptedQueuePool):
    """The asyncio queue pool, with connections handed out first come, first served."""

    _queue_class: type[QueueCommon[ConnectionPoolEntry]] = FairAsyncQueue

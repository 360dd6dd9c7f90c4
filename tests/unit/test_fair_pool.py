"""The pool's queue hands a returned connection to the longest waiter."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import Empty

from adapters.postgres.fair_pool import FairAsyncQueue


async def _waiting(queue: FairAsyncQueue[str], wait_s: float = 5.0) -> asyncio.Task[str]:
    task: asyncio.Task[str] = asyncio.ensure_future(greenlet_spawn(queue.get, True, wait_s))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()
    return task


async def test_a_returned_item_goes_to_the_waiter_not_to_the_next_caller() -> None:
    queue: FairAsyncQueue[str] = FairAsyncQueue(2)
    waiter = await _waiting(queue)
    queue.put_nowait("conn")
    # asked in the same turn of the loop, before the waiter ran: SQLAlchemy's queue
    # gave it to this caller, and the waiter went back to the end of the line
    with pytest.raises(Empty):
        queue.get_nowait()
    assert await waiter == "conn"


async def test_waiters_are_served_in_the_order_they_came() -> None:
    queue: FairAsyncQueue[str] = FairAsyncQueue(3)
    first, second, third = [await _waiting(queue) for _ in range(3)]
    for item in ("a", "b", "c"):
        queue.put_nowait(item)
    assert [await first, await second, await third] == ["a", "b", "c"]
    assert queue.empty()


async def test_with_nobody_waiting_an_item_is_taken_at_once() -> None:
    queue: FairAsyncQueue[str] = FairAsyncQueue(1)
    queue.put_nowait("conn")
    assert await greenlet_spawn(queue.get, True, 0.01) == "conn"
    with pytest.raises(Empty):
        queue.get(block=False)


async def test_a_wait_ends_at_its_timeout_and_leaves_the_line() -> None:
    queue: FairAsyncQueue[str] = FairAsyncQueue(1)
    with pytest.raises(Empty):
        await greenlet_spawn(queue.get, True, 0.05)
    queue.put_nowait("conn")  # nobody is waiting any more: it stays for the next caller
    assert queue.get_nowait() == "conn"


async def test_an_item_handed_to_a_cancelled_waiter_goes_to_the_next() -> None:
    queue: FairAsyncQueue[str] = FairAsyncQueue(1)
    gone = await _waiting(queue)
    behind = await _waiting(queue)
    queue.put_nowait("conn")  # handed to `gone` ...
    gone.cancel()  # ... whose request was cancelled before it ran
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await behind == "conn"

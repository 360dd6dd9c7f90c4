"""The API's coalescing doorbell: a burst of uploads publishes a handful of messages,
and no ring is left without a publish that starts after it."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from adapters.queue.celery_doorbell import CeleryDoorbell, CoalescingDoorbell


class CountingInner:
    def __init__(self) -> None:
        self.published_at: list[float] = []

    async def ring(self) -> None:
        self.published_at.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.001)  # a publish takes a moment

    async def backlog(self) -> int | None:
        return 0

    async def close(self) -> None:
        return None


def coalescing(inner: CountingInner, interval_s: float) -> CoalescingDoorbell:
    return CoalescingDoorbell(cast(CeleryDoorbell, cast(Any, inner)), min_interval_s=interval_s)


async def test_a_burst_of_rings_publishes_a_few_messages() -> None:
    inner = CountingInner()
    bell = coalescing(inner, 0.05)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for _ in range(500):
        await bell.ring()
        await asyncio.sleep(0)  # uploads as fast as the loop serves them
    burst_s = loop.time() - t0
    await bell.flush()
    # one publish per interval of the burst, plus the one that follows the last ring
    assert 1 <= len(inner.published_at) <= burst_s / 0.05 + 2
    assert len(inner.published_at) < 50  # 500 rings, a handful of messages
    gaps = [b - a for a, b in zip(inner.published_at, inner.published_at[1:], strict=False)]
    assert all(g >= 0.05 for g in gaps)  # never faster than the interval


async def test_a_ring_during_a_publish_gets_a_publish_after_it() -> None:
    inner = CountingInner()
    bell = coalescing(inner, 0.02)
    await bell.ring()
    await asyncio.sleep(0.005)  # the first publish is done; the interval runs
    rang_at = asyncio.get_running_loop().time()
    await bell.ring()
    await bell.flush()
    assert len(inner.published_at) == 2
    assert inner.published_at[-1] >= rang_at  # the job of the second ring is announced


async def test_a_quiet_ring_publishes_at_once() -> None:
    inner = CountingInner()
    bell = coalescing(inner, 10.0)  # a long interval delays only rings that follow
    t0 = asyncio.get_running_loop().time()
    await bell.ring()
    await asyncio.sleep(0.01)
    assert len(inner.published_at) == 1 and inner.published_at[0] - t0 < 0.01
    bell._task.cancel()  # type: ignore[union-attr]  # don't wait out the interval

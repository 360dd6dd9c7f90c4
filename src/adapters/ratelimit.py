"""Per-API-key rate limiting shared by all API processes (Redis, via `limits`).

Fails open: when Redis does not answer, requests are allowed (uploads must keep
working while Redis is down) and Redis is not asked again for a few seconds, so
an outage does not add a timeout to every request.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from adapters.metrics import RATE_LIMITED
from application.ports import RateDecision

log = logging.getLogger(__name__)


class RedisRateLimiter:
    def __init__(self, redis_url: str, open_circuit_s: float = 5.0) -> None:
        uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
        self._storage = RedisStorage(
            uri,
            implementation="redispy",
            key_prefix="cogep-rl",
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._items: dict[int, RateLimitItemPerMinute] = {}
        self._open_until = 0.0
        self.open_circuit_s = open_circuit_s

    async def hit(self, client_id: str, per_minute: int) -> RateDecision:
        if per_minute <= 0 or time.monotonic() < self._open_until:
            return RateDecision(True, per_minute, per_minute, 0.0)
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        try:
            allowed = await self._limiter.hit(item, client_id)
            if allowed:
                return RateDecision(True, per_minute, per_minute, 0.0)
            stats = await self._limiter.get_window_stats(item, client_id)
        except Exception as exc:
            self._open_until = time.monotonic() + self.open_circuit_s
            log.warning("rate limiter unavailable (%s); allowing requests", exc)
            return RateDecision(True, per_minute, per_minute, 0.0)
        RATE_LIMITED.inc()
        retry_after = max(1.0, math.ceil(stats.reset_time - time.time()))
        return RateDecision(False, per_minute, int(stats.remaining), retry_after)

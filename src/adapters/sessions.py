"""Console sign-in sessions in Redis, shared by every API process of the fleet.

The browser holds only a random session id (an HttpOnly cookie); Redis holds, under a
SHA-256 of it (a copy of Redis gives no usable cookie), which API key signed in and
the session's CSRF token. Sessions expire after `ttl_s` without use; signing out
deletes them; a revoked key ends them at its next request (the console checks the key).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

_PREFIX = "cogep:console:"


@dataclass(frozen=True)
class ConsoleSession:
    key_id: str
    key_prefix: str
    csrf: str


def _name(session_id: str) -> str:
    return _PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


class RedisSessions:
    def __init__(self, redis_url: str, ttl_s: int = 8 * 3600) -> None:
        self._redis: Redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.ttl_s = ttl_s

    async def create(self, key_id: str, key_prefix: str) -> tuple[str, ConsoleSession]:
        session_id = secrets.token_urlsafe(32)
        session = ConsoleSession(key_id, key_prefix, secrets.token_urlsafe(32))
        value = orjson.dumps(session.__dict__)
        await self._redis.set(_name(session_id), value, ex=self.ttl_s)
        return session_id, session

    async def get(self, session_id: str) -> ConsoleSession | None:
        """The session, its expiry pushed back (sessions end after ttl_s unused)."""
        if not session_id or len(session_id) > 100:
            return None
        raw = await self._redis.getex(_name(session_id), ex=self.ttl_s)
        if raw is None:
            return None
        data = orjson.loads(raw)
        return ConsoleSession(data["key_id"], data["key_prefix"], data["csrf"])

    async def delete(self, session_id: str) -> None:
        await self._redis.delete(_name(session_id))

    async def aclose(self) -> None:
        await self._redis.aclose()

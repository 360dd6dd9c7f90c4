"""API keys and Idempotency-Key records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.rows import api_keys, idempotency_keys
from application.ports import IdempotencyRecord
from domain.api_keys import ApiKey, Scope


def api_key_from_row(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        scopes=frozenset(Scope(s) for s in row.scopes),
        created_at=row.created_at,
        rate_limit_per_minute=row.rate_limit_per_minute,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        collections=frozenset(row.collections) if row.collections is not None else None,
    )


class SqlAlchemyApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: ApiKey) -> None:
        await self.session.execute(
            insert(api_keys).values(
                id=key.id,
                name=key.name,
                prefix=key.prefix,
                secret_hash=key.secret_hash,
                scopes=sorted(s.value for s in key.scopes),
                rate_limit_per_minute=key.rate_limit_per_minute,
                collections=sorted(key.collections) if key.collections is not None else None,
                created_at=key.created_at,
            )
        )

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        row = (
            await self.session.execute(select(api_keys).where(api_keys.c.prefix == prefix))
        ).first()
        return api_key_from_row(row) if row else None

    async def list(self) -> list[ApiKey]:
        rows = await self.session.execute(select(api_keys).order_by(api_keys.c.created_at))
        return [api_key_from_row(r) for r in rows]

    async def revoke(self, key_id: uuid.UUID, now: datetime) -> bool:
        result = await self.session.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(api_keys.c.id)
        )
        return result.scalar_one_or_none() is not None

    async def touch(self, key_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now)
        )


class SqlAlchemyIdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, client_id: str, key: str) -> IdempotencyRecord | None:
        row = (
            await self.session.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key
                )
            )
        ).first()
        if row is None:
            return None
        return IdempotencyRecord(row.client_id, row.key, row.request_fingerprint, row.document_id)

    async def add(self, record: IdempotencyRecord) -> bool:
        result = await self.session.execute(
            pg_insert(idempotency_keys)
            .values(
                client_id=record.client_id,
                key=record.key,
                request_fingerprint=record.request_fingerprint,
                document_id=record.document_id,
            )
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.key)
        )
        return result.scalar_one_or_none() is not None

    async def purge_older_than(self, when: datetime) -> int:
        result = await self.session.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at < when)
        )
        return int(getattr(result, "rowcount", 0) or 0)

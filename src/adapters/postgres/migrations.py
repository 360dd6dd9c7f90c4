"""Alembic from code: upgrade to head, and tell whether a database is at head."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_ini() -> Path:
    override = os.environ.get("COGEP_ALEMBIC_INI")
    if override:
        return Path(override)
    # src/adapters/postgres/migrations.py -> repository root
    return Path(__file__).resolve().parents[3] / "alembic.ini"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(alembic_ini()))
    if url:
        cfg.attributes["url"] = url
    return cfg


def upgrade_head(url: str) -> None:
    """Blocking; runs its own event loop (call it from sync code or a thread)."""
    command.upgrade(alembic_config(url), "head")


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        exists = (
            await conn.execute(text("SELECT to_regclass('public.alembic_version') IS NOT NULL"))
        ).scalar_one()
        if not exists:
            return set()
        rows = await conn.execute(text("SELECT version_num FROM public.alembic_version"))
        return {str(r[0]) for r in rows}

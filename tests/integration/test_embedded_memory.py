"""A durable embedded server sizes shared_buffers from the machine at every start, so a
data folder made on a smaller machine (or before this setting) follows the one it runs
on; a size given in the settings wins."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import asyncpg

from adapters.services.embedded import EmbeddedPostgres, memory_settings, usable_memory


def _shared_buffers_mb(url: str) -> int:
    async def read() -> int:
        conn = await asyncpg.connect(url)
        try:
            blocks = await conn.fetchval(
                "SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers'"
            )
            return int(blocks) * 8192 // (1 << 20)
        finally:
            await conn.close()

    return asyncio.run(read())


def test_a_durable_server_sizes_its_buffers_at_each_start() -> None:
    # not under pytest's 0700 tmp: as root the embedded PostgreSQL runs as another user
    root = Path(tempfile.mkdtemp(prefix="cogep-memory-"))
    root.chmod(0o755)
    try:
        _sizes_at_each_start(root / "pg")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _sizes_at_each_start(folder: Path) -> None:
    derived = int(memory_settings(usable_memory())["shared_buffers"].removesuffix("MB"))
    pg = EmbeddedPostgres(folder, durable=True, supervised=True)
    try:
        assert _shared_buffers_mb(pg.start()) == derived
    finally:
        pg.stop()
    given = EmbeddedPostgres(folder, durable=True, supervised=True, shared_buffers_mb=64)
    try:
        assert _shared_buffers_mb(given.start()) == 64
    finally:
        given.stop()
    assert derived != 64

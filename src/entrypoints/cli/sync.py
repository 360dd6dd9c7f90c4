"""`cogep-ingest sync DIR -c COLLECTION`: make a collection mirror a folder.

Each file's key in the collection is its path relative to DIR (``leis/lei-8112.docx``).
One listing of the collection tells, per key, its newest version and that version's
bytes' hash; a local file whose hash equals it costs one hash and no upload. The run's
uploads form one batch, waited on through the change feed (watch.py). New files
are uploaded, changed ones become new versions of their key, and with ``--delete``
the keys whose file is gone are deleted (all their versions). Documents uploaded
without a key are never touched: they are not the folder's.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entrypoints.cli.client import (
    TERMINAL,
    ApiClient,
    ApiError,
    FileResult,
    collect_files,
    new_batch,
)

_READ_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_READ_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def local_files(root: Path) -> dict[str, Path]:
    """Files under root by key: the relative path with '/' separators."""
    return {p.relative_to(root).as_posix(): p for p in collect_files([root])}


@dataclass
class Planned:
    key: str
    action: str  # add, update, unchanged, delete
    path: Path | None = None
    remote: dict[str, Any] | None = None  # the key's newest version, when it has one


@dataclass
class SyncPlan:
    items: list[Planned] = field(default_factory=list)

    def of(self, action: str) -> list[Planned]:
        return [i for i in self.items if i.action == action]


def plan_sync(
    local: dict[str, tuple[Path, str]], remote: dict[str, dict[str, Any]], delete: bool
) -> SyncPlan:
    """local: key -> (path, sha256); remote: key -> its newest version."""
    plan = SyncPlan()
    for key in sorted(local):
        path, sha = local[key]
        newest = remote.get(key)
        if newest is None:
            plan.items.append(Planned(key, "add", path))
        elif newest["sha256"] == sha:
            plan.items.append(Planned(key, "unchanged", path, newest))
        else:
            plan.items.append(Planned(key, "update", path, newest))
    if delete:
        for key in sorted(set(remote) - set(local)):
            plan.items.append(Planned(key, "delete", None, remote[key]))
    return plan


async def remote_versions(client: ApiClient, collection: str) -> dict[str, dict[str, Any]]:
    """The newest version of every client-keyed document of the collection."""
    newest: dict[str, dict[str, Any]] = {}
    async for doc in client.documents(collection):
        if doc.get("key_origin") != "client":
            continue
        key = doc["source_key"]
        if key not in newest or doc["version"] > newest[key]["version"]:
            newest[key] = doc
    return newest


@dataclass
class SyncOutcome:
    key: str
    result: str  # added, updated, unchanged, deleted, failed
    document_id: str | None = None
    detail: str = ""


@dataclass
class SyncReport:
    outcomes: list[SyncOutcome] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(o.result == result for o in self.outcomes)

    @property
    def failed(self) -> int:
        return self.count("failed")


async def run_sync(
    client: ApiClient,
    plan: SyncPlan,
    collection: str,
    metadata: dict[str, Any] | None,
    *,
    wait_timeout_s: float,
    concurrency: int,
    on_step: Callable[[], None],
) -> SyncReport:
    """Carry out the plan: uploads, deletions, then wait for what was uploaded (and for
    unchanged keys still in flight). `on_step` is called once per planned item."""
    report = SyncReport()
    batch = new_batch("sync")
    gate = asyncio.Semaphore(concurrency)
    waiting: list[tuple[Planned, FileResult]] = []
    async with client.http() as c:

        async def upload(item: Planned) -> None:
            assert item.path is not None
            r = FileResult(item.path)
            async with gate:
                await client.upload_file(c, r, collection, metadata, item.key, batch)
            if r.outcome == "rejected":
                report.outcomes.append(SyncOutcome(item.key, "failed", None, r.detail))
                on_step()
                return
            waiting.append((item, r))

        async def delete(item: Planned) -> None:
            assert item.remote is not None
            try:
                async with gate:
                    await client.delete(item.remote["id"], all_versions=True)
                report.outcomes.append(SyncOutcome(item.key, "deleted", item.remote["id"]))
            except ApiError as exc:
                report.outcomes.append(SyncOutcome(item.key, "failed", None, str(exc)))
            on_step()

        for item in plan.of("unchanged"):
            assert item.remote is not None
            if item.remote.get("status") in TERMINAL or item.path is None:
                settle_unchanged(report, item, item.remote)
                on_step()
            else:  # the same content is still being processed: its outcome counts
                r = FileResult(item.path, "existing", item.remote["id"], item.remote["status"])
                waiting.append((item, r))
        await asyncio.gather(
            *(upload(i) for i in plan.of("add") + plan.of("update")),
            *(delete(i) for i in plan.of("delete")),
        )
        results = [r for _, r in waiting]
        for r in results:
            if r.answer:
                ApiClient.settle(r, r.answer)
            if r.status in TERMINAL:
                on_step()
        await client.wait_for(c, batch, results, wait_timeout_s, lambda _: on_step())
    for item, r in waiting:
        if r.outcome == "completed":
            result = {"add": "added", "update": "updated"}.get(item.action, "unchanged")
            report.outcomes.append(SyncOutcome(item.key, result, r.document_id))
        else:
            report.outcomes.append(SyncOutcome(item.key, "failed", r.document_id, r.detail))
    return report


def settle_unchanged(report: SyncReport, item: Planned, newest: dict[str, Any]) -> None:
    if newest.get("status") == "FAILED":
        detail = newest.get("last_error") or "failed"
        report.outcomes.append(SyncOutcome(item.key, "failed", newest["id"], detail))
    else:
        report.outcomes.append(SyncOutcome(item.key, "unchanged", newest["id"]))

"""The CLI's document commands: sync, list, show, delete, reprocess, cancel (over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from entrypoints.cli.common import (
    ApiKeyOpt,
    ApiUrl,
    api_client,
    call_api,
    console,
    out,
    progress_bar,
)
from entrypoints.cli.sync import (
    file_sha256,
    local_files,
    plan_sync,
    remote_versions,
    run_sync,
)

_STATUS_STYLE = {"COMPLETED": "green", "FAILED": "red", "PENDING": "cyan", "PROCESSING": "yellow"}
_RESULT_STYLE = {
    "added": "green",
    "updated": "green",
    "unchanged": "white",
    "deleted": "yellow",
    "failed": "red",
}


def parse_metadata(raw: str | None, option: str = "--metadata") -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        console.print(f"[red]{option} is not JSON:[/] {exc}")
        raise typer.Exit(2) from None
    if not isinstance(value, dict):
        console.print(f"[red]{option} must be a JSON object[/]")
        raise typer.Exit(2)
    return value


def sync(
    folder: Annotated[Path, typer.Argument(help="the folder to mirror", file_okay=False)],
    collection: Annotated[str, typer.Option("--collection", "-c", help="the collection")],
    delete: Annotated[
        bool, typer.Option("--delete", help="delete documents whose file is gone")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan, change nothing")] = (
        False
    ),
    metadata: Annotated[
        str | None, typer.Option("--metadata", "-m", help="a JSON object for new uploads")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for processing")] = 3600.0,
    concurrency: Annotated[int, typer.Option(min=1, max=32)] = 4,
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Mirror a folder into a collection: new files are uploaded, changed files become new
    versions (the key is the path relative to FOLDER), unchanged files cost one hash and
    no upload; with --delete, documents whose file is gone are deleted (all versions;
    documents uploaded without a key are left alone). Exit code 1 if anything failed."""
    if not folder.is_dir():
        console.print(f"[red]{folder} is not a folder[/]")
        raise typer.Exit(2)
    meta = parse_metadata(metadata)
    client = api_client(api_url, api_key)
    files = local_files(folder)
    with progress_bar() as progress:
        hashing = progress.add_task("hashing", total=len(files))
        local: dict[str, tuple[Path, str]] = {}
        for key, path in files.items():
            local[key] = (path, file_sha256(path))
            progress.advance(hashing)
    remote = call_api(remote_versions(client, collection))
    plan = plan_sync(local, remote, delete)
    if dry_run:
        table = Table("key", "action", "document", title=f"sync plan for {collection}")
        for item in plan.items:
            if item.action != "unchanged":
                table.add_row(item.key, item.action, (item.remote or {}).get("id", ""))
        out.print(table)
        console.print(
            ", ".join(
                f"{len(plan.of(a))} to {a}" if a != "unchanged" else f"{len(plan.of(a))} unchanged"
                for a in ("add", "update", "unchanged", "delete")
            )
            + " (dry run: nothing changed)"
        )
        return
    with progress_bar() as progress:
        task = progress.add_task("syncing", total=len(plan.items))
        report = call_api(
            run_sync(
                client,
                plan,
                collection,
                meta,
                wait_timeout_s=timeout,
                concurrency=concurrency,
                on_step=lambda: progress.advance(task),
            )
        )
    changed = [o for o in report.outcomes if o.result != "unchanged"]
    if changed:
        table = Table("key", "result", "document", "detail")
        for o in sorted(changed, key=lambda o: o.key):
            style = _RESULT_STYLE.get(o.result, "white")
            table.add_row(o.key, f"[{style}]{o.result}[/]", o.document_id or "", o.detail)
        out.print(table)
    console.print(
        ", ".join(
            f"{report.count(r)} {r}" for r in ("added", "updated", "unchanged", "deleted", "failed")
        )
    )
    if report.failed:
        raise typer.Exit(1)


def list_documents(
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    status: Annotated[
        str | None, typer.Option(help="PENDING, PROCESSING, COMPLETED or FAILED")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="one source key's versions")] = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="superseded versions too")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """List documents, newest first (current and in-flight versions unless --all-versions)."""
    client = api_client(api_url, api_key)

    async def gather() -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = []
        async for doc in client.documents(
            collection,
            status=status,
            source_key=key,
            include_superseded=all_versions,
            limit=min(limit, 200),
        ):
            docs.append(doc)
            if len(docs) >= limit:
                break
        return docs

    docs = call_api(gather())
    if as_json:
        out.print_json(data=docs)
        return
    table = Table("document", "collection", "key", "v", "status", "chunks", "file")
    for d in docs:
        style = _STATUS_STYLE.get(d.get("status") or "", "white")
        version = f"{d['version']}" + ("" if d["current"] else "*")
        table.add_row(
            d["id"],
            d["collection"],
            d["source_key"],
            version,
            f"[{style}]{d.get('status')}[/]",
            str(d["chunk_count"]),
            d["filename"],
        )
    out.print(table)
    console.print(f"{len(docs)} documents (* = not the current version)")


def show(
    document_id: Annotated[str, typer.Argument(help="the document's id")],
    chunks: Annotated[int, typer.Option(help="how many chunks to preview", min=0)] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """A document: status, progress, versions, errors, and a preview of its chunks."""
    client = api_client(api_url, api_key)

    async def gather() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        doc = await client.document(document_id)
        versions = await client.versions(document_id)
        preview = await client.chunks(document_id, chunks) if chunks else {"items": []}
        return doc, versions, preview

    doc, versions, preview = call_api(gather())
    if as_json:
        out.print_json(data={"document": doc, "versions": versions, "chunks": preview})
        return
    style = _STATUS_STYLE.get(doc.get("status") or "", "white")
    facts = Table.grid(padding=(0, 2))
    for name, value in (
        ("document", doc["id"]),
        ("file", f"{doc['filename']} ({doc['content_type']}, {doc['size_bytes']} bytes)"),
        ("collection / key", f"{doc['collection']} / {doc['source_key']} ({doc['key_origin']})"),
        ("version", f"{doc['version']}" + (" (current)" if doc["current"] else "")),
        ("status", f"[{style}]{doc.get('status')}[/] at {doc.get('stage')}"),
        ("attempts", str(doc.get("attempts"))),
        ("chunks", f"{doc['chunk_count']}"),
        ("indexed at", str(doc.get("indexed_at") or "-")),
        ("norm", str(doc["metadata"].get("norm", "-"))),
        ("metadata", json.dumps(doc["metadata"], ensure_ascii=False)[:300]),
    ):
        facts.add_row(f"[bold]{name}[/]", value)
    progress = (doc.get("job") or {}).get("progress")
    if progress:
        facts.add_row("[bold]progress[/]", describe_progress(progress))
    if doc.get("last_error"):
        facts.add_row("[bold red]last error[/]", doc["last_error"])
    out.print(facts)
    table = Table("v", "document", "status", "current", "chunks", "uploaded", title="versions")
    for v in versions["versions"]:
        table.add_row(
            str(v["version"]),
            v["id"],
            str(v.get("status")),
            "yes" if v["current"] else "",
            str(v["chunk_count"]),
            v["created_at"][:19],
        )
    out.print(table)
    if preview["items"]:
        table = Table("#", "citation", "text", title="chunks")
        for hit in preview["items"]:
            snippet = " ".join(hit["text"].split())
            table.add_row(
                str(hit["position"]),
                hit.get("citation") or hit.get("heading") or "",
                snippet[:200] + ("…" if len(snippet) > 200 else ""),
            )
        out.print(table)


def delete(
    document_id: Annotated[str, typer.Argument(help="the document's id")],
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="every version of its key")
    ] = False,
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Delete a document version (or all versions) with its chunks (admin key). Deleting
    the current version makes the previous one current again."""
    call_api(api_client(api_url, api_key).delete(document_id, all_versions))
    console.print(
        f"deleted {document_id}" + (" and every version of its key" if all_versions else "")
    )


def reprocess(
    document_id: Annotated[str, typer.Argument(help="the document's id")],
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Queue a COMPLETED or FAILED document again (admin key); its chunks keep answering
    until the new ones are stored."""
    job = call_api(api_client(api_url, api_key).reprocess(document_id))
    console.print(f"queued {document_id} again (job {job['id']})")


def cancel(
    document_id: Annotated[str, typer.Argument(help="the document's id")],
    api_url: ApiUrl = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Stop a PENDING or PROCESSING document; a worker stops within seconds."""
    doc = call_api(api_client(api_url, api_key).cancel(document_id))
    console.print(f"cancelled {document_id}: {doc.get('last_error')}")


def register(app: typer.Typer) -> None:
    app.command()(sync)
    app.command("list")(list_documents)
    app.command()(show)
    app.command()(delete)
    app.command()(reprocess)
    app.command()(cancel)


def describe_progress(p: dict[str, Any]) -> str:
    parts = []
    if p.get("pages_total"):
        parts.append(f"pages {p.get('pages_done') or 0}/{p['pages_total']}")
    if p.get("chunks_total") is not None:
        parts.append(f"chunks embedded {p.get('chunks_done') or 0}/{p['chunks_total']}")
    if p.get("eta_seconds") is not None:
        parts.append(f"ETA {p['eta_seconds']:.0f} s")
    return ", ".join(parts) or "-"

"""`cogep-ingest keys`: API keys (stored as SHA-256; the key is printed once)."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from entrypoints.cli.common import console, out, resolve_settings, run_with_container

keys_app = typer.Typer(
    help="API keys (stored hashed; the key is shown once).", no_args_is_help=True
)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="who uses the key, e.g. 'sigepe-integracao'")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", "-s", help="ingest, read or admin; repeatable")
    ] = None,
    rate_limit: Annotated[
        int | None, typer.Option(help="requests per minute (default: COGEP_RATE_LIMIT_PER_MINUTE)")
    ] = None,
    collection: Annotated[
        list[str] | None,
        typer.Option(
            "--collection",
            "-c",
            help="limit the key to this collection; repeatable (default: every collection)",
        ),
    ] = None,
) -> None:
    """Create an API key; the key itself is printed once and never stored."""
    settings = resolve_settings()
    created = run_with_container(
        settings,
        lambda c: c.api_keys().create(
            name, scope or ["ingest", "read"], rate_limit, collections=collection or None
        ),
    )
    reach = ", ".join(sorted(created.key.collections or ())) or "every collection"
    console.print(
        f"created key [bold]{created.key.name}[/] ({created.key.id}) with scopes "
        f"{', '.join(sorted(s.value for s in created.key.scopes))} on {reach}; store it now:"
    )
    out.print(created.plaintext)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    keys = run_with_container(resolve_settings(), lambda c: c.api_keys().list())
    table = Table(
        "id",
        "name",
        "prefix",
        "scopes",
        "collections",
        "rate/min",
        "created",
        "last used",
        "revoked",
    )
    for k in keys:
        table.add_row(
            str(k.id),
            k.name,
            k.prefix,
            ",".join(sorted(s.value for s in k.scopes)),
            ",".join(sorted(k.collections)) if k.collections is not None else "all",
            str(k.rate_limit_per_minute or "-"),
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: uuid.UUID) -> None:
    """Revoke a key (every API process refuses it within COGEP_AUTH_CACHE_S, 5 s)."""
    run_with_container(resolve_settings(), lambda c: c.api_keys().revoke(key_id))
    console.print(f"revoked {key_id}")

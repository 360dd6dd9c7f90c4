"""API keys: random secrets shown once, stored as SHA-256, with scopes.

A key reads ``cgp_<prefix>_<secret>``. The prefix (public) finds the row; the hash of
the whole key is compared in constant time. The secrets are 192 random bits, so a
fast hash is the right tool here (a slow password hash protects low-entropy secrets).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from domain.access import Access
from domain.errors import InvalidInput

KEY_PREFIX = "cgp"


class Scope(enum.StrEnum):
    INGEST = "ingest"  # upload documents
    READ = "read"  # status, listings, search
    ADMIN = "admin"  # delete, reprocess, retry; implies the others


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    name: str
    prefix: str
    secret_hash: str
    scopes: frozenset[Scope]
    created_at: datetime
    rate_limit_per_minute: int | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    # the collections the key reaches; None: every collection (the default)
    collections: frozenset[str] | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: Scope) -> bool:
        return self.active and (scope in self.scopes or Scope.ADMIN in self.scopes)

    @property
    def access(self) -> Access:
        return Access(self.collections)

    def matches(self, plaintext: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_key(plaintext))


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(value.strip().lower()))
        except ValueError as exc:
            raise InvalidInput(
                f"unknown scope {value!r}; use {', '.join(s.value for s in Scope)}"
            ) from exc
    if not scopes:
        raise InvalidInput("an API key needs at least one scope")
    return frozenset(scopes)


def new_api_key(
    name: str,
    scopes: frozenset[Scope],
    now: datetime,
    rate_limit_per_minute: int | None = None,
    collections: frozenset[str] | None = None,
) -> tuple[ApiKey, str]:
    """Return the stored key and the plaintext, which is never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("an API key needs a name of 1-100 characters")
    prefix = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}"
    key = ApiKey(
        id=uuid.uuid4(),
        name=name,
        prefix=prefix,
        secret_hash=hash_key(plaintext),
        scopes=scopes,
        created_at=now,
        rate_limit_per_minute=rate_limit_per_minute,
        collections=collections,
    )
    return key, plaintext


def prefix_of(plaintext: str) -> str | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8:
        return None
    return parts[1]

"""Document identity and versions: which version of a document answers searches.

A document is identified in its collection by a *source key*. Each upload of new
content under a key is a new *version* (a row of its own, with its own job). The rules:

- The key comes from the client (the upload's ``source_key``, the relative path for
  ``sync``); else, for a legal act, from the norm's identity ("lei-8112-1990"), found
  when the worker reads it; else from the content itself ("sha256:<hex>"), so that a
  plain upload without a key never replaces anything it was not told to replace.
- The current version keeps answering until a newer one has its chunk set; then, in
  the transaction that stores those chunks, the newer one becomes current and the
  one it replaces is superseded. "Newer" is upload order (``created_at``, then id), so
  an older upload that finishes late never takes over from a newer one.
- A version that fails never becomes current; the current one stays. A reprocess that
  fails leaves the document's last chunk set current (``indexed_at`` says when it was
  stored); the job shows the failed attempt.
- Deleting the current version makes the newest earlier version that has a chunk set
  current again (undo of a wrong upload).

Pure functions over domain objects; the repositories persist what they decide, under
the key's lock (docs/decisions/0011-versions.md).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from domain.errors import InvalidInput

if TYPE_CHECKING:
    from domain.model import Document

MAX_SOURCE_KEY_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class KeyOrigin(enum.StrEnum):
    CLIENT = "client"  # given with the upload (or the relative path of `sync`)
    NORM = "norm"  # the identity of the legal act found in the text
    CONTENT = "content"  # neither: the content's hash, until a norm is found


def content_key(sha256: str) -> str:
    return f"sha256:{sha256}"


def validate_source_key(key: str | None) -> str | None:
    """A client's key: 1-1000 characters, no control characters, no edge spaces."""
    if key is None:
        return None
    key = key.strip()
    if not key:
        return None
    if len(key) > MAX_SOURCE_KEY_CHARS:
        raise InvalidInput(
            f"source_key has {len(key)} characters; the limit is {MAX_SOURCE_KEY_CHARS}",
            field="source_key",
        )
    if _CONTROL.search(key):
        raise InvalidInput("source_key must not contain control characters", field="source_key")
    if key.startswith("sha256:"):
        raise InvalidInput(
            "source_key must not start with 'sha256:' (reserved for uploads without a key)",
            field="source_key",
        )
    return key


def _order(doc: Document) -> tuple[datetime, str]:
    return (doc.created_at, str(doc.id))


def newer(a: Document, b: Document) -> bool:
    """Whether `a` was uploaded after `b` (ties broken by id, so it is a total order)."""
    return _order(a) > _order(b)


@dataclass(frozen=True)
class Settlement:
    """What storing a version's chunk set changed: the documents to save."""

    changed: list[Document]
    became_current: bool


def settle_stored(stored: Document, others: Sequence[Document], now: datetime) -> Settlement:
    """`stored` just got its chunk set, in a transaction that holds its key's lock;
    `others` are the other versions under that key. Decide which one is current."""
    stored.indexed_at = now
    changed = [stored]
    if stored.superseded_at is not None:  # a reprocess of an old version stays old
        stored.is_current = False
        return Settlement(changed, False)
    current = [d for d in others if d.is_current]
    newest = max(current, key=_order, default=None)
    if newest is not None and newer(newest, stored):
        stored.is_current = False
        stored.superseded_at = now
        stored.superseded_by = newest.id
        return Settlement(changed, False)
    stored.is_current = True
    stored.superseded_at = None
    stored.superseded_by = None
    for doc in current:
        doc.is_current = False
        doc.superseded_at = now
        doc.superseded_by = stored.id
        changed.append(doc)
    return Settlement(changed, True)


def restore_after_delete(
    deleted: Sequence[Document], remaining: Sequence[Document]
) -> list[Document]:
    """The versions that change when `deleted` go: if the current one went, the newest
    remaining version with a chunk set becomes current again. Returns what to save."""
    if not any(d.is_current for d in deleted):
        return []
    candidates = [d for d in remaining if d.indexed_at is not None]
    if not candidates:
        return []
    restored = max(candidates, key=_order)
    gone = {d.id for d in deleted}
    restored.is_current = True
    restored.superseded_at = None
    restored.superseded_by = None
    changed = [restored]
    for doc in remaining:
        if doc is not restored and doc.superseded_by in gone:
            doc.superseded_by = restored.id
            changed.append(doc)
    return changed

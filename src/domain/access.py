"""Collections as a boundary: what a caller may see, search, deduplicate against and
change. An API key limited to collections reaches nothing outside them; a document
there answers 404, as if it did not exist (its existence is not disclosed)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from domain.errors import CollectionForbidden, DocumentNotFound


@dataclass(frozen=True)
class Access:
    collections: frozenset[str] | None = None  # None: every collection

    @classmethod
    def limited_to(cls, collections: Iterable[str] | None) -> Access:
        return cls(None if collections is None else frozenset(collections))

    @property
    def everything(self) -> bool:
        return self.collections is None

    def sees(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def within(self) -> tuple[str, ...] | None:
        """The collections a listing or search may cover (None: no restriction)."""
        return None if self.collections is None else tuple(sorted(self.collections))

    def require(self, collection: str) -> None:
        """Refuse a named collection outside the key (403: the caller named it)."""
        if not self.sees(collection):
            raise CollectionForbidden(
                f"this API key is limited to the collections {', '.join(self.within() or ())}; "
                f"it does not reach {collection!r}"
            )

    def check_document(self, collection: str, document_id: object) -> None:
        """A document outside the key is not found (404), like one that never existed."""
        if not self.sees(collection):
            raise DocumentNotFound(f"no document {document_id}")

    def default_collection(self, fallback: str) -> str:
        """Where an upload without a collection goes: the key's only collection, if it
        has exactly one, else the platform's default."""
        if self.collections is not None and len(self.collections) == 1:
            return next(iter(self.collections))
        return fallback


EVERYTHING = Access()

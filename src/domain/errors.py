"""Domain errors. Each carries a stable machine-readable ``code`` and a human reason.

The API maps them to problem+json in one place; the worker records ``str(error)`` as
the job's ``last_error`` and uses ``transient`` to decide between retry and FAILED.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code: str = "domain_error"
    transient: bool = False

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class InvalidTransition(DomainError):
    code = "invalid_transition"

    def __init__(self, current: object, target: object) -> None:
        super().__init__(f"a job cannot move from {current} to {target}")
        self.current = current
        self.target = target


class NotFound(DomainError):
    code = "not_found"


class DocumentNotFound(NotFound):
    code = "document_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class CollectionForbidden(DomainError):
    """An explicit request for a collection the caller's API key does not reach."""

    code = "collection_forbidden"


class Conflict(DomainError):
    code = "conflict"


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came back with a different request."""

    code = "idempotency_key_reused"


class RejectedDocument(DomainError):
    """The upload is refused before anything is stored."""

    code = "rejected_document"


class EmptyDocument(RejectedDocument):
    code = "empty_document"


class DocumentTooLarge(RejectedDocument):
    code = "document_too_large"


class UnsupportedDocumentType(RejectedDocument):
    code = "unsupported_media_type"


class InvalidInput(RejectedDocument):
    code = "invalid_input"


class ProcessingError(DomainError):
    """Raised while turning a stored document into chunks."""

    code = "processing_error"


class CorruptDocument(ProcessingError):
    code = "corrupt_document"


class UnsafeDocument(ProcessingError):
    """Decompression bombs, XML entity tricks, documents over the parse limits."""

    code = "unsafe_document"


class ExtractionLimitExceeded(ProcessingError):
    """The parser ran out of its time or memory budget on this document."""

    code = "extraction_limit_exceeded"


class NoTextFound(ProcessingError):
    code = "no_text_found"


class TransientError(ProcessingError):
    """Worth another attempt: a dependency hiccuped (embedding server, database, sandbox)."""

    code = "transient_error"
    transient = True


class EmbeddingUnavailable(TransientError):
    code = "embedding_unavailable"


class EmbeddingModelMismatch(DomainError):
    """The configured model does not fit the stored vectors; never mix them silently."""

    code = "embedding_model_mismatch"


class LeaseLost(DomainError):
    """Another worker took the job over (our lease expired); our results are discarded."""

    code = "lease_lost"

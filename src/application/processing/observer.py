"""What a worker reports about its work, for metrics (see ports.ProcessingObserver).
The default observes nothing; the worker wires the Prometheus adapter."""

from __future__ import annotations

from collections.abc import Mapping

from domain.model import Stage


class NullObserver:
    def document_indexed(
        self,
        *,
        collection: str,
        stage_seconds: Mapping[str, float],
        chunks: int,
        pages: int | None,
        upload_to_searchable_s: float,
    ) -> None:
        return None

    def document_failed(self, *, stage: Stage, cause: str, will_retry: bool) -> None:
        return None

    def chunks_embedded(self, count: int, seconds: float) -> None:
        return None

    def leases_renewed(self, count: int) -> None:
        return None

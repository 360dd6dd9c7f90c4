"""Prometheus metrics shared by the adapters and entrypoints of one process."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

from domain.model import Stage

HTTP_REQUESTS = Counter("cogep_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "cogep_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# labels stay bounded: never a collection, a file or a key (a client could mint series)
DOCUMENTS_ACCEPTED = Counter(
    "cogep_documents_accepted_total",
    "Uploads stored and queued (created) or answered with the existing document",
    ["outcome"],
)
DOORBELL_RINGS = Counter("cogep_doorbell_rings_total", "Doorbell messages published")
DOORBELL_FAILURES = Counter(
    "cogep_doorbell_failures_total", "Doorbell publishes that failed (the sweeper covers them)"
)
RATE_LIMITED = Counter("cogep_rate_limited_total", "Requests refused with 429")
QUEUE_JOBS = Gauge("cogep_queue_jobs", "Jobs by status", ["status"])
QUEUE_READY = Gauge("cogep_queue_ready_jobs", "PENDING jobs whose retry time has come")
QUEUE_OLDEST_PENDING = Gauge(
    "cogep_queue_oldest_pending_seconds", "Age of the oldest PENDING job (0 when none)"
)
QUEUE_STALLED = Gauge(
    "cogep_queue_stalled_leases",
    "PROCESSING jobs whose lease ran out and that no sweeper has handed back yet",
)
CHUNKS_BY_MODEL = Gauge("cogep_chunks", "Stored chunks by embedding model", ["model", "dim"])

# -- the worker's (each worker process exposes them; see entrypoints/worker/metrics.py) ----

_STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

WORKER_DOCUMENTS = Counter(
    "cogep_worker_documents_total",
    "Documents the worker finished with, by outcome (indexed, retried, failed)",
    ["outcome"],
)
WORKER_FAILURES = Counter(
    "cogep_worker_failures_total",
    "Failed attempts by stage and cause (the error's class: a small fixed set)",
    ["stage", "cause"],
)
WORKER_CHUNKS = Counter("cogep_worker_chunks_embedded_total", "Chunks embedded")
WORKER_EMBED_SECONDS = Counter(
    "cogep_worker_embedding_seconds_total",
    "Seconds spent in the embedding model (chunks/s = rate(chunks) / rate(seconds))",
)
WORKER_STAGE_SECONDS = Histogram(
    "cogep_worker_stage_seconds",
    "Seconds per document in each stage (extract, chunk, embed, store)",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
WORKER_UPLOAD_TO_SEARCHABLE = Histogram(
    "cogep_worker_upload_to_searchable_seconds",
    "From the upload to the chunks being searchable",
    buckets=_STAGE_BUCKETS,
)
WORKER_LEASE_RENEWALS = Counter("cogep_worker_lease_renewals_total", "Job leases renewed")
WORKER_LAST_ACTIVITY = Gauge(
    "cogep_worker_last_activity_timestamp_seconds",
    "When this worker last finished a document or renewed a lease (unix time)",
    multiprocess_mode="max",
)


class PrometheusProcessingObserver:
    """ProcessingObserver: what the worker reports, as Prometheus metrics. Labels are
    bounded: stages and error classes, never collections or file names."""

    def document_indexed(
        self,
        *,
        collection: str,
        stage_seconds: Mapping[str, float],
        chunks: int,
        pages: int | None,
        upload_to_searchable_s: float,
    ) -> None:
        WORKER_DOCUMENTS.labels("indexed").inc()
        for stage, seconds in stage_seconds.items():
            WORKER_STAGE_SECONDS.labels(stage).observe(seconds)
        WORKER_UPLOAD_TO_SEARCHABLE.observe(upload_to_searchable_s)
        WORKER_LAST_ACTIVITY.set_to_current_time()

    def document_failed(self, *, stage: Stage, cause: str, will_retry: bool) -> None:
        WORKER_DOCUMENTS.labels("retried" if will_retry else "failed").inc()
        WORKER_FAILURES.labels(stage.value, cause).inc()

    def chunks_embedded(self, count: int, seconds: float) -> None:
        WORKER_CHUNKS.inc(count)
        WORKER_EMBED_SECONDS.inc(seconds)

    def leases_renewed(self, count: int) -> None:
        WORKER_LEASE_RENEWALS.inc(count)
        WORKER_LAST_ACTIVITY.set_to_current_time()

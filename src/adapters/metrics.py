"""Prometheus metrics shared by the adapters and entrypoints of one process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("cogep_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "cogep_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DOCUMENTS_ACCEPTED = Counter(
    "cogep_documents_accepted_total", "Uploads stored and queued", ["collection", "outcome"]
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
CHUNKS_BY_MODEL = Gauge("cogep_chunks", "Stored chunks by embedding model", ["model", "dim"])

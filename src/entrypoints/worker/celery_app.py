"""The Celery application: Redis broker and result backend, settings-driven config.

Tasks receive sizes only (`batch_size`); the database is the queue and the truth.
"""

from __future__ import annotations

from celery import Celery

from entrypoints.settings import Settings

QUEUE = "cogep"
# periodic tasks have their own queue, consumed by the scheduler process (`cogep-ingest
# beat`: Celery beat embedded in a one-process worker), so a sweep never waits behind
# documents however busy the workers are
MAINTENANCE_QUEUE = "cogep.maintenance"
PROCESS_BATCH = "cogep.process_batch"
SWEEP = "cogep.sweep"


def create_celery_app(settings: Settings, redis_url: str | None = None) -> Celery:
    url = redis_url or settings.require_redis_url()
    app = Celery("cogep", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        task_acks_late=False,  # a doorbell lost with its worker is re-rung by the sweeper
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=None,
        worker_pool=settings.effective_pool,
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options={
            "socket_connect_timeout": 1,
            "socket_timeout": 5,
            "visibility_timeout": 3600,
        },
        redis_socket_connect_timeout=1,
        redis_socket_timeout=5,
        task_routes={SWEEP: {"queue": MAINTENANCE_QUEUE}},
        beat_schedule={
            "sweep-queue": {
                "task": SWEEP,
                "schedule": settings.sweep_interval_s,
                # a sweep that could not run in its interval is replaced by the next one
                "options": {"queue": MAINTENANCE_QUEUE, "expires": settings.sweep_interval_s},
            },
        },
        timezone="UTC",
        enable_utc=True,
    )
    return app

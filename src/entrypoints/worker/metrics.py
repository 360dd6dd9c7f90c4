"""Prometheus metrics of a worker: each worker process serves /metrics on
COGEP_WORKER_METRICS_PORT, so a fleet on several hosts is scraped host by host (see
docs/operations.md). With the prefork pool the work happens in the pool's children:
prometheus_client's multiprocess mode adds their files up, which needs its directory
set before anything imports prometheus_client (`prepare_multiprocess` does that first
thing in `cogep-ingest worker`)."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile

log = logging.getLogger(__name__)

_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess() -> None:
    if _ENV not in os.environ:
        path = tempfile.mkdtemp(prefix="cogep-worker-metrics-")
        os.environ[_ENV] = path
        atexit.register(_remove_if_main, path, os.getpid())
    else:  # stale files of a previous run would be added up too
        path = os.environ[_ENV]
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def _remove_if_main(path: str, main: int) -> None:
    if os.getpid() == main:  # the pool's children inherit the hook: only we remove it
        shutil.rmtree(path, ignore_errors=True)


def serve(port: int, host: str = "127.0.0.1") -> bool:
    """Serve this worker's metrics; False (and a warning) when the port is taken."""
    if not port:
        return False
    from prometheus_client import CollectorRegistry, start_http_server

    registry = None
    if os.environ.get(_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        if registry is None:
            start_http_server(port, addr=host)
        else:
            start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.warning(
            "worker metrics not served: port %d: %s (set COGEP_WORKER_METRICS_PORT to a "
            "free port per worker process on a host, or 0)",
            port,
            exc.strerror,
        )
        return False
    log.info("worker metrics on %s:%d/metrics", host, port)
    return True


def child_exited(pid: int) -> None:
    if os.environ.get(_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]

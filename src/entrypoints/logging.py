"""Structured logging (structlog) for every process: JSON in production, console locally.

API (uvicorn included), worker and beat (Celery's own logging switched off) all write
through one handler, one line per record (tracebacks aside), never wrapped.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "INFO", json: bool = False, process: str = "cogep") -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),  # log.info(..., extra={"document_id": ...})
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.dict_tracebacks if json else structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(process=process)
    # one format for every process: uvicorn's own handlers go, its records reach ours
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # per-task chatter says nothing an operator needs: task results (dicts), and in the
    # scheduler every sweep's "received" and "sending due task"; the use cases log what
    # they did, only when they did something. A worker still notes each doorbell.
    quiet = ["uvicorn.access", "asyncio", "celery.app.trace"]
    if process == "beat":
        quiet += ["celery.worker.strategy", "celery.beat"]
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(logging.WARNING)

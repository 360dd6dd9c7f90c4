"""One log format for every process: single-line JSON records (COGEP_LOG_JSON) from our
loggers, uvicorn's and Celery's alike, with the structured fields passed as `extra`,
never wrapped however long."""

from __future__ import annotations

import json
import logging

import pytest

from entrypoints.logging import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_every_logger_writes_one_json_line_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.addHandler(logging.StreamHandler())  # what uvicorn's own config installs
    configure_logging("INFO", json=True, process="worker")
    long_name = "portaria-" + "x" * 300 + ".pdf"
    logging.getLogger("application.use_cases.process_batch").info(
        "indexed %s (rh): 3 pages", long_name, extra={"document_id": "d-1", "job_id": "j-1"}
    )
    uvicorn.info("Started server process [%d]", 42)
    logging.getLogger("celery.app.trace").info("Task succeeded")  # per-task chatter: dropped
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    records = [json.loads(line) for line in lines]  # each line is a whole record
    assert len(records) == 2
    indexed, started = records
    assert indexed["event"] == f"indexed {long_name} (rh): 3 pages"
    assert (indexed["document_id"], indexed["job_id"], indexed["process"]) == (
        "d-1",
        "j-1",
        "worker",
    )
    assert indexed["level"] == "info" and "timestamp" in indexed
    assert started["event"] == "Started server process [42]"
    assert started["logger"] == "uvicorn.error"


def test_the_console_format_is_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=False, process="api")
    logging.getLogger("x").warning("a %s", "b" * 500)
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 1 and "b" * 500 in lines[0]

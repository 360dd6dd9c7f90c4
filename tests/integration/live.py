"""Real processes for end-to-end tests: the API under uvicorn, Celery workers, beat."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx

from adapters.services.embedded import free_port
from entrypoints.api.command import uvicorn_command

ROOT = Path(__file__).resolve().parents[2]


def service_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PYTHONUNBUFFERED": "1",
        "COGEP_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 20) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_until_answering(
    answers: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    timeout_s: float = 60,
) -> None:
    """Poll `answers` (an HTTP probe: errors count as not yet) until it is True; fail
    when `proc` exits first or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if answers():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {timeout_s:.0f} s")
        time.sleep(0.1)


@contextlib.contextmanager
def running_api(
    database_url: str, redis_url: str, workers: int = 1, extra_env: Mapping[str, str] | None = None
) -> Iterator[str]:
    port = free_port()
    log = open(ROOT / ".pytest-api.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        uvicorn_command("127.0.0.1", port, workers),
        env=service_env(database_url, redis_url, **dict(extra_env or {})),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(
            lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200,
            "the API (see .pytest-api.log)",
            proc,
        )
        yield url
    finally:
        _stop(proc)
        log.close()


class Process:
    """A real platform process (worker, beat) with its output in a log file."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9 the whole process group (the worker and its parser child)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        _stop(self.proc)


def start_process(
    name: str, command: str, database_url: str, redis_url: str, log_dir: Path, **env: str
) -> Process:
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli.main", command],
        env=service_env(database_url, redis_url, COGEP_LOG_LEVEL="INFO", **env),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return Process(name, proc, log_path)


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[tuple[Process, ...]]:
    try:
        yield processes
    finally:
        for p in processes:
            p.stop()


def wait_until_ready(process: Process, timeout: float = 60) -> None:
    """A Celery worker logs 'ready.' once it consumes from the broker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.log()[-3000:]}")
        if " ready." in process.log():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} not ready after {timeout:.0f}s:\n{process.log()[-3000:]}")

"""Real processes for end-to-end tests: the API under uvicorn, Celery workers, beat."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from adapters.services.embedded import free_port

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


@contextlib.contextmanager
def running_api(
    database_url: str, redis_url: str, workers: int = 1, extra_env: Mapping[str, str] | None = None
) -> Iterator[str]:
    port = free_port()
    log = open(ROOT / ".pytest-api.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "entrypoints.api.app:create_app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
        ],
        env=service_env(database_url, redis_url, **dict(extra_env or {})),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API exited with {proc.returncode}; see .pytest-api.log")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not start within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        _stop(proc)
        log.close()

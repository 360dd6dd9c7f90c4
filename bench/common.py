"""What the benchmarks share: real services, real platform processes, results.

Services come from DATABASE_URL / REDIS_URL, else the embedded servers (PostgreSQL
16 + pgvector with fsync on, Redis), in a temporary folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from adapters.postgres.migrations import upgrade_head
from adapters.services.embedded import free_port
from adapters.services.local import local_services
from entrypoints.api.command import uvicorn_command

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
console = Console()


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": cores,
        "cpu": model,
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
    }


@contextlib.contextmanager
def services() -> Iterator[tuple[str, str]]:
    """(database_url, redis_url), migrated to head."""
    with tempfile.TemporaryDirectory(prefix="cogep-bench-") as tmp:
        Path(tmp).chmod(0o755)  # the embedded server may run as an unprivileged user
        with local_services(
            os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL"), Path(tmp)
        ) as s:
            upgrade_head(s.database_url)
            yield s.database_url, s.redis_url


def api_key(database_url: str, redis_url: str, name: str, scopes: list[str]) -> str:
    """A fresh API key (no rate limit) in the benchmark's database."""
    from entrypoints.container import build_container
    from entrypoints.settings import Settings

    async def create() -> str:
        settings = Settings(_env_file=None, database_url=database_url, redis_url=redis_url)
        container = build_container(settings)
        try:
            return (await container.api_keys().create(name, scopes, None)).plaintext
        finally:
            await container.engine().dispose()

    return asyncio.run(create())


def env_for(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PYTHONUNBUFFERED": "1",
        "COGEP_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def process(
    args: list[str], env: Mapping[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=dict(env),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def worker(env: Mapping[str, str], log_path: Path) -> contextlib.AbstractContextManager[Any]:
    return process(["-m", "entrypoints.cli.main", "worker"], env, log_path)


@contextlib.contextmanager
def api(env: Mapping[str, str], log_path: Path, workers: int = 1) -> Iterator[tuple[str, int]]:
    """(base URL, pid of the uvicorn process) once /healthz answers."""
    port = free_port()
    args = uvicorn_command("127.0.0.1", port, workers)[1:]  # process() adds the interpreter
    url = f"http://127.0.0.1:{port}"
    with process(args, env, log_path) as proc:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API exited; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not start within 60 s")
            time.sleep(0.1)
        yield url, proc.pid


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (uvicorn workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def postgres_cpu_seconds() -> float:
    """CPU time of the PostgreSQL server on this host: its live processes, plus what the
    postmaster has reaped from backends that ended (per-task engines close theirs)."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ("postgres", "postmaster"):
            try:
                times = p.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, ensure_ascii=False))
    return path


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if c not in (columns[0],) else "left")
    for r in rows:
        t.add_row(*[f"{v:,.1f}" if isinstance(v, float) else str(v) for v in r])
    console.print(t)
